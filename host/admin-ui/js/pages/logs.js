// Logs: execution records with the admin API's filters (kept in the page's
// address, so a filtered view can be bookmarked), older pages, a live tail,
// charts of the filtered records, and one record in full.

import { ApiError, get, tail } from "../api.js";
import { durationChart, invocationsChart } from "../chart.js";
import { empty, failure, field, h, loading, pageHeader, replace, table } from "../dom.js";
import * as fmt from "../format.js";

const OUTCOMES = ["ok", "error", "denied", "fuel_exhausted", "memory_limit", "deadline", "bad_request"];
const RANGES = [
  ["15m", "Last 15 minutes", 900, 60],
  ["1h", "Last hour", 3600, 60],
  ["24h", "Last day", 86400, 96],
  ["7d", "Last 7 days", 7 * 86400, 84],
];
const FILTERS = ["function", "version", "outcome", "status", "caller", "q", "trace_id"];

export function render({ view, query, navigate, signal, setTitle }) {
  setTitle("Logs");
  const range = RANGES.find(([k]) => k === query.get("range")) || RANGES[2];
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || ""]));
  const since = new Date(Date.now() - range[2] * 1000).toISOString();

  const form = filterForm(filters, range[0], navigate);
  const charts = h("div", { class: "charts" });
  const list = h("div", {}, loading("Loading records…"));
  const tailButton = h("button", { type: "button", class: "secondary", "aria-pressed": "false" }, "Live tail");
  const tailStatus = h("p", { class: "hint tail-status", role: "status" });
  const scope = filters.function ? `of ${filters.function}` : "of all functions";
  replace(
    view,
    pageHeader("Logs", { lead: "One record per invocation, refused calls and traps included.", actions: [tailButton] }),
    form,
    h("h2", { class: "visually-hidden" }, `Charts ${scope}`),
    charts,
    tailStatus,
    list,
  );

  let rows = null; // the tbody, once the first page is shown
  let shown = new Set();
  const load = async (cursor) => {
    try {
      const page = await get("executions", { ...filters, since, limit: 50, cursor });
      if (!cursor) {
        if (!page.executions.length) {
          rows = null;
          const filtered = FILTERS.some((f) => filters[f]);
          replace(
            list,
            empty(
              "No records match",
              filtered ? `Nothing in the ${range[1].toLowerCase()} matches these filters. Clear some, or widen the time range.` : `No function was called in the ${range[1].toLowerCase()}. Call one from the test console.`,
              filtered ? h("a", { class: "button secondary", href: "#/logs" }, "Clear the filters") : h("a", { class: "button secondary", href: "#/console" }, "Open the test console"),
            ),
          );
          return;
        }
        const t = logTable(page.executions);
        rows = t.querySelector("tbody");
        shown = new Set(page.executions.map((r) => r.id));
        replace(list, t);
      } else {
        for (const record of page.executions) {
          if (!shown.has(record.id)) rows.append(logRow(record));
          shown.add(record.id);
        }
      }
      list.querySelector(".more")?.remove();
      if (page.next_cursor) {
        const more = h("button", { type: "button", class: "secondary more" }, "Load older records");
        more.addEventListener("click", () => {
          more.disabled = true;
          more.textContent = "Loading…";
          load(page.next_cursor);
        });
        list.append(more);
      }
    } catch (error) {
      replace(list, failure(error, () => load()));
    }
  };
  load();

  get("executions/series", { ...filters, since, buckets: range[3] })
    .then((series) => {
      if (series.buckets.some((b) => b.count)) replace(charts, invocationsChart(series), durationChart(series));
    })
    .catch(() => {});

  // Live tail: new records matching the filters go on top.
  let following = null;
  tailButton.addEventListener("click", () => {
    if (following) {
      following.abort();
      return;
    }
    following = new AbortController();
    const stop = () => following?.abort();
    signal.addEventListener("abort", stop);
    tailButton.setAttribute("aria-pressed", "true");
    tailButton.textContent = "Stop tail";
    tailStatus.textContent = "Connecting…";
    tail(Object.fromEntries(Object.entries(filters).filter(([, v]) => v)), {
      signal: following.signal,
      onOpen() {
        tailStatus.textContent = "Following new records as they happen…";
      },
      onRecord(record) {
        if (shown.has(record.id)) return;
        shown.add(record.id);
        if (!rows) {
          const t = logTable([]);
          rows = t.querySelector("tbody");
          replace(list, t);
        }
        const row = logRow(record);
        row.classList.add("new");
        rows.prepend(row);
      },
      onLagged(missed) {
        tailStatus.textContent = `Following… (${missed} records went by too fast to show; reload to see them)`;
      },
    })
      .catch((error) => {
        tailStatus.textContent = `The live tail stopped: ${error.message}`;
      })
      .finally(() => {
        signal.removeEventListener("abort", stop);
        following = null;
        tailButton.setAttribute("aria-pressed", "false");
        tailButton.textContent = "Live tail";
        if (!tailStatus.textContent.startsWith("The live tail stopped")) tailStatus.textContent = "";
      });
  });
}

