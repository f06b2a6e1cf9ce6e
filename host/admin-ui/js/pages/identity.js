// Users (groups, metadata, disabling), groups and admin keys.

import { adminKey, api, get } from "../api.js";
import { busy, confirmedButton, empty, failure, field, h, loading, pageHeader, replace, table, toast } from "../dom.js";
import * as fmt from "../format.js";

function splitGroups(text) {
  return text.split(",").map((g) => g.trim()).filter(Boolean);
}

/** Metadata typed as JSON, or a message saying what is wrong with it. */
function parseMetadata(text) {
  if (!text.trim()) return { value: {} };
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { error: 'Metadata is a JSON object, like {"department": "engineering"}.' };
    return { value };
  } catch (error) {
    return { error: `Not valid JSON: ${error.message}` };
  }
}

/** Shows an API error at the field it is about, judging by the words in it. */
function showAt(error, fields, fallback) {
  const target = fields.find(([pattern]) => pattern.test(error.message))?.[1] || fallback;
  target.error(error.message);
  target.control.focus();
}

export function renderUsers({ view, query, navigate, setTitle }) {
  setTitle("Users");
  const search = h("input", { type: "search", name: "email", value: query.get("email") || "", placeholder: "ada@example.com", "aria-label": "Find users by email" });
  const searchForm = h("form", { class: "search-row", role: "search" }, search, h("button", { type: "submit", class: "secondary" }, "Find"));
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(search.value.trim() ? `#/users?email=${encodeURIComponent(search.value.trim())}` : "#/users", { replace: true });
  });

  const email = field("Email", h("input", { type: "email", autocomplete: "off", spellcheck: "false" }));
  const password = field("Password", h("input", { type: "password", autocomplete: "new-password" }), "At least 8 characters.");
  const groups = field("Groups", h("input", { type: "text", spellcheck: "false", placeholder: "admin, ops" }), "Comma-separated; missing groups are created.");
  const metadata = field("Metadata (JSON)", h("textarea", { rows: "2", spellcheck: "false", class: "code-input", placeholder: '{"department": "engineering"}' }));
  const create = h("button", { type: "submit", class: "primary", "data-busy": "Creating…" }, "Create user");
  const form = h("form", { class: "grid-2", novalidate: true }, email.element, password.element, groups.element, metadata.element, h("div", { class: "actions span-2" }, create));
  form.addEventListener(
    "submit",
    busy(create, async (event) => {
      event.preventDefault();
      [email, password, groups, metadata].forEach((f) => f.error(""));
      const meta = parseMetadata(metadata.control.value);
      if (meta.error) return metadata.error(meta.error);
      try {
        const user = await api("POST", "users", { email: email.control.value.trim(), password: password.control.value, groups: splitGroups(groups.control.value), metadata: meta.value });
        toast(`${user.email} can now sign in.`);
        navigate(`#/users/${user.id}`);
      } catch (error) {
        showAt(error, [[/password/i, password], [/group/i, groups], [/metadata/i, metadata]], email);
      }
    }),
  );

  const list = h("div", {}, loading("Loading users…"));
  replace(
    view,
    pageHeader("Users", { lead: "Accounts that sign in at /auth/v1. Groups and metadata are what access policies and row-level security check." }),
    h("details", { class: "card create", open: false }, h("summary", {}, "Create a user"), form),
    searchForm,
    list,
  );
  const load = async () => {
    try {
      const { users } = await get("users", { email: query.get("email") });
      if (!users.length) {
        replace(list, query.get("email") ? empty("No user has that email", "Search for the whole address; it is matched exactly.") : empty("No users yet", "Create one above, or let people sign up at /auth/v1/signup when sign-up is on."));
        return;
      }
      replace(
        list,
        table(
          "Users",
          ["Email", "Groups", h("th", { scope: "col", class: "hide-narrow" }, "Metadata"), "Status", h("th", { scope: "col", class: "hide-narrow" }, "Created")],
          users.map((u) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, h("a", { href: `#/users/${u.id}` }, u.email)),
              h("td", {}, u.groups.length ? u.groups.map((g) => h("span", { class: "chip static" }, g)) : h("span", { class: "hint" }, "none")),
              h("td", { class: "mono small hide-narrow clip" }, Object.keys(u.metadata).length ? JSON.stringify(u.metadata) : ""),
              h("td", {}, u.disabled ? h("span", { class: "badge bad" }, "disabled") : h("span", { class: "badge ok" }, "active")),
              h("td", { class: "hide-narrow" }, fmt.ago(u.created_at)),
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

export function renderUser({ view, params, navigate, setTitle }) {
  const [id] = params;
  setTitle("User");
  const body = h("div", {}, loading("Loading the user…"));
  replace(view, pageHeader("User", { crumbs: [h("a", { href: "#/users" }, "Users"), " / user"] }), body);
  const load = async () => {
    let user;
    try {
      user = await get(`users/${encodeURIComponent(id)}`);
    } catch (error) {
      replace(body, failure(error, load));
      return;
    }
    setTitle(user.email);
    view.querySelector("h1").textContent = user.email;
    view.querySelector(".crumbs").lastChild.textContent = ` / ${user.email}`;
    const email = field("Email", h("input", { type: "email", value: user.email, spellcheck: "false" }));
    const groups = field("Groups", h("input", { type: "text", value: user.groups.join(", "), spellcheck: "false" }), "Comma-separated. Replaces the user's groups; applies to their next request.");
    const metadata = field("Metadata (JSON)", h("textarea", { rows: "4", spellcheck: "false", class: "code-input" }), "Replaces the whole object.");
    metadata.control.value = JSON.stringify(user.metadata, null, 2);
    const password = field("New password", h("input", { type: "password", autocomplete: "new-password", placeholder: "leave empty to keep" }), "A new password ends the user's sessions.");
    const disabled = h("input", { type: "checkbox", checked: user.disabled });
    const save = h("button", { type: "submit", class: "primary", "data-busy": "Saving…" }, "Save changes");
    const form = h(
      "form",
      { class: "card grid-2", novalidate: true },
      email.element,
      groups.element,
      metadata.element,
      password.element,
      h("label", { class: "choice span-2" }, disabled, "Disabled: the user cannot sign in, and their tokens stop working at once"),
      h("div", { class: "actions span-2" }, save),
    );
    form.addEventListener(
      "submit",
      busy(save, async (event) => {
        event.preventDefault();
        [email, groups, metadata, password].forEach((f) => f.error(""));
        const meta = parseMetadata(metadata.control.value);
        if (meta.error) return metadata.error(meta.error);
        const patch = { email: email.control.value.trim(), groups: splitGroups(groups.control.value), metadata: meta.value, disabled: disabled.checked };
        if (password.control.value) patch.password = password.control.value;
        try {
          await api("PATCH", `users/${encodeURIComponent(id)}`, patch);
          toast(`${patch.email} saved.`);
          load();
        } catch (error) {
          showAt(error, [[/password/i, password], [/group/i, groups], [/metadata/i, metadata]], email);
        }
      }),
    );
    const remove = confirmedButton(
      h("button", { type: "button", class: "danger", "data-busy": "Deleting…" }, "Delete user"),
      { title: `Delete ${user.email}?`, body: "Their memberships and sessions go too. Rows they own in app tables stay.", confirm: "Delete the user", danger: true },
      async () => {
        await api("DELETE", `users/${encodeURIComponent(id)}`);
        toast(`${user.email} was deleted.`);
        navigate("#/users");
      },
    );
    replace(
      body,
      h("p", { class: "lead" }, h("code", {}, user.id), " · created ", fmt.ago(user.created_at), " · ", h("a", { href: `#/console?user=${encodeURIComponent(user.id)}` }, "Test a function as this user"), " · ", h("a", { href: `#/logs?caller=${encodeURIComponent(`user:${user.id}`)}` }, "Their calls")),
      form,
      h("section", { class: "card danger-zone" }, h("h2", {}, "Delete"), remove),
    );
  };
  load();
}

export function renderGroups({ view, setTitle }) {
  setTitle("Groups");
  const name = field("Name", h("input", { type: "text", spellcheck: "false", autocomplete: "off", placeholder: "ops" }), "Lower-case letters, digits, - _ . and :, so look-alikes cannot be made.");
  const create = h("button", { type: "submit", class: "primary", "data-busy": "Creating…" }, "Create group");
  const form = h("form", { class: "inline-form", novalidate: true }, name.element, h("div", { class: "actions" }, create));
  const list = h("div", {}, loading("Loading groups…"));
  form.addEventListener(
    "submit",
    busy(create, async (event) => {
      event.preventDefault();
      name.error("");
      try {
        await api("POST", "groups", { name: name.control.value.trim() });
        toast(`Group ${name.control.value.trim()} is ready.`);
        name.control.value = "";
        load();
      } catch (error) {
        name.error(error.message);
      }
    }),
  );
  replace(view, pageHeader("Groups", { lead: "Group policies admit members of groups; row-level security reads them as auth.groups(). Add members on each user's page." }), h("section", { class: "card" }, form), list);
  const load = async () => {
    try {
      const { groups } = await get("groups");
      if (!groups.length) return replace(list, empty("No groups yet", "Create one above, or give a user a group and it is created."));
      replace(
        list,
        table(
          "Groups",
          ["Name", h("th", { scope: "col", class: "num" }, "Members"), "Created", "Actions"],
          groups.map((g) => {
            const remove = confirmedButton(
              h("button", { type: "button", class: "danger small", "data-busy": "Deleting…" }, "Delete"),
              { title: `Delete the group ${g.name}?`, body: `Its ${g.members} member(s) lose it at once; policies naming it stop admitting them.`, confirm: "Delete the group", danger: true },
              async () => {
                await api("DELETE", `groups/${encodeURIComponent(g.name)}`);
                toast(`Group ${g.name} was deleted.`);
                load();
              },
            );
            return h("tr", {}, h("th", { scope: "row" }, g.name), h("td", { class: "num" }, String(g.members)), h("td", {}, fmt.ago(g.created_at)), h("td", {}, remove));
          }),
        ),
      );
    } catch (error) {
      replace(list, failure(error, load));
    }
  };
  load();
}

export function renderKeys({ view, setTitle }) {
  setTitle("Admin keys");
  const label = field("Label", h("input", { type: "text", autocomplete: "off", placeholder: "ci deploys" }), "What the key is for, so you know which one to revoke.");
  const create = h("button", { type: "submit", class: "primary", "data-busy": "Creating…" }, "Create key");
  const created = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "inline-form", novalidate: true }, label.element, h("div", { class: "actions" }, create));
  const list = h("div", {}, loading("Loading keys…"));
  form.addEventListener(
    "submit",
    busy(create, async (event) => {
      event.preventDefault();
      label.error("");
      try {
        const key = await api("POST", "keys", { label: label.control.value.trim() });
        label.control.value = "";
        const input = h("input", { type: "text", readonly: true, value: key.key, class: "mono", "aria-label": "The new key", spellcheck: "false" });
        const copy = h("button", { type: "button", class: "secondary" }, "Copy");
        copy.addEventListener("click", async () => {
          input.select();
          try {
            await navigator.clipboard.writeText(key.key);
            copy.textContent = "Copied";
          } catch {
            copy.textContent = "Press Ctrl+C";
          }
        });
        replace(created, h("div", { class: "notice ok" }, h("p", { class: "strong" }, `Key ${key.prefix} (${key.label}) — shown this once; store it now.`), h("div", { class: "search-row" }, input, copy)));
        input.select();
        load();
      } catch (error) {
        label.error(error.message);
      }
    }),
  );
  replace(view, pageHeader("Admin keys", { lead: "Each key can do everything the admin API does. Keys are stored hashed; only their prefix is shown." }), h("section", { class: "card" }, form, created), list);
  const load = async () => {
    try {
      const { keys } = await get("keys");
      const mine = adminKey();
      replace(
        list,
        table(
          "Admin keys",
          ["Prefix", "Label", "Created", "Status", "Actions"],
          keys.map((k) => {
            const current = mine.startsWith(k.prefix);
            const revoke = confirmedButton(
              h("button", { type: "button", class: "danger small", "data-busy": "Revoking…" }, "Revoke"),
              {
                title: `Revoke ${k.prefix}?`,
                body: current ? "This is the key you are signed in with: you will be signed out." : "Anything using it gets 401 from now on.",
                confirm: "Revoke the key",
                danger: true,
              },
              async () => {
                await api("DELETE", `keys/${encodeURIComponent(k.prefix)}`);
                toast(`${k.prefix} was revoked.`);
                load();
              },
            );
            return h(
              "tr",
              {},
              h("th", { scope: "row", class: "mono" }, k.prefix, current ? h("span", { class: "badge" }, "this session") : null),
              h("td", {}, k.label),
              h("td", {}, fmt.ago(k.created_at)),
              h("td", {}, k.revoked_at ? h("span", { class: "badge bad" }, "revoked") : h("span", { class: "badge ok" }, "active")),
              h("td", {}, k.revoked_at ? "" : revoke),
            );
          }),
        ),
      );
    } catch (error) {
      replace(list, failure(error, load));
    }
  };
  load();
}
