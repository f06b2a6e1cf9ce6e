// Small inline SVG charts of an execution series (GET /admin/v1/executions/series):
// invocations with errors, and p50/p95/p99 duration. Each bucket carries a
// <title> (a tooltip, and text for screen readers), and every chart has its
// numbers in a table one click away.

import { h, s } from "./dom.js";
import { clock, duration, number } from "./format.js";

// Narrow screens get a narrower drawing, so its labels keep their size.
const WIDTH = matchMedia("(max-width: 760px)").matches ? 360 : 540;
const HEIGHT = 190;
const PAD = { top: 12, right: 12, bottom: 26, left: 56 };

/**
 * A round upper bound for an axis whose middle tick is round too: 2, 4 or
 * 10 times a power of ten (so counts never get a tick at 2.5).
 */
function niceMax(value) {
  if (value <= 2) return 2;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 4, 10].find((m) => m * power >= value);
  return step * power;
}

/** Axis times: with the date when the window spans more than a day. */
function axisTime(date, series) {
  const spansDays = series.buckets.length * series.bucket_seconds > 86400;
  if (!spansDays) return clock(date).slice(0, 5);
  return `${date.toLocaleDateString("en-GB", { day: "numeric", month: "short" })} ${clock(date).slice(0, 5)}`;
}

