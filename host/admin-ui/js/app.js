// The shell: sign-in gate, navigation and hash routes (#/functions/hello).
// Each page module exports render(ctx) and builds into ctx.view; when the
// route changes, ctx.signal aborts so the page can stop its streams and timers.

import { adminKey, forgetAdminKey, whenUnauthorized } from "./api.js";
import { h, replace, toast } from "./dom.js";
import * as consolePage from "./pages/console.js";
import * as functionPage from "./pages/function.js";
import * as functionsPage from "./pages/functions.js";
import * as identity from "./pages/identity.js";
import * as logs from "./pages/logs.js";
import * as secrets from "./pages/secrets.js";
import * as signin from "./pages/signin.js";
import * as tables from "./pages/tables.js";

const NAV = [
  ["#/functions", "Functions"],
  ["#/console", "Test console"],
  ["#/logs", "Logs"],
  ["#/secrets", "Secrets"],
  ["#/users", "Users"],
  ["#/groups", "Groups"],
  ["#/keys", "Admin keys"],
  ["#/tables", "Database"],
];

/** [pattern, page, render] in order; the first match wins. */
const ROUTES = [
  [/^\/functions\/?$/, functionsPage.render],
  [/^\/functions\/new$/, functionsPage.renderNew],
  [/^\/functions\/([^/]+)(?:\/([a-z]+))?$/, functionPage.render],
  [/^\/console$/, consolePage.render],
  [/^\/logs\/?$/, logs.render],
  [/^\/logs\/([^/]+)$/, logs.renderRecord],
  [/^\/secrets$/, secrets.render],
  [/^\/users$/, identity.renderUsers],
  [/^\/users\/([^/]+)$/, identity.renderUser],
  [/^\/groups$/, identity.renderGroups],
  [/^\/keys$/, identity.renderKeys],
  [/^\/tables$/, tables.render],
  [/^\/tables\/([^/]+)$/, tables.renderTable],
];

const root = document.getElementById("app");
let current = null; // the AbortController of the page on screen

export function navigate(hash, { replace: replaceEntry = false } = {}) {
  if (replaceEntry) history.replaceState(null, "", hash);
  else history.pushState(null, "", hash);
  route();
}

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/functions";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

function shell(path) {
  const menuButton = h("button", { type: "button", class: "menu-button", "aria-expanded": "false", "aria-controls": "nav" }, "Menu");
  const nav = h(
    "nav",
    { id: "nav", class: "nav", "aria-label": "Sections" },
    h(
      "ul",
      {},
      NAV.map(([href, text]) => {
        const active = path === href.slice(1) || path.startsWith(`${href.slice(1)}/`);
        return h("li", {}, h("a", { href, "aria-current": active ? "page" : null }, text));
      }),
    ),
    h("button", { type: "button", class: "secondary sign-out", onclick: signOut }, "Sign out"),
  );
  menuButton.addEventListener("click", () => {
    const open = menuButton.getAttribute("aria-expanded") !== "true";
    menuButton.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
  const header = h("header", { class: "topbar" }, h("a", { class: "brand", href: "#/functions" }, h("span", { class: "logo", "aria-hidden": "true" }, "ef"), "edgefn"), menuButton);
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(root, h("div", { class: "layout" }, h("div", { class: "sidebar" }, h("div", { class: "sidebar-inner" }, header, nav)), main));
  return main;
}

function signOut() {
  forgetAdminKey();
  toast("Signed out. The admin key was removed from this tab.");
  navigate("#/signin");
}

function route() {
  current?.abort();
  current = new AbortController();
  const { path, query } = parseHash();
  if (!adminKey()) {
    const main = h("main", { id: "main", tabindex: "-1", class: "signin-main" });
    replace(root, main);
    const next = path === "/signin" ? "#/functions" : `#${path}${query.size ? `?${query}` : ""}`;
    signin.render({ view: main, next, navigate, signal: current.signal, setTitle });
    return;
  }
  if (path === "/signin" || path === "/") {
    navigate("#/functions", { replace: true });
    return;
  }
  const main = shell(path);
  const view = h("div", { class: "view" });
  main.append(view);
  const ctx = { view, query, navigate, signal: current.signal, setTitle };
  for (const [pattern, render] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      ctx.params = match.slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p)));
      render(ctx);
      focusHeading(main);
      return;
    }
  }
  setTitle("Not found");
  replace(view, h("h1", { tabindex: "-1" }, "Page not found"), h("p", {}, "There is no page at this address. ", h("a", { href: "#/functions" }, "Go to the functions")));
}

function setTitle(text) {
  document.title = `${text} · edgefn admin`;
}

/** Moves focus to the new page's heading, so keyboard and screen-reader users start there. */
function focusHeading(main) {
  if (!focusHeading.first) {
    focusHeading.first = true; // the first load keeps the browser's own focus
    return;
  }
  requestAnimationFrame(() => (main.querySelector("h1") || main).focus({ preventScroll: true }));
  window.scrollTo(0, 0);
}

whenUnauthorized(() => {
  forgetAdminKey();
  toast("The admin key is no longer valid (revoked, or the server changed). Sign in again.", "error");
  route();
});

document.addEventListener("click", (event) => {
  const skip = event.target.closest(".skip-link");
  if (skip) {
    event.preventDefault();
    document.getElementById("main")?.focus();
  }
});
window.addEventListener("hashchange", route);
route();
