//! What the Web API layer (`sdk-js/runtime/runtime.js`) gets from Rust: the
//! `native` object of its install function, and the conversions between WIT
//! records and the plain JS objects `dispatch` takes and returns.

use crate::edgefn::function::console::{self, Level};
use crate::edgefn::function::database::{self, DatabaseError};
use crate::edgefn::function::secrets::{self, SecretError};
use crate::edgefn::function::types::{Failure, Invocation, Request, Response};
use crate::{failure, headers, http};
use javy::quickjs::{
    Array, Ctx, Error as JsError, Exception, Function, Object, Result as JsResult, String as JsString,
    TypedArray, Value, function::Opt,
};
use javy::quickjs::qjs;
use sha2::Digest;
use std::time::Duration;

/// This invocation: its fields become JS values only when the function reads
/// them from `ctx` (most never do; building them cost every request).
static mut INVOCATION: Option<Invocation> = None;

/// The incoming request's headers, until the function first reads
/// `request.headers` (`native.requestHeaders`).
///
/// Why: each header cost the request two JS strings and two array slots
/// (about 2.4K Wasm instructions) before the function ran, and most
/// functions never look: a browser sends a dozen or more.
static mut REQUEST_HEADERS: Option<Vec<(String, String)>> = None;

/// Starts an invocation: `ctx` reads its fields from here.
pub fn begin_invocation(invocation: Invocation) {
    // SAFETY: single-threaded component instance; one invocation at a time.
    unsafe { INVOCATION = Some(invocation) };
}

fn invocation() -> JsResult<&'static Invocation> {
    // SAFETY: as in `begin_invocation`.
    unsafe { INVOCATION.as_ref() }.ok_or_else(|| JsError::new_from_js("undefined", "an invocation"))
}

fn lossy_string<'js>(ctx: &Ctx<'js>, value: JsString<'js>) -> String {
    match value.to_string() {
        Ok(s) => s,
        Err(e) => javy::to_string_lossy(ctx, &value, e),
    }
}

fn bytes_of<'a>(value: &'a Value<'_>) -> Option<&'a [u8]> {
    value.as_object()?.as_typed_array::<u8>()?.as_bytes()
}

