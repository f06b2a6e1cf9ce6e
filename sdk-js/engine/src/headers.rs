//! The checks and conversions of header names and values that fetch-api.js's
//! `Headers` leaves to Rust because QuickJS makes them dear in JS: a response
//! usually carries a header record (`{ "content-type": "text/plain" }`), and
//! turning one into the flat list `Headers` keeps took `Object.keys` and two
//! calls per entry, each of which QuickJS charges hundreds to thousands of
//! Wasm instructions.

use javy::quickjs::{Ctx, Error as JsError, Object, Result as JsResult, Value, qjs};

/// `native.isPlainHeaderValue(text)`: whether a string needs no work as a
/// header value (see [`is_plain_header_value`]). Read in place: only ASCII
/// bytes decide, so a lone surrogate (which QuickJS lends as WTF-8 bytes)
/// answers as its replacement character would, without a copy.
pub fn is_plain_string<'js>(ctx: Ctx<'js>, text: javy::quickjs::String<'js>) -> JsResult<bool> {
    // SAFETY: the context and the string are live.
    unsafe { utf8(ctx.as_raw().as_ptr(), text.as_raw(), is_plain_header_value) }.map_err(|ExceptionPending| JsError::Exception)
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

/// What `native.headerRecord(init, list)` did, as the number it returns.
#[repr(i32)]
enum RecordRead {
    /// `init` is not a record (not an object, a function, or iterable: a
    /// Headers, an array of pairs): nothing was read, fetch-api.js decides.
    NotARecord = 0,
    /// The entries went in normalized, as `Headers` keeps them.
    Normalized = 1,
    /// The entries went in as they were read, for fetch-api.js to convert,
    /// trim or refuse with its own messages.
    AsRead = 2,
}

/// `Symbol.iterator` as an atom, taken once when `native` is built (in the
/// snapshot). A well-known symbol is one of QuickJS's predefined atoms: never
/// freed, and the same number in any runtime.
static SYMBOL_ITERATOR: std::sync::OnceLock<qjs::JSAtom> = std::sync::OnceLock::new();

/// `native.headerRecord(init, list)`, as a QuickJS C function: when `init` is
/// a record (an object that is neither a function nor iterable, as WebIDL's
/// `HeadersInit` tells a record from a sequence), appends its own enumerable
/// string-keyed entries to `list` as `[name, value, ...]`, reading each
/// property once, in `Object.keys` order, and returns a [`RecordRead`].
///
/// Entries go in normalized when every name is an HTTP token (lower-cased
/// here) and every value a string that needs no trimming and holds no line
/// break or NUL, or a number as `String()` writes it; otherwise as read.
///
/// Why raw C and not an rquickjs `Function`: a response's header record is
/// on the path most responses take, and rquickjs's wrapper duplicates and
/// frees the context for the call and for every value it hands over, which
/// with the `instanceof` and `Symbol.iterator` checks this replaces in JS
/// cost about as much as the reading itself.
///
/// # Safety
///
/// Called by QuickJS only: `argv` holds at least the two arguments the
/// function was declared with (QuickJS pads missing ones with `undefined`).
pub unsafe extern "C" fn record(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    _argc: std::ffi::c_int,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: as the function's contract says; every value made below is
    // freed once or handed to the list, which takes it over.
    unsafe {
        let init = *argv;
        let list = *argv.add(1);
        if !qjs::JS_IsObject(init) || qjs::JS_IsFunction(ctx, init) {
            return read_as(RecordRead::NotARecord);
        }
        let iterator = SYMBOL_ITERATOR.get().copied().expect("native.headerRecord before native was built");
        let method = qjs::JS_GetProperty(ctx, init, iterator);
        if qjs::JS_IsException(method) {
            return method;
        }
        let iterable = qjs::JS_IsFunction(ctx, method);
        qjs::JS_FreeValue(ctx, method);
        if iterable {
            return read_as(RecordRead::NotARecord);
        }

        let mut entries: *mut qjs::JSPropertyEnum = std::ptr::null_mut();
        let mut count = 0u32;
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
        if qjs::JS_GetOwnPropertyNames(ctx, &mut entries, &mut count, init, flags) < 0 {
            return qjs::JS_EXCEPTION;
        }
        let atoms = if entries.is_null() { &[][..] } else { std::slice::from_raw_parts(entries, count as usize) };
        let mut read = Vec::with_capacity(2 * atoms.len());
        for entry in atoms {
            let value = qjs::JS_GetProperty(ctx, init, entry.atom);
            if qjs::JS_IsException(value) {
                free_all(ctx, &read);
                qjs::JS_FreePropertyEnum(ctx, entries, count);
                return value;
            }
            let name = qjs::JS_AtomToString(ctx, entry.atom);
            if qjs::JS_IsException(name) {
                qjs::JS_FreeValue(ctx, value);
                free_all(ctx, &read);
                qjs::JS_FreePropertyEnum(ctx, entries, count);
                return name;
            }
            read.extend([name, value]);
        }
        qjs::JS_FreePropertyEnum(ctx, entries, count);

        let mut normalized = Vec::with_capacity(read.len());
        for pair in read.chunks_exact(2) {
            match normalize(ctx, pair[0], pair[1]) {
                Ok(Some((name, value))) => normalized.extend([name, value]),
                Ok(None) => break,
                Err(ExceptionPending) => {
                    free_all(ctx, &read);
                    free_all(ctx, &normalized);
                    return qjs::JS_EXCEPTION;
                }
            }
        }
        let (kept, dropped, outcome) = if normalized.len() == read.len() {
            (normalized, read, RecordRead::Normalized)
        } else {
            (read, normalized, RecordRead::AsRead)
        };
        free_all(ctx, &dropped);
        let mut kept = kept.into_iter().enumerate();
        while let Some((index, value)) = kept.next() {
            // Takes `value` over, even when it fails.
            if qjs::JS_SetPropertyUint32(ctx, list, index as u32, value) < 0 {
                kept.for_each(|(_, rest)| qjs::JS_FreeValue(ctx, rest));
                return qjs::JS_EXCEPTION;
            }
        }
        read_as(outcome)
    }
}

