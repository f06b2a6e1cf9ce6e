// Sign-in with an admin key. The key is checked against the API before it
// is kept, and then only in this tab's sessionStorage.

import { ApiError, api, setAdminKey } from "../api.js";
import { busy, field, h, replace } from "../dom.js";

export function render({ view, next, navigate, setTitle }) {
  setTitle("Sign in");
  const key = field(
    "Admin key",
    h("input", { type: "password", name: "key", autocomplete: "current-password", required: true, spellcheck: "false", placeholder: "efk_…" }),
    "The key edgefn printed on first start, or one made under Admin keys. It stays in this browser tab until you sign out or close it.",
  );
  const submit = h("button", { type: "submit", class: "primary", "data-busy": "Checking…" }, "Sign in");
  const form = h(
    "form",
    { class: "signin card", novalidate: true },
    h("div", { class: "brand-large" }, h("span", { class: "logo", "aria-hidden": "true" }, "ef"), "edgefn"),
    h("h1", { tabindex: "-1" }, "Sign in to the admin interface"),
    key.element,
    submit,
  );
  form.addEventListener(
    "submit",
    busy(submit, async (event) => {
      event.preventDefault();
      const value = key.control.value.trim();
      if (!value) {
        key.error("Enter an admin key.");
        key.control.focus();
        return;
      }
      try {
        await api("GET", "keys", undefined, { key: value });
      } catch (error) {
        key.error(
          error instanceof ApiError && error.status === 401
            ? "That key is not valid: it is unknown or was revoked. Check for a missing character, or make a new key with the admin API."
            : error.message,
        );
        key.control.focus();
        return;
      }
      key.error("");
      setAdminKey(value);
      navigate(next, { replace: true });
    }),
  );
  replace(view, form);
  key.control.focus();
}
