// Builds the whole runtime (every section, in the engine's order) on Node,
// with `native` implemented by Node's own primitives, for the unit tests.
import { createNative, loadSection } from "./load-section.mjs";

export const SECTIONS = [
  "encoding.js", "url.js", "clone.js", "console.js", "timers.js", "crypto.js", "fetch-api.js", "fetch.js", "database.js",
  "dispatch.js",
];

export function loadRuntime() {
  const logs = [];
  const clock = { now: 0 };
  const native = {
    ...createNative(),
    log: (level, text) => logs.push([level, text]),
    now: () => clock.now,
    // A fake clock: sleeping advances time instantly.
    sleep: (ms) => { clock.now += ms; },
  };
  const global = {};
  const internal = {};
  for (const section of SECTIONS) loadSection(section, native, global, internal);
  return { global, internal, logs, clock, native, secretReads: [] };
}

/**
 * Plays the host's database on `native` the way the engine's bindings do:
 * `dbExecute` takes the plan as JSON text and returns the result as JSON text,
 * or a `{ code, message }` object for a database error. `answer(plan)` gives
 * either `{ data, count }` or `{ code, message }`. Every call is recorded in
 * `calls` (plans parsed); set `fail.begin`/`fail.commit`/`fail.rollback` to a
 * `{ code, message }` to make that step fail.
 */
export function fakeDatabase(native, answer = () => ({ data: [], count: null })) {
  const fake = { calls: [], fail: {} };
  native.dbExecute = (planJson) => {
    if (typeof planJson !== "string") throw new TypeError("dbExecute takes the plan as JSON text");
    const plan = JSON.parse(planJson);
    fake.calls.push(["execute", plan]);
    const outcome = answer(plan);
    return "code" in outcome ? outcome : JSON.stringify(outcome);
  };
  for (const step of ["begin", "commit", "rollback"]) {
    native["db" + step[0].toUpperCase() + step.slice(1)] = () => {
      fake.calls.push([step]);
      return fake.fail[step] ?? null;
    };
  }
  fake.plans = () => fake.calls.filter(([kind]) => kind === "execute").map(([, plan]) => plan);
  return fake;
}

/**
 * Plays the host's outbound HTTP on `native` the way the engine's bindings
 * do. `respond({method, url, headers, body})` answers a request with
 * `{status, headers: [[name, value]], body}`, `{error: message}`, or
 * undefined to leave it hanging. Requests are answered when the event loop
 * waits, so requests started together are in flight together.
 */
export function fakeHttp(runtime, respond) {
  const { native, clock } = runtime;
  const fake = { requests: [], pending: new Map(), cancelled: [], maxInFlight: 0, nextId: 1 };
  native.httpStart = (method, url, flat, body) => {
    if (!Array.isArray(flat) || flat.some((v) => typeof v !== "string")) throw new TypeError("httpStart takes flat string headers");
    const headers = [];
    for (let i = 0; i < flat.length; i += 2) headers.push([flat[i], flat[i + 1]]);
    const request = { method, url, headers, body: body === null ? null : native.decodeUtf8(body, false) };
    fake.requests.push(request);
    const id = fake.nextId++;
    fake.pending.set(id, request);
    fake.maxInFlight = Math.max(fake.maxInFlight, fake.pending.size);
    return id;
  };
  native.httpWait = (timeoutMs) => {
    const finished = [];
    for (const [id, request] of fake.pending) {
      const answer = respond(request);
      if (answer === undefined) continue;
      fake.pending.delete(id);
      if (answer.error) {
        finished.push([id, 0, answer.error]);
      } else {
        const flat = (answer.headers || []).flat().map(String);
        finished.push([id, answer.status ?? 200, flat, native.encodeUtf8(answer.body ?? "")]);
      }
    }
    // Nothing answered: the wait lasts until the timer (fake clock).
    if (!finished.length && timeoutMs >= 0) clock.now += timeoutMs;
    return finished;
  };
  native.httpCancel = (id) => {
    fake.pending.delete(id);
    fake.cancelled.push(id);
  };
  return fake;
}

/**
 * Runs dispatch to completion the way the engine does: microtasks, then
 * the event loop (timers and fetch responses). `secrets` plays the host's granted secrets (name -> value).
 */
export async function dispatchToEnd(runtime, handler, incoming, secrets = {}, ctx = {}) {
  const { internal, native } = runtime;
  native.secret = (name) => {
    runtime.secretReads.push(name);
    return secrets[name];
  };
  const request = {
    method: "GET",
    url: "https://edge.test/functions/v1/f",
    headers: [],
    body: new Uint8Array(0),
    ...incoming,
  };
  if (typeof request.body === "string") request.body = native.encodeUtf8(request.body);
  if (request.body.length === 0) request.body = undefined; // as the engine passes no body
  // The engine hands the headers over, flat, when the function first reads them.
  runtime.headerBuilds = 0;
  native.requestHeaders = () => {
    runtime.headerBuilds++;
    return request.headers.flat();
  };
  const { caller = null, ...invocation } = ctx;
  const context = { invocationId: "inv-1", functionName: "f", version: 1, ...invocation };
  // The engine keeps the caller and builds it when ctx.caller is first read.
  runtime.callerBuilds = 0;
  native.caller = () => {
    runtime.callerBuilds++;
    return caller && { email: null, role: "authenticated", groups: [], metadata: {}, ...caller };
  };
  native.invocationId = () => context.invocationId;
  native.functionName = () => context.functionName;
  native.version = () => context.version;
  // As the engine does: a value fetch returned goes straight to `finish`; a
  // promise is settled first (the engine drives the job queue itself).
  let outcome;
  try {
    // As the engine passes them: undefined when nothing is granted.
    const names = Object.keys(secrets);
    const returned = internal.dispatch(handler, request.method, request.url, request.body, names.length ? names : undefined);
    outcome = returned instanceof Promise ? returned.then((value) => internal.finish(value)) : internal.finish(returned);
  } catch (error) {
    outcome = Promise.reject(error);
  }
  let settled = null;
  Promise.resolve(outcome).then(
    (value) => (settled = { value }),
    (error) => (settled = { error }),
  );
  for (let turns = 0; ; turns++) {
    await new Promise((resolve) => setImmediate(resolve));
    if (settled) break;
    if (!internal.runEventLoop()) throw new Error("never settled");
    if (turns > 10_000) throw new Error("still pending after 10000 turns of the event loop (a request left hanging?)");
  }
  if (settled.error) throw settled.error;
  const [status, flat, sent] = settled.value;
  const headers = [];
  for (let i = 0; i < flat.length; i += 2) headers.push([flat[i], flat[i + 1]]);
  // As the engine does: a string body is encoded on the way out.
  const body = typeof sent === "string" ? native.encodeUtf8(sent) : sent;
  return { status, headers, body, text: native.decodeUtf8(body, false) };
}
