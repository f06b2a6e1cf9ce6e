// The access-policy editor: the four policy types, with a builder for
// metadata conditions (all/any groups nested up to four levels, as the
// server allows). It checks what it can before sending; the server's
// message, when it refuses, is shown in the editor.

import { h, replace, uid } from "./dom.js";

const TYPES = [
  ["public", "Anyone", "No sign-in needed. A valid token still identifies the caller."],
  ["authenticated", "Signed-in users", "Any user with a valid access token whose account is not disabled."],
  ["group", "Members of groups", "Users in one (or all) of the groups you name."],
  ["metadata", "Users whose metadata matches", "Conditions on the user's metadata, e.g. department equals \"engineering\"."],
];
const OPERATORS = [
  ["equals", "equals"],
  ["in", "is one of"],
  ["exists", "exists"],
  ["gt", ">"],
  ["gte", "≥"],
  ["lt", "<"],
  ["lte", "≤"],
];
const MAX_DEPTH = 4;

/** A condition tree node from the policy JSON. */
function fromJson(condition) {
  if (condition.all || condition.any) {
    const mode = condition.all ? "all" : "any";
    return { mode, children: condition[mode].map(fromJson) };
  }
  const op = OPERATORS.map(([o]) => o).find((o) => o in condition) || "equals";
  const raw = condition[op];
  const sample = Array.isArray(raw) ? raw[0] : raw;
  const type = typeof sample === "number" ? "number" : typeof sample === "boolean" ? "boolean" : "string";
  const text = Array.isArray(raw) ? raw.map(String).join(", ") : String(raw ?? "");
  return { key: condition.key || "", op, type, text };
}

/** Text typed into a value box as the JSON value it stands for. */
function typed(text, type) {
  if (type === "number") {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n)) throw new Error(`"${text}" is not a number`);
    return n;
  }
  if (type === "boolean") {
    if (text.trim() !== "true" && text.trim() !== "false") throw new Error("a boolean is true or false");
    return text.trim() === "true";
  }
  return text;
}

