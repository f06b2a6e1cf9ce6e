import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRuntime } from "./harness.mjs";

const { global } = loadRuntime();
const { Headers, Request, Response, URLSearchParams } = global;

test("Headers are case-insensitive, sorted, combined, with set-cookie kept apart", () => {
  const headers = new Headers({ "X-B": "2", "x-a": "1" });
  headers.append("X-A", "again");
  headers.append("Set-Cookie", "a=1");
  headers.append("set-cookie", "b=2");
  assert.equal(headers.get("x-a"), "1, again");
  assert.equal(headers.get("missing"), null);
  assert.ok(headers.has("X-B"));
  assert.deepEqual([...headers], [["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-a", "1, again"], ["x-b", "2"]]);
  assert.deepEqual(headers.getSetCookie(), ["a=1", "b=2"]);
  headers.set("x-a", "  trimmed \t");
  assert.equal(headers.get("x-a"), "trimmed");
  headers.delete("X-B");
  assert.deepEqual([...headers.keys()], ["set-cookie", "set-cookie", "x-a"]);
});

test("Headers reject invalid names and values", () => {
  assert.throws(() => new Headers({ "bad name": "x" }), TypeError);
  assert.throws(() => new Headers([["x", "a\r\nInjected: yes"]]), TypeError);
  assert.throws(() => new Headers([["only-one"]]), TypeError);
  assert.throws(() => new Headers(42), TypeError);
});

test("a header record: names lower-cased, values converted and trimmed, each read once", () => {
  let reads = 0;
  const record = {
    "Content-Type": "text/plain",
    "X-Count": 3,
    "x-padded": "  kept inside  ",
    "x-flag": true,
    get "x-read"() {
      reads += 1;
      return "once";
    },
  };
  const headers = new Headers(record);
  assert.equal(reads, 1);
  assert.deepEqual(
    [...headers],
    [["content-type", "text/plain"], ["x-count", "3"], ["x-flag", "true"], ["x-padded", "kept inside"], ["x-read", "once"]],
  );
  const simple = new Response("hi", { headers: { "X-Id": 7, vary: "Origin" } });
  assert.deepEqual([...simple.headers], [["content-type", "text/plain;charset=UTF-8"], ["vary", "Origin"], ["x-id", "7"]]);
  assert.throws(() => new Headers({ ok: "1", "bad name": "x" }), /Invalid header name: "bad name"/);
  assert.throws(() => new Headers({ "x-split": "a\nb" }), /Invalid header value/);
});

test("Response defaults, statuses and content types", async () => {
  const plain = new Response("hi");
  assert.equal(plain.status, 200);
  assert.equal(plain.ok, true);
  assert.equal(plain.headers.get("content-type"), "text/plain;charset=UTF-8");
  assert.equal(await plain.text(), "hi");
  assert.equal(plain.bodyUsed, true);
  await assert.rejects(plain.text(), /already been used/);
  // Body reads reject, as async functions would, and never throw.
  await assert.rejects(new Response("{not json").json(), SyntaxError);
  await assert.rejects(Response.prototype.text.call({}), TypeError);
  assert.deepEqual(await new Response('{"a":[1]}').json(), { a: [1] });
  // A string body is kept as a string and encoded when read as bytes.
  assert.deepEqual([...(await new Response("héllo").bytes())], [104, 195, 169, 108, 108, 111]);
  assert.equal(new Uint8Array(await new Response("héllo").arrayBuffer()).length, 6);

  assert.throws(() => new Response("x", { status: 199 }), RangeError);
  assert.throws(() => new Response("x", { status: 600 }), RangeError);
  assert.throws(() => new Response("x", { status: 204 }), TypeError);
  assert.equal(new Response(null, { status: 204 }).status, 204);
  const form = new Response(new URLSearchParams({ a: "1 2" }));
  assert.equal(form.headers.get("content-type"), "application/x-www-form-urlencoded;charset=UTF-8");
  assert.equal(await form.text(), "a=1+2");
  const custom = new Response("{}", { headers: { "content-type": "application/vnd.api+json" } });
  assert.equal(custom.headers.get("content-type"), "application/vnd.api+json");
});

test("Response.json, redirect and error", async () => {
  const json = Response.json({ a: [1, "two"] }, { status: 201, headers: { "x-extra": "1" } });
  assert.equal(json.status, 201);
  assert.equal(json.headers.get("content-type"), "application/json");
  assert.equal(json.headers.get("x-extra"), "1");
  assert.deepEqual(await json.json(), { a: [1, "two"] });
  assert.throws(() => Response.json(undefined), TypeError);
  const typed = Response.json([], { headers: { "Content-Type": "application/problem+json" } });
  assert.equal(typed.headers.get("content-type"), "application/problem+json");
  // A Response.json that throws leaves no JSON default behind for the next Response.
  assert.throws(() => Response.json({}, { status: 99 }), RangeError);
  assert.equal(new Response("text").headers.get("content-type"), "text/plain;charset=UTF-8");

  const redirect = Response.redirect("https://example.com/next", 301);
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.get("location"), "https://example.com/next");
  assert.throws(() => redirect.headers.set("x", "y"), /immutable/);
  assert.throws(() => Response.redirect("https://example.com", 200), RangeError);
  assert.throws(() => Response.redirect("not a url"), TypeError);

  const error = Response.error();
  assert.equal(error.type, "error");
  assert.equal(error.status, 0);
});

test("binary bodies are copied, not shared", async () => {
  const source = new Uint8Array([1, 2, 3, 4]);
  const response = new Response(source.subarray(1, 3));
  source[1] = 99;
  assert.deepEqual([...(await response.bytes())], [2, 3]);
  const buffer = await new Response(new Uint16Array([0x0102]).buffer).arrayBuffer();
  assert.equal(buffer.byteLength, 2);
});

test("clone lets a body be read twice; streams are refused honestly", async () => {
  const original = new Response("twice");
  const copy = original.clone();
  assert.equal(await original.text(), "twice");
  assert.equal(await copy.text(), "twice");
  assert.throws(() => original.clone(), TypeError);
  assert.equal(new Response("x").body, null);
  assert.throws(() => new Response({ getReader() {} }), /stream/);
});

test("Request normalises methods, requires absolute URLs and refuses GET bodies", async () => {
  const request = new Request("https://api.test/a/../b?x=1", { method: "post", body: "payload", headers: { "X-Id": "7" } });
  assert.equal(request.method, "POST");
  assert.equal(request.url, "https://api.test/b?x=1");
  assert.equal(request.headers.get("x-id"), "7");
  assert.equal(request.headers.get("content-type"), "text/plain;charset=UTF-8");
  assert.equal(request.redirect, "follow");
  const copy = new Request(request);
  assert.equal(await copy.text(), "payload");
  assert.equal(await request.clone().text(), "payload");

  assert.throws(() => new Request("/relative"), /absolute URL/);
  assert.throws(() => new Request("https://a.test", { body: "x" }), /GET request cannot have a body/);
  assert.throws(() => new Request("https://a.test", { method: "CONNECT" }), TypeError);
  assert.throws(() => new Request("https://a.test", { method: "bad method" }), TypeError);
  assert.throws(() => new Request("https://a.test", { redirect: "sometimes" }), TypeError);
  assert.equal(new Request("https://a.test", { method: "purge" }).method, "purge");
});
