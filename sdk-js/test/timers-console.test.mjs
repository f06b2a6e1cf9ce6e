import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRuntime } from "./harness.mjs";

test("timers fire in due order, intervals repeat, cleared timers never fire", () => {
  const { global, internal, clock } = loadRuntime();
  const fired = [];
  global.setTimeout(() => fired.push("b@20"), 20);
  global.setTimeout((x) => fired.push(`a@10:${x}`), 10, "arg");
  const cancelled = global.setTimeout(() => fired.push("never"), 15);
  global.clearTimeout(cancelled);
  const interval = global.setInterval(() => {
    fired.push(`tick@${clock.now}`);
    if (clock.now >= 30) global.clearInterval(interval);
  }, 15);
  while (internal.runTimers()) {}
  assert.deepEqual(fired, ["a@10:arg", "tick@15", "b@20", "tick@30"]);
  assert.equal(internal.runTimers(), false);
  assert.throws(() => global.setTimeout("alert(1)", 1), TypeError);
});

test("a throwing timer callback is reported, not fatal", () => {
  const { global, internal, logs } = loadRuntime();
  global.setTimeout(() => { throw new RangeError("late"); }, 1);
  assert.equal(internal.runTimers(), true);
  assert.equal(logs[0][0], "error");
  assert.match(logs[0][1], /^Uncaught RangeError: late/);
});

test("console formats like Node and goes only to native.log", () => {
  const { global, logs } = loadRuntime();
  const { console } = global;
  const cyclic = { name: "loop" };
  cyclic.self = cyclic;
  console.log("plain", 1, true, null, undefined);
  console.info({ a: [1, "two", { deep: { deeper: { deepest: { gone: 1 } } } }] });
  console.warn("%s has %d items %j", "cart", 3.7, { ok: true }, "extra");
  console.error(cyclic);
  console.debug(new Map([["k", new Set([1])]]), new Uint8Array([1, 2]), function named() {}, Symbol("s"), 10n);
  console.group("outer");
  console.log("inside");
  console.groupEnd();
  console.log("%%", "x".repeat(20000).length);
  assert.deepEqual(logs.map(([level]) => level), ["log", "info", "warn", "error", "debug", "log", "log", "log"]);
  assert.equal(logs[0][1], "plain 1 true null undefined");
  assert.equal(logs[1][1], "{ a: [ 1, 'two', { deep: { deeper: { deepest: [Object] } } } ] }");
  assert.equal(logs[2][1], "cart has 3.7 items {\"ok\":true} extra");
  assert.equal(logs[3][1], "{ name: 'loop', self: [Circular *] }");
  assert.equal(logs[4][1], "Map(1) { 'k' => Set(1) { 1 } } Uint8Array(2) [ 1, 2 ] [Function: named] Symbol(s) 10n");
  assert.equal(logs[6][1], "  inside");
  assert.equal(logs[5][1], "outer");
  assert.equal(logs[7][1], "% 20000");
  console.log("y".repeat(20000));
  assert.ok(logs[8][1].endsWith("… (truncated)"));
  assert.ok(logs[8][1].length < 17000);
});

test("console.count, time and assert", () => {
  const { global, logs, clock } = loadRuntime();
  global.console.count();
  global.console.count();
  global.console.count("x");
  global.console.time("t");
  clock.now += 12.5;
  global.console.timeEnd("t");
  global.console.timeEnd("t");
  global.console.assert(true, "never");
  global.console.assert(false, "broken", 1);
  assert.deepEqual(logs.map(([, text]) => text), [
    "default: 1", "default: 2", "x: 1", "t: 12.500ms", "Timer 't' does not exist", "Assertion failed: broken 1",
  ]);
});