export function policyEditor(initial, knownGroups = []) {
  const policy = initial || { type: "authenticated" };
  const name = uid("policy");
  const errorBox = h("p", { class: "field-error", role: "alert", hidden: true, id: `${name}-error` });

  const radios = TYPES.map(([type, label, hint]) => {
    const input = h("input", { type: "radio", name, value: type, checked: policy.type === type, "aria-describedby": `${name}-${type}-hint` });
    input.addEventListener("change", sync);
    return [type, input, h("label", { class: "choice card-choice" }, input, h("span", {}, h("strong", {}, label), h("span", { class: "hint", id: `${name}-${type}-hint` }, hint)))];
  });

  // Groups.
  const groupsInput = h("input", { type: "text", id: `${name}-groups`, spellcheck: "false", autocomplete: "off", placeholder: "admin, ops", value: policy.type === "group" ? policy.groups.join(", ") : "" });
  const requireSelect = h(
    "select",
    { id: `${name}-require` },
    h("option", { value: "any", selected: policy.require !== "all" }, "any of these groups"),
    h("option", { value: "all", selected: policy.require === "all" }, "all of these groups"),
  );
  const groupSection = h(
    "div",
    { class: "policy-detail" },
    h("div", { class: "field" }, h("label", { for: groupsInput.id }, "Groups"), groupsInput, h("p", { class: "hint" }, "Comma-separated. Lower-case letters, digits, - _ . and :.")),
    knownGroups.length
      ? h(
          "p",
          { class: "hint chips" },
          "Existing groups: ",
          knownGroups.map((g) =>
            h("button", { type: "button", class: "chip", onclick: () => addGroup(g.name), "aria-label": `Add group ${g.name}` }, g.name),
          ),
        )
      : null,
    h("div", { class: "field" }, h("label", { for: requireSelect.id }, "Members of"), requireSelect),
  );
  function addGroup(group) {
    const current = groupsInput.value.split(",").map((g) => g.trim()).filter(Boolean);
    if (!current.includes(group)) current.push(group);
    groupsInput.value = current.join(", ");
  }

  // Metadata conditions.
  let tree = policy.type === "metadata" ? fromJson(policy) : { mode: "all", children: [{ key: "", op: "equals", type: "string", text: "" }] };
  const treeView = h("div", { class: "conditions" });
  const metadataSection = h("div", { class: "policy-detail" }, treeView);
  const leafErrors = new Map();

  function drawTree() {
    leafErrors.clear();
    replace(treeView, groupView(tree, 1, null));
  }

  function groupView(node, depth, parent) {
    const mode = h("select", { "aria-label": "Combine the conditions below with" }, h("option", { value: "all", selected: node.mode === "all" }, "All of"), h("option", { value: "any", selected: node.mode === "any" }, "Any of"));
    mode.addEventListener("change", () => (node.mode = mode.value));
    const add = (child) => () => {
      node.children.push(child());
      drawTree();
    };
    return h(
      "div",
      { class: "condition-group", role: "group", "aria-label": `Condition group, level ${depth}` },
      h(
        "div",
        { class: "condition-group-head" },
        mode,
        h("span", { class: "hint" }, "these conditions hold"),
        parent
          ? h("button", { type: "button", class: "link danger-text", onclick: () => { parent.children.splice(parent.children.indexOf(node), 1); drawTree(); } }, "Remove group")
          : null,
      ),
      h("ul", {}, node.children.map((child) => h("li", {}, child.children ? groupView(child, depth + 1, node) : leafView(child, node)))),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary small", onclick: add(() => ({ key: "", op: "equals", type: "string", text: "" })) }, "Add condition"),
        depth < MAX_DEPTH
          ? h("button", { type: "button", class: "secondary small", onclick: add(() => ({ mode: "any", children: [{ key: "", op: "equals", type: "string", text: "" }] })) }, "Add group")
          : null,
      ),
    );
  }

  function leafView(leaf, parent) {
    const key = h("input", { type: "text", value: leaf.key, placeholder: "department", "aria-label": "Metadata key", spellcheck: "false" });
    const op = h("select", { "aria-label": "Operator" }, OPERATORS.map(([value, label]) => h("option", { value, selected: leaf.op === value }, label)));
    const type = h("select", { "aria-label": "Value type" }, ["string", "number", "boolean"].map((t) => h("option", { value: t, selected: leaf.type === t }, t)));
    const value = h("input", { type: "text", value: leaf.text, "aria-label": "Value", spellcheck: "false" });
    const exists = h("select", { "aria-label": "Exists" }, h("option", { value: "true", selected: leaf.text !== "false" }, "yes"), h("option", { value: "false", selected: leaf.text === "false" }, "no"));
    const error = h("p", { class: "field-error", hidden: true });
    const layout = () => {
      const numeric = ["gt", "gte", "lt", "lte"].includes(op.value);
      type.hidden = numeric || op.value === "exists";
      value.hidden = op.value === "exists";
      exists.hidden = op.value !== "exists";
      value.placeholder = op.value === "in" ? "pro, team" : numeric ? "10" : "engineering";
    };
    key.addEventListener("input", () => (leaf.key = key.value));
    op.addEventListener("change", () => {
      leaf.op = op.value;
      layout();
    });
    type.addEventListener("change", () => (leaf.type = type.value));
    value.addEventListener("input", () => (leaf.text = value.value));
    exists.addEventListener("change", () => (leaf.text = exists.value));
    layout();
    leafErrors.set(leaf, (message) => {
      error.hidden = !message;
      error.textContent = message || "";
      for (const control of [key, value]) {
        if (message) control.setAttribute("aria-invalid", "true");
        else control.removeAttribute("aria-invalid");
      }
    });
    return h(
      "div",
      { class: "condition" },
      h("div", { class: "condition-row" }, key, op, type, value, exists, h("button", { type: "button", class: "link danger-text", onclick: () => { parent.children.splice(parent.children.indexOf(leaf), 1); drawTree(); }, "aria-label": "Remove condition" }, "Remove")),
      error,
    );
  }

  function toJson(node) {
    if (node.children) {
      if (!node.children.length) throw new Error("a group needs at least one condition (or remove it)");
      return { [node.mode]: node.children.map(toJson) };
    }
    const fail = (message) => {
      leafErrors.get(node)?.(message);
      throw new Error(message);
    };
    leafErrors.get(node)?.("");
    if (!node.key.trim()) fail("Name the metadata key this condition tests.");
    const key = node.key.trim();
    try {
      if (node.op === "exists") return { key, exists: node.text !== "false" };
      if (["gt", "gte", "lt", "lte"].includes(node.op)) return { key, [node.op]: typed(node.text, "number") };
      if (node.op === "in") {
        const items = node.text.split(",").map((t) => t.trim()).filter(Boolean);
        if (!items.length) throw new Error("list at least one value, separated by commas");
        return { key, in: items.map((t) => typed(t, node.type)) };
      }
      return { key, equals: typed(node.text, node.type) };
    } catch (e) {
      return fail(`${key}: ${e.message}.`);
    }
  }

  function sync() {
    const type = selected();
    groupSection.hidden = type !== "group";
    metadataSection.hidden = type !== "metadata";
    radios.forEach(([t, , label]) => label.classList.toggle("selected", t === type));
  }
  const selected = () => radios.find(([, input]) => input.checked)?.[0] || "authenticated";

  const element = h(
    "fieldset",
    { class: "policy-editor", "aria-describedby": errorBox.id },
    h("legend", {}, "Who may call this function"),
    h("div", { class: "choices" }, radios.map(([, , label]) => label)),
    groupSection,
    metadataSection,
    errorBox,
  );
  drawTree();
  sync();

  return {
    element,
    /** The policy JSON; throws (and shows why) when it cannot be built. */
    value() {
      this.error("");
      const type = selected();
      if (type === "public" || type === "authenticated") return { type };
      if (type === "group") {
        const groups = groupsInput.value.split(",").map((g) => g.trim()).filter(Boolean);
        if (!groups.length) {
          this.error("Name at least one group.");
          groupsInput.focus();
          throw new Error("no groups");
        }
        return { type, groups, require: requireSelect.value };
      }
      try {
        return { type, ...toJson(tree) };
      } catch (e) {
        this.error(`Check the conditions: ${e.message}`);
        throw e;
      }
    },
    error(message) {
      errorBox.hidden = !message;
      errorBox.textContent = message || "";
    },
  };
}