function filterForm(filters, rangeKey, navigate) {
  const fn = field("Function", h("select", { name: "function" }, h("option", { value: "" }, "All functions")));
  get("functions")
    .then(({ functions }) => {
      for (const f of functions) fn.control.append(h("option", { value: f.name, selected: f.name === filters.function }, f.name));
      if (filters.function && !functions.some((f) => f.name === filters.function)) fn.control.append(h("option", { value: filters.function, selected: true }, filters.function));
    })
    .catch(() => {});
  const outcome = field("Outcome", h("select", { name: "outcome" }, h("option", { value: "" }, "Any"), OUTCOMES.map((o) => h("option", { value: o, selected: o === filters.outcome }, o))));
  const range = field("Time", h("select", { name: "range" }, RANGES.map(([key, label]) => h("option", { value: key, selected: key === rangeKey }, label))));
  const q = field("Text", h("input", { type: "search", name: "q", value: filters.q, spellcheck: "false", placeholder: "in console or error" }));
  const status = field("Status", h("input", { type: "text", name: "status", value: filters.status, inputmode: "numeric", placeholder: "404", size: "4" }));
  const caller = field("Caller", h("input", { type: "text", name: "caller", value: filters.caller, spellcheck: "false", placeholder: "user:… or admin-key:" }), "The start of the caller label.");
  const version = field("Version", h("input", { type: "text", name: "version", value: filters.version, inputmode: "numeric", size: "4" }));
  const trace = field("Trace id", h("input", { type: "text", name: "trace_id", value: filters.trace_id, spellcheck: "false" }));
  const more = h("details", { class: "more-filters", open: Boolean(filters.caller || filters.version || filters.trace_id) }, h("summary", {}, "More filters"), h("div", { class: "filter-grid" }, caller.element, version.element, trace.element));
  const form = h(
    "form",
    { class: "filters card", role: "search", "aria-label": "Filter records" },
    h("div", { class: "filter-grid" }, fn.element, outcome.element, range.element, status.element, q.element),
    more,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply filters"), h("a", { class: "button secondary", href: "#/logs" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const [f, name] of [[status, "status"], [version, "version"]]) {
      const text = f.control.value.trim();
      f.error(text && !/^\d+$/.test(text) ? `The ${name} is a number.` : "");
      if (text && !/^\d+$/.test(text)) return f.control.focus();
    }
    const params = new URLSearchParams();
    for (const element of form.elements) {
      if (element.name && element.value.trim()) params.set(element.name, element.value.trim());
    }
    if (params.get("range") === "24h") params.delete("range");
    navigate(`#/logs${params.size ? `?${params}` : ""}`);
  });
  return form;
}

function logTable(records) {
  return table(
    "Execution records, newest first",
    ["Time", "Function", "Request", "Status", "Outcome", h("th", { scope: "col", class: "num" }, "Duration"), h("th", { scope: "col", class: "hide-narrow" }, "Caller")],
    records.map(logRow),
  );
}

function logRow(r) {
  return h(
    "tr",
    { dataset: { id: r.id } },
    h("td", { class: "nowrap" }, h("a", { href: `#/logs/${r.id}` }, fmt.when(r.received_at))),
    h("td", {}, h("a", { href: `#/functions/${encodeURIComponent(r.function)}` }, r.function), r.version ? h("span", { class: "hint" }, ` v${r.version}`) : null),
    h("td", { class: "mono request" }, `${r.method} ${r.path}`),
    h("td", {}, fmt.status(r.status)),
    h("td", {}, fmt.outcome(r.outcome)),
    h("td", { class: "num" }, fmt.duration(r.duration_us)),
    h("td", { class: "hide-narrow small" }, fmt.caller(r.caller)),
  );
}

export function renderRecord({ view, params, setTitle }) {
  const [id] = params;
  setTitle(`Record ${id.slice(0, 8)}`);
  const body = h("div", {}, loading("Loading the record…"));
  replace(view, pageHeader("Execution record", { crumbs: [h("a", { href: "#/logs" }, "Logs"), ` / ${id}`] }), body);
  const load = async () => {
    try {
      replace(body, recordBody(await get(`executions/${encodeURIComponent(id)}`)));
    } catch (error) {
      replace(body, error instanceof ApiError && error.status === 404 ? empty("No such record", "It may have been removed by retention, or the id is wrong.", h("a", { class: "button secondary", href: "#/logs" }, "All records")) : failure(error, load));
    }
  };
  load();
}

