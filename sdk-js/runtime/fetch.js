// fetch(), AbortController/AbortSignal (with the small EventTarget they
// need), and the event loop that waits for timers and responses together.
//
// A request goes to the host through native.httpStart and comes back through
// native.httpWait; the host applies the egress rules and limits to every
// request, including each redirect hop, because redirects are followed here.
(function (native, global, internal) {
  "use strict";

  const { DOMException, Headers, Request, URL } = internal;

  // ---- Events ----------------------------------------------------------------

  class Event {
    #type;
    constructor(type) {
      if (arguments.length === 0) throw new TypeError("Event: the type argument is required");
      this.#type = String(type);
    }
    get type() { return this.#type; }
    get [Symbol.toStringTag]() { return "Event"; }
  }

  class EventTarget {
    #listeners = new Map(); // type -> [{ callback, once }]

    addEventListener(type, callback, options) {
      if (callback === null || callback === undefined) return;
      const once = typeof options === "object" && options !== null && Boolean(options.once);
      const list = this.#listeners.get(String(type)) || [];
      if (!list.some((l) => l.callback === callback)) list.push({ callback, once });
      this.#listeners.set(String(type), list);
      if (typeof options === "object" && options?.signal) {
        options.signal.addEventListener("abort", () => this.removeEventListener(type, callback), { once: true });
      }
    }

    removeEventListener(type, callback) {
      const list = this.#listeners.get(String(type));
      if (list) this.#listeners.set(String(type), list.filter((l) => l.callback !== callback));
    }

    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("dispatchEvent: the argument must be an Event");
      const handler = this["on" + event.type];
      const listeners = [...(this.#listeners.get(event.type) || [])];
      if (typeof handler === "function") listeners.unshift({ callback: handler, once: false });
      for (const listener of listeners) {
        if (listener.once) this.removeEventListener(event.type, listener.callback);
        try {
          if (typeof listener.callback === "function") listener.callback.call(this, event);
          else listener.callback.handleEvent(event);
        } catch (error) {
          native.log("error", "Uncaught (in event listener) " + internal.inspect(error));
        }
      }
      return true;
    }
  }

  // ---- AbortController / AbortSignal ------------------------------------------

  const CREATE = Symbol("create signal");

  class AbortSignal extends EventTarget {
    #aborted = false;
    #reason = undefined;
    onabort = null;

    constructor(key) {
      if (key !== CREATE) throw new TypeError("Illegal constructor: use new AbortController().signal or AbortSignal.timeout()");
      super();
    }

    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    get [Symbol.toStringTag]() { return "AbortSignal"; }

    throwIfAborted() {
      if (this.#aborted) throw this.#reason;
    }

    static abort(reason) {
      const signal = new AbortSignal(CREATE);
      signal.#abort(reason);
      return signal;
    }

    /** Aborts with a TimeoutError after `ms` milliseconds. */
    static timeout(ms) {
      const delay = Number(ms);
      if (!Number.isFinite(delay) || delay < 0) throw new TypeError(`AbortSignal.timeout: ${ms} is not a valid delay`);
      const signal = new AbortSignal(CREATE);
      global.setTimeout(() => signal.#abort(new DOMException(`The operation timed out after ${delay} ms`, "TimeoutError")), delay);
      return signal;
    }

    /** Aborts when any of `signals` does, with its reason. */
    static any(signals) {
      const combined = new AbortSignal(CREATE);
      for (const signal of signals) {
        if (signal.aborted) {
          combined.#abort(signal.reason);
          return combined;
        }
      }
      for (const signal of signals) signal.addEventListener("abort", () => combined.#abort(signal.reason), { once: true });
      return combined;
    }

    #abort(reason) {
      if (this.#aborted) return;
      this.#aborted = true;
      this.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      this.dispatchEvent(new Event("abort"));
    }

    /** A signal and the function that aborts it, for AbortController. */
    static [CREATE]() {
      const signal = new AbortSignal(CREATE);
      return [signal, (reason) => signal.#abort(reason)];
    }
  }

  class AbortController {
    #signal;
    #abort;
    constructor() {
      [this.#signal, this.#abort] = AbortSignal[CREATE]();
    }
    get signal() { return this.#signal; }
    abort(reason) { this.#abort(reason); }
    get [Symbol.toStringTag]() { return "AbortController"; }
  }

  // ---- fetch -------------------------------------------------------------------

  const inFlight = new Map(); // id -> { resolve, reject }
  const MAX_REDIRECTS = 20;
  const REDIRECTS = [301, 302, 303, 307, 308];

  /** One request on the wire: resolves with [status, flatHeaders, bytes]. */
  function send(method, url, flatHeaders, body, signal) {
    signal?.throwIfAborted();
    let id;
    try {
      id = native.httpStart(method, url, flatHeaders, body);
    } catch (error) {
      throw new TypeError(`fetch(${url}) failed: ${error.message}`);
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        native.httpCancel(id);
        inFlight.delete(id);
        reject(signal.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      inFlight.set(id, {
        resolve(value) {
          signal?.removeEventListener("abort", onAbort);
          resolve(value);
        },
        reject(message) {
          signal?.removeEventListener("abort", onAbort);
          reject(new TypeError(`fetch(${url}) failed: ${message}`));
        },
      });
    });
  }

  async function fetch(input, init = undefined) {
    const request = new Request(input, init);
    // As in the Fetch standard, a Request passed in gives its body away.
    if (input instanceof Request && (init === undefined || init === null || init.body === undefined)) {
      internal.takeRequestBody(input);
    }
    const signal = request.signal;
    let method = request.method;
    let url = request.url;
    let body = internal.takeRequestBody(request);
    const headers = new Headers(request.headers);
    let redirected = false;

    for (let hops = 0; ; hops++) {
      const [status, flatHeaders, bytes] = await send(method, url, internal.flatHeaders(headers), body, signal);
      const location = REDIRECTS.includes(status) ? headerValue(flatHeaders, "location") : null;
      if (location === null || request.redirect === "manual") {
        return internal.fetchedResponse(status, flatHeaders, bytes, url, redirected);
      }
      if (request.redirect === "error") {
        throw new TypeError(`fetch(${url}) was redirected (${status} to ${location}) and its redirect mode is "error"`);
      }
      if (hops + 1 > MAX_REDIRECTS) throw new TypeError(`fetch(${request.url}) failed: more than ${MAX_REDIRECTS} redirects`);
      const next = URL.parse(location, url);
      if (!next || (next.protocol !== "http:" && next.protocol !== "https:")) {
        throw new TypeError(`fetch(${url}) was redirected to ${location}, which is not an http(s) URL`);
      }
      // As browsers do: 303 (and 301/302 after a POST) become a GET without a
      // body; credentials do not follow the request to another origin.
      if (status === 303 ? method !== "GET" && method !== "HEAD" : (status === 301 || status === 302) && method === "POST") {
        method = "GET";
        body = null;
        for (const name of ["content-type", "content-length", "content-encoding", "content-language", "content-location"]) {
          headers.delete(name);
        }
      }
      if (next.origin !== new URL(url).origin) {
        for (const name of ["authorization", "cookie", "proxy-authorization"]) headers.delete(name);
      }
      url = next.href;
      redirected = true;
    }
  }

  function headerValue(flat, name) {
    for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
    return null;
  }

  // ---- The event loop ------------------------------------------------------------

  /**
   * Called by the engine when no microtask is left and the handler has not
   * settled: waits for whichever comes first, a response or the next timer,
   * and runs what it unblocks. False when nothing is pending at all.
   */
  function runEventLoop() {
    if (inFlight.size === 0) return internal.runTimers();
    const finished = native.httpWait(internal.nextTimerDelay());
    for (const [id, status, headersOrMessage, bytes] of finished) {
      const pending = inFlight.get(id);
      if (!pending) continue; // aborted meanwhile
      inFlight.delete(id);
      if (status === 0) pending.reject(headersOrMessage);
      else pending.resolve([status, headersOrMessage, bytes]);
    }
    internal.fireDueTimers();
    return true;
  }

  internal.runEventLoop = runEventLoop;
  internal.install(global, { fetch, Event, EventTarget, AbortController, AbortSignal });
})