pub fn object<'js>(ctx: &Ctx<'js>) -> JsResult<Object<'js>> {
    let native = Object::new(ctx.clone())?;
    native.set(
        "log",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, level: JsString<'js>, text: JsString<'js>| {
            let level = match lossy_string(&ctx, level).as_str() {
                "debug" => Level::Debug,
                "info" => Level::Info,
                "warn" => Level::Warn,
                "error" => Level::Error,
                _ => Level::Log,
            };
            console::log(level, &lossy_string(&ctx, text));
        })?,
    )?;
    native.set(
        "parseURL",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, input: JsString<'js>, base: Opt<JsString<'js>>| {
            parse_url(&ctx, &lossy_string(&ctx, input), base.0.map(|b| lossy_string(&ctx, b)))
        })?,
    )?;
    native.set(
        "parseFormUrlencoded",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, input: JsString<'js>| {
            parse_form_urlencoded(&ctx, &lossy_string(&ctx, input))
        })?,
    )?;
    native.set(
        "encodeUtf8",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: JsString<'js>| {
            TypedArray::<u8>::new(ctx.clone(), lossy_string(&ctx, text).into_bytes())
        })?,
    )?;
    native.set("isPlainHeaderValue", Function::new(ctx.clone(), headers::is_plain_string)?)?;
    native.set("headerRecord", headers::record_function(ctx)?)?;
    native.set("requestHeaders", Function::new(ctx.clone(), request_headers)?)?;
    native.set(
        "decodeUtf8",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, bytes: Value<'js>, fatal: Opt<bool>| -> JsResult<String> {
            let Some(bytes) = bytes_of(&bytes) else {
                return Err(Exception::throw_type(&ctx, "decodeUtf8 expects a Uint8Array"));
            };
            if fatal.0.unwrap_or(false) {
                std::str::from_utf8(bytes)
                    .map(str::to_owned)
                    .map_err(|_| Exception::throw_type(&ctx, "The encoded data was not valid UTF-8"))
            } else {
                Ok(String::from_utf8_lossy(bytes).into_owned())
            }
        })?,
    )?;
    native.set(
        "now",
        // Milliseconds since the invocation began: the host starts each
        // instance's monotonic clock at zero when it makes its store, so
        // no origin is kept here (keeping one cost a clock read, a host
        // call, on every request, used or not).
        Function::new(ctx.clone(), || crate::wasi::clocks::monotonic_clock::now() as f64 / 1_000_000.0)?,
    )?;
    native.set(
        "sleep",
        Function::new(ctx.clone(), |ms: f64| {
            if ms.is_finite() && ms > 0.0 {
                // A host call: the host's wall-clock deadline still cuts it short.
                std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
            }
        })?,
    )?;
    native.set("caller", Function::new(ctx.clone(), caller_value)?)?;
    native.set("invocationId", Function::new(ctx.clone(), || Ok::<_, JsError>(invocation()?.id.clone()))?)?;
    native.set("functionName", Function::new(ctx.clone(), || Ok::<_, JsError>(invocation()?.function_name.clone()))?)?;
    native.set("version", Function::new(ctx.clone(), || Ok::<_, JsError>(invocation()?.version))?)?;
    // Secrets: the engine passes their names to dispatch to build `env`; a
    // value crosses only when the function reads it.
    native.set(
        "secret",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, name: JsString<'js>| -> JsResult<String> {
            secrets::get(&lossy_string(&ctx, name)).map_err(|error| match error {
                SecretError::NotGranted(message) => Exception::throw_reference(&ctx, &message),
                SecretError::Unavailable(message) => Exception::throw_message(&ctx, &message),
            })
        })?,
    )?;
    crypto(ctx, &native)?;
    outbound_http(ctx, &native)?;
    // Database: plain values back, never an exception, so the JS builder
    // turns failures into `{ data: null, error }` as supabase-js does.
    native.set(
        "dbExecute",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, plan: JsString<'js>| -> JsResult<Value<'js>> {
            match database::execute(&lossy_string(&ctx, plan)) {
                Ok(result) => Ok(JsString::from_str(ctx.clone(), &result)?.into_value()),
                Err(error) => database_error(&ctx, error),
            }
        })?,
    )?;
    native.set("dbBegin", Function::new(ctx.clone(), |ctx: Ctx<'js>| unit_result(&ctx, database::begin()))?)?;
    native.set("dbCommit", Function::new(ctx.clone(), |ctx: Ctx<'js>| unit_result(&ctx, database::commit()))?)?;
    native.set("dbRollback", Function::new(ctx.clone(), |ctx: Ctx<'js>| unit_result(&ctx, database::rollback()))?)?;
    Ok(native)
}

/// What `fetch()` (runtime/fetch.js) is built on; see `http.rs`.
fn outbound_http<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> JsResult<()> {
    native.set(
        "httpStart",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, method: JsString<'js>, url: JsString<'js>, flat: Array<'js>, body: Value<'js>| -> JsResult<u32> {
                let headers = pairs_from_flat(&flat)?;
                let body = if body.is_null() || body.is_undefined() { None } else { Some(bytes_argument(&ctx, &body)?) };
                http::start(&lossy_string(&ctx, method), &lossy_string(&ctx, url), &headers, body)
                    .map_err(|message| Exception::throw_type(&ctx, &message))
            },
        )?,
    )?;
    native.set(
        "httpWait",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, timeout_ms: f64| -> JsResult<Array<'js>> {
            let timeout = (timeout_ms >= 0.0).then_some(timeout_ms);
            let finished = Array::new(ctx.clone())?;
            for (index, completion) in http::wait(timeout).into_iter().enumerate() {
                let entry = Array::new(ctx.clone())?;
                match completion {
                    http::Completion::Response { id, status, headers, body } => {
                        entry.set(0, id)?;
                        entry.set(1, status)?;
                        entry.set(2, flat_headers(&ctx, headers)?)?;
                        entry.set(3, TypedArray::<u8>::new(ctx.clone(), body)?)?;
                    }
                    http::Completion::Failed { id, message } => {
                        entry.set(0, id)?;
                        entry.set(1, 0)?;
                        entry.set(2, message)?;
                    }
                }
                finished.set(index, entry)?;
            }
            Ok(finished)
        })?,
    )?;
    native.set("httpCancel", Function::new(ctx.clone(), |id: u32| http::cancel(id))?)?;
    Ok(())
}

/// The primitives `crypto` and `crypto.subtle` (runtime/crypto.js) are
/// built on, from maintained RustCrypto crates; the JS side checks shapes.
fn crypto<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> JsResult<()> {
    native.set(
        "digest",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, algorithm: JsString<'js>, data: Value<'js>| {
            let data = bytes_argument(&ctx, &data)?;
            let hash = match lossy_string(&ctx, algorithm).as_str() {
                "SHA-1" => sha1::Sha1::digest(data).to_vec(),
                "SHA-256" => sha2::Sha256::digest(data).to_vec(),
                "SHA-384" => sha2::Sha384::digest(data).to_vec(),
                "SHA-512" => sha2::Sha512::digest(data).to_vec(),
                other => return Err(Exception::throw_type(&ctx, &format!("unsupported digest algorithm {other}"))),
            };
            TypedArray::<u8>::new(ctx.clone(), hash)
        })?,
    )?;
    native.set(
        "hmac",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, algorithm: JsString<'js>, key: Value<'js>, data: Value<'js>| {
            let tag = hmac_tag(&ctx, &lossy_string(&ctx, algorithm), bytes_argument(&ctx, &key)?, bytes_argument(&ctx, &data)?)?;
            TypedArray::<u8>::new(ctx.clone(), tag)
        })?,
    )?;
    native.set(
        "timingSafeEqual",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, a: Value<'js>, b: Value<'js>| -> JsResult<bool> {
            Ok(constant_time_equal(bytes_argument(&ctx, &a)?, bytes_argument(&ctx, &b)?))
        })?,
    )?;
    native.set(
        "randomBytes",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, length: u32| {
            let mut bytes = vec![0u8; length as usize];
            getrandom::fill(&mut bytes).map_err(|e| Exception::throw_internal(&ctx, &format!("no randomness available: {e}")))?;
            TypedArray::<u8>::new(ctx.clone(), bytes)
        })?,
    )?;
    Ok(())
}

