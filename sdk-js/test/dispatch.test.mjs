import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRuntime, dispatchToEnd } from "./harness.mjs";

test("the incoming request is built from the host's fields; headers are immutable", async () => {
  const runtime = loadRuntime();
  let seen;
  const handler = {
    async fetch(request, env, ctx) {
      seen = { request, env, ctx };
      assert.throws(() => request.headers.set("x", "y"), /immutable/);
      return new runtime.global.Response(await request.text(), { status: 202 });
    },
  };
  const result = await dispatchToEnd(runtime, handler, {
    method: "POST",
    url: "https://edge.test/functions/v1/f/sub?q=1",
    headers: [["content-type", "text/csv"], ["x-many", "a"], ["x-many", "b"]],
    body: "a,b",
  }, { GREETING: "hi" }, { caller: { id: "u1", groups: ["admin"], metadata: { plan: "pro" } } });
  assert.equal(result.status, 202);
  assert.equal(result.text, "a,b");
  assert.equal(seen.request.method, "POST");
  assert.equal(seen.request.url, "https://edge.test/functions/v1/f/sub?q=1");
  assert.equal(seen.request.headers.get("x-many"), "a, b");
  assert.equal(seen.request.headers.get("content-type"), "text/csv");
  assert.equal(seen.request.headers, seen.request.headers, "built once, the same Headers on every read");
  assert.equal(runtime.headerBuilds, 1, "the engine hands the headers over once");
  assert.equal(seen.env.GREETING, "hi");
  assert.equal(seen.ctx.invocationId, "inv-1");
  assert.ok(Object.isFrozen(seen.ctx.caller.groups));
  assert.throws(() => { seen.ctx.caller.metadata.plan = "free"; }, TypeError);
  assert.deepEqual({ ...seen.ctx.caller }, { id: "u1", email: null, role: "authenticated", groups: ["admin"], metadata: { plan: "pro" } });
  assert.equal(seen.ctx.caller, seen.ctx.caller, "built once, the same object on every read");
  assert.equal(runtime.callerBuilds, 1);
  assert.throws(() => { seen.ctx.caller = null; }, TypeError);
});

test("the incoming request's headers are not asked of the engine unless read", async () => {
  const runtime = loadRuntime();
  const result = await dispatchToEnd(runtime, {
    async fetch(request) {
      return new runtime.global.Response(`${request.method} ${new runtime.global.URL(request.url).pathname}`);
    },
  }, { headers: [["x-a", "1"], ["cookie", "c=1"]] });
  assert.equal(result.text, "GET /functions/v1/f");
  assert.equal(runtime.headerBuilds, 0);
});

test("a GET request has no body even if bytes arrive", async () => {
  const runtime = loadRuntime();
  const result = await dispatchToEnd(runtime, {
    async fetch(request) {
      return new runtime.global.Response(String(await request.text() === ""));
    },
  }, { method: "GET", body: "ignored" });
  assert.equal(result.text, "true");
});

test("response headers come back as pairs in the order set, a repeated name as separate fields", async () => {
  const runtime = loadRuntime();
  const { Response, Headers } = runtime.global;
  const result = await dispatchToEnd(runtime, {
    fetch() {
      const headers = new Headers([["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-y", "1"], ["x-y", "2"]]);
      return new Response("ok", { headers });
    },
  });
  assert.deepEqual(result.headers, [
    ["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-y", "1"], ["x-y", "2"], ["content-type", "text/plain;charset=UTF-8"],
  ]);
});

test("returning something other than a Response is a TypeError naming it", async () => {
  const runtime = loadRuntime();
  await assert.rejects(dispatchToEnd(runtime, { fetch() { return undefined; } }), /returned undefined/);
  await assert.rejects(dispatchToEnd(runtime, { fetch() { return { status: 200 }; } }), /returned a plain object/);
  await assert.rejects(dispatchToEnd(runtime, { fetch() { return runtime.global.Response.error(); } }), /Response.error/);
  // Refused at once, not after the ctx.waitUntil() promises it also made.
  const never = new Promise(() => {});
  const handler = {
    fetch(request, env, ctx) {
      ctx.waitUntil(never);
      return runtime.global.Response.error();
    },
  };
  assert.throws(() => runtime.internal.finish(runtime.internal.dispatch(handler, "GET", "https://edge.test/f")), /Response.error/);
});

test("a response's headers changed after construction are the ones sent", async () => {
  const runtime = loadRuntime();
  const { Response } = runtime.global;
  const result = await dispatchToEnd(runtime, {
    fetch() {
      const response = new Response("ok", { headers: { "X-First": "1" } });
      assert.equal(response.headers, response.headers, "one Headers object, built on first read");
      response.headers.set("x-first", "2");
      response.headers.append("cache-control", "no-store");
      return response;
    },
  });
  assert.deepEqual(result.headers, [["x-first", "2"], ["content-type", "text/plain;charset=UTF-8"], ["cache-control", "no-store"]]);
});

