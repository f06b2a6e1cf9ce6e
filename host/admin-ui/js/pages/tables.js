// Database: app tables with their columns, indexes and row-level-security
// policies; editing the policies; creating a table; the change history.

import { ApiError, api, get } from "../api.js";
import { busy, confirmedButton, empty, failure, field, h, loading, pageHeader, replace, table, toast } from "../dom.js";
import * as fmt from "../format.js";

const OPERATIONS = ["select", "insert", "update", "delete", "all"];
const EXAMPLE_TABLE = JSON.stringify(
  {
    name: "notes",
    columns: [
      { name: "id", type: "integer", primary_key: true, default: "identity" },
      { name: "owner_id", type: "text", nullable: false, default: "auth.uid()" },
      { name: "body", type: "text" },
      { name: "created_at", type: "timestamp", nullable: false, default: "now()" },
    ],
    indexes: [{ columns: ["owner_id"] }],
  },
  null,
  2,
);

export function render({ view, navigate, setTitle }) {
  setTitle("Database");
  const spec = field("Table definition (JSON)", h("textarea", { rows: "14", spellcheck: "false", class: "code-input" }), "Columns with types, primary key, defaults, indexes and foreign keys, as the admin API takes them. Row-level security starts on, with no policy: add policies before functions can read it.");
  spec.control.value = EXAMPLE_TABLE;
  const create = h("button", { type: "submit", class: "primary", "data-busy": "Creating…" }, "Create table");
  const form = h("form", { novalidate: true }, spec.element, h("div", { class: "actions" }, create));
  form.addEventListener(
    "submit",
    busy(create, async (event) => {
      event.preventDefault();
      spec.error("");
      let body;
      try {
        body = JSON.parse(spec.control.value);
      } catch (error) {
        return spec.error(`Not valid JSON: ${error.message}`);
      }
      try {
        const created = await api("POST", "tables", body);
        toast(`Table ${created.name} created.`);
        navigate(`#/tables/${encodeURIComponent(created.name)}`);
      } catch (error) {
        spec.error(error.message);
      }
    }),
  );
  const list = h("div", {}, loading("Loading tables…"));
  replace(
    view,
    pageHeader("Database", { lead: "App tables that functions query with ctx.db, as their caller, under row-level security." }),
    list,
    h("details", { class: "card create" }, h("summary", {}, "Create a table"), form),
  );
  const load = async () => {
    try {
      const { tables } = await get("tables");
      if (!tables.length) return replace(list, empty("No tables yet", "Create one below; then give it policies so functions can use it."));
      replace(
        list,
        table(
          "Tables",
          ["Name", "Columns", "Row-level security", h("th", { scope: "col", class: "num" }, "Policies"), h("th", { scope: "col", class: "hide-narrow" }, "Changed")],
          tables.map((t) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, h("a", { href: `#/tables/${encodeURIComponent(t.name)}` }, t.name)),
              h("td", { class: "small" }, t.columns.map((c) => c.name).join(", ")),
              h("td", {}, t.rls_enabled ? h("span", { class: "badge ok" }, "on") : h("span", { class: "badge warn" }, "off")),
              h("td", { class: "num" }, String(t.policies.length)),
              h("td", { class: "hide-narrow" }, fmt.ago(t.updated_at)),
            ),
          ),
        ),
      );
    } catch (error) {
      replace(list, failure(error, load));
    }
  };
  load();
}

function columnFlags(c) {
  const flags = [];
  if (c.primary_key) flags.push("primary key");
  if (c.nullable === false && !c.primary_key) flags.push("not null");
  if (c.unique) flags.push("unique");
  if (c.default !== undefined && c.default !== null) flags.push(`default ${typeof c.default === "string" ? c.default : JSON.stringify(c.default.value ?? c.default)}`);
  if (c.references) flags.push(`→ ${c.references.table}.${c.references.column}${c.references.on_delete ? ` (on delete ${c.references.on_delete})` : ""}`);
  return flags.join(", ");
}

