import { test } from "node:test";
import assert from "node:assert/strict";
import { dispatchToEnd, fakeHttp, loadRuntime } from "./harness.mjs";

// Runs `body(global)` as a function's fetch handler against a fake upstream
// and returns what the handler returned (as JSON) with the fake's record.
async function run(respond, body) {
  const runtime = loadRuntime();
  const http = fakeHttp(runtime, respond);
  const { Response } = runtime.global;
  const handler = {
    async fetch() {
      return Response.json(await body(runtime.global));
    },
  };
  const result = await dispatchToEnd(runtime, handler, {});
  return { value: JSON.parse(result.text), http, runtime };
}

const ok = (body, headers = [["content-type", "application/json"]]) => ({ status: 200, headers, body });

test("fetch returns the upstream's status, headers and body", async () => {
  const { value, http } = await run(
    () => ok('{"hello":"world"}', [["content-type", "application/json"], ["x-upstream", "1"]]),
    async ({ fetch }) => {
      const response = await fetch("https://api.example.com/v1/things?x=1", { headers: { Authorization: "Bearer k" } });
      return {
        status: response.status,
        ok: response.ok,
        type: response.headers.get("content-type"),
        upstream: response.headers.get("x-upstream"),
        json: await response.json(),
        url: response.url,
        redirected: response.redirected,
      };
    },
  );
  assert.deepEqual(value, {
    status: 200, ok: true, type: "application/json", upstream: "1", json: { hello: "world" },
    url: "https://api.example.com/v1/things?x=1", redirected: false,
  });
  assert.equal(http.requests.length, 1);
  assert.equal(http.requests[0].method, "GET");
  assert.deepEqual(http.requests[0].headers, [["authorization", "Bearer k"]]);
  assert.equal(http.requests[0].body, null);
});

test("bodies: strings, JSON, URLSearchParams and bytes are sent with their content type", async () => {
  const { http } = await run(
    () => ok("{}"),
    async ({ fetch, URLSearchParams }) => {
      await fetch("https://a.test/", { method: "POST", body: JSON.stringify({ a: 1 }), headers: { "content-type": "application/json" } });
      await fetch("https://a.test/", { method: "POST", body: new URLSearchParams({ amount: "2000", currency: "usd" }) });
      await fetch("https://a.test/", { method: "PUT", body: new Uint8Array([104, 105]) });
      return null;
    },
  );
  assert.deepEqual(http.requests.map((r) => r.body), ['{"a":1}', "amount=2000&currency=usd", "hi"]);
  assert.deepEqual(http.requests[1].headers, [["content-type", "application/x-www-form-urlencoded;charset=UTF-8"]]);
});

test("fetches awaited together are in flight together", async () => {
  const { value, http } = await run(
    (request) => ok(JSON.stringify({ path: new URL(request.url).pathname })),
    async ({ fetch }) => {
      const responses = await Promise.all(["/a", "/b", "/c"].map((path) => fetch("https://a.test" + path)));
      return Promise.all(responses.map((r) => r.json()));
    },
  );
  assert.deepEqual(value, [{ path: "/a" }, { path: "/b" }, { path: "/c" }]);
  assert.equal(http.maxInFlight, 3);
});

test("redirects are followed one hop at a time, as browsers do", async () => {
  const { value, http } = await run(
    (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/start") return { status: 302, headers: [["location", "/moved"]] };
      if (url.pathname === "/moved") return { status: 307, headers: [["location", "https://other.test/final"]] };
      return ok(JSON.stringify({ method: request.method }));
    },
    async ({ fetch }) => {
      const response = await fetch("https://a.test/start", { method: "POST", body: "x", headers: { authorization: "Bearer k", "content-type": "text/plain" } });
      return { url: response.url, redirected: response.redirected, json: await response.json() };
    },
  );
  assert.deepEqual(value, { url: "https://other.test/final", redirected: true, json: { method: "GET" } });
  assert.deepEqual(http.requests.map((r) => [r.method, r.url, r.body]), [
    ["POST", "https://a.test/start", "x"],
    ["GET", "https://a.test/moved", null],
    ["GET", "https://other.test/final", null],
  ]);
  // The same origin keeps the credentials; another origin does not get them.
  assert.ok(http.requests[1].headers.some(([name]) => name === "authorization"));
  assert.ok(!http.requests[1].headers.some(([name]) => name === "content-type"));
  assert.ok(!http.requests[2].headers.some(([name]) => name === "authorization"));
});

test("a 307 keeps the method and the body", async () => {
  const { http } = await run(
    (request) => (request.url.endsWith("/old") ? { status: 307, headers: [["location", "/new"]] } : ok("{}")),
    async ({ fetch }) => {
      await fetch("https://a.test/old", { method: "PUT", body: "payload" });
      return null;
    },
  );
  assert.deepEqual(http.requests.map((r) => [r.method, r.body]), [["PUT", "payload"], ["PUT", "payload"]]);
});

