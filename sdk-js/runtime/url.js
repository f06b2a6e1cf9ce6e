// URL and URLSearchParams (WHATWG URL Standard).
//
// Parsing itself is done by the Rust `url` crate through `native.parseURL`,
// which returns the WHATWG getter values of a parsed URL (or null), and so is
// the application/x-www-form-urlencoded parser (`native.parseFormUrlencoded`).
// This file adds the object model on top: the getters, the setters
// (implemented by rebuilding an href string and re-parsing it), the live
// `searchParams` object, and the application/x-www-form-urlencoded serialiser.
//
// Cost notes: QuickJS interprets this file for every request that uses a URL,
// at hundreds of Wasm instructions per operation, so the hot paths avoid
// copying objects, allocating argument arrays and parsing in JS.
(function (native, global, internal) {
  "use strict";

  // Intrinsics captured at start-up so later tampering by user code with
  // built-in prototypes cannot change how URLs behave.
  const ReflectApply = Reflect.apply;
  const toWellFormed = String.prototype.toWellFormed;
  // Shared by every argument-less ReflectApply: a new [] per call costs an
  // allocation on paths every URL takes. Frozen, so nothing can fill it.
  const NO_ARGUMENTS = Object.freeze([]);
  const IteratorPrototype = Object.getPrototypeOf(
    Object.getPrototypeOf([][Symbol.iterator]()),
  );

  // ---------------------------------------------------------------------------
  // Shared helpers
  // ---------------------------------------------------------------------------

  // WebIDL USVString conversion: ToString (a template literal throws on
  // symbols, as WebIDL requires) followed by replacing lone surrogates with
  // U+FFFD, so every string we hold can be UTF-8 encoded losslessly.
  function toUSVString(value) {
    const string = typeof value === "string" ? value : `${value}`;
    if (typeof toWellFormed === "function") {
      return ReflectApply(toWellFormed, string, NO_ARGUMENTS);
    }
    return string.replace(
      /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
      "\uFFFD",
    );
  }

  function requireArguments(given, required, what) {
    if (given < required) {
      throw new TypeError(
        `${what}: ${required} argument${required === 1 ? "" : "s"} required, but only ${given} present.`,
      );
    }
  }

  const HEX = "0123456789ABCDEF";

  // Percent-encodes every UTF-8 byte of `string` for which `shouldEncode`
  // returns true. Used for userinfo, which the setters must encode themselves
  // because "@", ":" and "/" would otherwise change the shape of the href.
  function percentEncode(string, shouldEncode) {
    const bytes = native.encodeUtf8(string);
    let out = "";
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      out += shouldEncode(byte)
        ? "%" + HEX[byte >> 4] + HEX[byte & 0x0f]
        : String.fromCharCode(byte);
    }
    return out;
  }

  // The userinfo percent-encode set of the URL Standard.
  function inUserinfoSet(byte) {
    if (byte <= 0x20 || byte >= 0x7f) return true;
    switch (byte) {
      case 0x22: case 0x23: case 0x2f: case 0x3a: case 0x3b: case 0x3c:
      case 0x3d: case 0x3e: case 0x3f: case 0x40: case 0x5b: case 0x5c:
      case 0x5d: case 0x5e: case 0x60: case 0x7b: case 0x7c: case 0x7d:
        return true;
      default:
        return false;
    }
  }

  // ---------------------------------------------------------------------------
  // application/x-www-form-urlencoded
  // ---------------------------------------------------------------------------

  // The application/x-www-form-urlencoded parser, as [name, value] pairs:
  // "+" is a space, percent-escapes are decoded as UTF-8 bytes (invalid UTF-8
  // becomes U+FFFD) and malformed escapes such as "%zz" are kept literally.
  // Native (Rust's form_urlencoded): `url.searchParams.get()` on a
  // two-parameter query cost about 92K Wasm instructions with the parser in
  // JS, 40K with this one.
  const parseFormUrlencoded = native.parseFormUrlencoded;

  const FORM_SAFE = /^[A-Za-z0-9*\-._]*$/;

  function formEncode(string) {
    if (FORM_SAFE.test(string)) return string;
    const bytes = native.encodeUtf8(string);
    let out = "";
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (
        (byte >= 0x30 && byte <= 0x39) || // 0-9
        (byte >= 0x41 && byte <= 0x5a) || // A-Z
        (byte >= 0x61 && byte <= 0x7a) || // a-z
        byte === 0x2a || byte === 0x2d || byte === 0x2e || byte === 0x5f // * - . _
      ) {
        out += String.fromCharCode(byte);
      } else if (byte === 0x20) {
        out += "+";
      } else {
        out += "%" + HEX[byte >> 4] + HEX[byte & 0x0f];
      }
    }
    return out;
  }

  function serializeFormUrlencoded(list) {
    let out = "";
    for (let i = 0; i < list.length; i++) {
      if (i > 0) out += "&";
      out += formEncode(list[i][0]) + "=" + formEncode(list[i][1]);
    }
    return out;
  }

  // ---------------------------------------------------------------------------
  // URLSearchParams
  // ---------------------------------------------------------------------------

  // params object -> { list: Array<[name, value]>, url: URL state | null }.
  // `url` is set for the object returned by URL#searchParams, which must
  // write every change back into its URL's query.
  const paramsStates = new WeakMap();

  function paramsStateOf(object, what) {
    const state = paramsStates.get(object);
    if (state === undefined) {
      throw new TypeError(`${what} called on an object that is not a URLSearchParams`);
    }
    return state;
  }

  // The URL Standard's "update" steps for a URLSearchParams object.
  function paramsUpdated(state) {
    if (state.url === null) return;
    const serialized = serializeFormUrlencoded(state.list);
    replaceQuery(state.url, serialized === "" ? null : serialized);
  }

  class URLSearchParams {
    constructor(init = "") {
      const state = { list: [], url: null };
      paramsStates.set(this, state);

      if (init !== null && (typeof init === "object" || typeof init === "function")) {
        const other = paramsStates.get(init);
        if (other !== undefined) {
          state.list = other.list.map((pair) => [pair[0], pair[1]]);
          return;
        }
        const iteratorMethod = init[Symbol.iterator];
        if (iteratorMethod !== undefined && iteratorMethod !== null) {
          if (typeof iteratorMethod !== "function") {
            throw new TypeError("URLSearchParams: init[Symbol.iterator] is not a function");
          }
          // sequence<sequence<USVString>>: each entry must itself be an
          // iterable of exactly two items.
          for (const pair of init) {
            if (pair === null || (typeof pair !== "object" && typeof pair !== "function")) {
              throw new TypeError("URLSearchParams: each pair must be an iterable [name, value]");
            }
            const items = [...pair];
            if (items.length !== 2) {
              throw new TypeError(
                `URLSearchParams: each pair must have exactly 2 items, got ${items.length}`,
              );
            }
            state.list.push([toUSVString(items[0]), toUSVString(items[1])]);
          }
          return;
        }
        // record<USVString, USVString>: own enumerable keys in property
        // order. Two keys can collapse to the same USVString (lone
        // surrogates), in which case the later value wins in the earlier slot.
        const positions = new Map();
        for (const key of Reflect.ownKeys(init)) {
          const descriptor = Reflect.getOwnPropertyDescriptor(init, key);
          if (descriptor === undefined || !descriptor.enumerable) continue;
          const name = toUSVString(key); // throws TypeError for symbol keys
          const value = toUSVString(init[key]);
          const position = positions.get(name);
          if (position === undefined) {
            positions.set(name, state.list.length);
            state.list.push([name, value]);
          } else {
            state.list[position][1] = value;
          }
        }
        return;
      }

      // The default: URL#searchParams creates one this way for every URL.
      if (init === "") return;
      let query = toUSVString(init);
      if (query.startsWith("?")) query = query.slice(1);
      state.list = parseFormUrlencoded(query);
    }

    get size() {
      return paramsStateOf(this, "URLSearchParams.size").list.length;
    }

    append(name, value) {
      const state = paramsStateOf(this, "URLSearchParams.append");
      requireArguments(arguments.length, 2, "URLSearchParams.append");
      state.list.push([toUSVString(name), toUSVString(value)]);
      paramsUpdated(state);
    }

    delete(name, value = undefined) {
      const state = paramsStateOf(this, "URLSearchParams.delete");
      requireArguments(arguments.length, 1, "URLSearchParams.delete");
      const key = toUSVString(name);
      const match = value === undefined ? null : toUSVString(value);
      state.list = state.list.filter(
        (pair) => !(pair[0] === key && (match === null || pair[1] === match)),
      );
      paramsUpdated(state);
    }

    get(name) {
      const state = paramsStateOf(this, "URLSearchParams.get");
      requireArguments(arguments.length, 1, "URLSearchParams.get");
      const key = toUSVString(name);
      // A loop, not find(): no closure and no call per entry.
      const list = state.list;
      for (let i = 0; i < list.length; i++) if (list[i][0] === key) return list[i][1];
      return null;
    }

    getAll(name) {
      const state = paramsStateOf(this, "URLSearchParams.getAll");
      requireArguments(arguments.length, 1, "URLSearchParams.getAll");
      const key = toUSVString(name);
      return state.list.filter((pair) => pair[0] === key).map((pair) => pair[1]);
    }

    has(name, value = undefined) {
      const state = paramsStateOf(this, "URLSearchParams.has");
      requireArguments(arguments.length, 1, "URLSearchParams.has");
      const key = toUSVString(name);
      const match = value === undefined ? null : toUSVString(value);
      return state.list.some(
        (pair) => pair[0] === key && (match === null || pair[1] === match),
      );
    }

    set(name, value) {
      const state = paramsStateOf(this, "URLSearchParams.set");
      requireArguments(arguments.length, 2, "URLSearchParams.set");
      const key = toUSVString(name);
      const newValue = toUSVString(value);
      const list = [];
      let replaced = false;
      for (const pair of state.list) {
        if (pair[0] !== key) {
          list.push(pair);
        } else if (!replaced) {
          list.push([key, newValue]);
          replaced = true;
        }
      }
      if (!replaced) list.push([key, newValue]);
      state.list = list;
      paramsUpdated(state);
    }

    sort() {
      const state = paramsStateOf(this, "URLSearchParams.sort");
      // Array.prototype.sort is stable, and `<` on strings compares UTF-16
      // code units, which is exactly the order the standard asks for.
      state.list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      paramsUpdated(state);
    }

    forEach(callback, thisArg = undefined) {
      const state = paramsStateOf(this, "URLSearchParams.forEach");
      requireArguments(arguments.length, 1, "URLSearchParams.forEach");
      if (typeof callback !== "function") {
        throw new TypeError("URLSearchParams.forEach: callback is not a function");
      }
      // Index-based and re-reading state.list, so the callback observes
      // (and may cause) mutations, as with the standard's live iteration.
      for (let i = 0; i < state.list.length; i++) {
        const pair = state.list[i];
        ReflectApply(callback, thisArg, [pair[1], pair[0], this]);
      }
    }

    entries() {
      return createParamsIterator(paramsStateOf(this, "URLSearchParams.entries"), "entries");
    }

    keys() {
      return createParamsIterator(paramsStateOf(this, "URLSearchParams.keys"), "keys");
    }

    values() {
      return createParamsIterator(paramsStateOf(this, "URLSearchParams.values"), "values");
    }

    toString() {
      return serializeFormUrlencoded(paramsStateOf(this, "URLSearchParams.toString").list);
    }
  }

  Object.defineProperty(URLSearchParams.prototype, Symbol.iterator, {
    value: URLSearchParams.prototype.entries,
    writable: true,
    configurable: true,
  });
  Object.defineProperty(URLSearchParams.prototype, Symbol.toStringTag, {
    value: "URLSearchParams",
    configurable: true,
  });

  // Iterators are live views over the list (like the WebIDL pair iterator):
  // they keep an index and read the current list on every step.
  const iteratorStates = new WeakMap();

  const ParamsIteratorPrototype = Object.create(IteratorPrototype, {
    next: {
      value: function next() {
        const state = iteratorStates.get(this);
        if (state === undefined) {
          throw new TypeError("next called on an object that is not a URLSearchParams Iterator");
        }
        const list = state.params.list;
        if (state.index >= list.length) return { value: undefined, done: true };
        const pair = list[state.index++];
        const value =
          state.kind === "keys" ? pair[0] : state.kind === "values" ? pair[1] : [pair[0], pair[1]];
        return { value, done: false };
      },
      writable: true,
      configurable: true,
    },
    [Symbol.toStringTag]: { value: "URLSearchParams Iterator", configurable: true },
  });

  function createParamsIterator(params, kind) {
    const iterator = Object.create(ParamsIteratorPrototype);
    iteratorStates.set(iterator, { params, kind, index: 0 });
    return iterator;
  }

  // ---------------------------------------------------------------------------
  // URL
  // ---------------------------------------------------------------------------

  // URL object -> { record, params } where `record` is the result of
  // native.parseURL and `params` the URLSearchParams returned by searchParams.
  const urlStates = new WeakMap();

  const SPECIAL_SCHEMES = new Set(["http:", "https:", "ws:", "wss:", "ftp:", "file:"]);

  function urlStateOf(object, what) {
    const state = urlStates.get(object);
    if (state === undefined) {
      throw new TypeError(`${what} called on an object that is not a URL`);
    }
    return state;
  }

  // The record is the object native.parseURL made, never handed out and
  // never changed in place (setters build a new one): a frozen copy of its
  // nine fields cost about 28K Wasm instructions, a third of `new URL()`.
  function parse(input, base) {
    const record = base === undefined ? native.parseURL(input) : native.parseURL(input, base);
    return record === undefined ? null : record;
  }

  // The native parser reads a string as USVString itself (a lone surrogate
  // becomes U+FFFD, as toWellFormed makes it), so only other values need
  // converting here.
  function usvInput(value) {
    return typeof value === "string" ? value : toUSVString(value);
  }

  function parseWithOptionalBase(url, base) {
    const input = usvInput(url);
    return base === undefined ? parse(input) : parse(input, usvInput(base));
  }

  function hostOf(record) {
    return record.port === "" ? record.hostname : record.hostname + ":" + record.port;
  }

  // Whether the serialisation contains "//" + authority. Non-special URLs may
  // have no host at all ("foo:/x"); in that case the href never starts with
  // "scheme://" because the serialiser inserts "/." before a "//" path.
  function hasAuthority(record) {
    return record.href.startsWith(record.protocol + "//");
  }

  // An opaque path ("mailto:x", "data:...") is what non-special URLs get when
  // no "/" follows the scheme. Such URLs have no host and no path segments.
  function hasOpaquePath(record) {
    return !hasAuthority(record) && !record.pathname.startsWith("/");
  }

  function cannotHaveCredentialsOrPort(record) {
    return record.hostname === "" || record.protocol === "file:";
  }

  function originOf(record) {
    switch (record.protocol) {
      case "http:":
      case "https:":
      case "ws:":
      case "wss:":
      case "ftp:":
        return record.protocol + "//" + hostOf(record);
      case "blob:": {
        // A blob URL's origin is that of the URL it wraps, if http(s).
        const inner = parse(record.pathname);
        return inner !== null && (inner.protocol === "http:" || inner.protocol === "https:")
          ? originOf(inner)
          : "null";
      }
      default:
        // file: origins are implementation-defined; like browsers we use an
        // opaque origin, which serialises as "null".
        return "null";
    }
  }

  // Splits a serialised href into the part before the query, the query
  // (with its "?", possibly just "?") and the fragment (with its "#").
  // In a serialised URL the first "#" always starts the fragment and the first
  // "?" before it always starts the query: everywhere else they are encoded.
  function splitHref(href) {
    const hashAt = href.indexOf("#");
    const fragment = hashAt === -1 ? "" : href.slice(hashAt);
    const rest = hashAt === -1 ? href : href.slice(0, hashAt);
    const queryAt = rest.indexOf("?");
    return {
      beforeQuery: queryAt === -1 ? rest : rest.slice(0, queryAt),
      query: queryAt === -1 ? "" : rest.slice(queryAt),
      fragment,
    };
  }

  // scheme ":" ["//" userinfo host port] path — from getter-shaped parts.
  function assembleBeforeQuery(parts, withAuthority) {
    let out = parts.protocol;
    if (withAuthority) {
      out += "//";
      if (parts.username !== "" || parts.password !== "") {
        out += parts.username;
        if (parts.password !== "") out += ":" + parts.password;
        out += "@";
      }
      out += parts.hostname;
      if (parts.port !== "") out += ":" + parts.port;
    } else if (parts.pathname.startsWith("//")) {
      // Without "/." the path's leading "//" would be read as an authority.
      out += "/.";
    }
    return out + parts.pathname;
  }

  // Replaces some of the scheme/authority/path parts and re-parses, keeping
  // the current query and fragment verbatim. Invalid results are ignored, as
  // browsers ignore setter values they cannot parse.
  function replaceParts(state, changes, withAuthority = hasAuthority(state.record)) {
    const { query, fragment } = splitHref(state.record.href);
    const parts = { ...state.record, ...changes };
    const next = parse(assembleBeforeQuery(parts, withAuthority) + query + fragment);
    if (next !== null) state.record = next;
  }

  // Used by the live searchParams object: `query` is null to remove it.
  function replaceQuery(state, query) {
    const { beforeQuery, fragment } = splitHref(state.record.href);
    const next = parse(beforeQuery + (query === null ? "" : "?" + query) + fragment);
    if (next !== null) state.record = next;
  }

  // Keeps searchParams in sync after the query changed through the URL.
  function resetParamsList(state) {
    if (state.params !== null) {
      paramsStates.get(state.params).list = parseFormUrlencoded(state.record.search.slice(1));
    }
  }

  const TAB_OR_NEWLINE = /[\t\n\r]/g;

  function stripTabAndNewline(string) {
    return string.replace(TAB_OR_NEWLINE, "");
  }

  // C0 controls and space are in the path, query and fragment percent-encode
  // sets anyway; encoding them up front keeps the full-href re-parse from
  // trimming leading/trailing ones, which a setter must not do.
  function encodeControlsAndSpace(string) {
    return string.replace(
      /[\x00-\x20]/g,
      (c) => "%" + HEX[c.charCodeAt(0) >> 4] + HEX[c.charCodeAt(0) & 0x0f],
    );
  }

  // Index of the ":" separating host and port, ignoring colons inside an
  // IPv6 literal's brackets; -1 if there is none.
  function portColonIndex(hostAndPort) {
    let insideBrackets = false;
    for (let i = 0; i < hostAndPort.length; i++) {
      const c = hostAndPort[i];
      if (c === "[") insideBrackets = true;
      else if (c === "]") insideBrackets = false;
      else if (c === ":" && !insideBrackets) return i;
    }
    return -1;
  }

  // The host part of a host/hostname setter value ends at the first
  // character that would start the path, query or fragment.
  function cutAtPathStart(value, special) {
    const end = value.search(special ? /[/?#\\]/ : /[/?#]/);
    return end === -1 ? value : value.slice(0, end);
  }

  // Characters that can never appear in a host; rejecting them up front keeps
  // e.g. "a@b" from being re-parsed as userinfo "a" plus host "b".
  const FORBIDDEN_IN_HOST = /[\x00-\x20@/?#\\^|<>]/;

  function setHost(state, value, allowPort) {
    const record = state.record;
    if (hasOpaquePath(record)) return;
    const special = SPECIAL_SCHEMES.has(record.protocol);
    const input = cutAtPathStart(stripTabAndNewline(toUSVString(value)), special);

    let hostname = input;
    let port = record.port;
    const colon = portColonIndex(input);
    if (colon !== -1) {
      // hostname setter: a ":" invalidates the whole value. file: URLs have
      // no ports, so "host:port" is an invalid file host.
      if (!allowPort || record.protocol === "file:") return;
      hostname = input.slice(0, colon);
      if (hostname === "") return;
      // Digits up to the first non-digit; no digits leaves the port alone.
      const digits = /^[0-9]*/.exec(input.slice(colon + 1))[0];
      if (digits !== "") port = digits;
    }

    if (hostname === "") {
      if (special && record.protocol !== "file:") return;
      if (record.username !== "" || record.password !== "" || record.port !== "") return;
    }
    if (FORBIDDEN_IN_HOST.test(hostname)) return;
    replaceParts(state, { hostname, port }, true);
  }

  class URL {
    constructor(url, base = undefined) {
      requireArguments(arguments.length, 1, "URL constructor");
      const record = parseWithOptionalBase(url, base);
      if (record === null) {
        if (base !== undefined && parse(toUSVString(base)) === null) {
          throw new TypeError(`Invalid base URL: ${toUSVString(base)}`);
        }
        throw new TypeError(`Invalid URL: ${toUSVString(url)}`);
      }
      // searchParams is created on first use: most URLs never need it, and
      // parsing the query costs more than parsing the URL.
      urlStates.set(this, { record, params: null });
    }

    static canParse(url, base = undefined) {
      requireArguments(arguments.length, 1, "URL.canParse");
      return parseWithOptionalBase(url, base) !== null;
    }

    static parse(url, base = undefined) {
      requireArguments(arguments.length, 1, "URL.parse");
      return parseWithOptionalBase(url, base) === null ? null : new URL(url, base);
    }

    get href() {
      return urlStateOf(this, "URL.href").record.href;
    }

    set href(value) {
      const state = urlStateOf(this, "URL.href");
      const input = toUSVString(value);
      const next = parse(input);
      if (next === null) throw new TypeError(`Invalid URL: ${input}`);
      state.record = next;
      resetParamsList(state);
    }

    get origin() {
      return originOf(urlStateOf(this, "URL.origin").record);
    }

    get protocol() {
      return urlStateOf(this, "URL.protocol").record.protocol;
    }

    set protocol(value) {
      const state = urlStateOf(this, "URL.protocol");
      const record = state.record;
      // Everything after the first ":" is ignored; the scheme itself must be
      // well-formed or the whole value is.
      const match = /^([A-Za-z][A-Za-z0-9+.-]*)(?::|$)/.exec(stripTabAndNewline(toUSVString(value)));
      if (match === null) return;
      const protocol = match[1].toLowerCase() + ":";
      // The standard forbids switching between special and non-special
      // schemes, giving a URL with credentials or a port the file: scheme,
      // and taking file: away from a URL with an empty host.
      if (SPECIAL_SCHEMES.has(protocol) !== SPECIAL_SCHEMES.has(record.protocol)) return;
      if (
        protocol === "file:" &&
        (record.username !== "" || record.password !== "" || record.port !== "")
      ) {
        return;
      }
      if (record.protocol === "file:" && record.hostname === "") return;
      replaceParts(state, { protocol });
    }

    get username() {
      return urlStateOf(this, "URL.username").record.username;
    }

    set username(value) {
      const state = urlStateOf(this, "URL.username");
      if (cannotHaveCredentialsOrPort(state.record)) return;
      replaceParts(state, { username: percentEncode(toUSVString(value), inUserinfoSet) });
    }

    get password() {
      return urlStateOf(this, "URL.password").record.password;
    }

    set password(value) {
      const state = urlStateOf(this, "URL.password");
      if (cannotHaveCredentialsOrPort(state.record)) return;
      replaceParts(state, { password: percentEncode(toUSVString(value), inUserinfoSet) });
    }

    get host() {
      return hostOf(urlStateOf(this, "URL.host").record);
    }

    set host(value) {
      setHost(urlStateOf(this, "URL.host"), value, true);
    }

    get hostname() {
      return urlStateOf(this, "URL.hostname").record.hostname;
    }

    set hostname(value) {
      setHost(urlStateOf(this, "URL.hostname"), value, false);
    }

    get port() {
      return urlStateOf(this, "URL.port").record.port;
    }

    set port(value) {
      const state = urlStateOf(this, "URL.port");
      if (cannotHaveCredentialsOrPort(state.record)) return;
      const input = stripTabAndNewline(toUSVString(value));
      if (input === "") {
        replaceParts(state, { port: "" });
        return;
      }
      // Leading digits only ("8080abc" sets 8080); out-of-range ports fail
      // the re-parse and are ignored.
      const digits = /^[0-9]*/.exec(input)[0];
      if (digits === "") return;
      replaceParts(state, { port: digits });
    }

    get pathname() {
      return urlStateOf(this, "URL.pathname").record.pathname;
    }

    set pathname(value) {
      const state = urlStateOf(this, "URL.pathname");
      const record = state.record;
      if (hasOpaquePath(record)) return;
      const special = SPECIAL_SCHEMES.has(record.protocol);
      const withAuthority = hasAuthority(record);
      // "?" and "#" are path characters here, not delimiters.
      let path = encodeControlsAndSpace(stripTabAndNewline(toUSVString(value)))
        .replaceAll("?", "%3F")
        .replaceAll("#", "%23");
      const startsWithSlash = path.startsWith("/") || (special && path.startsWith("\\"));
      // Only a non-special URL with a host may have an empty path.
      if (!startsWithSlash && (path !== "" || special || !withAuthority)) path = "/" + path;
      replaceParts(state, { pathname: path });
      // For file: URLs the setter drops leading empty path segments, which
      // a full re-parse ("file:////x") would keep.
      const updated = state.record;
      if (updated.protocol === "file:" && updated.pathname.startsWith("//")) {
        replaceParts(state, { pathname: updated.pathname.replace(/^\/+/, "/") });
      }
    }

    get search() {
      return urlStateOf(this, "URL.search").record.search;
    }

    set search(value) {
      const state = urlStateOf(this, "URL.search");
      const input = toUSVString(value);
      if (input === "") {
        replaceQuery(state, null);
      } else {
        // "?" alone leaves an empty query: href keeps the "?" but search is "".
        const query = stripTabAndNewline(input.startsWith("?") ? input.slice(1) : input);
        replaceQuery(state, encodeControlsAndSpace(query).replaceAll("#", "%23"));
      }
      resetParamsList(state);
    }

    get searchParams() {
      const state = urlStateOf(this, "URL.searchParams");
      if (state.params === null) {
        const params = new URLSearchParams();
        paramsStates.get(params).url = state;
        state.params = params;
        resetParamsList(state);
      }
      return state.params;
    }

    get hash() {
      return urlStateOf(this, "URL.hash").record.hash;
    }

    set hash(value) {
      const state = urlStateOf(this, "URL.hash");
      const input = toUSVString(value);
      const { beforeQuery, query } = splitHref(state.record.href);
      let href = beforeQuery + query;
      if (input !== "") {
        const fragment = stripTabAndNewline(input.startsWith("#") ? input.slice(1) : input);
        href += "#" + encodeControlsAndSpace(fragment);
      }
      const next = parse(href);
      if (next !== null) state.record = next;
    }

    toString() {
      return urlStateOf(this, "URL.toString").record.href;
    }

    toJSON() {
      return urlStateOf(this, "URL.toJSON").record.href;
    }
  }

  Object.defineProperty(URL.prototype, Symbol.toStringTag, {
    value: "URL",
    configurable: true,
  });

  // ---------------------------------------------------------------------------
  // Installation
  // ---------------------------------------------------------------------------

  for (const [name, value] of [
    ["URL", URL],
    ["URLSearchParams", URLSearchParams],
  ]) {
    // Like Web IDL interface objects: writable, configurable, not enumerable.
    Object.defineProperty(global, name, { value, writable: true, configurable: true });
    internal[name] = value;
  }
});