test("body-less requests and responses do not share their body state", async () => {
  const runtime = loadRuntime();
  const { Request, Response } = runtime.global;
  const empty = new Response(null);
  assert.equal(await empty.text(), "");
  assert.equal(empty.bodyUsed, false, "an absent body is never used up");
  const other = new Response("x");
  await other.text();
  assert.equal(other.bodyUsed, true);
  assert.equal(new Response(null).bodyUsed, false);
  const request = new Request("https://example.com/");
  assert.equal(request.bodyUsed, false);
  assert.equal(await request.clone().text(), "");
});

test("a thenable fetch returns is awaited like a promise", async () => {
  const runtime = loadRuntime();
  const { Response } = runtime.global;
  const thenable = { then(resolve) { resolve(new Response("from a thenable", { status: 203 })); } };
  const result = await dispatchToEnd(runtime, { fetch() { return thenable; } });
  assert.equal(result.status, 203);
  assert.equal(result.text, "from a thenable");
});

test("ctx reads the invocation from the engine when asked, and only then", async () => {
  const runtime = loadRuntime();
  let seen;
  await dispatchToEnd(runtime, {
    fetch(request, env, ctx) {
      seen = { ...ctx };
      return new runtime.global.Response("ok");
    },
  }, {}, {}, { invocationId: "inv-42", functionName: "orders", version: 7 });
  assert.equal(seen.invocationId, "inv-42");
  assert.equal(seen.functionName, "orders");
  assert.equal(seen.version, 7);
  assert.equal(seen.caller, null);
  assert.equal(typeof seen.waitUntil, "function");
  assert.equal(typeof seen.db.from, "function");
  assert.deepEqual(Object.keys(seen), ["invocationId", "functionName", "version", "caller", "db", "waitUntil", "passThroughOnException"]);
});

test("the author's own exception propagates untouched", async () => {
  const runtime = loadRuntime();
  class PaymentError extends Error {}
  await assert.rejects(dispatchToEnd(runtime, { async fetch() { throw new PaymentError("declined"); } }), PaymentError);
});

test("waitUntil promises settle before the response; rejections are logged", async () => {
  const runtime = loadRuntime();
  const { Response } = runtime.global;
  let background = false;
  await dispatchToEnd(runtime, {
    fetch(request, env, ctx) {
      ctx.waitUntil(new Promise((resolve) => runtime.global.setTimeout(() => { background = true; resolve(); }, 50)));
      ctx.waitUntil(Promise.reject(new Error("email failed")));
      return new Response("ok");
    },
  });
  assert.equal(background, true);
  assert.equal(runtime.logs.length, 1);
  assert.equal(runtime.logs[0][0], "error");
  assert.match(runtime.logs[0][1], /waitUntil\(\) promise rejected: Error: email failed/);
});

test("env has one property per granted secret, read from the host only when used", async () => {
  const runtime = loadRuntime();
  let seen;
  await dispatchToEnd(runtime, {
    fetch(request, env) {
      seen = {
        keys: Object.keys(env),
        before: [...runtime.secretReads],
        value: env.OPENAI_API_KEY,
        again: env.OPENAI_API_KEY,
        thenable: env.then,
        lowercase: env.somethingElse,
      };
      assert.throws(() => { env.OPENAI_API_KEY = "x"; }, TypeError);
      return new runtime.global.Response("ok");
    },
  }, {}, { OPENAI_API_KEY: "sk-test", STRIPE_KEY: "rk-test" });
  assert.deepEqual(seen.keys, ["OPENAI_API_KEY", "STRIPE_KEY"]);
  assert.deepEqual(seen.before, []);
  assert.equal(seen.value, "sk-test");
  assert.equal(seen.again, "sk-test");
  assert.deepEqual(runtime.secretReads, ["OPENAI_API_KEY"], "read once, and only the one used");
  assert.equal(seen.thenable, undefined, "awaiting env must not throw");
  assert.equal(seen.lowercase, undefined);
});

test("reading a secret that is not granted throws an error naming the grant", async () => {
  const runtime = loadRuntime();
  await assert.rejects(
    dispatchToEnd(runtime, { fetch(request, env) { return new runtime.global.Response(env.STRIPE_KEY); } }, {}, { OPENAI_API_KEY: "sk" }),
    (error) => error instanceof ReferenceError && /not granted the secret STRIPE_KEY/.test(error.message),
  );
});

test("ctx.caller is built only when the function reads it", async () => {
  const runtime = loadRuntime();
  await dispatchToEnd(runtime, { fetch() { return new runtime.global.Response("x"); } }, {}, {}, { caller: { id: "u1" } });
  assert.equal(runtime.callerBuilds, 0);
  let seen;
  await dispatchToEnd(runtime, { fetch(request, env, ctx) { seen = ctx.caller; return new runtime.global.Response("x"); } });
  assert.equal(seen, null, "anonymous");
});