fn bytes_argument<'a>(ctx: &Ctx<'_>, value: &'a Value<'_>) -> JsResult<&'a [u8]> {
    bytes_of(value).ok_or_else(|| Exception::throw_type(ctx, "expected a Uint8Array"))
}

fn hmac_tag(ctx: &Ctx<'_>, algorithm: &str, key: &[u8], data: &[u8]) -> JsResult<Vec<u8>> {
    use hmac::{Hmac, Mac};
    fn tag<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
    Ok(match algorithm {
        "SHA-1" => tag::<Hmac<sha1::Sha1>>(key, data),
        "SHA-256" => tag::<Hmac<sha2::Sha256>>(key, data),
        "SHA-384" => tag::<Hmac<sha2::Sha384>>(key, data),
        "SHA-512" => tag::<Hmac<sha2::Sha512>>(key, data),
        other => return Err(Exception::throw_type(ctx, &format!("unsupported HMAC hash {other}"))),
    })
}

/// Equal length and contents, in time that depends only on the length: a
/// signature check must not tell an attacker how many leading bytes matched.
fn constant_time_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// `{code, message}` for the JS side.
fn database_error<'js>(ctx: &Ctx<'js>, error: DatabaseError) -> JsResult<Value<'js>> {
    let object = Object::new(ctx.clone())?;
    object.set("code", error.code)?;
    object.set("message", error.message)?;
    Ok(object.into_value())
}