export function renderTable({ view, params, navigate, setTitle }) {
  const [name] = params;
  setTitle(name);
  const body = h("div", {}, loading(`Loading ${name}…`));
  replace(view, pageHeader(name, { crumbs: [h("a", { href: "#/tables" }, "Database"), ` / ${name}`] }), body);
  const load = async () => {
    let t;
    let changes;
    try {
      [t, { changes }] = await Promise.all([get(`tables/${encodeURIComponent(name)}`), get(`tables/${encodeURIComponent(name)}/changes`)]);
    } catch (error) {
      replace(body, error instanceof ApiError && error.status === 404 ? empty(`There is no table called ${name}`, null, h("a", { class: "button secondary", href: "#/tables" }, "All tables")) : failure(error, load));
      return;
    }
    const remove = confirmedButton(
      h("button", { type: "button", class: "danger", "data-busy": "Dropping…" }, `Drop ${name}`),
      { title: `Drop ${name}?`, body: "The table and all its rows are deleted. This cannot be undone.", confirm: "Drop the table", danger: true },
      async () => {
        await api("DELETE", `tables/${encodeURIComponent(name)}`);
        toast(`${name} was dropped.`);
        navigate("#/tables");
      },
    );
    replace(
      body,
      h("p", { class: "lead" }, `Schema version ${t.schema_version} · created `, fmt.ago(t.created_at)),
      h("h2", {}, "Columns"),
      table(`Columns of ${name}`, ["Name", "Type", "Constraints"], t.columns.map((c) => h("tr", {}, h("th", { scope: "row", class: "mono" }, c.name), h("td", {}, c.type), h("td", { class: "small" }, columnFlags(c))))),
      t.indexes?.length ? [h("h2", {}, "Indexes"), h("ul", { class: "plain" }, t.indexes.map((i) => h("li", { class: "mono" }, `${i.name ? `${i.name}: ` : ""}(${i.columns.join(", ")})${i.unique ? " unique" : ""}`)))] : null,
      h("h2", {}, "Row-level security"),
      policiesForm(name, t, load),
      h("h2", {}, "Change history"),
      changes.length
        ? table(
            `Changes to ${name}`,
            ["When", "Change", h("th", { scope: "col", class: "num" }, "Version"), "By", "SQL"],
            changes.map((c) =>
              h(
                "tr",
                {},
                h("td", { class: "nowrap" }, fmt.absolute(c.applied_at)),
                h("td", {}, c.kind),
                h("td", { class: "num" }, String(c.schema_version)),
                h("td", { class: "mono small" }, c.applied_by || "—"),
                h("td", {}, h("details", {}, h("summary", {}, "SQL"), h("pre", { class: "output" }, (c.statements || []).join(";\n")))),
              ),
            ),
          )
        : h("p", { class: "hint" }, "No changes recorded."),
      h("section", { class: "card danger-zone" }, h("h2", {}, "Drop this table"), remove),
    );
  };
  load();
}

function policiesForm(name, t, reload) {
  const enabled = h("input", { type: "checkbox", checked: t.rls_enabled });
  const rows = h("div", { class: "rls-policies" });
  const error = h("p", { class: "field-error", role: "alert", hidden: true });
  const policies = t.policies.map((p) => ({ ...p }));
  const draw = () => {
    replace(
      rows,
      policies.length ? policies.map((p, index) => policyRow(p, () => { policies.splice(index, 1); draw(); })) : h("p", { class: "hint" }, "No policies: with row-level security on, every operation is denied."),
    );
  };
  draw();
  const add = h("button", { type: "button", class: "secondary small", onclick: () => { policies.push({ name: "", operation: "select", using: "" }); draw(); rows.querySelector(".rls-policy:last-child input")?.focus(); } }, "Add a policy");
  const save = h("button", { type: "submit", class: "primary", "data-busy": "Saving…" }, "Save policies");
  const form = h(
    "form",
    { class: "card", novalidate: true },
    h("label", { class: "choice" }, enabled, "Row-level security on (off: every caller sees and changes every row)"),
    h("p", { class: "hint" }, "Expressions: columns, literals, = != < <= > >=, in (...), in auth.groups(), is null, like/ilike, and/or/not, auth.uid(), auth.email(), auth.role(), auth.metadata('key'), now(). Several policies for one operation are alternatives."),
    rows,
    error,
    h("div", { class: "actions" }, add, save),
  );
  form.addEventListener(
    "submit",
    busy(save, async (event) => {
      event.preventDefault();
      error.hidden = true;
      const body = {
        rls_enabled: enabled.checked,
        policies: policies.map((p) => {
          const out = { name: p.name.trim(), operation: p.operation };
          if (p.operation !== "insert" && p.using?.trim()) out.using = p.using.trim();
          if (["insert", "update", "all"].includes(p.operation) && p.check?.trim()) out.check = p.check.trim();
          return out;
        }),
      };
      try {
        await api("PUT", `tables/${encodeURIComponent(name)}/policies`, body);
        toast(`Policies of ${name} saved.`);
        reload();
      } catch (e) {
        error.hidden = false;
        error.textContent = e.message;
      }
    }),
  );
  return form;
}

function policyRow(p, remove) {
  const name = field("Name", h("input", { type: "text", value: p.name, spellcheck: "false", placeholder: "read own" }));
  const operation = field("Operation", h("select", {}, OPERATIONS.map((o) => h("option", { value: o, selected: p.operation === o }, o))));
  const using = field("using (rows it may see)", h("input", { type: "text", value: p.using || "", spellcheck: "false", class: "mono", placeholder: "owner_id = auth.uid()" }));
  const check = field("check (rows it may write)", h("input", { type: "text", value: p.check || "", spellcheck: "false", class: "mono", placeholder: "owner_id = auth.uid()" }));
  const layout = () => {
    using.element.hidden = p.operation === "insert";
    check.element.hidden = p.operation === "select" || p.operation === "delete";
  };
  name.control.addEventListener("input", () => (p.name = name.control.value));
  operation.control.addEventListener("change", () => {
    p.operation = operation.control.value;
    layout();
  });
  using.control.addEventListener("input", () => (p.using = using.control.value));
  check.control.addEventListener("input", () => (p.check = check.control.value));
  layout();
  return h("div", { class: "rls-policy" }, name.element, operation.element, h("div", { class: "expressions" }, using.element, check.element), h("button", { type: "button", class: "link danger-text", onclick: remove, "aria-label": `Remove policy ${p.name || "(unnamed)"}` }, "Remove"));
}
