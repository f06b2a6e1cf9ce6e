// The deploy form: source (pasted or uploaded) and what belongs to the
// version: limits, egress allowlist and database role. It posts to the
// build endpoint; a compile error is shown at its line.

import { ApiError, api } from "./api.js";
import { busy, field, h, replace, uid } from "./dom.js";
import { codeView } from "./highlight.js";

const EXAMPLE = `export default {
  async fetch(request, env, ctx) {
    const name = new URL(request.url).searchParams.get("name") ?? "world";
    console.log("greeting", name);
    return Response.json({ hello: name });
  }
};
`;

function numberInput(name, value, placeholder) {
  return h("input", { type: "number", name, min: "1", step: "1", inputmode: "numeric", value: value ?? "", placeholder });
}

/**
 * `name` is the function to deploy to (null: the form asks for one);
 * `previous` is the active version (its source and manifest prefill the form);
 * `extra(body)` may add fields to the request; `onDeployed(report)` is called after a 201.
 */
export function deployForm({ name, previous, extra, onDeployed, submitLabel = "Deploy" }) {
  const manifest = previous?.manifest || {};
  const nameField = name
    ? null
    : field(
        "Name",
        h("input", { type: "text", name: "name", required: true, autocomplete: "off", spellcheck: "false", pattern: "[a-z0-9_-]{1,63}", placeholder: "hello" }),
        "Lower-case letters, digits, - and _; it becomes the URL /functions/v1/<name>.",
      );
  const source = field(
    "Source",
    h("textarea", { name: "source", class: "code-input", rows: "16", spellcheck: "false", autocapitalize: "off", autocomplete: "off", wrap: "off" }),
    "An ES module whose default export has fetch(request, env, ctx). Paste it here or upload a file.",
  );
  source.control.value = previous?.source ?? EXAMPLE;
  const upload = h("input", { type: "file", accept: ".js,.mjs,text/javascript,application/javascript", class: "file-input", id: uid("upload") });
  upload.addEventListener("change", async () => {
    const file = upload.files[0];
    if (file) source.control.value = await file.text();
  });
  const errorView = h("div", { class: "compile-error", hidden: true, role: "alert" });

  const fuel = field("Fuel", numberInput("fuel", manifest.limits?.fuel, "server default"), "Roughly one unit per Wasm instruction.");
  const memory = field("Memory (MiB)", numberInput("memory", manifest.limits?.memory_bytes ? manifest.limits.memory_bytes / 1048576 : "", "server default"));
  const deadline = field("Deadline (ms)", numberInput("deadline", manifest.limits?.deadline_ms, "server default"));

  const egressName = uid("egress");
  const egressDefault = h("input", { type: "radio", name: egressName, value: "default", checked: !manifest.egress });
  const egressList = h("input", { type: "radio", name: egressName, value: "list", checked: Boolean(manifest.egress) });
  const hosts = field(
    "Hosts it may fetch",
    h("textarea", { name: "egress", rows: "3", spellcheck: "false", placeholder: "api.example.com\n*.stripe.com" }),
    "One per line: a host, *.domain for its subdomains, an IP address, or * for any public host. Empty allows none.",
  );
  hosts.control.value = (manifest.egress || []).join("\n");
  const syncEgress = () => {
    hosts.element.hidden = !egressList.checked;
  };
  egressDefault.addEventListener("change", syncEgress);
  egressList.addEventListener("change", syncEgress);
  syncEgress();

  const role = field(
    "Database role",
    h(
      "select",
      { name: "database_role" },
      h("option", { value: "caller", selected: manifest.database_role !== "service" }, "The caller's, under row-level security"),
      h("option", { value: "service", selected: manifest.database_role === "service" }, "Service: bypasses row-level security (recorded)"),
    ),
  );

  const submit = h("button", { type: "submit", class: "primary", "data-busy": "Compiling…" }, submitLabel);
  const form = h(
    "form",
    { class: "deploy-form", novalidate: true },
    nameField?.element,
    source.element,
    h("div", { class: "upload-row" }, h("label", { for: upload.id }, "Or upload a file"), upload),
    errorView,
    h(
      "details",
      { class: "options", open: Boolean(manifest.limits?.fuel || manifest.limits?.memory_bytes || manifest.limits?.deadline_ms || manifest.egress || manifest.database_role === "service") },
      h("summary", {}, "Limits, egress and database role of this version"),
      h("fieldset", {}, h("legend", {}, "Limits (empty: the server's default)"), h("div", { class: "grid-3" }, fuel.element, memory.element, deadline.element)),
      h(
        "fieldset",
        {},
        h("legend", {}, "Outbound HTTP"),
        h("label", { class: "choice" }, egressDefault, "The server's default (--egress-default)"),
        h("label", { class: "choice" }, egressList, "Only the hosts listed"),
        hosts.element,
      ),
      role.element,
    ),
    h("div", { class: "actions" }, submit),
  );

  const fields = [nameField, source, fuel, memory, deadline, hosts].filter(Boolean);
  form.addEventListener(
    "submit",
    busy(submit, async (event) => {
      event.preventDefault();
      fields.forEach((f) => f.error(""));
      errorView.hidden = true;
      const target = name || nameField.control.value.trim();
      if (!name && !/^[a-z0-9_-]{1,63}$/.test(target)) {
        nameField.error("Use 1 to 63 lower-case letters, digits, - or _.");
        nameField.control.focus();
        return;
      }
      if (!source.control.value.trim()) {
        source.error("Paste or upload the function's source.");
        source.control.focus();
        return;
      }
      const limits = {};
      const positive = (f, key, scale = 1) => {
        const text = f.control.value.trim();
        if (!text) return true;
        const value = Number(text);
        if (!Number.isInteger(value) || value <= 0) {
          f.error("A whole number greater than zero, or empty for the server's default.");
          f.control.focus();
          return false;
        }
        limits[key] = value * scale;
        return true;
      };
      if (!positive(fuel, "fuel") || !positive(memory, "memory_bytes", 1048576) || !positive(deadline, "deadline_ms")) return;
      const body = { source: source.control.value, limits };
      if (egressList.checked) body.egress = hosts.control.value.split("\n").map((l) => l.trim()).filter(Boolean);
      if (role.control.value === "service") body.database_role = "service";
      extra?.(body);
      try {
        const report = await api("POST", `functions/${encodeURIComponent(target)}/versions`, body);
        onDeployed(report);
      } catch (error) {
        showError(error, body.source);
      }
    }),
  );

  function showError(error, text) {
    if (!(error instanceof ApiError)) {
      replace(errorView, h("p", {}, error.message));
      errorView.hidden = false;
      return;
    }
    const message = error.message;
    if (error.code === "compile_error" && error.body.line) {
      source.error(`Line ${error.body.line}, column ${error.body.column}: ${message}`);
      const all = text.split("\n");
      const from = Math.max(0, error.body.line - 3);
      const excerpt = all.slice(from, error.body.line + 2).join("\n");
      replace(errorView, h("p", { class: "hint" }, `Around line ${error.body.line}:`), offsetView(excerpt, from, error.body.line));
      errorView.hidden = false;
      source.control.focus();
    } else if (/limits\.fuel/.test(message)) fuel.error(message);
    else if (/limits\.memory/.test(message)) memory.error(message);
    else if (/limits\.deadline/.test(message)) deadline.error(message);
    else if (/egress|host/i.test(message) && egressList.checked) hosts.error(message);
    else if (/name/i.test(message) && nameField) nameField.error(message);
    else source.error(message);
  }

  return form;
}

/** A code excerpt whose line numbers start after `skipped` lines. */
function offsetView(excerpt, skipped, mark) {
  const view = codeView(excerpt, { label: "Where the error is", mark: mark - skipped });
  view.classList.add("excerpt");
  view.dataset.start = String(skipped + 1);
  view.querySelectorAll(".line").forEach((line, index) => line.setAttribute("data-n", String(skipped + index + 1)));
  return view;
}
