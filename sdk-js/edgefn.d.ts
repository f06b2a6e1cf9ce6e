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
 * yet: `Blob`, `File`, `ReadableStream` (and streams in general); `FormData`
 * holds text fields only.
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
  /**
   * The application database, queried as the caller: the host applies the
   * table's row-level security and binds every value.
   *
   * ```ts
   * const { data, error } = await ctx.db.from("orders").select("id, total").eq("status", "paid").limit(10);
   * ```
   */
  readonly db: Database;
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

// ---------------------------------------------------------------------------
// Database (ctx.db)
// ---------------------------------------------------------------------------

/** A row as JSON: timestamps are ISO strings, blobs are base64 strings. */
export type DatabaseRow = Record<string, any>;

/**
 * A value the builder accepts for a column. `Date` is sent as an ISO string,
 * `Uint8Array`/`ArrayBuffer` as base64 (blob columns); a `bigint` throws.
 */
export type DatabaseValue =
  | string
  | number
  | boolean
  | null
  | Date
  | Uint8Array
  | ArrayBuffer
  | readonly DatabaseValue[]
  | { readonly [key: string]: DatabaseValue | undefined };

/** Values for insert/update/upsert; keys whose value is `undefined` are left out. */
export type DatabaseValues<Row> = { [K in keyof Row]?: DatabaseValue | undefined };

/**
 * A failed query or transaction step. `code` is stable and machine-readable
 * (`permission-denied`, `transaction-open`, ...); `message` is for people.
 * Serialises to JSON as `{ code, message }`.
 */
export interface DatabaseError extends Error {
  readonly name: "DatabaseError";
  readonly code: string;
  readonly message: string;
}

/**
 * What awaiting a query gives. On failure `data` and `count` are `null` and
 * `error` says why (or the promise rejects, after `throwOnError()`). `count`
 * is set when `select(..., { count: "exact" })` asked for it.
 */
export type DatabaseResult<T> =
  | { data: T; error: null; count: number | null }
  | { data: null; error: DatabaseError; count: null };

/** The operators of `filter()`, `not()` and the `or()` string form. */
export type FilterOperator = "eq" | "neq" | "gt" | "gte" | "lt" | "lte" | "like" | "ilike" | "in" | "is";

/**
 * `ctx.db`: a supabase-js-style query builder. Only plain columns of one
 * table per query: embedded resources (joins such as `"author(name)"`),
 * aliases and casts are refused with a TypeError, as are malformed arguments.
 */
export interface Database {
  /** Starts a query on `table`; each action called on it starts a new query. */
  from<Row extends DatabaseRow = DatabaseRow>(table: string): QueryBuilder<Row>;
  /**
   * Runs `callback` in a transaction: commits when its promise resolves and
   * returns its value; rolls back and rethrows when it throws or rejects.
   * Rejects with a `DatabaseError` if begin or commit fails, or (code
   * `transaction-open`) if a transaction is already open: nesting is not
   * supported. While it is open, every query of the invocation joins it,
   * including ones not made through `tx`.
   *
   * A failed query does not throw by itself (its error is in the result); use
   * `.throwOnError()` on queries inside the callback so a failure rolls back.
   */
  transaction<T>(callback: (tx: Database) => T | Promise<T>): Promise<Awaited<T>>;
}

/** What `db.from(table)` returns: choose the action. */
export interface QueryBuilder<Row extends DatabaseRow> {
  /**
   * Reads rows. `columns` is a comma-separated list ("id, total"); `"*"` or
   * nothing selects every column. `count: "exact"` also counts the matching
   * rows; with `head: true` only the count is returned (`data` is `null`).
   */
  select(columns?: string, options?: { count?: "exact"; head?: boolean }): FilterBuilder<Row, Row[]>;
  /** Inserts one row or several. Follow with `.select()` to get them back. */
  insert(values: DatabaseValues<Row> | DatabaseValues<Row>[]): TransformBuilder<Row, null>;
  /** Changes the matching rows; narrow them with filters. */
  update(patch: DatabaseValues<Row>): FilterBuilder<Row, null>;
  /**
   * Inserts, or updates the row that conflicts on `onConflict` (a column or
   * comma-separated columns; the primary key by default). With
   * `ignoreDuplicates` a conflicting row is left as it is.
   */
  upsert(
    values: DatabaseValues<Row> | DatabaseValues<Row>[],
    options?: { onConflict?: string; ignoreDuplicates?: boolean },
  ): TransformBuilder<Row, null>;
  /** Deletes the matching rows; narrow them with filters. */
  delete(): FilterBuilder<Row, null>;
}

