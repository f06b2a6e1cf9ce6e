// One function: how it is doing (charts), its versions and their source,
// deploying a new version, rolling back, its access policy and CORS
// origins, and its secret grants.

import { ApiError, FUNCTIONS_BASE, api, get } from "../api.js";
import { durationChart, invocationsChart } from "../chart.js";
import { deployForm } from "../deploy-form.js";
import { busy, confirmedButton, empty, failure, field, h, loading, pageHeader, replace, table, toast } from "../dom.js";
import * as fmt from "../format.js";
import { codeView } from "../highlight.js";
import { policyEditor } from "../policy-editor.js";

const TABS = [
  ["overview", "Overview"],
  ["versions", "Versions"],
  ["deploy", "Deploy"],
  ["access", "Access"],
  ["secrets", "Secrets"],
  ["settings", "Settings"],
];

export const WINDOWS = [
  ["1h", "Last hour", 3600, 60],
  ["24h", "Last day", 86400, 96],
  ["7d", "Last 7 days", 7 * 86400, 84],
];

export function render(ctx) {
  const { view, params, setTitle } = ctx;
  const [name, tab = "overview"] = params;
  setTitle(name);
  const path = `functions/${encodeURIComponent(name)}`;
  const body = h("div", { class: "tab-panel", id: "tab-panel", role: "region", "aria-label": TABS.find(([t]) => t === tab)?.[1] || "Overview" }, loading(`Loading ${name}…`));
  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": `${name} sections` },
    TABS.map(([key, label]) => h("a", { href: `#/${path}/${key}`, "aria-current": key === tab ? "page" : null }, label)),
  );
  const header = pageHeader(name, {
    crumbs: [h("a", { href: "#/functions" }, "Functions"), ` / ${name}`],
    actions: [
      h("a", { class: "button secondary", href: `#/console?function=${encodeURIComponent(name)}` }, "Test"),
      h("a", { class: "button secondary", href: `#/logs?function=${encodeURIComponent(name)}` }, "Logs"),
    ],
  });
  replace(view, header, tabs, body);

  const load = async () => {
    replace(body, loading(`Loading ${name}…`));
    try {
      const fn = await get(path);
      const url = new URL(encodeURIComponent(name), FUNCTIONS_BASE).href;
      header.append(
        h("p", { class: "lead url-line" }, h("code", {}, url), " ", fmt.policyBadge(fn.access?.policy), " ", fn.active_version ? h("span", { class: "badge" }, `v${fn.active_version} active`) : h("span", { class: "badge warn" }, "no active version")),
      );
      const panel = { overview, versions, deploy, access, secrets, settings }[tab] || overview;
      await panel({ ...ctx, name, path, fn, body });
    } catch (error) {
      replace(
        body,
        error instanceof ApiError && error.status === 404
          ? empty(`There is no function called ${name}`, "It may have been deleted, or the name is misspelled.", h("a", { class: "button secondary", href: "#/functions" }, "All functions"))
          : failure(error, load),
      );
    }
  };
  load();
}

async function overview({ name, fn, body, query, navigate, path }) {
  const windowKey = WINDOWS.find(([k]) => k === query.get("window"))?.[0] || "1h";
  const [, label, seconds, buckets] = WINDOWS.find(([k]) => k === windowKey);
  const since = new Date(Date.now() - seconds * 1000).toISOString();
  const choose = h(
    "div",
    { class: "segmented", role: "group", "aria-label": "Time window" },
    WINDOWS.map(([key, text]) =>
      h("button", { type: "button", "aria-pressed": String(key === windowKey), onclick: () => navigate(`#/${path}/overview?window=${key}`, { replace: true }) }, text),
    ),
  );
  replace(body, h("div", { class: "toolbar" }, choose), loading("Loading statistics…"));
  const [stats, series, recent] = await Promise.all([
    get("executions/stats", { function: name, since }),
    get("executions/series", { function: name, since, buckets }),
    get("executions", { function: name, limit: 5 }),
  ]);
  const s = stats.functions[0] || { count: 0, errors: 0, error_rate: 0 };
  const figure = (title, value, note) => h("div", { class: "stat" }, h("p", { class: "stat-label" }, title), h("p", { class: "stat-value" }, value), note ? h("p", { class: "hint" }, note) : null);
  replace(
    body,
    h("div", { class: "toolbar" }, choose),
    h(
      "div",
      { class: "stats" },
      figure("Invocations", fmt.number(s.count), label.toLowerCase()),
      figure("Error rate", fmt.percent(s.error_rate), `${fmt.number(s.errors)} not ok`),
      figure("p50", s.count ? fmt.duration(s.p50_us) : "—"),
      figure("p95", s.count ? fmt.duration(s.p95_us) : "—"),
      figure("p99", s.count ? fmt.duration(s.p99_us) : "—"),
      figure("Last deploy", fmt.ago(fn.updated_at)),
    ),
    s.count
      ? h("div", { class: "charts" }, invocationsChart(series), durationChart(series))
      : empty(`No invocations in the ${label.toLowerCase()}`, "Call the function from the test console, or widen the window.", h("a", { class: "button secondary", href: `#/console?function=${encodeURIComponent(name)}` }, "Open the test console")),
    h("h2", {}, "Recent invocations"),
    recent.executions.length
      ? recordsTable(recent.executions, `Recent invocations of ${name}`)
      : h("p", { class: "hint" }, "None recorded yet."),
  );
}

