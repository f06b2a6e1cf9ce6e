import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRuntime } from "./harness.mjs";

const { global } = loadRuntime();
const { TextEncoder, TextDecoder, atob, btoa, DOMException } = global;

test("TextEncoder and TextDecoder round-trip UTF-8", () => {
  const bytes = new TextEncoder().encode("héllo €𝄞");
  assert.equal(bytes.length, 14);
  assert.equal(new TextDecoder().decode(bytes), "héllo €𝄞");
  assert.equal(new TextDecoder("UTF8").decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), "a");
  assert.equal(new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), "\ufeffa");
  assert.equal(new TextDecoder().decode(new Uint8Array([0x61, 0xff])), "a\ufffd");
  assert.throws(() => new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])), TypeError);
  assert.throws(() => new TextDecoder("latin1"), RangeError);
  assert.equal(new TextDecoder().decode(new Uint16Array([0x6968]).buffer), "hi");
});

test("encodeInto writes whole characters only", () => {
  const target = new Uint8Array(4);
  assert.deepEqual(new TextEncoder().encodeInto("a€b", target), { read: 2, written: 4 });
  assert.deepEqual([...target], [0x61, 0xe2, 0x82, 0xac]);
});

test("btoa and atob follow the forgiving base64 rules", () => {
  assert.equal(btoa(""), "");
  assert.equal(btoa("f"), "Zg==");
  assert.equal(btoa("fo"), "Zm8=");
  assert.equal(btoa("foo"), "Zm9v");
  assert.equal(btoa("\u00ff\u00fe"), "//4=");
  assert.equal(atob("Zm9v"), "foo");
  assert.equal(atob("Zg"), "f");
  assert.equal(atob(" Zm 9v\n"), "foo");
  assert.equal(atob("//4="), "\u00ff\u00fe");
  for (const bad of ["Z", "Zm9v!", "Zm==9v", "é"]) {
    assert.throws(() => atob(bad), (e) => e instanceof DOMException && e.name === "InvalidCharacterError" && e.code === 5, bad);
  }
  assert.throws(() => btoa("€"), (e) => e.name === "InvalidCharacterError");
});
