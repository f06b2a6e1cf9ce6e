// Numbers, durations and times as a person reads them.

import { h } from "./dom.js";

const numberFormat = new Intl.NumberFormat("en");

export function number(value) {
  return value === null || value === undefined ? "—" : numberFormat.format(value);
}

/** Microseconds as µs, ms or s with three significant digits. */
export function duration(us) {
  if (us === null || us === undefined) return "—";
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toPrecision(3)} ms`;
  return `${(us / 1_000_000).toPrecision(3)} s`;
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "—";
  if (ratio === 0) return "0%";
  return ratio < 0.001 ? "<0.1%" : `${(ratio * 100).toFixed(ratio < 0.1 ? 1 : 0)}%`;
}

export function bytes(value) {
  if (value === null || value === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = value;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? n : n.toFixed(1)} ${units[unit]}`;
}

/** Fuel in millions, the unit limits are usually set in. */
export function fuel(value) {
  if (value === null || value === undefined) return "—";
  return value >= 1e6 ? `${(value / 1e6).toPrecision(3)} M` : number(value);
}

const dateTime = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "medium" });
const timeOnly = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export function absolute(iso) {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

export function clock(date) {
  return timeOnly.format(date);
}

/** A table cell's time: the clock for today, day and minute before that; the full time on hover. */
export function when(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  const text = today ? clock(date) : `${date.toLocaleDateString("en-GB", { day: "numeric", month: "short" })} ${clock(date).slice(0, 5)}`;
  return h("time", { datetime: iso, title: absolute(iso) }, text);
}

/**
 * A caller label (`user:<id> <email>`, `user:<id> <email> via admin-key:<prefix>`,
 * `external:<sub> <email>`, `admin-key:<prefix>`) shortened for a table cell:
 * the email or key, with the whole label on hover.
 */
export function caller(label) {
  if (!label) return h("span", { class: "hint" }, "anonymous");
  const match = /^(user|external):(\S+)(?: <([^>]*)>)?(?: via (admin-key:\S+))?$/.exec(label);
  if (!match) return h("span", { title: label }, label.replace(/^admin-key:/, "admin key "));
  const [, kind, id, email, via] = match;
  return h("span", { title: label }, email || id, kind === "external" ? h("span", { class: "badge" }, "external") : null, via ? h("span", { class: "badge warn" }, "via admin") : null);
}

/** "3 min ago", with the exact time in a <time> element's title. */
export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  let text;
  if (seconds < 5) text = "just now";
  else if (seconds < 60) text = `${seconds} s ago`;
  else if (seconds < 3600) text = `${Math.floor(seconds / 60)} min ago`;
  else if (seconds < 86400) text = `${Math.floor(seconds / 3600)} h ago`;
  else text = `${Math.floor(seconds / 86400)} d ago`;
  return h("time", { datetime: iso, title: absolute(iso) }, text);
}

/** Outcome as a badge; colour follows the outcome, the word is always there. */
export function outcome(value) {
  const kind = value === "ok" ? "ok" : value === "denied" ? "warn" : "bad";
  return h("span", { class: ["badge", kind] }, value);
}

export function status(code) {
  const kind = code < 400 ? "ok" : code < 500 ? "warn" : "bad";
  return h("span", { class: ["status", kind] }, String(code));
}

/** A policy as a short phrase. */
export function policySummary(policy) {
  if (!policy) return "—";
  switch (policy.type) {
    case "public":
      return "Public";
    case "authenticated":
      return "Signed-in users";
    case "group":
      return `${policy.require === "all" ? "All of" : "Any of"} ${policy.groups.join(", ")}`;
    case "metadata":
      return "Metadata conditions";
    default:
      return policy.type || "unknown";
  }
}

export function policyBadge(policy) {
  return h("span", { class: ["badge", "policy", policy?.type || "unknown"] }, policySummary(policy));
}