/** A compact table of records, each linking to its detail. */
export function recordsTable(records, caption) {
  return table(
    caption,
    ["Time", "Request", "Status", "Outcome", h("th", { scope: "col", class: "num" }, "Duration"), h("th", { scope: "col", class: "hide-narrow" }, "Caller")],
    records.map((r) =>
      h(
        "tr",
        { dataset: { id: r.id } },
        h("td", { class: "nowrap" }, h("a", { href: `#/logs/${r.id}` }, fmt.when(r.received_at))),
        h("td", { class: "mono" }, `${r.method} ${r.path}`),
        h("td", {}, fmt.status(r.status)),
        h("td", {}, fmt.outcome(r.outcome)),
        h("td", { class: "num" }, fmt.duration(r.duration_us)),
        h("td", { class: "hide-narrow small" }, fmt.caller(r.caller)),
      ),
    ),
  );
}

function limitsText(manifest) {
  const l = manifest.limits || {};
  const parts = [];
  if (l.fuel) parts.push(`fuel ${fmt.fuel(l.fuel)}`);
  if (l.memory_bytes) parts.push(`memory ${fmt.bytes(l.memory_bytes)}`);
  if (l.deadline_ms) parts.push(`deadline ${l.deadline_ms} ms`);
  return parts.length ? parts.join(", ") : "server defaults";
}

async function versions({ name, fn, body, path, query, navigate }) {
  const chosen = Number(query.get("version")) || fn.active_version || fn.versions.at(-1)?.version;
  const sourceBox = h("div", {}, loading("Loading the source…"));
  const ordered = [...fn.versions].sort((a, b) => b.version - a.version);
  const rows = ordered.map((v) => {
    const active = v.version === fn.active_version;
    const activate = h("button", { type: "button", class: "secondary small", "data-busy": "Activating…" }, active ? "Active" : v.version < fn.active_version ? "Roll back to this" : "Activate");
    activate.disabled = active;
    confirmedButton(
      activate,
      {
        title: `Activate v${v.version} of ${name}?`,
        body: `Requests run v${v.version} from the next one on. Its limits and egress come back with it; the policy, CORS and secret grants stay as they are now.`,
        confirm: `Activate v${v.version}`,
      },
      async () => {
        await api("POST", `${path}/activate`, { version: v.version });
        toast(`${name} now runs v${v.version}.`);
        navigate(`#/${path}/versions?version=${v.version}`, { replace: true });
      },
    );
    return h(
      "tr",
      { class: v.version === chosen ? "selected" : null },
      h("th", { scope: "row" }, h("a", { href: `#/${path}/versions?version=${v.version}`, "aria-current": v.version === chosen ? "true" : null }, `v${v.version}`), active ? h("span", { class: "badge ok" }, "active") : null),
      h("td", {}, fmt.ago(v.created_at)),
      h("td", { class: "mono hide-narrow", title: v.content_hash }, v.content_hash.slice(7, 19)),
      h("td", { class: "small" }, limitsText(v.manifest)),
      h("td", { class: "small hide-narrow" }, v.manifest.egress ? (v.manifest.egress.length ? v.manifest.egress.join(", ") : "none") : "server default"),
      h("td", { class: "small hide-narrow" }, v.manifest.database_role === "service" ? "service" : "caller"),
      h("td", {}, activate),
    );
  });
  replace(
    body,
    table(`Versions of ${name}`, ["Version", "Deployed", h("th", { scope: "col", class: "hide-narrow" }, "Source hash"), "Limits", h("th", { scope: "col", class: "hide-narrow" }, "Egress"), h("th", { scope: "col", class: "hide-narrow" }, "Database role"), "Action"], rows),
    chosen ? h("h2", {}, `Source of v${chosen}`) : null,
    sourceBox,
  );
  if (!chosen) return replace(sourceBox, empty("No versions", "Deploy one from the Deploy tab."));
  const version = await get(`${path}/versions/${chosen}`);
  replace(sourceBox, h("p", { class: "hint" }, `${version.content_hash} · built in ${version.build_ms.toFixed(1)} ms · ${fmt.absolute(version.created_at)}`), codeView(version.source, { label: `Source of ${name} v${chosen}` }));
}

