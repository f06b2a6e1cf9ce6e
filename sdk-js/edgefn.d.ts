/**
 * Type declarations for edgefn function authors.
 *
 * An edgefn function is an ES module whose default export implements
 * {@link ExportedHandler}:
 *
 * ```ts
 * export default {
 *   async fetch(request, env, ctx) {
 *     return new Response(`Hello from ${ctx.functionName}`);
 *   },
 * } satisfies ExportedHandler;
 * ```
 *
 * The runtime is QuickJS (ES2023) with a small Web API layer. Only what is
 * declared here exists: there is no Node.js API and no DOM. Not available
 * yet: `fetch`, `crypto`, `Blob`, `FormData`, `ReadableStream` (and streams in
 * general), `AbortController`.
 */

/**
 * The default export of a function module.
 *
 * `env` has one read-only string property per secret granted to the function
 * (`env.OPENAI_API_KEY`), read from the host on first use. Reading an
 * upper-case name that is not granted throws a ReferenceError naming the grant.
 */
export interface ExportedHandler<Env = Record<string, string>> {
  /** Handles one HTTP request routed to this function. */
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response>;
}

/** Per-invocation context passed as the third argument of `fetch`. */
export interface ExecutionContext {
  /** Unique id of this invocation; also attached to its log lines. */
  readonly invocationId: string;
  /** Name of the deployed function. */
  readonly functionName: string;
  /** Version number of the deployed function that is running. */
  readonly version: number;
  /** The authenticated caller, or `null` when the request carried no identity. */
  readonly caller: Caller | null;
  /** Keeps the invocation alive until `promise` settles, after the response is sent. */
  waitUntil(promise: Promise<unknown>): void;
  /** No-op, kept for portability: edgefn has no origin to pass through to. */
  passThroughOnException(): void;
}

/**
 * Identity of whoever invoked the function, as the host established it before
 * the function ran (the token itself is never passed on). Groups and metadata
 * are the user's current ones, read from edgefn's database (or the external
 * identity provider's claims).
 */
export interface Caller {
  /** The user's id, the external provider's `sub`, or an admin key's prefix. */
  readonly id: string;
  readonly email: string | null;
  /** `service` is an admin key; anonymous callers have no `Caller` at all. */
  readonly role: "authenticated" | "service";
  readonly groups: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>>;
}