/// `null` on success, `{code, message}` on failure.
fn unit_result<'js>(ctx: &Ctx<'js>, result: Result<(), DatabaseError>) -> JsResult<Value<'js>> {
    match result {
        Ok(()) => Ok(Value::new_null(ctx.clone())),
        Err(error) => database_error(ctx, error),
    }
}

/// WHATWG URL parsing with the `url` crate; `null` for an invalid URL.
fn parse_url<'js>(ctx: &Ctx<'js>, input: &str, base: Option<String>) -> JsResult<Value<'js>> {
    let base = match base.map(|b| url::Url::parse(&b)) {
        Some(Ok(base)) => Some(base),
        Some(Err(_)) => return Ok(Value::new_null(ctx.clone())),
        None => None,
    };
    let Ok(parsed) = url::Url::options().base_url(base.as_ref()).parse(input) else {
        return Ok(Value::new_null(ctx.clone()));
    };
    use url::quirks;
    let values = [
        quirks::href(&parsed),
        quirks::protocol(&parsed),
        quirks::username(&parsed),
        quirks::password(&parsed),
        quirks::hostname(&parsed),
        quirks::port(&parsed),
        quirks::pathname(&parsed),
        quirks::search(&parsed),
        quirks::hash(&parsed),
    ];
    let record = Object::new(ctx.clone())?;
    let raw_ctx = ctx.as_raw().as_ptr();
    for (&atom, value) in url_field_atoms(ctx).iter().zip(values) {
        let value = JsString::from_str(ctx.clone(), value)?;
        // SAFETY: the context and the record are live; the atom is held for
        // good (see `url_field_atoms`); DefinePropertyValue takes ownership
        // of the value, so it gets a reference of its own.
        let defined = unsafe {
            qjs::JS_DefinePropertyValue(raw_ctx, record.as_raw(), atom, qjs::JS_DupValue(raw_ctx, value.as_raw()), qjs::JS_PROP_C_W_E as i32)
        };
        if defined < 0 {
            return Err(JsError::Exception);
        }
    }
    Ok(record.into_value())
}

/// The names of the fields `native.parseURL` returns, in url.js's record.
const URL_FIELDS: [&str; 9] = ["href", "protocol", "username", "password", "hostname", "port", "pathname", "search", "hash"];

/// The atoms of [`URL_FIELDS`], made on first use (the warm-up parses a URL,
/// so that is at pre-initialization) and never freed, so they live in the
/// snapshot.
///
/// Why: `Object::set` with a `&str` name looks the name up in the atom table
/// and walks the prototype chain for a setter, for each of the nine fields of
/// every URL parsed; defining them with atoms at hand costs much less.
static mut URL_FIELD_ATOMS: Option<[qjs::JSAtom; 9]> = None;

fn url_field_atoms(ctx: &Ctx<'_>) -> [qjs::JSAtom; 9] {
    // SAFETY: single-threaded component instance; the context is live.
    unsafe {
        *URL_FIELD_ATOMS.get_or_insert_with(|| {
            URL_FIELDS.map(|name| qjs::JS_NewAtomLen(ctx.as_raw().as_ptr(), name.as_ptr().cast(), name.len() as _))
        })
    }
}

/// `native.parseFormUrlencoded`: the `[name, value]` pairs of an
/// application/x-www-form-urlencoded string, decoded as the URL Standard's
/// parser does ("+" is a space, escapes are UTF-8 bytes, invalid UTF-8
/// becomes U+FFFD, malformed escapes stay as they are).
fn parse_form_urlencoded<'js>(ctx: &Ctx<'js>, input: &str) -> JsResult<Array<'js>> {
    let pairs = Array::new(ctx.clone())?;
    for (i, (name, value)) in url::form_urlencoded::parse(input.as_bytes()).enumerate() {
        let pair = Array::new(ctx.clone())?;
        pair.set(0, name.as_ref())?;
        pair.set(1, value.as_ref())?;
        pairs.set(i, pair)?;
    }
    Ok(pairs)
}