async function deploy({ name, fn, body, path, navigate }) {
  const previous = fn.active_version ? await get(`${path}/versions/${fn.active_version}`) : null;
  const next = (fn.versions.at(-1)?.version || 0) + 1;
  replace(
    body,
    h("p", { class: "hint" }, previous ? `The form starts from v${previous.version}, the active version. Deploying makes v${next} active at once; the previous version stays stored for a rollback.` : "Deploying makes the new version active at once."),
    deployForm({
      name,
      previous,
      submitLabel: `Deploy v${next}`,
      onDeployed: (report) => {
        toast(`Deployed ${name} v${report.version} in ${report.build_ms.toFixed(1)} ms.`);
        navigate(`#/${path}/versions?version=${report.version}`);
      },
    }),
  );
}

async function access({ name, body, path }) {
  const [current, groups] = await Promise.all([get(`${path}/access`), get("groups").catch(() => ({ groups: [] }))]);
  const editor = policyEditor(current.policy, groups.groups);
  const origins = field(
    "Browser origins allowed (CORS)",
    h("textarea", { rows: "3", spellcheck: "false", placeholder: "https://app.example.com" }),
    "One per line, scheme://host[:port], or * for any. Empty: no CORS headers, so browsers on other origins cannot call it.",
  );
  origins.control.value = (current.cors?.allow_origins || []).join("\n");
  const save = h("button", { type: "submit", class: "primary", "data-busy": "Saving…" }, "Save access");
  const form = h("form", { class: "card", novalidate: true }, editor.element, origins.element, h("div", { class: "actions" }, save));
  form.addEventListener(
    "submit",
    busy(save, async (event) => {
      event.preventDefault();
      origins.error("");
      let policy;
      try {
        policy = editor.value();
      } catch {
        return;
      }
      const list = origins.control.value.split("\n").map((o) => o.trim()).filter(Boolean);
      // Keep the rest of the CORS settings; only the origins are edited here.
      const cors = list.length ? { ...(current.cors || {}), allow_origins: list } : null;
      try {
        const saved = await api("PUT", `${path}/access`, { policy, cors });
        current.cors = saved.cors;
        toast(`Access to ${name} saved; it applies to the next request.`);
      } catch (error) {
        if (/CORS/.test(error.message)) origins.error(error.message);
        else editor.error(error.message);
      }
    }),
  );
  replace(body, h("p", { class: "hint" }, "Checked by edgefn before the function starts. A refused call is answered 401 or 403 and recorded with the outcome denied."), form);
}

async function secrets({ name, body, path }) {
  const [grants, all] = await Promise.all([get(`${path}/secrets`), get("secrets")]);
  const names = [...new Set([...all.secrets.map((s) => s.name), ...grants.secrets])].sort();
  const boxes = names.map((secret) => {
    const input = h("input", { type: "checkbox", value: secret, checked: grants.secrets.includes(secret) });
    const missing = grants.not_set.includes(secret);
    return [input, h("label", { class: "choice" }, input, h("code", {}, secret), missing ? h("span", { class: "badge warn" }, "not set") : null)];
  });
  const extra = field("Grant a secret that is not set yet", h("input", { type: "text", spellcheck: "false", placeholder: "OPENAI_API_KEY", autocomplete: "off" }), "The function can read it as soon as it is set.");
  const save = h("button", { type: "submit", class: "primary", "data-busy": "Saving…" }, "Save grants");
  const form = h(
    "form",
    { class: "card", novalidate: true },
    h("fieldset", {}, h("legend", {}, `Secrets ${name} may read as env.NAME`), boxes.length ? boxes.map(([, label]) => label) : h("p", { class: "hint" }, "No secrets are set yet. Set them on the Secrets page, or grant a name below.")),
    extra.element,
    h("div", { class: "actions" }, save),
  );
  form.addEventListener(
    "submit",
    busy(save, async (event) => {
      event.preventDefault();
      extra.error("");
      const chosen = boxes.filter(([input]) => input.checked).map(([input]) => input.value);
      const added = extra.control.value.trim();
      if (added) chosen.push(added);
      try {
        await api("PUT", `${path}/secrets`, { secrets: chosen });
        toast(`Grants of ${name} saved; they apply to the next request.`);
        await secrets({ name, body, path });
      } catch (error) {
        extra.error(error.message);
      }
    }),
  );
  replace(body, h("p", { class: "hint" }, "Values are never shown here. A granted value that the function logs or returns is recorded as [REDACTED:NAME]."), form);
}

async function settings({ name, body, path, navigate }) {
  const remove = confirmedButton(
    h("button", { type: "button", class: "danger", "data-busy": "Deleting…" }, `Delete ${name}`),
    {
      title: `Delete ${name}?`,
      body: "Every version is deleted and its URL stops answering. Execution records stay until retention removes them. This cannot be undone.",
      confirm: "Delete the function",
      danger: true,
    },
    async () => {
      await api("DELETE", path);
      toast(`${name} was deleted.`);
      navigate("#/functions");
    },
  );
  replace(body, h("section", { class: "card danger-zone" }, h("h2", {}, "Delete this function"), h("p", {}, "Deletes the function and all its versions."), remove));
}
