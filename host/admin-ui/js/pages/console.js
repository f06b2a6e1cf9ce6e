// The test console: send a request to a function anonymously, as a chosen
// user (with a short-lived token the admin API issues and records), or
// with the admin key; see the response, then its execution record: console
// output, error, duration split and fuel.

import { ApiError, FUNCTIONS_BASE, adminKey, api, get } from "../api.js";
import { busy, empty, failure, field, h, loading, pageHeader, replace, uid } from "../dom.js";
import * as fmt from "../format.js";
import { recordBody } from "./logs.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

export function render({ view, query, setTitle }) {
  setTitle("Test console");
  const body = h("div", {}, loading("Loading functions and users…"));
  replace(
    view,
    pageHeader("Test console", { lead: "Call a function the way a client would, and see what it did: response, console output, duration and fuel." }),
    body,
  );
  const load = async () => {
    try {
      const [{ functions }, { users }] = await Promise.all([get("functions"), get("users")]);
      if (!functions.length) {
        replace(body, empty("No functions to test", "Deploy a function first.", h("a", { class: "button primary", href: "#/functions/new" }, "Deploy a function")));
        return;
      }
      replace(body, consoleForm(functions, users, query));
    } catch (error) {
      replace(body, failure(error, load));
    }
  };
  load();
}

function parseHeaders(text) {
  const headers = [];
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`"${line}" is not a header: write Name: value`);
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return headers;
}

function consoleForm(functions, users, query) {
  const wanted = query.get("function");
  const fn = field("Function", h("select", { name: "function" }, functions.map((f) => h("option", { value: f.name, selected: f.name === wanted }, `${f.name}${f.active_version ? ` (v${f.active_version})` : ""}`))));
  // Keep the choice in the address without re-rendering the form.
  fn.control.addEventListener("change", () => history.replaceState(null, "", `#/console?function=${encodeURIComponent(fn.control.value)}`));
  const method = field("Method", h("select", { name: "method" }, METHODS.map((m) => h("option", { value: m }, m))));
  const path = field("Path and query", h("input", { type: "text", name: "path", value: "/", spellcheck: "false", autocomplete: "off" }), "After /functions/v1/<name>, e.g. /items/42?verbose=1.");
  const headers = field("Headers", h("textarea", { name: "headers", rows: "3", spellcheck: "false", placeholder: "content-type: application/json" }), "One per line, Name: value. Browsers do not let a page set some (Host, Cookie…).");
  const payload = field("Body", h("textarea", { name: "body", rows: "6", spellcheck: "false", class: "code-input", placeholder: '{"name": "Ada"}' }));
  const syncMethod = () => {
    const none = ["GET", "HEAD"].includes(method.control.value);
    payload.control.disabled = none;
    payload.control.placeholder = none ? `A ${method.control.value} request has no body` : '{"name": "Ada"}';
  };
  method.control.addEventListener("change", syncMethod);
  syncMethod();

  const callerName = uid("caller");
  const wantedUser = users.find((u) => u.id === query.get("user"));
  const asAnonymous = h("input", { type: "radio", name: callerName, value: "anonymous", checked: !wantedUser });
  const asUser = h("input", { type: "radio", name: callerName, value: "user", disabled: !users.length, checked: Boolean(wantedUser) });
  const asAdmin = h("input", { type: "radio", name: callerName, value: "admin" });
  const user = field(
    "User",
    h("select", { name: "user" }, users.map((u) => h("option", { value: u.id, selected: u.id === wantedUser?.id }, `${u.email}${u.groups.length ? ` (${u.groups.join(", ")})` : ""}${u.disabled ? " — disabled" : ""}`))),
    "edgefn issues a 5-minute token for this user; the record names them and this admin key.",
  );
  const syncCaller = () => (user.element.hidden = !asUser.checked);
  [asAnonymous, asUser, asAdmin].forEach((r) => r.addEventListener("change", syncCaller));
  syncCaller();

  const send = h("button", { type: "submit", class: "primary", "data-busy": "Sending…" }, "Send request");
  const result = h("section", { class: "console-result", "aria-live": "polite", "aria-label": "Result" });
  const form = h(
    "form",
    { class: "card console-form", novalidate: true },
    h("div", { class: "grid-3 request-line" }, fn.element, method.element, path.element),
    h(
      "fieldset",
      {},
      h("legend", {}, "Call as"),
      h("label", { class: "choice" }, asAnonymous, "Anonymous (no credentials)"),
      h("label", { class: "choice" }, asUser, users.length ? "A user" : "A user (create one on the Users page first)"),
      h("label", { class: "choice" }, asAdmin, "The admin key (service role: passes any policy, bypasses row-level security)"),
      user.element,
    ),
    headers.element,
    payload.element,
    h("div", { class: "actions" }, send),
  );
  form.addEventListener(
    "submit",
    busy(send, async (event) => {
      event.preventDefault();
      [headers, path, user].forEach((f) => f.error(""));
      let list;
      try {
        list = parseHeaders(headers.control.value);
      } catch (error) {
        headers.error(error.message);
        headers.control.focus();
        return;
      }
      const requestHeaders = new Headers();
      list.forEach(([name, value]) => requestHeaders.append(name, value));
      let as = "anonymous";
      if (asUser.checked) {
        try {
          const token = await api("POST", `users/${encodeURIComponent(user.control.value)}/token`);
          requestHeaders.set("Authorization", `Bearer ${token.access_token}`);
          as = token.user.email;
        } catch (error) {
          user.error(error.message);
          return;
        }
      } else if (asAdmin.checked) {
        requestHeaders.set("Authorization", `Bearer ${adminKey()}`);
        as = "the admin key";
      }
      let sub = path.control.value.trim() || "/";
      if (!sub.startsWith("/") && !sub.startsWith("?")) sub = `/${sub}`;
      if (sub === "/") sub = "";
      const url = new URL(`${encodeURIComponent(fn.control.value)}${sub}`, FUNCTIONS_BASE);
      const init = { method: method.control.value, headers: requestHeaders, redirect: "manual", cache: "no-store" };
      if (!payload.control.disabled && payload.control.value) init.body = payload.control.value;
      replace(result, loading(`Calling ${fn.control.value} as ${as}…`));
      await call(url, init, result, as);
    }),
  );
  return h("div", { class: "console" }, form, result);
}

