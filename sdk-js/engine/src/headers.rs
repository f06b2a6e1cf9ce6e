//! The checks and conversions of header names and values that fetch-api.js's
//! `Headers` leaves to Rust because QuickJS makes them dear in JS: a response
//! usually carries a header record (`{ "content-type": "text/plain" }`), and
//! turning one into the flat list `Headers` keeps took `Object.keys` and two
//! calls per entry, each of which QuickJS charges hundreds to thousands of
//! Wasm instructions.

use javy::quickjs::{Array, Ctx, Error as JsError, Object, Result as JsResult, Value, qjs};

/// `native.isPlainHeaderValue(text)`: whether a string needs no work as a
/// header value (see [`is_plain_header_value`]). Read in place: only ASCII
/// bytes decide, so a lone surrogate (which QuickJS lends as WTF-8 bytes)
/// answers as its replacement character would, without a copy.
pub fn is_plain_string<'js>(ctx: Ctx<'js>, text: javy::quickjs::String<'js>) -> JsResult<bool> {
    with_utf8(&ctx, text.as_value(), |bytes| Ok(is_plain_header_value(bytes)))
}

/// A header value that needs no trimming of HTTP whitespace at either end and
/// holds no line break or NUL (fetch-api.js normalizes or refuses the rest).
fn is_plain_header_value(text: &[u8]) -> bool {
    let http_whitespace = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    !text.first().is_some_and(http_whitespace)
        && !text.last().is_some_and(http_whitespace)
        && !text.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// A byte of an HTTP token (RFC 9110), the only bytes a header name may hold.
fn is_token_byte(byte: &u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(byte)
}

/// `native.headerRecord(record, list)`: appends the record's own enumerable
/// string-keyed entries to `list` as `[name, value, ...]`, reading each
/// property once, in `Object.keys` order.
///
/// Returns true when the entries went in normalized, as `Headers` keeps
/// them: every name an HTTP token, lower-cased, and every value a string
/// that needs no trimming and holds no line break or NUL, or a number as
/// `String()` writes it. Otherwise every name and value goes in as it was
/// read, for fetch-api.js to convert, trim or refuse with its own messages
/// (so a getter still runs only once).
pub fn record<'js>(ctx: Ctx<'js>, record: Object<'js>, list: Array<'js>) -> JsResult<bool> {
    let raw = ctx.as_raw().as_ptr();
    let pairs = {
        let names = OwnEnumerableNames::of(&ctx, &record)?;
        let mut pairs = Vec::with_capacity(names.atoms().len());
        for entry in names.atoms() {
            // SAFETY: the context and the record are live; the atom is held
            // by `names` until it is dropped below. A thrown getter leaves
            // the exception pending for rquickjs to raise.
            let value = unsafe { qjs::JS_GetProperty(raw, record.as_raw(), entry.atom) };
            let value = owned(&ctx, value)?;
            let name = owned(&ctx, unsafe { qjs::JS_AtomToString(raw, entry.atom) })?;
            pairs.push((name, value));
        }
        pairs
    };
    let mut normalized = Vec::with_capacity(pairs.len());
    for (name, value) in &pairs {
        match (lower_case_token(&ctx, name)?, plain_value(&ctx, value)?) {
            (Some(name), Some(value)) => normalized.push((name, value)),
            _ => break,
        }
    }
    let clean = normalized.len() == pairs.len();
    let entries = if clean { &normalized } else { &pairs };
    for (index, (name, value)) in entries.iter().enumerate() {
        list.set(2 * index, name.clone())?;
        list.set(2 * index + 1, value.clone())?;
    }
    Ok(clean)
}

/// A value QuickJS returned with a reference the caller owns, or its
/// pending exception.
fn owned<'js>(ctx: &Ctx<'js>, value: qjs::JSValue) -> JsResult<Value<'js>> {
    // SAFETY: `value` was just returned by QuickJS with a reference we own,
    // which the `Value` takes over.
    unsafe {
        if qjs::JS_IsException(value) {
            return Err(JsError::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), value))
    }
}

