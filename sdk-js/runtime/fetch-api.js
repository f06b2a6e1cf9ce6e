// The Fetch standard's Headers, Request and Response, with fully buffered
// bodies: the host hands the function the whole request body and takes the
// whole response body, so there are no streams (`body` is null).
(function (native, global, internal) {
  "use strict";

  const { URL, URLSearchParams } = internal;
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const HTTP_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

  // QuickJS runs a regular expression or a toLowerCase call at a cost of
  // thousands of Wasm instructions, and every request handles headers: names
  // seen before (and the common ones, pre-filled into the engine snapshot)
  // skip validation.
  const VALID_NAMES = new Map();
  const NAME_CACHE_LIMIT = 1024;

  function headerName(name) {
    const text = typeof name === "string" ? name : String(name);
    const known = VALID_NAMES.get(text);
    if (known !== undefined) return known;
    if (!TOKEN.test(text)) throw new TypeError(`Invalid header name: ${JSON.stringify(text)}`);
    const lower = text.toLowerCase();
    if (VALID_NAMES.size < NAME_CACHE_LIMIT) VALID_NAMES.set(text, lower);
    return lower;
  }

  for (const name of [
    "accept", "accept-encoding", "accept-language", "access-control-allow-headers", "access-control-allow-methods",
    "access-control-allow-origin", "access-control-max-age", "authorization", "cache-control", "content-disposition",
    "content-encoding", "content-language", "content-length", "content-type", "cookie", "etag", "expires", "host",
    "last-modified", "link", "location", "origin", "referer", "retry-after", "server", "set-cookie",
    "strict-transport-security", "user-agent", "vary", "www-authenticate", "x-content-type-options", "x-frame-options",
    "x-request-id",
  ]) {
    headerName(name);
    headerName(name.replace(/(^|-)([a-z])/g, (_, dash, letter) => dash + letter.toUpperCase()));
  }

  function isHttpWhitespace(code) {
    return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
  }

  function headerValue(value) {
    let text = typeof value === "string" ? value : String(value);
    // One native check instead of five string calls (charCodeAt, indexOf),
    // which QuickJS makes dear on the path every response takes.
    if (native.isPlainHeaderValue(text)) return text;
    if (text.length && (isHttpWhitespace(text.charCodeAt(0)) || isHttpWhitespace(text.charCodeAt(text.length - 1)))) {
      text = text.replace(HTTP_WHITESPACE, "");
    }
    if (text.indexOf("\n") !== -1 || text.indexOf("\r") !== -1 || text.indexOf("\0") !== -1) {
      throw new TypeError(`Invalid header value: ${JSON.stringify(text)}`);
    }
    return text;
  }

  // ---- Headers -----------------------------------------------------------

  // Set in Headers' static block: a HeadersInit as a new flat list.
  let flatList;
  // What native.headerRecord(init, list) answers: not a record (nothing
  // read), or its entries appended normalized, or as read.
  const RECORD_NORMALIZED = 1;
  const RECORD_AS_READ = 2;

  // A body's default Content-Type, unless one is set: the name is known and
  // the value valid, so neither is checked again.
  function defaultContentType(list, type) {
    for (let i = 0; i < list.length; i += 2) if (list[i] === "content-type") return;
    list.push("content-type", type);
  }

  // Stored as one flat [lower-case name, value, name, value, ...] list in
  // insertion order, the form the host sends and takes: the incoming
  // request's headers become a Headers without conversion, and so does the
  // response's on the way out. A response has a handful of headers, so the
  // linear scans cost less than building a Map would.
  class Headers {
    #list = [];
    #immutable = false;

    constructor(init) {
      if (init === undefined || init === null) return;
      this.#list = flatList(init);
    }

    /** A new flat list of what a HeadersInit holds, validated. */
    static #flatList(init) {
      const list = [];
      // A record first, read in one engine call, as most inits are (a
      // response's `{ "content-type": ... }`): it tells a record from the
      // rest itself (WebIDL: an object without a Symbol.iterator method),
      // which spares them an `instanceof` and a Symbol.iterator lookup here,
      // and reads each property once, in Object.keys order. It takes the
      // names and values as they are when one needs what only JS does here
      // (String() of an object, trimming, an error naming the bad header),
      // and those are normalized below.
      const read = native.headerRecord(init, list);
      if (read === RECORD_NORMALIZED) return list;
      if (read === RECORD_AS_READ) {
        for (let i = 0; i < list.length; i += 2) {
          list[i] = headerName(list[i]);
          list[i + 1] = headerValue(list[i + 1]);
        }
        return list;
      }
      if (init instanceof Headers) return init.#list.slice();
      if (typeof init !== "object" || init === null) {
        throw new TypeError("Headers: expected a Headers object, an array of [name, value] pairs, or a record");
      }
      for (const pair of init) {
        const entry = [...pair];
        if (entry.length !== 2) throw new TypeError("Headers: each header must be a [name, value] pair");
        list.push(headerName(entry[0]), headerValue(entry[1]));
      }
      return list;
    }

    #mutable() {
      if (this.#immutable) throw new TypeError("These headers are immutable");
    }

    #without(key) {
      const list = this.#list;
      const kept = [];
      for (let i = 0; i < list.length; i += 2) if (list[i] !== key) kept.push(list[i], list[i + 1]);
      return kept;
    }

    append(name, value) {
      this.#mutable();
      this.#list.push(headerName(name), headerValue(value));
    }

    set(name, value) {
      this.#mutable();
      const key = headerName(name);
      const text = headerValue(value);
      const list = this.#list;
      let first = -1;
      let more = false;
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] !== key) continue;
        if (first === -1) first = i;
        else more = true;
      }
      if (first === -1) {
        list.push(key, text);
        return;
      }
      list[first + 1] = text;
      if (more) {
        // Later values of the name go; the first keeps its place.
        const kept = [];
        for (let i = 0; i < list.length; i += 2) if (list[i] !== key || i === first) kept.push(list[i], list[i + 1]);
        this.#list = kept;
      }
    }

    delete(name) {
      this.#mutable();
      this.#list = this.#without(headerName(name));
    }

    get(name) {
      const key = headerName(name);
      const list = this.#list;
      let found = null;
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] === key) found = found === null ? list[i + 1] : found + ", " + list[i + 1];
      }
      return found;
    }

    has(name) {
      const key = headerName(name);
      const list = this.#list;
      for (let i = 0; i < list.length; i += 2) if (list[i] === key) return true;
      return false;
    }

    getSetCookie() {
      const list = this.#list;
      const cookies = [];
      for (let i = 0; i < list.length; i += 2) if (list[i] === "set-cookie") cookies.push(list[i + 1]);
      return cookies;
    }

    // Sorted by name; values combined, except set-cookie which never combines.
    *entries() {
      const list = this.#list;
      const names = [];
      for (let i = 0; i < list.length; i += 2) if (!names.includes(list[i])) names.push(list[i]);
      names.sort();
      for (const name of names) {
        if (name === "set-cookie") for (const cookie of this.getSetCookie()) yield [name, cookie];
        else yield [name, this.get(name)];
      }
    }

    *keys() {
      for (const [name] of this.entries()) yield name;
    }

    *values() {
      for (const [, value] of this.entries()) yield value;
    }

    forEach(callback, thisArg) {
      for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
    }

    [Symbol.iterator]() {
      return this.entries();
    }

    get [Symbol.toStringTag]() {
      return "Headers";
    }

    static {
      // Trusted construction from the host's flat list (lower-case names,
      // valid values), which the new Headers owns from here on.
      internal.headersFromFlat = (flat, immutable) => {
        const headers = new Headers();
        headers.#list = flat;
        headers.#immutable = immutable;
        return headers;
      };
      // The flat list for the host, which only reads it. A name that
      // appears twice is sent as two fields, which HTTP treats as one
      // comma-separated field (and Set-Cookie needs).
      internal.flatHeaders = (headers) => headers.#list;
      flatList = Headers.#flatList;
      internal.defaultContentType = (headers, type) => defaultContentType(headers.#list, type);
      internal.freezeHeaders = (headers) => {
        headers.#immutable = true;
        return headers;
      };
    }
  }

  // ---- FormData --------------------------------------------------------------

  // Text fields only: there is no Blob or File in edgefn, so a file part can
  // be neither built nor read as one.
  class FormData {
    #entries = []; // [name, value]

    constructor(form) {
      if (form !== undefined) throw new TypeError("FormData: there is no HTML form in edgefn; call new FormData() and append()");
    }

    static #field(value, filename) {
      if (filename !== undefined || (value !== null && typeof value === "object" && typeof value.arrayBuffer === "function")) {
        throw new TypeError("FormData: file fields are not supported (edgefn has no Blob or File); append strings");
      }
      return String(value);
    }

    append(name, value, filename) { this.#entries.push([String(name), FormData.#field(value, filename)]); }
    set(name, value, filename) {
      const key = String(name);
      const field = FormData.#field(value, filename);
      const first = this.#entries.findIndex(([n]) => n === key);
      if (first === -1) {
        this.#entries.push([key, field]);
        return;
      }
      this.#entries[first] = [key, field];
      this.#entries = this.#entries.filter(([n], i) => n !== key || i === first);
    }
    get(name) {
      const found = this.#entries.find(([n]) => n === String(name));
      return found ? found[1] : null;
    }
    getAll(name) { return this.#entries.filter(([n]) => n === String(name)).map(([, v]) => v); }
    has(name) { return this.#entries.some(([n]) => n === String(name)); }
    delete(name) { this.#entries = this.#entries.filter(([n]) => n !== String(name)); }
    *entries() { for (const [name, value] of this.#entries) yield [name, value]; }
    *keys() { for (const [name] of this.#entries) yield name; }
    *values() { for (const [, value] of this.#entries) yield value; }
    forEach(callback, thisArg) { for (const [name, value] of this.#entries) callback.call(thisArg, value, name, this); }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "FormData"; }
  }

  // multipart/form-data (RFC 7578): names escaped as browsers do.
  function encodeMultipart(form) {
    const boundary = "----edgefnFormBoundary" + Array.from(native.randomBytes(12), (b) => b.toString(16).padStart(2, "0")).join("");
    const escape = (name) => name.replace(/\r\n|\r|\n/g, "\r\n").replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
    let text = "";
    for (const [name, value] of form) {
      const normalized = value.replace(/\r\n|\r|\n/g, "\r\n");
      text += `--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"\r\n\r\n${normalized}\r\n`;
    }
    text += `--${boundary}--\r\n`;
    return { bytes: native.encodeUtf8(text), type: `multipart/form-data; boundary=${boundary}` };
  }

  function parseMultipart(text, contentType) {
    const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
    if (!match) throw new TypeError("formData(): the multipart/form-data body has no boundary in its Content-Type");
    const delimiter = "--" + (match[1] || match[2]);
    const form = new FormData();
    const parts = text.split(delimiter);
    if (parts.length < 2) throw new TypeError("formData(): the body does not contain its multipart boundary");
    for (const part of parts.slice(1)) {
      if (part.startsWith("--")) break; // the closing delimiter
      const body = part.replace(/^\r\n/, "");
      const split = body.indexOf("\r\n\r\n");
      if (split === -1) throw new TypeError("formData(): a multipart part has no blank line after its headers");
      const head = body.slice(0, split);
      const value = body.slice(split + 4).replace(/\r\n$/, "");
      const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(head);
      if (!disposition) throw new TypeError("formData(): a multipart part has no Content-Disposition: form-data header");
      const name = /;\s*name="([^"]*)"/i.exec(disposition[1]) || /;\s*name=([^;\s]+)/i.exec(disposition[1]);
      if (!name) throw new TypeError("formData(): a multipart part has no name");
      if (/;\s*filename\*?=/i.test(disposition[1])) {
        throw new TypeError(`formData(): the field "${name[1]}" is a file upload, which edgefn cannot represent (no File); read the body with arrayBuffer()`);
      }
      form.append(name[1].replace(/%22/g, '"').replace(/%0D/g, "\r").replace(/%0A/g, "\n"), value);
    }
    return form;
  }

  // ---- Bodies --------------------------------------------------------------

  const EMPTY = new Uint8Array(0);

  // The default content type of the body extractBody() last extracted. A
  // module variable rather than a returned pair: destructuring an array goes
  // through the iterator protocol, which QuickJS makes dear on this hot path.
  let extractedType = null;

  /** The body's bytes (a private copy), or null; sets `extractedType`. */
  function extractBody(body) {
    extractedType = null;
    if (body === undefined || body === null) return null;
    if (typeof body === "string") {
      extractedType = "text/plain;charset=UTF-8";
      return native.encodeUtf8(body);
    }
    if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
    if (ArrayBuffer.isView(body)) {
      return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    }
    if (body instanceof URLSearchParams) {
      extractedType = "application/x-www-form-urlencoded;charset=UTF-8";
      return native.encodeUtf8(body.toString());
    }
    if (body instanceof FormData) {
      const { bytes, type } = encodeMultipart(body);
      extractedType = type;
      return bytes;
    }
    if (typeof body === "object" && typeof body.getReader === "function") {
      throw new TypeError("edgefn does not support stream bodies; pass a string, ArrayBuffer, typed array or URLSearchParams");
    }
    extractedType = "text/plain;charset=UTF-8";
    return native.encodeUtf8(String(body));
  }

  // A Request's or Response's state is one array that starts with its body:
  // [body (a Uint8Array; for a Response, also a string; or null for none),
  // used, ...the class's own fields]. One private field holding an array
  // costs QuickJS far less than a private field each (measured for a
  // Response: ~4K Wasm instructions against ~10K for five fields), and every
  // request builds one of each.
  // A Response built from a string keeps the string instead of bytes: the
  // engine encodes it once on the way out, which spares most responses a
  // typed array, and it is encoded here only if the function reads it.
  function consume(state) {
    if (state[1]) throw new TypeError("Body has already been used: a body can be read only once (use clone() to read it twice)");
    if (state[0] === null) return EMPTY;
    state[1] = true;
    return typeof state[0] === "string" ? native.encodeUtf8(state[0]) : state[0];
  }

  function bodyMethods(Class, stateOf) {
    Object.assign(Class.prototype, {
      async text() {
        return native.decodeUtf8(consume(stateOf(this)), false);
      },
      async json() {
        return JSON.parse(native.decodeUtf8(consume(stateOf(this)), false));
      },
      async arrayBuffer() {
        const bytes = consume(stateOf(this));
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      },
      async bytes() {
        return consume(stateOf(this)).slice();
      },
      async formData() {
        const type = this.headers.get("content-type") || "";
        const text = native.decodeUtf8(consume(stateOf(this)), false);
        if (/^application\/x-www-form-urlencoded/i.test(type)) {
          const form = new FormData();
          for (const [name, value] of new URLSearchParams(text)) form.append(name, value);
          return form;
        }
        if (/^multipart\/form-data/i.test(type)) return parseMultipart(text, type);
        throw new TypeError(`formData(): the body's Content-Type is ${JSON.stringify(type)}, not application/x-www-form-urlencoded or multipart/form-data`);
      },
    });
    Object.defineProperties(Class.prototype, {
      bodyUsed: { get() { return stateOf(this)[1]; }, configurable: true },
      // Bodies are buffered; there is no ReadableStream in edgefn.
      body: { get() { return null; }, configurable: true },
    });
  }

  // ---- Request ---------------------------------------------------------------

  const STANDARD_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  const FORBIDDEN_METHODS = ["CONNECT", "TRACE", "TRACK"];
  const REDIRECT_MODES = ["follow", "error", "manual"];

  function normalizeMethod(method) {
    const text = String(method);
    if (STANDARD_METHODS.includes(text)) return text;
    if (!TOKEN.test(text)) throw new TypeError(`Invalid HTTP method: ${JSON.stringify(text)}`);
    const upper = text.toUpperCase();
    if (FORBIDDEN_METHODS.includes(upper)) throw new TypeError(`The HTTP method ${upper} is not allowed`);
    // PATCH is upper-cased too: nobody means "patch" as a distinct method.
    return STANDARD_METHODS.includes(upper) ? upper : text;
  }

  // Each class's state (see consume()) is in a private field; these read it
  // from outside the class (set in the classes' static blocks).
  let requestBody;
  let responseBody;
  // Set by Response.json() for the constructor it calls next.
  let jsonBodyNext = false;
  // Passed as `input` by the host-side factory below; unreachable for authors.
  const TRUSTED = Symbol("trusted request");

  class Request {
    // [bytes, used, url, method, headers, redirect, signal]. `headers` is a
    // Headers, or for the incoming request undefined until first read.
    #state;

    static {
      requestBody = (request) => request.#state;
    }

    // The parameters after `init` are the incoming request's, which the host
    // already validated: passed as arguments, not as an object, to spare
    // building one per request.
    constructor(input, init, trustedMethod, trustedBytes) {
      if (input === TRUSTED) {
        this.#state = [trustedBytes, false, init, trustedMethod, undefined, "follow", null];
        return;
      }
      let inherited = null;
      let url, method, headers, redirect, signal;
      if (input instanceof Request) {
        inherited = input.#state;
        url = inherited[2];
        method = inherited[3];
        headers = new Headers(input.headers);
        redirect = inherited[5];
        signal = inherited[6];
      } else {
        const parsed = URL.parse(String(input));
        if (!parsed) throw new TypeError(`Invalid URL: ${String(input)} (a Request needs an absolute URL)`);
        url = parsed.href;
        method = "GET";
        headers = new Headers();
        redirect = "follow";
        signal = null;
      }
      init = init || {};
      if (init.method !== undefined) method = normalizeMethod(init.method);
      if (init.headers !== undefined) headers = new Headers(init.headers);
      if (init.redirect !== undefined) {
        if (!REDIRECT_MODES.includes(init.redirect)) throw new TypeError(`Invalid redirect mode: ${init.redirect}`);
        redirect = init.redirect;
      }
      if (init.signal !== undefined) signal = init.signal;

      let bytes = null;
      if (init.body !== undefined && init.body !== null) {
        bytes = extractBody(init.body);
        if (extractedType !== null) internal.defaultContentType(headers, extractedType);
      } else if (inherited) {
        if (inherited[1]) throw new TypeError("Cannot construct a Request from one whose body has already been used");
        bytes = inherited[0];
      }
      if ((method === "GET" || method === "HEAD") && bytes !== null) {
        throw new TypeError(`A ${method} request cannot have a body`);
      }
      this.#state = [bytes, false, url, method, headers, redirect, signal];
    }

    get url() { return this.#state[2]; }
    get method() { return this.#state[3]; }
    get headers() {
      // The incoming request's are built on first read, from the flat list
      // the engine hands over only then: many functions never look.
      const state = this.#state;
      const headers = state[4];
      if (headers !== undefined) return headers;
      return (state[4] = internal.headersFromFlat(native.requestHeaders(), true));
    }
    get redirect() { return this.#state[5]; }
    get signal() { return this.#state[6]; }
    get [Symbol.toStringTag]() { return "Request"; }

    clone() {
      if (this.bodyUsed) throw new TypeError("Cannot clone a Request whose body has already been used");
      return new Request(this);
    }

  }
  bodyMethods(Request, requestBody);

  // ---- Response --------------------------------------------------------------

  const NULL_BODY_STATUSES = [101, 103, 204, 205, 304];
  const REDIRECT_STATUSES = [301, 302, 303, 307, 308];

  // The key of Response's factory for fetch(); unreachable for authors.
  const FETCHED = Symbol("fetched response");

  class Response {
    // [bytes, used, status, statusText, headers, origin]. `headers` is a
    // Headers, or the flat list until first read: most functions never read
    // their own response's headers, and a Headers object costs every
    // response. `origin` is [type, url, redirected] for a fetched or error
    // response, null for the ones a function builds ("default", "", false).
    #state;

    static {
      responseBody = (response) => response.#state;
      // The host's `[status, flat headers, body]` of a Response a function
      // returned, for dispatch.js's `finish`, read in one call (a getter or
      // a call each costs QuickJS hundreds of instructions); null for
      // Response.error(), which `finish` refuses. The body is the bytes, or
      // the string the Response was built from, whether or not the
      // function read it.
      internal.responseFields = (response) => {
        const state = response.#state;
        const origin = state[5];
        if (origin !== null && origin[0] === "error") return null;
        const headers = state[4];
        return [state[2], headers instanceof Headers ? internal.flatHeaders(headers) : headers, state[0] || EMPTY];
      };
    }

    /** A response fetch() received: any status the server sent, immutable headers. */
    static [FETCHED](status, flatHeaders, bytes, url, redirected) {
      const empty = bytes.length === 0 || NULL_BODY_STATUSES.includes(status);
      const response = new Response(null);
      response.#state = [empty ? null : bytes, false, status, "", internal.headersFromFlat(flatHeaders, true), ["basic", url, redirected]];
      return response;
    }

    constructor(body = null, init) {
      // Read first, so that nothing thrown below leaves it set.
      const json = jsonBodyNext;
      jsonBodyNext = false;
      let status = 200;
      let statusText = "";
      let headers = [];
      // No `init = {}` default: building that object costs every response.
      if (init !== undefined && init !== null) {
        if (init.status !== undefined) {
          status = Number(init.status);
          if (!Number.isInteger(status) || status < 200 || status > 599) {
            throw new RangeError(`Response status must be an integer from 200 to 599, got ${init.status}`);
          }
        }
        if (init.statusText !== undefined) {
          statusText = String(init.statusText);
          if (/[\r\n]/.test(statusText)) throw new TypeError("Response statusText must not contain line breaks");
        }
        if (init.headers !== undefined && init.headers !== null) headers = flatList(init.headers);
      }
      let bytes;
      if (typeof body === "string") {
        // Here rather than in extractBody(): a call fewer on the path most
        // responses take (see consume()).
        bytes = body;
        extractedType = "text/plain;charset=UTF-8";
      } else {
        bytes = extractBody(body);
      }
      // The statuses of NULL_BODY_STATUSES that the range check above admits,
      // compared directly: includes() is a call, dear on this path.
      if (bytes !== null && (status === 204 || status === 205 || status === 304)) {
        throw new TypeError(`A response with status ${status} cannot have a body`);
      }
      if (extractedType !== null) defaultContentType(headers, json ? "application/json" : extractedType);
      this.#state = [bytes, false, status, statusText, headers, null];
    }

    static json(data, init) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("Response.json: the value cannot be serialized to JSON");
      // The constructor takes application/json as the default type; no
      // second Headers and no copy of `init`, as this is most responses.
      jsonBodyNext = true;
      return new Response(text, init);
    }

    static redirect(url, status = 302) {
      if (!REDIRECT_STATUSES.includes(status)) {
        throw new RangeError(`Response.redirect status must be one of ${REDIRECT_STATUSES.join(", ")}, got ${status}`);
      }
      const parsed = URL.parse(String(url));
      if (!parsed) throw new TypeError(`Invalid URL: ${String(url)}`);
      const response = new Response(null, { status, headers: { location: parsed.href } });
      internal.freezeHeaders(response.headers);
      return response;
    }

    static error() {
      const response = new Response(null);
      const state = response.#state;
      state[2] = 0;
      state[5] = ["error", "", false];
      internal.freezeHeaders(response.headers);
      return response;
    }

    get status() { return this.#state[2]; }
    get statusText() { return this.#state[3]; }
    get ok() {
      const status = this.#state[2];
      return status >= 200 && status < 300;
    }
    get headers() {
      const state = this.#state;
      const headers = state[4];
      if (headers instanceof Headers) return headers;
      return (state[4] = internal.headersFromFlat(headers, false));
    }
    get type() {
      const origin = this.#state[5];
      return origin === null ? "default" : origin[0];
    }
    get url() {
      const origin = this.#state[5];
      return origin === null ? "" : origin[1];
    }
    get redirected() {
      const origin = this.#state[5];
      return origin === null ? false : origin[2];
    }
    get [Symbol.toStringTag]() { return "Response"; }

    clone() {
      if (this.bodyUsed) throw new TypeError("Cannot clone a Response whose body has already been used");
      const state = this.#state;
      const copy = new Response(null, { status: state[2] === 0 ? 200 : state[2], statusText: state[3], headers: this.headers });
      const copied = copy.#state;
      copied[0] = state[0];
      copied[2] = state[2];
      copied[5] = state[5];
      return copy;
    }
  }
  bodyMethods(Response, responseBody);

  // ---- For dispatch ------------------------------------------------------------

  /**
   * The incoming request. No content-type is guessed for the caller's bytes,
   * and the caller's headers are not the function's to edit.
   */
  internal.incomingRequest = (method, url, body) => {
    // The engine passes no body as undefined.
    const hasBody = body !== undefined && body.length > 0 && method !== "GET" && method !== "HEAD";
    return new Request(TRUSTED, url, method, hasBody ? body : null);
  };

  internal.fetchedResponse = (status, flatHeaders, bytes, url, redirected) =>
    Response[FETCHED](status, flatHeaders, bytes, url, redirected);

  /** A request's body for sending: consumed, as reading it would. Null if none. */
  internal.takeRequestBody = (request) => {
    const state = requestBody(request);
    return state[0] === null ? null : consume(state);
  };

  Object.assign(internal, { Headers, Request, Response, FormData });
  internal.install(global, { Headers, Request, Response, FormData });
})