/// `native.headerRecord`: [`record`] as a JS function. Built once, while
/// `native` is, which is also when `Symbol.iterator`'s atom is taken.
pub fn record_function<'js>(ctx: &Ctx<'js>) -> JsResult<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    let symbol: Object = ctx.globals().get("Symbol")?;
    let iterator: Value = symbol.get("iterator")?;
    // SAFETY: the context and the symbol are live. The atom is kept for the
    // runtime's life (a well-known symbol's atom is never freed anyway).
    let atom = unsafe { qjs::JS_ValueToAtom(raw, iterator.as_raw()) };
    if atom == qjs::JS_ATOM_NULL {
        return Err(JsError::Exception);
    }
    let _ = SYMBOL_ITERATOR.set(atom);
    // SAFETY: the context is live; `record` is a QuickJS C function of two
    // arguments; the new function's one reference goes to the `Value`.
    unsafe {
        let function = qjs::JS_NewCFunction2(raw, Some(record), c"headerRecord".as_ptr(), 2, qjs::JSCFunctionEnum_JS_CFUNC_generic, 0);
        if qjs::JS_IsException(function) {
            return Err(JsError::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), function))
    }
}

fn read_as(outcome: RecordRead) -> qjs::JSValue {
    qjs::JS_MKVAL(qjs::JS_TAG_INT, outcome as i32)
}

/// Frees values this module owns.
///
/// # Safety
///
/// Each value is owned by the caller and not used afterwards.
unsafe fn free_all(ctx: *mut qjs::JSContext, values: &[qjs::JSValue]) {
    for value in values {
        // SAFETY: as the contract says.
        unsafe { qjs::JS_FreeValue(ctx, *value) };
    }
}

/// QuickJS left an exception pending (it ran out of memory).
struct ExceptionPending;

/// New references to a header's name, lower-cased (the same string when it
/// already is), and value as `Headers` keeps them, or None when either needs
/// what only fetch-api.js does: the name is not an HTTP token, or the value
/// is not a number or a string that needs no trimming and holds no line
/// break or NUL.
///
/// # Safety
///
/// `ctx`, `name` and `value` are live.
unsafe fn normalize(
    ctx: *mut qjs::JSContext,
    name: qjs::JSValue,
    value: qjs::JSValue,
) -> Result<Option<(qjs::JSValue, qjs::JSValue)>, ExceptionPending> {
    // SAFETY: as the contract says; converting a number calls no JS code.
    unsafe {
        let name = utf8(ctx, name, |bytes| {
            if bytes.is_empty() || !bytes.iter().all(is_token_byte) {
                Ok(None)
            } else if !bytes.iter().any(u8::is_ascii_uppercase) {
                Ok(Some(qjs::JS_DupValue(ctx, name)))
            } else {
                let lower = bytes.to_ascii_lowercase();
                let string = qjs::JS_NewStringLen(ctx, lower.as_ptr().cast(), lower.len() as _);
                if qjs::JS_IsException(string) { Err(ExceptionPending) } else { Ok(Some(string)) }
            }
        })??;
        let Some(name) = name else { return Ok(None) };
        let value = if qjs::JS_IsNumber(value) {
            // What String() gives; a number has no whitespace or line break.
            let text = qjs::JS_ToString(ctx, value);
            if qjs::JS_IsException(text) { Err(ExceptionPending) } else { Ok(Some(text)) }
        } else if qjs::JS_IsString(value) {
            utf8(ctx, value, |bytes| is_plain_header_value(bytes).then(|| qjs::JS_DupValue(ctx, value)))
        } else {
            Ok(None)
        };
        match value {
            Ok(Some(value)) => Ok(Some((name, value))),
            other => {
                qjs::JS_FreeValue(ctx, name);
                other.map(|_| None)
            }
        }
    }
}

/// Runs `read` on a string's UTF-8 bytes. QuickJS lends an ASCII string's
/// own bytes without copying them.
///
/// # Safety
///
/// `ctx` and `text` are live.
unsafe fn utf8<T>(ctx: *mut qjs::JSContext, text: qjs::JSValue, read: impl FnOnce(&[u8]) -> T) -> Result<T, ExceptionPending> {
    let mut length = 0;
    // SAFETY: as the contract says; the bytes stay valid until
    // JS_FreeCString, after `read` has returned.
    unsafe {
        let bytes = qjs::JS_ToCStringLen(ctx, &mut length, text);
        if bytes.is_null() {
            return Err(ExceptionPending);
        }
        let result = read(std::slice::from_raw_parts(bytes.cast::<u8>(), length as usize));
        qjs::JS_FreeCString(ctx, bytes);
        Ok(result)
    }
}