test("redirect: manual returns the redirect, error throws, and loops stop", async () => {
  const loop = () => ({ status: 302, headers: [["location", "/again"]] });
  const { value, http } = await run(loop, async ({ fetch }) => {
    const manual = await fetch("https://a.test/", { redirect: "manual" });
    const outcomes = { manual: [manual.status, manual.headers.get("location")] };
    for (const mode of ["error", "follow"]) {
      try {
        await fetch("https://a.test/", { redirect: mode });
      } catch (error) {
        outcomes[mode] = `${error.name}: ${error.message}`;
      }
    }
    return outcomes;
  });
  assert.deepEqual(value.manual, [302, "/again"]);
  assert.match(value.error, /^TypeError: .*redirect mode is "error"/);
  assert.match(value.follow, /^TypeError: .*more than 20 redirects/);
  assert.equal(http.requests.length, 1 + 1 + 21);
});

test("a failed request rejects with a TypeError that says why", async () => {
  const { value } = await run(
    () => ({ error: "egress denied: 10.0.0.1 is a private address (10.0.0.0/8)" }),
    async ({ fetch }) => {
      try {
        await fetch("http://10.0.0.1/");
        return "no error";
      } catch (error) {
        return `${error.name}: ${error.message}`;
      }
    },
  );
  assert.equal(value, "TypeError: fetch(http://10.0.0.1/) failed: egress denied: 10.0.0.1 is a private address (10.0.0.0/8)");
});

test("AbortSignal.timeout cancels a request that hangs", async () => {
  const { value, http } = await run(
    () => undefined,
    async ({ fetch, AbortSignal }) => {
      try {
        await fetch("https://slow.test/", { signal: AbortSignal.timeout(250) });
        return "no error";
      } catch (error) {
        return { name: error.name, message: error.message };
      }
    },
  );
  assert.deepEqual(value, { name: "TimeoutError", message: "The operation timed out after 250 ms" });
  assert.deepEqual(http.cancelled, [1]);
});

test("an already aborted signal sends nothing", async () => {
  const { value, http } = await run(
    () => ok("{}"),
    async ({ fetch, AbortController }) => {
      const controller = new AbortController();
      let heard = 0;
      controller.signal.addEventListener("abort", () => heard++);
      controller.abort();
      controller.abort(); // a second abort changes nothing
      try {
        await fetch("https://a.test/", { signal: controller.signal });
      } catch (error) {
        return { name: error.name, heard, aborted: controller.signal.aborted };
      }
      return "no error";
    },
  );
  assert.deepEqual(value, { name: "AbortError", heard: 1, aborted: true });
  assert.equal(http.requests.length, 0);
});

test("AbortSignal.any follows the first of its signals", async () => {
  const runtime = loadRuntime();
  const { AbortController, AbortSignal } = runtime.global;
  const a = new AbortController();
  const b = new AbortController();
  const any = AbortSignal.any([a.signal, b.signal]);
  b.abort("b went first");
  a.abort("a");
  assert.equal(any.aborted, true);
  assert.equal(any.reason, "b went first");
  assert.throws(() => new AbortSignal(), /Illegal constructor/);
});

test("a request's body can be sent once", async () => {
  const { value } = await run(
    () => ok("{}"),
    async ({ fetch, Request }) => {
      const request = new Request("https://a.test/", { method: "POST", body: "once" });
      await fetch(request);
      try {
        await fetch(request);
      } catch (error) {
        return error.message;
      }
      return "no error";
    },
  );
  assert.match(value, /already been used/);
});

test("FormData bodies go out as multipart/form-data and read back with formData()", async () => {
  let sent;
  const { value, http } = await run(
    (request) => {
      sent = request;
      return ok("{}");
    },
    async ({ fetch, FormData, Request }) => {
      const form = new FormData();
      form.append("name", "Ada \"the first\"");
      form.append("note", "line one\nline two");
      form.append("tag", "a");
      form.append("tag", "b");
      form.set("name", "Ada");
      await fetch("https://a.test/upload", { method: "POST", body: form });
      // What was sent reads back the same through Request.formData().
      const echoed = new Request("https://a.test/", { method: "POST", body: sent.body, headers: sent.headers });
      const parsed = await echoed.formData();
      return { entries: [...parsed], type: sent.headers.find(([n]) => n === "content-type")[1] };
    },
  );
  assert.deepEqual(value.entries, [["name", "Ada"], ["note", "line one\r\nline two"], ["tag", "a"], ["tag", "b"]]);
  assert.match(value.type, /^multipart\/form-data; boundary=----edgefnFormBoundary[0-9a-f]{24}$/);
  assert.equal(http.requests[0].body.split("Content-Disposition").length, 5);
});

test("formData() reads URL-encoded bodies; files and other types are clear errors", async () => {
  const runtime = loadRuntime();
  const { Request } = runtime.global;
  const post = (body, type) => new Request("https://a.test/", { method: "POST", body, headers: { "content-type": type } });
  const form = await post("name=Grace+Hopper&email=grace%40example.com", "application/x-www-form-urlencoded").formData();
  assert.deepEqual([...form], [["name", "Grace Hopper"], ["email", "grace@example.com"]]);
  const upload = '--b\r\nContent-Disposition: form-data; name="cv"; filename="cv.pdf"\r\n\r\n%PDF\r\n--b--\r\n';
  await assert.rejects(post(upload, "multipart/form-data; boundary=b").formData(), /the field "cv" is a file upload/);
  await assert.rejects(post("{}", "application/json").formData(), /not application\/x-www-form-urlencoded or multipart/);
  assert.throws(() => new runtime.global.FormData().append("f", { arrayBuffer() {} }), /file fields are not supported/);
});