/**
 * A query that can still be shaped, and awaited. Methods change the query and
 * return it (as in supabase-js). The query runs when awaited, once per
 * `await`/`then` (awaiting the same builder twice runs it twice), and never
 * if it is not awaited.
 */
export interface TransformBuilder<Row extends DatabaseRow, Result> extends PromiseLike<DatabaseResult<Result>> {
  /**
   * After insert/update/upsert/delete: return the affected rows, with these
   * columns (every column by default).
   */
  select(columns?: string): TransformBuilder<Row, Row[]>;
  /** Sorts by `column`; call again for further keys. `select()` queries only. */
  order(column: string, options?: { ascending?: boolean; nullsFirst?: boolean }): this;
  /** At most `count` rows. `select()` queries only. */
  limit(count: number): this;
  /** Rows `from` to `to`, both inclusive, counted from 0. `select()` queries only. */
  range(from: number, to: number): this;
  /** `data` is exactly one row; no row or several rows is an error. */
  single(): TransformBuilder<Row, Result extends (infer R)[] ? R : Result>;
  /** `data` is one row or `null`; several rows is an error. */
  maybeSingle(): TransformBuilder<Row, Result extends (infer R)[] ? R | null : Result>;
  /** Rejects with the `DatabaseError` instead of returning it in the result. */
  throwOnError(): this;
}

/**
 * Filters narrow `select()`, `update()` and `delete()`; several are ANDed.
 * Comparing with `null` throws: use `.is(column, null)`. In `like`/`ilike`
 * patterns `%` and `*` match any text, `_` one character.
 */