function frame(series, max, formatTick, label) {
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const y = (value) => PAD.top + plotHeight - (value / max) * plotHeight;
  const n = series.buckets.length;
  const x = (index) => PAD.left + (index / n) * plotWidth;
  const grid = [0, 0.5, 1].map((f) =>
    s(
      "g",
      { class: "tick" },
      s("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(max * f), y2: y(max * f) }),
      s("text", { x: PAD.left - 6, y: y(max * f) + 4, "text-anchor": "end" }, formatTick(max * f)),
    ),
  );
  const times = [0, Math.floor(n / 2), n - 1].map((index, k) =>
    s(
      "text",
      { class: "axis-label", x: k === 0 ? x(0) : k === 2 ? x(n) : x(index + 0.5), y: HEIGHT - 8, "text-anchor": ["start", "middle", "end"][k] },
      axisTime(new Date(k === 2 ? new Date(series.buckets[index].start).getTime() + series.bucket_seconds * 1000 : series.buckets[index].start), series),
    ),
  );
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": label }, grid, times);
  return { svg, x, y, plotWidth, n };
}

function bucketTitle(bucket, seconds) {
  const start = new Date(bucket.start);
  const end = new Date(start.getTime() + seconds * 1000);
  const parts = [`${clock(start)}–${clock(end)}`, `${number(bucket.count)} invocations`, `${number(bucket.errors)} errors`];
  if (bucket.count) parts.push(`p50 ${duration(bucket.p50_us)}`, `p95 ${duration(bucket.p95_us)}`, `p99 ${duration(bucket.p99_us)}`);
  return parts.join(", ");
}

/** Invocations per bucket as bars, errors stacked in a second colour. */
export function invocationsChart(series) {
  const total = series.buckets.reduce((sum, b) => sum + b.count, 0);
  const errors = series.buckets.reduce((sum, b) => sum + b.errors, 0);
  const max = niceMax(Math.max(...series.buckets.map((b) => b.count), 1));
  const label = `Invocations over time: ${number(total)} in all, ${number(errors)} errors`;
  const { svg, x, y, plotWidth, n } = frame(series, max, (v) => number(Math.round(v)), label);
  const barWidth = Math.max(1, plotWidth / n - 1);
  series.buckets.forEach((bucket, index) => {
    const ok = bucket.count - bucket.errors;
    svg.append(
      s(
        "g",
        { class: "bucket" },
        s("title", {}, bucketTitle(bucket, series.bucket_seconds)),
        s("rect", { class: "hover", x: x(index), y: PAD.top, width: plotWidth / n, height: HEIGHT - PAD.top - PAD.bottom }),
        ok > 0 ? s("rect", { class: "bar ok", x: x(index), y: y(ok), width: barWidth, height: y(0) - y(ok) }) : null,
        bucket.errors > 0 ? s("rect", { class: "bar err", x: x(index), y: y(bucket.count), width: barWidth, height: y(ok) - y(bucket.count) }) : null,
      ),
    );
  });
  return wrap("Invocations", svg, series, [["ok", "Succeeded"], ["err", "Errors, denials and traps"]]);
}

const PERCENTILE_LINES = [
  ["p50_us", "p50", "p50"],
  ["p95_us", "p95", "p95"],
  ["p99_us", "p99", "p99"],
];

/** p50, p95 and p99 duration per bucket as lines; empty buckets break the line. */
export function durationChart(series) {
  const values = series.buckets.flatMap((b) => PERCENTILE_LINES.map(([key]) => b[key] ?? 0));
  const max = niceMax(Math.max(...values, 1));
  const worst = Math.max(...series.buckets.map((b) => b.p95_us ?? 0));
  const label = `Duration percentiles over time; the highest p95 is ${duration(worst)}`;
  const { svg, x, y, plotWidth, n } = frame(series, max, (v) => duration(v), label);
  for (const [key, , cls] of PERCENTILE_LINES) {
    let path = "";
    let drawing = false;
    series.buckets.forEach((bucket, index) => {
      const value = bucket[key];
      if (value === null || value === undefined) {
        drawing = false;
        return;
      }
      path += `${drawing ? "L" : "M"}${(x(index) + plotWidth / n / 2).toFixed(1)},${y(value).toFixed(1)}`;
      drawing = true;
    });
    svg.append(s("path", { class: ["line", cls], d: path || "M0,0" }));
    const has = (index) => series.buckets[index]?.[key] !== null && series.buckets[index]?.[key] !== undefined;
    series.buckets.forEach((bucket, index) => {
      const value = bucket[key];
      // Dots where they can be told apart, and wherever a point stands alone (no line through it).
      if (has(index) && (n <= 90 || (!has(index - 1) && !has(index + 1)))) {
        svg.append(s("circle", { class: ["dot", cls], cx: x(index) + plotWidth / n / 2, cy: y(value), r: 2 }));
      }
    });
  }
  series.buckets.forEach((bucket, index) =>
    svg.append(
      s(
        "g",
        { class: "bucket" },
        s("title", {}, bucketTitle(bucket, series.bucket_seconds)),
        s("rect", { class: "hover", x: x(index), y: PAD.top, width: plotWidth / n, height: HEIGHT - PAD.top - PAD.bottom }),
      ),
    ),
  );
  return wrap("Duration", svg, series, PERCENTILE_LINES.map(([, name, cls]) => [cls, name]));
}

function wrap(title, svg, series, legend) {
  const rows = series.buckets
    .filter((b) => b.count > 0)
    .map((b) =>
      h(
        "tr",
        {},
        h("td", {}, clock(new Date(b.start))),
        h("td", { class: "num" }, number(b.count)),
        h("td", { class: "num" }, number(b.errors)),
        h("td", { class: "num" }, duration(b.p50_us)),
        h("td", { class: "num" }, duration(b.p95_us)),
        h("td", { class: "num" }, duration(b.p99_us)),
      ),
    );
  return h(
    "figure",
    { class: "chart-card" },
    h("figcaption", {}, h("span", { class: "chart-title" }, title), h("span", { class: "legend" }, legend.map(([cls, text]) => h("span", { class: ["key", cls] }, text)))),
    svg,
    h(
      "details",
      { class: "chart-data" },
      h("summary", {}, "Show the numbers"),
      rows.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["From", "Invocations", "Errors", "p50", "p95", "p99"].map((t) => h("th", { scope: "col" }, t)))),
              h("tbody", {}, rows),
            ),
          )
        : h("p", { class: "hint" }, "No invocations in this window."),
    ),
  );
}