/// Headers cross as one flat `[name, value, name, value, ...]` array: one JS
/// object instead of one per header.
fn flat_headers<'js>(ctx: &Ctx<'js>, headers: Vec<(String, String)>) -> JsResult<Array<'js>> {
    let array = Array::new(ctx.clone())?;
    for (i, (name, value)) in headers.into_iter().enumerate() {
        array.set(2 * i, name)?;
        array.set(2 * i + 1, value)?;
    }
    Ok(array)
}

/// The pairs of a flat `[name, value, ...]` array (the inverse of `flat_headers`).
fn pairs_from_flat(flat: &Array<'_>) -> JsResult<Vec<(String, String)>> {
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    for i in (0..flat.len()).step_by(2) {
        pairs.push((flat.get::<String>(i)?, flat.get::<String>(i + 1)?));
    }
    Ok(pairs)
}

fn plumbing<T>(ctx: &Ctx<'_>, result: JsResult<T>) -> Result<T, Failure> {
    result.map_err(|e| failure::internal(ctx, e))
}

/// The request as `dispatch` takes it: `method, url, body`; its headers
/// stay here until `native.requestHeaders` is called (see
/// [`REQUEST_HEADERS`]), and `dispatch` gets undefined for them.
pub fn request_arguments<'js>(
    ctx: &Ctx<'js>,
    request: Request,
) -> Result<(String, String, Option<TypedArray<'js, u8>>), Failure> {
    // SAFETY: single-threaded component instance; one request at a time.
    unsafe { REQUEST_HEADERS = Some(request.headers) };
    plumbing(ctx, (|| {
        // No body is `undefined`: most requests have none, and a typed
        // array (with its ArrayBuffer) costs QuickJS about 4K instructions.
        let body = if request.body.is_empty() { None } else { Some(TypedArray::<u8>::new(ctx.clone(), request.body)?) };
        Ok((request.method, request.url, body))
    })())
}

/// `native.requestHeaders()`: the incoming request's headers as a flat
/// `[name, value, ...]` list, handed over once (fetch-api.js keeps the
/// Headers it builds from them); empty if asked again.
fn request_headers<'js>(ctx: Ctx<'js>) -> JsResult<Array<'js>> {
    // SAFETY: as in `request_arguments`.
    let headers = unsafe { REQUEST_HEADERS.take() }.unwrap_or_default();
    flat_headers(&ctx, headers)
}

/// `native.caller()`: `{id, email, role, groups, metadata}` or null.
fn caller_value<'js>(ctx: Ctx<'js>) -> JsResult<Value<'js>> {
    let Some(caller) = invocation()?.caller.as_ref() else { return Ok(Value::new_null(ctx)) };
    let object = Object::new(ctx.clone())?;
    object.set("id", caller.id.as_str())?;
    object.set("email", caller.email.as_deref())?;
    object.set("role", caller.role.as_str())?;
    object.set("groups", caller.groups.clone())?;
    let metadata: Value = ctx.json_parse(caller.metadata_json.as_str())?;
    object.set("metadata", metadata)?;
    Ok(object.into_value())
}

/// Reads `[status, [name, value, ...], body]` from dispatch.js's `finish`;
/// the body is a Uint8Array, or the string a Response was built from,
/// encoded here as `encodeUtf8` would.
pub fn response_from<'js>(ctx: &Ctx<'js>, result: Object<'js>) -> Result<Response, Failure> {
    plumbing(ctx, (|| {
        let status: u16 = result.get(0)?;
        let flat: Array = result.get(1)?;
        let headers = pairs_from_flat(&flat)?;
        let body: Value = result.get(2)?;
        let body = match bytes_of(&body) {
            Some(bytes) => bytes.to_vec(),
            None if body.is_null() || body.is_undefined() => Vec::new(),
            None => match body.into_string() {
                Some(text) => lossy_string(ctx, text).into_bytes(),
                None => return Err(JsError::new_from_js("value", "Uint8Array or string")),
            },
        };
        Ok(Response { status, headers, body })
    })())
}
