// Secrets: names, versions, dates and grantees (never a value); set a new
// one, rotate a value, delete.

import { api, get } from "../api.js";
import { busy, confirmedButton, empty, failure, field, h, loading, pageHeader, replace, table, toast } from "../dom.js";
import * as fmt from "../format.js";

export function render({ view, setTitle }) {
  setTitle("Secrets");
  const list = h("div", {}, loading("Loading secrets…"));
  const form = setForm(null, () => load());
  replace(
    view,
    pageHeader("Secrets", { lead: "Encrypted at rest and write-only: values are never shown again. Functions read the ones they are granted as env.NAME." }),
    h("section", { class: "card", "aria-labelledby": "set-secret" }, h("h2", { id: "set-secret" }, "Set a secret"), form),
    h("h2", {}, "Stored secrets"),
    list,
  );
  const load = async () => {
    try {
      const { secrets } = await get("secrets");
      if (!secrets.length) {
        replace(list, empty("No secrets yet", "Set one above, then grant it to a function on the function's Secrets tab."));
        return;
      }
      replace(
        list,
        table(
          "Secrets",
          ["Name", h("th", { scope: "col", class: "num" }, "Version"), "Last set", h("th", { scope: "col", class: "hide-narrow" }, "Created"), "Granted to", "Actions"],
          secrets.map((s) =>
            h(
              "tr",
              { dataset: { secret: s.name } },
              h("th", { scope: "row" }, h("code", {}, s.name)),
              h("td", { class: "num" }, String(s.version)),
              h("td", {}, fmt.ago(s.updated_at)),
              h("td", { class: "hide-narrow" }, fmt.absolute(s.created_at)),
              h("td", {}, s.granted_to.length ? s.granted_to.map((f, i) => [i ? ", " : "", h("a", { href: `#/functions/${encodeURIComponent(f)}/secrets` }, f)]) : h("span", { class: "hint" }, "no function")),
              h("td", { class: "row-actions" }, rotateButton(s, load), deleteButton(s, load)),
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

/** The set form: a new secret (name given) or a new value for `fixedName`. */
function setForm(fixedName, done) {
  const name = fixedName
    ? null
    : field("Name", h("input", { type: "text", name: "name", spellcheck: "false", autocomplete: "off", placeholder: "OPENAI_API_KEY" }), "Letters, digits and _, as the function will read it: env.NAME.");
  const value = field(fixedName ? `New value of ${fixedName}` : "Value", h("input", { type: "password", name: "value", autocomplete: "new-password", spellcheck: "false" }), "Applies to the next request of every function granted it.");
  const submit = h("button", { type: "submit", class: "primary", "data-busy": "Saving…" }, fixedName ? "Rotate" : "Set secret");
  const form = h("form", { class: "inline-form", novalidate: true }, name?.element, value.element, h("div", { class: "actions" }, submit));
  form.addEventListener(
    "submit",
    busy(submit, async (event) => {
      event.preventDefault();
      name?.error("");
      value.error("");
      const target = fixedName || name.control.value.trim();
      if (!target) {
        name.error("Name the secret.");
        return name.control.focus();
      }
      try {
        const saved = await api("PUT", `secrets/${encodeURIComponent(target)}`, { value: value.control.value });
        value.control.value = "";
        if (name) name.control.value = "";
        toast(`${saved.name} is set (version ${saved.version}).`);
        done(saved);
      } catch (error) {
        (/value/i.test(error.message) || !name ? value : name).error(error.message);
      }
    }),
  );
  return form;
}

function rotateButton(secret, reload) {
  const button = h("button", { type: "button", class: "secondary small" }, "Rotate");
  button.addEventListener("click", () => {
    const row = button.closest("tr");
    if (row.nextElementSibling?.classList.contains("rotate-row")) {
      row.nextElementSibling.remove();
      return;
    }
    const form = setForm(secret.name, reload);
    row.after(h("tr", { class: "rotate-row" }, h("td", { colspan: "6" }, form)));
    form.querySelector("input").focus();
  });
  return button;
}

function deleteButton(secret, reload) {
  return confirmedButton(
    h("button", { type: "button", class: "danger small", "data-busy": "Deleting…" }, "Delete"),
    {
      title: `Delete ${secret.name}?`,
      body: secret.granted_to.length
        ? `${secret.granted_to.join(", ")} will find it missing from the next request. Their grants stay, so setting it again restores access.`
        : "No function is granted it.",
      confirm: "Delete the secret",
      danger: true,
    },
    async () => {
      await api("DELETE", `secrets/${encodeURIComponent(secret.name)}`);
      toast(`${secret.name} was deleted.`);
      reload();
    },
  );
}