function pairs(entries) {
  return h("dl", { class: "pairs" }, entries.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/** A record in full: summary, error and stack, console, response, database and outbound use. */
export function recordBody(r, { compact = false } = {}) {
  const timings = `${fmt.duration(r.duration_us)} (queue ${fmt.duration(r.queue_us)}, start ${fmt.duration(r.instantiate_us)}, run ${fmt.duration(r.run_us)})`;
  const sections = [
    h(
      "div",
      { class: "record-summary" },
      fmt.outcome(r.outcome),
      fmt.status(r.status),
      h("span", { class: "mono" }, `${r.method} ${r.path}`),
      compact ? h("a", { href: `#/logs/${r.id}`, class: "small" }, "Open the full record") : null,
    ),
    pairs([
      ["Function", h("a", { href: `#/functions/${encodeURIComponent(r.function)}` }, r.function, r.version ? ` v${r.version}` : "")],
      ["Received", fmt.absolute(r.received_at)],
      ["Duration", timings],
      ["Fuel", fmt.fuel(r.fuel_consumed)],
      ["Peak memory", fmt.bytes(r.peak_memory_bytes)],
      ["Caller", r.caller || "anonymous"],
      !compact && ["Client", r.client_ip || "—"],
      [
        "Trace",
        r.trace_id
          ? [h("code", {}, r.trace_id), " ", r.trace_url ? h("a", { href: r.trace_url, target: "_blank", rel: "noopener noreferrer" }, "Open in Jaeger") : h("span", { class: "hint" }, "(start edgefn with --otlp-endpoint and --jaeger-ui-url to link it)")]
          : "—",
      ],
      !compact && ["Invocation id", h("code", {}, r.id)],
    ]),
  ];
  if (r.error) {
    const where = r.error.line ? ` at line ${r.error.line}${r.error.column ? `:${r.error.column}` : ""}` : "";
    sections.push(
      h(
        "section",
        { class: "record-error", "aria-label": "Error" },
        h("h3", {}, `Error: ${r.error.error}${where}`),
        h("p", {}, r.error.name ? `${r.error.name}: ${r.error.message}` : r.error.message),
        r.error.stack ? h("pre", { class: "output", tabindex: "0", "aria-label": "Stack trace" }, r.error.stack) : null,
      ),
    );
  }
  const lines = r.console || [];
  sections.push(
    h("h3", {}, `Console output (${lines.length} line${lines.length === 1 ? "" : "s"})`),
    lines.length
      ? h(
          "ol",
          { class: "console-lines", tabindex: "0", "aria-label": "Console output" },
          lines.map((line) => h("li", { class: ["console-line", line.level] }, h("span", { class: "level" }, line.level), h("time", { datetime: line.at, class: "hint" }, fmt.clock(new Date(line.at))), h("span", { class: "text" }, line.text))),
        )
      : h("p", { class: "hint" }, "The function wrote nothing to the console."),
  );
  if (r.response) {
    const res = r.response;
    sections.push(
      h("h3", {}, "Response returned"),
      pairs([["Status", String(res.status)], ["Body size", `${fmt.bytes(res.body_bytes)}${res.truncated ? " (the record keeps the first 4 KiB)" : ""}`]]),
      res.headers.length ? h("details", {}, h("summary", {}, `Headers (${res.headers.length})`), pairs(res.headers)) : null,
      res.body ? h("pre", { class: "output", tabindex: "0", "aria-label": "Recorded response body" }, res.body) : null,
    );
  }
  if (r.database) {
    const d = r.database;
    sections.push(
      h("h3", {}, "Database"),
      pairs([
        ["Queries", `${d.queries}${d.failed ? ` (${d.failed} failed)` : ""}`],
        ["Time in queries", fmt.duration(d.duration_us)],
        ["Transactions", `${d.commits} committed, ${d.rollbacks} rolled back`],
        ["Role", d.service_role ? "service (row-level security bypassed)" : "the caller's"],
      ]),
    );
  }
  if (r.outbound) {
    const o = r.outbound;
    sections.push(
      h("h3", {}, `Outbound requests (${o.requests}${o.denied ? `, ${o.denied} refused` : ""}${o.failed ? `, ${o.failed} failed` : ""})`),
      table(
        "Outbound requests",
        ["Request", "Status", h("th", { scope: "col", class: "num" }, "Time"), "Error"],
        o.calls.map((c) => h("tr", {}, h("td", { class: "mono" }, `${c.method} ${c.url}`), h("td", {}, c.status ? fmt.status(c.status) : "—"), h("td", { class: "num" }, fmt.duration(c.duration_us)), h("td", { class: "small" }, c.error || ""))),
      ),
    );
  }
  return h("div", { class: ["record", compact ? "compact" : "full"] }, sections);
}
