// dispatch: what the engine calls once per invocation. It builds the Request
// and the ExecutionContext, calls the module's fetch, and hands back plain
// fields for the host.
(function (native, global, internal) {
  "use strict";

  const { Response } = internal;

  // One `db` for every request: it carries no per-request state, so no
  // request pays for building it.
  const database = internal.makeDatabase();

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

  // Secret names as the admin API accepts them; reading one of these that is
  // not granted throws instead of yielding undefined, so a missing grant shows
  // up as itself. Other keys (`then`, `toJSON`, symbols) behave as usual.
  const SECRET_NAME = /^[A-Z][A-Z0-9_]*$/;

  function notGranted(name) {
    return new ReferenceError(
      `env.${name}: this function is not granted the secret ${name}; add "${name}" to the "secrets" ` +
        `of its deployment manifest, or grant it with PUT /admin/v1/functions/<name>/secrets`,
    );
  }

  const envHandler = {
    get(target, key, receiver) {
      if (typeof key === "string" && !(key in target) && SECRET_NAME.test(key)) throw notGranted(key);
      return Reflect.get(target, key, receiver);
    },
  };

  /** `env`: one read-only property per granted secret, each fetched on first read. */
  function makeEnv(names) {
    const target = {};
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      let value;
      Object.defineProperty(target, name, {
        enumerable: true,
        get() {
          if (value === undefined) value = native.secret(name);
          return value;
        },
      });
    }
    return new Proxy(Object.freeze(target), envHandler);
  }

  // Most functions are granted no secret: they all get this one `env`, built
  // into the engine snapshot instead of by every request.
  const NO_SECRETS = makeEnv([]);

  // The invocation's state, for the ctx methods below. One invocation runs
  // per instance, so plain module variables serve, and the methods are
  // shared instead of being new closures for every request.
  // ctx.waitUntil() promises: null until the first, as most functions make
  // none (an array for every request would cost each of them).
  let pending = null;
  let callerObject;

  /**
   * `ctx.caller`, built on first read: most functions never look, and
   * building it (the engine turns the host's record into objects) would cost
   * every request.
   */
  function caller() {
    if (callerObject === undefined) callerObject = freezeDeep(native.caller());
    return callerObject;
  }

  // The response is sent once these settle too: the instance ends with
  // the invocation, so there is no "after the response" to run in.
  function waitUntil(promise) {
    (pending ??= []).push(Promise.resolve(promise));
  }

  // edgefn has no origin to fall back to; kept so Workers code runs.
  function passThroughOnException() {}

  // `ctx`: one object, built into the engine snapshot instead of by every
  // request. Each request starts from the snapshot in an instance of its own,
  // so what a function changes in it ends with the request. The invocation's
  // fields are read from the engine when a function asks (most never do).
  // Not frozen: freezing made QuickJS rebuild its shape for every request.
  const context = {
    get invocationId() {
      return native.invocationId();
    },
    get functionName() {
      return native.functionName();
    },
    get version() {
      return native.version();
    },
    get caller() {
      return caller();
    },
    db: database,
    waitUntil,
    passThroughOnException,
  };

  /**
   * Calls the module's fetch for one request and returns what it returned,
   * unawaited: the engine settles a promise itself (driving the job queue,
   * then running the jobs still queued) and passes the value to `finish`,
   * which spares the promise, job and resumption of an `await` here. The
   * request arrives as separate arguments, not as one object: every property
   * the engine sets costs it an atom lookup. Its headers are not among them:
   * the Request asks the engine for them when they are first read.
   * `secretNames` are the names of the secrets granted to the function,
   * undefined when there are none.
   */
  function dispatch(handler, method, url, body, secretNames) {
    pending = null;
    callerObject = undefined;
    const request = internal.incomingRequest(method, url, body);
    const env = secretNames === undefined ? NO_SECRETS : makeEnv(secretNames);
    return handler.fetch(request, env, context);
  }

  /**
   * The host's fields of the Response fetch settled with, or a promise of
   * them while ctx.waitUntil() promises are pending.
   */
  function finish(response) {
    if (!(response instanceof Response)) {
      const thenable = (typeof response === "object" && response !== null) || typeof response === "function";
      if (thenable && typeof response.then === "function") return finishLater(response);
      throw new TypeError(`fetch() must return a Response (or a promise of one), but it returned ${describe(response)}`);
    }
    if (pending === null) return fields(response);
    // Refused (Response.error()) before anything is awaited; read again after.
    fields(response);
    return afterWaitUntil(response, pending);
  }

  /** `finish` for a thenable that is not a promise: awaited first. */
  async function finishLater(returned) {
    return finish(await returned);
  }

  async function afterWaitUntil(response, waited) {
    for (const outcome of await Promise.allSettled(waited)) {
      if (outcome.status === "rejected") {
        native.log("error", "A ctx.waitUntil() promise rejected: " + internal.inspect(outcome.reason));
      }
    }
    return fields(response);
  }

  // [status, flat headers, body]: an array, which the engine reads by
  // index, costs QuickJS less to build and to read than an object's fields.
  function fields(response) {
    const read = internal.responseFields(response);
    if (read === null) {
      throw new TypeError("fetch() returned Response.error(); return a Response with an error status instead");
    }
    return read;
  }

  internal.dispatch = dispatch;
  internal.finish = finish;
})