export interface FilterBuilder<Row extends DatabaseRow, Result> extends TransformBuilder<Row, Result> {
  eq(column: string, value: DatabaseValue): this;
  neq(column: string, value: DatabaseValue): this;
  gt(column: string, value: DatabaseValue): this;
  gte(column: string, value: DatabaseValue): this;
  lt(column: string, value: DatabaseValue): this;
  lte(column: string, value: DatabaseValue): this;
  like(column: string, pattern: string): this;
  ilike(column: string, pattern: string): this;
  in(column: string, values: readonly DatabaseValue[]): this;
  is(column: string, value: null | boolean): this;
  /** Negates one condition: `.not("status", "eq", "void")`, `.not("id", "in", [1, 2])`. */
  not(column: string, operator: FilterOperator, value: unknown): this;
  /**
   * Any of the conditions, in PostgREST's syntax:
   * `"status.eq.paid,and(total.gt.10,total.lt.20),name.in.(a,b),status.not.eq.void"`.
   * Double-quote a value to include `,` `.` `(` `)` (`name.eq."a,b"`, `\"` for
   * a quote). Unquoted values that read as numbers (`10`, `-2.5`, but not
   * `007`) become numbers, `true`/`false` booleans, and `null` only after
   * `is`; everything else, and every quoted value, is a string. Malformed
   * strings and unsupported operators throw a TypeError naming the position.
   */
  or(filters: string): this;
  /** `eq` for each key: `.match({ status: "paid", region: "eu" })`. */
  match(query: Record<string, DatabaseValue>): this;
  /**
   * One condition with the operator as a string (`"eq"`, or negated as
   * `"not.eq"`). For `in` and `is` the value may also be PostgREST text:
   * `"(1,2,3)"`, `"null"`.
   */
  filter(column: string, operator: FilterOperator | `not.${FilterOperator}`, value: unknown): this;
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
   * sorted order with repeated values joined by ", " (except Set-Cookie). A
   * response's headers go out in the order they were set, a repeated name as
   * separate fields.
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
    /**
     * Parses an `application/x-www-form-urlencoded` or `multipart/form-data`
     * body. Rejects with a TypeError for a file part (there is no File).
     */
    formData(): Promise<FormData>;
  }

  /** Form fields (text only: there is no Blob or File). A body of this type is sent as multipart/form-data. */
  class FormData {
    constructor();
    append(name: string, value: string): void;
    set(name: string, value: string): void;
    get(name: string): string | null;
    getAll(name: string): string[];
    has(name: string): boolean;
    delete(name: string): void;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
    forEach(callback: (value: string, name: string, form: FormData) => void, thisArg?: unknown): void;
    [Symbol.iterator](): IterableIterator<[string, string]>;
  }

  interface RequestInit {
    method?: string;
    headers?: HeadersInit;
    body?: BodyInit;
    redirect?: "follow" | "error" | "manual";
    /** Aborting it rejects a pending `fetch` with the signal's reason. */
    signal?: AbortSignal | null;
  }

  class Request implements Body {
    constructor(input: string | URL | Request, init?: RequestInit);
    /** Upper-cased for the standard methods (GET, POST, ...). */
    readonly method: string;
    /** The absolute URL of the request. */
    readonly url: string;
    readonly headers: Headers;
    readonly redirect: "follow" | "error" | "manual";
    readonly signal: AbortSignal | null;
    readonly body: null;
    readonly bodyUsed: boolean;
    clone(): Request;
    text(): Promise<string>;
    json<T = unknown>(): Promise<T>;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
    formData(): Promise<FormData>;
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
    /** `"basic"` for a response `fetch` returned. */
    readonly type: "default" | "basic" | "error";
    /** The final URL of a fetched response (after redirects); `""` otherwise. */
    readonly url: string;
    /** True when `fetch` followed at least one redirect to get it. */
    readonly redirected: boolean;
    readonly body: null;
    readonly bodyUsed: boolean;
    clone(): Response;
    text(): Promise<string>;
    json<T = unknown>(): Promise<T>;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
    formData(): Promise<FormData>;
  }

  /**
   * Sends an HTTP request from the host. The host enforces the function's
   * egress allowlist (manifest `egress`), refuses internal addresses (on
   * every redirect hop), and limits the number of requests, their body sizes
   * and their duration; each refusal rejects with a TypeError that says why.
   * Redirects are followed (at most 20) unless `redirect` says otherwise.
   * Requests awaited together (`Promise.all`) run concurrently.
   */
  function fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;

  class Event {
    constructor(type: string);
    readonly type: string;
  }

  class EventTarget {
    addEventListener(type: string, listener: ((event: Event) => void) | { handleEvent(event: Event): void } | null, options?: { once?: boolean; signal?: AbortSignal } | boolean): void;
    removeEventListener(type: string, listener: ((event: Event) => void) | { handleEvent(event: Event): void } | null): void;
    dispatchEvent(event: Event): boolean;
  }

  class AbortSignal extends EventTarget {
    /** A signal that is already aborted. */
    static abort(reason?: unknown): AbortSignal;
    /** A signal that aborts with a `TimeoutError` DOMException after `ms`. */
    static timeout(ms: number): AbortSignal;
    /** A signal that aborts when the first of `signals` does. */
    static any(signals: AbortSignal[]): AbortSignal;
    readonly aborted: boolean;
    readonly reason: unknown;
    onabort: ((event: Event) => void) | null;
    throwIfAborted(): void;
  }

  class AbortController {
    readonly signal: AbortSignal;
    abort(reason?: unknown): void;
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

  // ---------------------------------------------------------------------------
  // Crypto: randomness, SHA digests and HMAC (what webhooks and API request
  // signing need). Other Web Crypto algorithms are not available and reject
  // with a NotSupportedError.
  // ---------------------------------------------------------------------------

  type BufferSource = ArrayBuffer | ArrayBufferView;
  type HashName = "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512";
  type HmacImportParams = { name: "HMAC"; hash: HashName | { name: HashName }; length?: number };

  /** An HMAC key from `crypto.subtle.importKey`; its bytes are not readable unless extractable. */
  class CryptoKey {
    private constructor();
    readonly type: "secret";
    readonly extractable: boolean;
    readonly algorithm: { readonly name: "HMAC"; readonly hash: { readonly name: HashName }; readonly length: number };
    readonly usages: readonly ("sign" | "verify")[];
  }

  interface SubtleCrypto {
    digest(algorithm: HashName | { name: HashName }, data: BufferSource): Promise<ArrayBuffer>;
    importKey(format: "raw", keyData: BufferSource, algorithm: HmacImportParams, extractable: boolean, usages: ("sign" | "verify")[]): Promise<CryptoKey>;
    exportKey(format: "raw", key: CryptoKey): Promise<ArrayBuffer>;
    sign(algorithm: "HMAC" | { name: "HMAC" }, key: CryptoKey, data: BufferSource): Promise<ArrayBuffer>;
    /** Compares the expected tag with `signature` in constant time. */
    verify(algorithm: "HMAC" | { name: "HMAC" }, key: CryptoKey, signature: BufferSource, data: BufferSource): Promise<boolean>;
    /** Constant-time equality of two buffers of the same length (as in Cloudflare Workers). */
    timingSafeEqual(a: BufferSource, b: BufferSource): boolean;
  }

  interface Crypto {
    readonly subtle: SubtleCrypto;
    /** Fills an integer TypedArray (at most 65,536 bytes) with secure random values. */
    getRandomValues<T extends Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array>(array: T): T;
    /** A random (version 4) UUID. */
    randomUUID(): `${string}-${string}-${string}-${string}-${string}`;
  }
  var crypto: Crypto;
}