declare global {
  // ---------------------------------------------------------------------------
  // HTTP
  // ---------------------------------------------------------------------------

  type HeadersInit = Headers | Iterable<readonly [string, string]> | Record<string, string>;

  /** A request or response body. Streams are not supported. */
  type BodyInit = string | ArrayBuffer | ArrayBufferView | URLSearchParams | null;

  /**
   * Case-insensitive HTTP header list. Iteration yields lower-cased names in
   * sorted order with repeated values joined by ", " (except Set-Cookie).
   */
  class Headers implements Iterable<[string, string]> {
    constructor(init?: HeadersInit);
    append(name: string, value: string): void;
    delete(name: string): void;
    get(name: string): string | null;
    /** The values of every `Set-Cookie` header, unjoined. */
    getSetCookie(): string[];
    has(name: string): boolean;
    set(name: string, value: string): void;
    forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
    [Symbol.iterator](): IterableIterator<[string, string]>;
  }

  /** Methods shared by Request and Response for reading the body (once). */
  interface Body {
    /**
     * Always `null`: edgefn bodies are buffered and streams are not
     * supported. Use `text()`, `json()`, `arrayBuffer()` or `bytes()`.
     */
    readonly body: null;
    /** True once the body has been read. */
    readonly bodyUsed: boolean;
    text(): Promise<string>;
    json<T = unknown>(): Promise<T>;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
  }

  interface RequestInit {
    method?: string;
    headers?: HeadersInit;
    body?: BodyInit;
    redirect?: "follow" | "error" | "manual";
  }

  class Request implements Body {
    constructor(input: string | URL | Request, init?: RequestInit);
    /** Upper-cased for the standard methods (GET, POST, ...). */
    readonly method: string;
    /** The absolute URL of the request. */
    readonly url: string;
    readonly headers: Headers;
    readonly redirect: "follow" | "error" | "manual";
    readonly body: null;
    readonly bodyUsed: boolean;
    clone(): Request;
    text(): Promise<string>;
    json<T = unknown>(): Promise<T>;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
  }

  interface ResponseInit {
    /** 200–599; defaults to 200. */
    status?: number;
    statusText?: string;
    headers?: HeadersInit;
  }

  class Response implements Body {
    constructor(body?: BodyInit, init?: ResponseInit);
    /** A JSON response with `content-type: application/json`. */
    static json(data: unknown, init?: ResponseInit): Response;
    /** A redirect to `url` (status 301, 302, 303, 307 or 308; default 302). */
    static redirect(url: string | URL, status?: number): Response;
    /** A network-error response (status 0). */
    static error(): Response;
    readonly status: number;
    readonly statusText: string;
    /** True for status 200–299. */
    readonly ok: boolean;
    readonly headers: Headers;
    readonly type: "default" | "error";
    /** Always `""` (responses are constructed, not fetched). */
    readonly url: string;
    /** Always `false`. */
    readonly redirected: boolean;
    readonly body: null;
    readonly bodyUsed: boolean;
    clone(): Response;
    text(): Promise<string>;
    json<T = unknown>(): Promise<T>;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
  }

  // ---------------------------------------------------------------------------
  // URL
  // ---------------------------------------------------------------------------

  /** WHATWG URL. Setters given an unparsable value leave the URL unchanged. */
  class URL {
    /** @throws TypeError if `url` (resolved against `base`) is not a valid URL. */
    constructor(url: string | URL, base?: string | URL);
    static canParse(url: string | URL, base?: string | URL): boolean;
    /** Like the constructor, but returns `null` instead of throwing. */
    static parse(url: string | URL, base?: string | URL): URL | null;
    /** Setting an invalid href throws TypeError. */
    href: string;
    /** `"null"` for file: and non-special schemes. */
    readonly origin: string;
    protocol: string;
    username: string;
    password: string;
    /** hostname plus `:port` when the port is not the scheme's default. */
    host: string;
    hostname: string;
    /** `""` for the scheme's default port. */
    port: string;
    pathname: string;
    /** `""` or starting with `"?"`. */
    search: string;
    /** Live view of the query: changing it rewrites `search`, and vice versa. */
    readonly searchParams: URLSearchParams;
    /** `""` or starting with `"#"`. */
    hash: string;
    toString(): string;
    toJSON(): string;
  }

  /** application/x-www-form-urlencoded name/value list. */
  class URLSearchParams implements Iterable<[string, string]> {
    constructor(init?: string | Record<string, string> | Iterable<readonly [string, string]> | URLSearchParams);
    readonly size: number;
    append(name: string, value: string): void;
    /** Removes every pair named `name` (and, if given, with that value). */
    delete(name: string, value?: string): void;
    get(name: string): string | null;
    getAll(name: string): string[];
    has(name: string, value?: string): boolean;
    /** Replaces the first pair named `name` and removes the others. */
    set(name: string, value: string): void;
    /** Stable sort by name (UTF-16 code units). */
    sort(): void;
    forEach(callback: (value: string, name: string, params: URLSearchParams) => void, thisArg?: unknown): void;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
    [Symbol.iterator](): IterableIterator<[string, string]>;
    /** Serialised without a leading `"?"`. */
    toString(): string;
  }

  // ---------------------------------------------------------------------------
  // Encoding
  // ---------------------------------------------------------------------------

  /** UTF-8 only. */
  class TextEncoder {
    readonly encoding: "utf-8";
    encode(input?: string): Uint8Array;
    encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
  }

  interface TextDecoderOptions {
    /** Throw a TypeError on malformed input instead of emitting U+FFFD. */
    fatal?: boolean;
    ignoreBOM?: boolean;
  }

  /** UTF-8 only (labels such as "utf8" are accepted). */
  class TextDecoder {
    constructor(label?: string, options?: TextDecoderOptions);
    readonly encoding: string;
    readonly fatal: boolean;
    readonly ignoreBOM: boolean;
    decode(input?: ArrayBuffer | ArrayBufferView, options?: { stream?: boolean }): string;
  }

  /** Decodes base64 to a "binary string" (one char per byte). */
  function atob(data: string): string;
  /** Encodes a "binary string" to base64; throws for chars above U+00FF. */
  function btoa(data: string): string;

  // ---------------------------------------------------------------------------
  // Misc
  // ---------------------------------------------------------------------------

  interface StructuredSerializeOptions {
    /** ArrayBuffers to detach from the original. */
    transfer?: ArrayBuffer[];
  }

  /**
   * Deep copy of plain data: primitives, plain objects, arrays, Date, RegExp,
   * Map, Set, ArrayBuffer, typed arrays, DataView, primitive wrappers and
   * Error objects. Cycles and shared references are preserved.
   * @throws DOMException "DataCloneError" for functions, symbols, class
   * instances, WeakMap/WeakSet, Promise and other non-cloneable values.
   */
  function structuredClone<T>(value: T, options?: StructuredSerializeOptions): T;

  function queueMicrotask(callback: () => void): void;

  function setTimeout<A extends unknown[]>(handler: (...args: A) => void, timeout?: number, ...args: A): number;
  function clearTimeout(id: number | undefined): void;
  function setInterval<A extends unknown[]>(handler: (...args: A) => void, timeout?: number, ...args: A): number;
  function clearInterval(id: number | undefined): void;

  /** Output goes to the invocation's logs. */
  interface Console {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    debug(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
    trace(...data: unknown[]): void;
    assert(condition?: unknown, ...data: unknown[]): void;
    dir(item?: unknown): void;
    table(data?: unknown): void;
    count(label?: string): void;
    countReset(label?: string): void;
    time(label?: string): void;
    timeLog(label?: string, ...data: unknown[]): void;
    timeEnd(label?: string): void;
    group(...label: unknown[]): void;
    groupCollapsed(...label: unknown[]): void;
    groupEnd(): void;
  }
  var console: Console;

  class DOMException extends Error {
    constructor(message?: string, name?: string);
    readonly name: string;
    readonly message: string;
    /** Legacy numeric code for the standard names, otherwise 0. */
    readonly code: number;
  }
}
