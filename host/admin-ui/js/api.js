// The admin API client. The admin key lives in this tab's sessionStorage
// (gone when the tab closes) and travels only in the Authorization header,
// never in a URL, so it stays out of history, logs and Referer headers.

const STORAGE_KEY = "edgefn.admin-key";

/** `/admin/v1/` relative to the page, so a server behind a path prefix works too. */
const API_BASE = new URL("v1/", document.baseURI);

/** Where functions are called from the test console: this origin, `/functions/v1/`. */
export const FUNCTIONS_BASE = new URL("../functions/v1/", document.baseURI);

export function adminKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function setAdminKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function forgetAdminKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** An error answer from the API: `code` and `message` are the API's own. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `the server answered ${status}`);
    this.status = status;
    this.code = body?.error || "unknown";
    this.body = body || {};
    this.title = TITLES[status] || (status >= 500 ? "The server hit a problem" : "The request was refused");
    this.hint = status >= 500 ? "The server log has the details. Try again, or check that edgefn is running." : undefined;
  }
}

const TITLES = {
  400: "Please check the input",
  401: "Sign in again",
  403: "Not allowed",
  404: "Not found",
  409: "That conflicts with what is stored",
  413: "Too large",
  429: "Too many attempts",
};

/** The network failed before any answer. */
export class NetworkError extends Error {
  constructor(cause) {
    super(`edgefn did not answer (${cause.message}). Is the server running and reachable?`);
    this.title = "No answer from the server";
  }
}

let onUnauthorized = () => {};
/** Called when the API says the stored key is no longer valid. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** Builds `path?query` from an object, leaving out empty values. */
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Calls the admin API. `body` is sent as JSON unless it is a string (then
 * as `contentType`). Resolves to the parsed JSON (or null for 204); rejects
 * with ApiError or NetworkError.
 */
export async function api(method, path, body, { key = adminKey(), contentType = "application/json", signal } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType;
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(path, API_BASE), { method, headers, body: payload, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new NetworkError(error);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, json);
    if (response.status === 401 && key === adminKey()) onUnauthorized(error);
    throw error;
  }
  return json;
}

export const get = (path, query, options) => api("GET", withQuery(path, query), undefined, options);

/**
 * Follows the live tail (server-sent events over fetch, since EventSource
 * cannot send an Authorization header). Calls `onOpen` once the server has
 * answered (from then on no new record is missed), `onRecord` per record and
 * `onLagged(missed)` when the server says this reader fell behind.
 * Resolves when `signal` aborts or the stream ends.
 */
export async function tail(query, { onOpen, onRecord, onLagged, signal }) {
  let response;
  try {
    response = await fetch(new URL(withQuery("executions/tail", query), API_BASE), {
      headers: { Authorization: `Bearer ${adminKey()}`, Accept: "text/event-stream" },
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") return;
    throw new NetworkError(error);
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        const parsed = JSON.parse(data.join("\n"));
        if (event === "execution") onRecord(parsed);
        else if (event === "lagged") onLagged?.(parsed.missed);
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  }
}