/// The name lower-cased (the same string when it already is), or None when
/// it is not an HTTP token.
fn lower_case_token<'js>(ctx: &Ctx<'js>, name: &Value<'js>) -> JsResult<Option<Value<'js>>> {
    with_utf8(ctx, name, |bytes| {
        if bytes.is_empty() || !bytes.iter().all(is_token_byte) {
            return Ok(None);
        }
        if !bytes.iter().any(u8::is_ascii_uppercase) {
            return Ok(Some(name.clone()));
        }
        let lower = bytes.to_ascii_lowercase();
        // A token is ASCII, so this is valid UTF-8.
        let lower = std::str::from_utf8(&lower).expect("a token is ASCII");
        Ok(Some(javy::quickjs::String::from_str(ctx.clone(), lower)?.into_value()))
    })
}

/// The value as a header value needing no further work, or None.
fn plain_value<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> JsResult<Option<Value<'js>>> {
    if value.is_number() {
        // What String() gives; a number has no whitespace or line break.
        // SAFETY: the context and the value are live; converting a number
        // calls no JS code.
        return owned(ctx, unsafe { qjs::JS_ToString(ctx.as_raw().as_ptr(), value.as_raw()) }).map(Some);
    }
    if !value.is_string() {
        return Ok(None);
    }
    with_utf8(ctx, value, |bytes| Ok(is_plain_header_value(bytes).then(|| value.clone())))
}

/// Runs `read` on a string's UTF-8 bytes. QuickJS lends an ASCII string's
/// own bytes without copying them.
fn with_utf8<'js, T>(ctx: &Ctx<'js>, text: &Value<'js>, read: impl FnOnce(&[u8]) -> JsResult<T>) -> JsResult<T> {
    let raw = ctx.as_raw().as_ptr();
    let mut length = 0;
    // SAFETY: the context and the string are live; the bytes stay valid
    // until JS_FreeCString, after `read` has returned.
    unsafe {
        let bytes = qjs::JS_ToCStringLen(raw, &mut length, text.as_raw());
        if bytes.is_null() {
            return Err(JsError::Exception);
        }
        let result = read(std::slice::from_raw_parts(bytes.cast::<u8>(), length as usize));
        qjs::JS_FreeCString(raw, bytes);
        result
    }
}

/// An object's own enumerable string keys, as QuickJS lists them, held
/// until dropped.
struct OwnEnumerableNames {
    raw: *mut qjs::JSContext,
    entries: *mut qjs::JSPropertyEnum,
    count: u32,
}

impl OwnEnumerableNames {
    fn of(ctx: &Ctx<'_>, object: &Object<'_>) -> JsResult<Self> {
        let raw = ctx.as_raw().as_ptr();
        let mut names = OwnEnumerableNames { raw, entries: std::ptr::null_mut(), count: 0 };
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
        // SAFETY: the context and the object are live; on success QuickJS
        // hands over `count` entries, freed in `drop`. A proxy's throwing
        // trap leaves the exception pending.
        if unsafe { qjs::JS_GetOwnPropertyNames(raw, &mut names.entries, &mut names.count, object.as_raw(), flags) } < 0 {
            return Err(JsError::Exception);
        }
        Ok(names)
    }

    fn atoms(&self) -> &[qjs::JSPropertyEnum] {
        if self.entries.is_null() {
            return &[];
        }
        // SAFETY: QuickJS returned `count` entries at `entries`, alive until drop.
        unsafe { std::slice::from_raw_parts(self.entries, self.count as usize) }
    }
}

impl Drop for OwnEnumerableNames {
    fn drop(&mut self) {
        if !self.entries.is_null() {
            // SAFETY: the entries QuickJS returned, freed once.
            unsafe { qjs::JS_FreePropertyEnum(self.raw, self.entries, self.count) };
        }
    }
}
