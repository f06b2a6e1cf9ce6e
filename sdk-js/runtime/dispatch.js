// dispatch: what the engine calls once per invocation. It builds the Request
// and the ExecutionContext, calls the module's fetch, and hands back plain
// fields for the host.
(function (native, global, internal) {
  "use strict";

  const { Response } = internal;

  function describe(value) {
    if (value === null) return "null";
    if (value === undefined) return "undefined";
    if (typeof value !== "object") return `a ${typeof value} (${String(value).slice(0, 40)})`;
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return name && name !== "Object" ? `a ${name}` : "a plain object";
  }

  function freezeDeep(value) {
    if (value && typeof value === "object" && !Object.isFrozen(value)) {
      Object.freeze(value);
      for (const key of Object.keys(value)) freezeDeep(value[key]);
    }
    return value;
  }

  // The request arrives as separate arguments, not as one object: every
  // property the engine sets costs it an atom lookup.
  async function dispatch(handler, method, url, headers, body, env, ctx) {
    const request = internal.incomingRequest(method, url, headers, body);
    const pending = [];
    const context = Object.freeze({
      invocationId: ctx.invocationId,
      functionName: ctx.functionName,
      version: ctx.version,
      caller: freezeDeep(ctx.caller),
      // The response is sent once these settle too: the instance ends with
      // the invocation, so there is no "after the response" to run in.
      waitUntil(promise) {
        pending.push(Promise.resolve(promise));
      },
      // edgefn has no origin to fall back to; kept so Workers code runs.
      passThroughOnException() {},
    });

    const response = await handler.fetch(request, env, context);
    if (!(response instanceof Response)) {
      throw new TypeError(`fetch() must return a Response (or a promise of one), but it returned ${describe(response)}`);
    }
    if (response.type === "error") {
      throw new TypeError("fetch() returned Response.error(); return a Response with an error status instead");
    }
    if (pending.length) {
      for (const outcome of await Promise.allSettled(pending)) {
        if (outcome.status === "rejected") {
          native.log("error", "A ctx.waitUntil() promise rejected: " + internal.inspect(outcome.reason));
        }
      }
    }
    return {
      status: response.status,
      headers: internal.flatHeaders(response.headers),
      body: internal.responseBytes(response),
    };
  }

  internal.dispatch = dispatch;
})