async function call(url, init, result, as) {
  const started = performance.now();
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    replace(result, failure({ title: "The request did not complete", message: error.message }));
    return;
  }
  if (response.type === "opaqueredirect") {
    replace(
      result,
      failure({
        title: "The function answered with a redirect",
        message: "Browsers do not let a page read a redirect answer (its status and Location header are hidden), so the test console cannot show it. Its execution record is on the Logs page; curl -i shows the answer itself.",
      }),
    );
    return;
  }
  const text = await response.arrayBuffer();
  const elapsed = performance.now() - started;
  const id = response.headers.get("x-edgefn-invocation-id");
  const contentType = response.headers.get("content-type") || "";
  const shown = bodyText(text, contentType);
  const recordBox = h("div", {}, id ? loading("Waiting for the execution record…") : h("p", { class: "hint" }, "This answer has no invocation id, so there is no record (the function does not exist, or a preflight was answered by edgefn)."));
  replace(
    result,
    h(
      "div",
      { class: "card" },
      h(
        "div",
        { class: "response-line" },
        fmt.status(response.status),
        h("span", { class: "strong" }, response.statusText || ""),
        h("span", { class: "hint" }, `${elapsed.toFixed(1)} ms round trip, as ${as}`),
        id ? h("a", { href: `#/logs/${id}`, class: "small" }, "Open the record") : null,
      ),
      h("h2", {}, "Response"),
      h(
        "details",
        { class: "headers" },
        h("summary", {}, `Headers (${[...response.headers].length})`),
        h("dl", { class: "pairs" }, [...response.headers].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      ),
      h("pre", { class: "output", tabindex: "0", "aria-label": "Response body" }, shown || h("span", { class: "hint" }, "(empty body)")),
    ),
    h("div", { class: "card" }, h("h2", {}, "Execution record"), recordBox),
  );
  if (id) await showRecord(id, recordBox);
}

function bodyText(buffer, contentType) {
  if (!buffer.byteLength) return "";
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(buffer);
    if (/json/.test(contentType)) {
      try {
        return JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        return text;
      }
    }
    return text;
  } catch {
    return `<${fmt.bytes(buffer.byteLength)} of binary data>`;
  }
}

/** Polls for the record: the batch writer stores it a few milliseconds after the answer. */
async function showRecord(id, box) {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    try {
      const record = await get(`executions/${id}`);
      replace(box, recordBody(record, { compact: true }));
      return;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) {
        replace(box, failure(error));
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  replace(box, failure({ title: "No record yet", message: `The record ${id} was not stored within 5 seconds. Look for it on the Logs page in a moment.` }));
}
