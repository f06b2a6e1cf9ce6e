// Functions: the list with their policy, active version, last deploy and
// the last hour's or day's invocations, error rate and p95; and a new one.

import { get } from "../api.js";
import { deployForm } from "../deploy-form.js";
import { empty, failure, h, loading, pageHeader, replace, table, toast } from "../dom.js";
import * as fmt from "../format.js";

const WINDOWS = { hour: ["Last hour", 3600], day: ["Last day", 86400] };

export function render({ view, query, navigate, setTitle }) {
  setTitle("Functions");
  const windowName = WINDOWS[query.get("window")] ? query.get("window") : "hour";
  const toggle = h(
    "div",
    { class: "segmented", role: "group", "aria-label": "Statistics window" },
    Object.entries(WINDOWS).map(([key, [label]]) =>
      h("button", { type: "button", "aria-pressed": String(key === windowName), onclick: () => navigate(`#/functions?window=${key}`, { replace: true }) }, label),
    ),
  );
  const body = h("div", {}, loading("Loading functions…"));
  replace(
    view,
    pageHeader("Functions", {
      lead: "Every function, who may call it, and how it has been doing.",
      actions: [toggle, h("a", { class: "button primary", href: "#/functions/new" }, "Deploy a function")],
    }),
    body,
  );

  const load = async () => {
    replace(body, loading("Loading functions…"));
    const since = new Date(Date.now() - WINDOWS[windowName][1] * 1000).toISOString();
    try {
      const [{ functions }, stats] = await Promise.all([get("functions"), get("executions/stats", { since })]);
      const byName = new Map(stats.functions.map((s) => [s.function, s]));
      if (!functions.length) {
        replace(
          body,
          empty(
            "No functions yet",
            "Deploy your first function: paste its source, and it gets a URL at once. New functions accept signed-in users only until you change their policy.",
            h("a", { class: "button primary", href: "#/functions/new" }, "Deploy a function"),
          ),
        );
        return;
      }
      const rows = functions.map((f) => {
        const s = byName.get(f.name);
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, h("a", { href: `#/functions/${encodeURIComponent(f.name)}`, class: "strong" }, f.name)),
          h("td", {}, fmt.policyBadge(f.access?.policy)),
          h("td", { class: "num hide-narrow" }, f.active_version ? `v${f.active_version}` : "none"),
          h("td", { class: "hide-narrow" }, fmt.ago(f.updated_at)),
          h("td", { class: "num" }, s ? fmt.number(s.count) : "0"),
          h("td", { class: ["num", s && s.error_rate > 0 ? "warn-text" : null] }, s ? fmt.percent(s.error_rate) : "—"),
          h("td", { class: "num" }, s ? fmt.duration(s.p95_us) : "—"),
        );
      });
      const label = WINDOWS[windowName][0].toLowerCase();
      replace(
        body,
        table(
          `Functions, with invocations over the ${label}`,
          ["Name", "Policy", h("th", { scope: "col", class: "num hide-narrow" }, "Active"), h("th", { scope: "col", class: "hide-narrow" }, "Last deploy"), h("th", { scope: "col", class: "num" }, short("Invocations", "Calls")), h("th", { scope: "col", class: "num" }, short("Error rate", "Errors")), h("th", { scope: "col", class: "num" }, "p95")],
          rows,
        ),
        h("p", { class: "hint" }, `Invocations, error rate (anything but ok: errors, denials, traps) and p95 duration over the ${label}.`),
      );
    } catch (error) {
      replace(body, failure(error, load));
    }
  };
  load();
}

/** A column heading with a shorter word for phone screens (only one is displayed, so only one is read). */
function short(long, brief) {
  return [h("span", { class: "wide-only" }, long), h("span", { class: "narrow-only" }, brief)];
}

export function renderNew({ view, navigate, setTitle }) {
  setTitle("Deploy a function");
  const policy = h(
    "select",
    { name: "policy", id: "new-policy" },
    h("option", { value: "authenticated" }, "Signed-in users (the default)"),
    h("option", { value: "public" }, "Anyone (public)"),
  );
  const form = deployForm({
    submitLabel: "Deploy",
    extra: (body) => {
      body.policy = { type: policy.value };
    },
    onDeployed: (report) => {
      toast(`Deployed ${report.function} v${report.version} in ${report.build_ms.toFixed(1)} ms.`);
      navigate(`#/functions/${encodeURIComponent(report.function)}`);
    },
  });
  // The policy choice sits after the name, before the source.
  const policyField = h(
    "div",
    { class: "field" },
    h("label", { for: "new-policy" }, "Who may call it"),
    policy,
    h("p", { class: "hint" }, "Groups and metadata conditions can be set on the function's Access tab after the first deploy."),
  );
  form.firstChild.after(policyField);
  replace(
    view,
    pageHeader("Deploy a function", {
      crumbs: [h("a", { href: "#/functions" }, "Functions"), " / New"],
      lead: "Compiled on the server; a compile error is shown at its line and changes nothing.",
    }),
    h("section", { class: "card" }, form),
  );
}
