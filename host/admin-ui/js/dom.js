// Building the page from data. Text always goes in as text nodes: nothing
// here parses a string as markup, so a console line, a header or a function
// name from the API can never become an element or a script.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (["value", "checked", "selected", "disabled", "indeterminate"].includes(name) && !(element instanceof SVGElement)) {
      element[name] = value;
    } else if (name === "style") {
      throw new Error("inline styles are refused by the page's Content-Security-Policy: use a class");
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children: strings and numbers as text, arrays flattened, null/false skipped. */
export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === true) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("a", {href: "#/x", class: "link"}, "text", otherNode). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, with the same calling convention as h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

let ids = 0;
/** A page-unique id, to tie a label or a message to its field. */
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

/**
 * A labelled form field. `control` is an input, select or textarea; `hint`
 * explains it; the returned field's `error(message)` shows a message under
 * the control and marks it invalid for assistive technology.
 */
export function field(label, control, hint) {
  const id = control.id || uid("field");
  control.id = id;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const message = h("p", { class: "field-error", id: errorId, hidden: true });
  const describedBy = [hint ? hintId : null, errorId].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", describedBy);
  const element = h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    message,
  );
  return {
    element,
    control,
    error(text) {
      message.hidden = !text;
      message.textContent = text || "";
      if (text) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    },
  };
}

/** A button that shows it is busy while `action` runs, and cannot be pressed twice. */
export function busy(button, action) {
  return async (...args) => {
    if (button.disabled) return;
    const label = button.textContent;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = button.dataset.busy || `${label}…`;
    try {
      return await action(...args);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = label;
    }
  };
}

/** Announces a short message (success, or a failure not tied to a field). */
export function toast(text, kind = "ok") {
  const region = document.getElementById("toasts");
  const item = h("div", { class: ["toast", kind] }, text);
  region.append(item);
  // The newest three are enough; older ones have been read or announced.
  while (region.children.length > 3) region.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** A modal confirmation; resolves true when confirmed. Escape or Cancel resolves false. */
export function confirmDialog({ title, body, confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid("dialog");
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      body ? h("p", {}, body) : null,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close("cancel") }, "Cancel"),
        h("button", { type: "button", class: danger ? "danger" : "primary", onclick: () => dialog.close("confirm") }, confirm),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "confirm");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * A button that asks first (a modal dialog built from `dialog`, or from
 * `dialog()` when it depends on the moment), then runs `action`; a failure
 * is announced rather than lost.
 */
export function confirmedButton(button, dialog, action) {
  button.addEventListener(
    "click",
    busy(button, async () => {
      if (!(await confirmDialog(typeof dialog === "function" ? dialog() : dialog))) return;
      try {
        await action();
      } catch (error) {
        toast(error.message, "error");
      }
    }),
  );
  return button;
}

/** A panel saying something is loading; `role=status` so screen readers hear it. */
export function loading(text) {
  return h("div", { class: "state loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/** An error panel that says what went wrong and offers to try again. */
export function failure(error, retry) {
  return h(
    "div",
    { class: "state failure", role: "alert" },
    h("p", { class: "state-title" }, error.title || "That did not work"),
    h("p", {}, error.message || String(error)),
    error.hint ? h("p", { class: "hint" }, error.hint) : null,
    retry ? h("button", { type: "button", class: "secondary", onclick: retry }, "Try again") : null,
  );
}

/** An empty state: what is missing, and what to do about it. */
export function empty(title, text, ...actions) {
  return h("div", { class: "state empty" }, h("p", { class: "state-title" }, title), text ? h("p", {}, text) : null, actions.length ? h("div", { class: "actions" }, actions) : null);
}

/** A table inside a wrapper that scrolls sideways on narrow screens. */
export function table(caption, headings, rows) {
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headings.map((heading) => (typeof heading === "string" ? h("th", { scope: "col" }, heading) : heading)))),
      h("tbody", {}, rows),
    ),
  );
}

/** A page's title row: the h1 (focused after navigation) and its actions. */
export function pageHeader(title, { lead, actions = [], crumbs } = {}) {
  return h(
    "header",
    { class: "page-header" },
    crumbs ? h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, crumbs) : null,
    h("div", { class: "page-title" }, h("h1", { tabindex: "-1" }, title), actions.length ? h("div", { class: "actions" }, actions) : null),
    lead ? h("p", { class: "lead" }, lead) : null,
  );
}
