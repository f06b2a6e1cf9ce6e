//! The edgefn JS engine: a Javy plugin (QuickJS) built as a Wasm component
//! against `wit/edgefn.wit`.
//!
//! Life cycle of one engine image:
//! 1. `initialize-runtime` runs once under Wizer at build time: it creates the
//!    QuickJS runtime and evaluates the Web API layer (`sdk-js/runtime`), so
//!    every instance starts from that snapshot.
//! 2. `compiler.compile` turns a function's source into bytecode at deploy time.
//! 3. `handler.prepare` evaluates a deployment's module once, in an instance
//!    of its own, and lets the host save what that changed in memory.
//! 4. `handler.handle` runs in a fresh instance per request: after
//!    `handler.resume` has put the saved module back (or, for a module whose
//!    top level calls the host, after loading the bytecode itself), it calls
//!    the module's `fetch` and drives the event loop.

// The runtime lives in a `static` because a component instance is single
// threaded and its state must survive the Wizer snapshot.
#![allow(static_mut_refs)]

mod arena;
mod failure;
mod headers;
mod http;
mod native;

use exports::edgefn::function::{compiler, handler};
use edgefn::function::types::{CompileError, Failure, FailureKind, Invocation, Request, Response};
use javy::quickjs::{Ctx, Function, Module, Object, Persistent, Promise, Value, prelude::*};
use javy::Runtime;

wit_bindgen::generate!({
    world: "function",
    path: "../../wit",
    generate_all,
});

/// The module name QuickJS records in stack traces; `failure` looks for it to
/// turn a stack into the line and column of the author's source.
pub(crate) const FUNCTION_MODULE_NAME: &str = "function.mjs";

/// The Web API layer (`sdk-js/runtime`), evaluated once at pre-initialization,
/// in this order. Each file is a function `(native, global, internal)`.
const RUNTIME_SECTIONS: [(&str, &str); 10] = [
    ("encoding.js", include_str!("../../runtime/encoding.js")),
    ("url.js", include_str!("../../runtime/url.js")),
    ("clone.js", include_str!("../../runtime/clone.js")),
    ("console.js", include_str!("../../runtime/console.js")),
    ("timers.js", include_str!("../../runtime/timers.js")),
    ("crypto.js", include_str!("../../runtime/crypto.js")),
    ("fetch-api.js", include_str!("../../runtime/fetch-api.js")),
    ("fetch.js", include_str!("../../runtime/fetch.js")),
    ("database.js", include_str!("../../runtime/database.js")),
    ("dispatch.js", include_str!("../../runtime/dispatch.js")),
];

/// QuickJS runs its cycle collector when allocations cross this many bytes.
/// Javy's default never collects; a function that churns garbage would then hit
/// the host's memory limit instead of reclaiming memory.
const GC_THRESHOLD_BYTES: usize = 4 * 1024 * 1024;

struct Engine {
    runtime: Runtime,
    /// `dispatch(handler, method, url, body, secretNames)` from dispatch.js:
    /// what the module's fetch returned. The request's headers come later,
    /// if the function reads them (`native.requestHeaders`).
    dispatch: Persistent<Function<'static>>,
    /// `finish(response)`: the host's fields of a Response, `[status,
    /// headers, body]`, or a promise of them.
    finish: Persistent<Function<'static>>,
    /// `runEventLoop()` from fetch.js: waits for the next timer or fetch
    /// response and runs its callbacks; false if nothing is pending.
    run_event_loop: Persistent<Function<'static>>,
    /// What [`warm_up`] returned, kept alive for the snapshot.
    _warmed: Option<Persistent<Object<'static>>>,
}

static mut ENGINE: Option<Engine> = None;

fn engine() -> &'static Engine {
    // SAFETY: single-threaded component instance; written only by `initialize`.
    unsafe { ENGINE.as_ref() }.expect("the engine image was not pre-initialized with Wizer")
}

struct Component;

impl Guest for Component {
    fn initialize_runtime() {
        // The runtime that serves requests is built in the memory the
        // compiling runtime freed: dropped whole, it leaves large free
        // blocks, so the serving runtime's objects still sit together (see
        // `compile_runtime_sections`). Taking those blocks for good first,
        // as we did, built it past them in fresh memory and left the linear
        // memory 256 KiB larger (35 Wasm pages; 31 now), all of which every
        // reset's page scan walks. Measured in ABBA order: 1.05x the
        // requests per second, and no page faults either way.
        let sections = compile_runtime_sections();
        let mut config = javy::Config::default();
        config.gc_threshold(GC_THRESHOLD_BYTES);
        let runtime = Runtime::new(config).expect("QuickJS runtime");
        let (dispatch, finish, run_event_loop) = runtime.context().with(|ctx| {
            let native = native::object(&ctx).expect("native bindings");
            let internal = Object::new(ctx.clone()).expect("internal object");
            for (name, bytecode) in &sections {
                let section: Function = evaluate_script_bytecode(&ctx, bytecode)
                    .and_then(Function::from_value)
                    .unwrap_or_else(|e| panic!("{name}: {}", failure::describe(&ctx, e)));
                section
                    .call::<_, ()>((native.clone(), ctx.globals(), internal.clone()))
                    .unwrap_or_else(|e| panic!("{name}: {}", failure::describe(&ctx, e)));
            }
            let function = |name: &str| -> Persistent<Function<'static>> {
                let found: Function = internal.get(name).unwrap_or_else(|_| panic!("the runtime defines internal.{name}"));
                Persistent::save(&ctx, found)
            };
            (function("dispatch"), function("finish"), function("runEventLoop"))
        });
        let mut engine = Engine { runtime, dispatch, finish, run_event_loop, _warmed: None };
        engine._warmed = Some(warm_up(&engine));
        // SAFETY: runs once, before any other export, in a single thread.
        unsafe { ENGINE = Some(engine) };
        fill_heap_holes();
        arena::reserve();
    }
}

impl compiler::Guest for Component {
    fn compile(source: String) -> Result<Vec<u8>, CompileError> {
        let engine = engine();
        engine.runtime.context().with(|ctx| {
            let declared = Module::declare(ctx.clone(), FUNCTION_MODULE_NAME, source)
                .map_err(|e| failure::compile_error(&ctx, e))?;
            // Stack traces keep line and column; the source text itself is dropped.
            let bytecode = declared
                .write(javy::quickjs::WriteOptions { strip_source: true, ..Default::default() })
                .map_err(|e| failure::compile_error(&ctx, e))?;
            // Evaluate the module once here, so that a missing import, a throw at
            // top level or a default export without `fetch` fails the deploy
            // instead of every request.
            let (module, evaluated) = declared.eval().map_err(|e| failure::compile_error(&ctx, e))?;
            drive::<()>(&ctx, engine, evaluated).map_err(CompileError::from)?;
            fetch_handler(&ctx, &module).map_err(CompileError::from)?;
            Ok(bytecode)
        })
    }
}

/// The default export of the module `handler.prepare` evaluated, in an
/// instance whose memory the host saved right after: set only in that saved
/// state, so an instance has it exactly when `handler.resume` put it back.
static mut PREPARED: Option<Persistent<Value<'static>>> = None;

impl handler::Guest for Component {
    fn handle(bytecode: Vec<u8>, request: Request, invocation: Invocation) -> Result<Response, Failure> {
        arena::start();
        let engine = engine();
        engine.runtime.context().with(|ctx| {
            let handler = if bytecode.is_empty() {
                // SAFETY: single-threaded; written only by `prepare`.
                let prepared = unsafe { PREPARED.clone() }.ok_or_else(|| {
                    failure::invalid_module("no bytecode, and no module prepared in this instance".into())
                })?;
                prepared.restore(&ctx).map_err(|e| failure::internal(&ctx, e))?
            } else {
                evaluate_module(&ctx, engine, &bytecode)?
            };
            drop(bytecode);
            let result = run_fetch(&ctx, engine, handler, request, invocation)?;
            let response = native::response_from(&ctx, result.clone());
            // Not freed: the instance ends with this request, and freeing the
            // response's objects one by one would only cost it time.
            std::mem::forget(result);
            response
        })
    }

    fn prepare(bytecode: Vec<u8>) -> Result<(), Failure> {
        if !bytecode.is_empty() {
            let engine = engine();
            engine.runtime.context().with(|ctx| {
                let handler = evaluate_module(&ctx, engine, &bytecode)?;
                // SAFETY: single-threaded; read by `handle` in instances
                // this one's saved memory is put back into.
                unsafe { PREPARED = Some(Persistent::save(&ctx, handler)) };
                Ok::<_, Failure>(())
            })?;
        }
        // Freed before the host reads the memory: a request's allocations
        // may then reuse the block, as they would in this instance.
        drop(bytecode);
        let (low, high) = call_stack();
        edgefn::function::module_state::save(low, high, &[]);
        Ok(())
    }

    fn resume(memory_pages: u32) {
        let current = core::arch::wasm32::memory_size(0);
        let wanted = memory_pages as usize;
        if wanted > current && core::arch::wasm32::memory_grow(0, wanted - current) == usize::MAX {
            // The host checked the pages against the function's memory
            // limit when it saved them; this is the limiter refusing now.
            panic!("growing the memory to {memory_pages} pages for the prepared module failed");
        }
        // The host writes the saved memory while this call lasts; the list
        // it returns is empty.
        let _ = edgefn::function::module_state::restore();
    }
}

/// Where the engine's call stack lies in its linear memory: what the host
/// neither saves nor writes back (the frames of the calls in progress).
fn call_stack() -> (u32, u32) {
    unsafe extern "C" {
        // Defined by wasm-ld around the stack it lays out.
        static __stack_low: u8;
        static __stack_high: u8;
    }
    // SAFETY: only the symbols' addresses are taken.
    unsafe { (&raw const __stack_low as u32, &raw const __stack_high as u32) }
}

/// Loads a function's bytecode and evaluates the module; its default
/// export, checked to have a `fetch`.
fn evaluate_module<'js>(ctx: &Ctx<'js>, engine: &Engine, bytecode: &[u8]) -> Result<Value<'js>, Failure> {
    // SAFETY: the host only hands us bytecode this engine build produced,
    // checked against its content hash before every load.
    let declared = unsafe { Module::load(ctx.clone(), bytecode) }
        .map_err(|e| failure::from_js(ctx, e, FailureKind::InvalidModule))?;
    let (module, evaluated) = declared
        .eval()
        .map_err(|e| failure::from_js(ctx, e, FailureKind::UncaughtException))?;
    drive::<()>(ctx, engine, evaluated)?;
    fetch_handler(ctx, &module)
}

/// Runs a module's `fetch` (`handler`, its default export) for one request;
/// the result is dispatch.js's `[status, headers, body]`.
fn run_fetch<'js>(
    ctx: &Ctx<'js>,
    engine: &Engine,
    handler: Value<'js>,
    request: Request,
    mut invocation: Invocation,
) -> Result<Object<'js>, Failure> {
    let restore = |function: &Persistent<Function<'static>>| function.clone().restore(ctx).map_err(|e| failure::internal(ctx, e));
    let uncaught = |e| failure::from_js(ctx, e, FailureKind::UncaughtException);
    let (method, url, body) = native::request_arguments(ctx, request)?;
    // Handed to dispatch here rather than fetched by a call from JS, which
    // QuickJS charges more; none (most functions) is undefined, not an
    // empty array.
    let secret_names = Some(std::mem::take(&mut invocation.secret_names)).filter(|names| !names.is_empty());
    native::begin_invocation(invocation);
    let returned: Value =
        restore(&engine.dispatch)?.call((handler, method, url, body, secret_names)).map_err(uncaught)?;
    // What fetch returned, settled: a promise is driven here rather than
    // awaited by an async JS function, which cost every function that awaits
    // anything a promise, a job and a resumption more (about 10K Wasm
    // instructions). Jobs still queued once it has settled (a `.then` the
    // function chained, a queueMicrotask) run before its response is read,
    // as a microtask checkpoint runs them before the host sees the response.
    let response = match returned.as_promise() {
        Some(promise) => drive::<Value>(ctx, engine, promise.clone())?,
        None => returned,
    };
    while ctx.execute_pending_job() {}
    let finished: Value = restore(&engine.finish)?.call((response.clone(),)).map_err(uncaught)?;
    // Kept, as in `handle`: the instance ends with the request.
    std::mem::forget(response);
    match finished.as_promise() {
        Some(promise) => drive(ctx, engine, promise.clone()),
        None => Object::from_value(finished).map_err(uncaught),
    }
}

/// A function run through the whole request path once, at pre-initialization.
///
/// Why: every request starts from the snapshot, so whatever QuickJS creates on
/// first use and then keeps (atoms, lazily built intrinsics, the shapes, that
/// is hidden classes, of live objects) would otherwise be created again by
/// every request. The warm-up keeps its Request, Response, Headers, `env` and
/// `ctx` alive in its module, so what they use stays in the snapshot. Measured
/// with fuel: 304K -> 272K Wasm instructions for hello world, and about 20
/// fewer memory pages written per request. Nothing of it is reachable from a
/// function's code; importing the module by name gets only its `fetch`.
const WARM_UP_MODULE_NAME: &str = "edgefn:internal/warm-up";
const WARM_UP_SOURCE: &str = r#"
const kept = [];
export default {
  async fetch(request, env, ctx) {
    const text = new Response("warm", { headers: { "content-type": "text/plain" } });
    const json = Response.json({ warm: true }, { status: 201 });
    kept.push(request, request.headers, request.headers.get("accept"), new URL(request.url), env, ctx, text, json, text.headers, json.headers);
    return text;
  },
};
"#;

fn warm_up(engine: &Engine) -> Persistent<Object<'static>> {
    engine.runtime.context().with(|ctx| {
        let declared = Module::declare(ctx.clone(), WARM_UP_MODULE_NAME, WARM_UP_SOURCE)
            .unwrap_or_else(|e| panic!("warm-up: {}", failure::describe(&ctx, e)));
        let bytecode = declared
            .write(javy::quickjs::WriteOptions { strip_source: true, ..Default::default() })
            .unwrap_or_else(|e| panic!("warm-up: {}", failure::describe(&ctx, e)));
        let header = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        let request = Request {
            method: "GET".into(),
            url: "http://localhost/functions/v1/warm-up".into(),
            headers: vec![header("host", "localhost"), header("user-agent", "edgefn"), header("accept", "*/*")],
            body: Vec::new(),
        };
        let invocation = Invocation { id: "warm-up".into(), function_name: "warm-up".into(), version: 1, caller: None, secret_names: Vec::new() };
        let handler = evaluate_module(&ctx, engine, &bytecode).unwrap_or_else(|failure| panic!("warm-up: {}", failure.message));
        let result = run_fetch(&ctx, engine, handler, request, invocation)
            .unwrap_or_else(|failure| panic!("warm-up: {}", failure.message));
        // The result too, kept with the rest of what the warm-up built.
        Persistent::save(&ctx, result)
    })
}

/// Takes every free block of the snapshot's heap (and its top), for good.
///
/// Why: initialization frees a lot (the runtime's parse trees, temporaries),
/// and the allocator would serve a request's allocations from those holes,
/// spread over the whole 1 MB image, so each request wrote more pages. Every
/// page a request writes, the pool copies back from the image when the slot
/// is reset. With the holes taken, a request allocates from one fresh run of
/// memory past them. Measured: 64 -> 55 pages written per request to hello
/// world. Costs nothing per instance: the blocks are in the shared image.
fn fill_heap_holes() {
    unsafe extern "C" {
        fn malloc(size: usize) -> *mut u8;
        fn sbrk(increment: isize) -> *mut u8;
    }
    // SAFETY: plain libc calls; the blocks are never freed. The smallest
    // blocks, so that every free chunk is taken; the first block from past
    // the old end of the heap means none is left below it.
    unsafe {
        let end = sbrk(0) as usize;
        loop {
            let block = malloc(8) as usize;
            if block == 0 || block >= end {
                break;
            }
        }
    }
}

/// The Web API layer (`RUNTIME_SECTIONS`) compiled to script bytecode, in a
/// QuickJS runtime of its own that is dropped before the serving runtime is
/// built.
///
/// Why: parsing allocates far more than it keeps (tokens, scopes, the
/// parser's buffers), and in one runtime those temporaries and the objects
/// that live on (functions, shapes, atoms) were interleaved all over the
/// snapshot's heap. A request writes to many of the long-lived objects
/// (reference counts, shapes, the variables the layer keeps), and every page
/// it writes the pool copies back after the request; past 32 separate runs
/// of written pages wasmtime's reset gives up scanning and drops the rest of
/// the memory, which the next request then faults back in page by page.
/// Loading bytecode once this runtime is gone allocates the long-lived
/// objects close together, in the blocks its drop freed.
fn compile_runtime_sections() -> Vec<(&'static str, Vec<u8>)> {
    use javy::quickjs::qjs;
    let compiler = Runtime::new(javy::Config::default()).expect("QuickJS runtime");
    compiler.context().with(|ctx| {
        let raw = ctx.as_raw().as_ptr();
        RUNTIME_SECTIONS
            .iter()
            .map(|&(name, source)| {
                let source = std::ffi::CString::new(source).expect("the runtime's sources hold no NUL");
                let filename = std::ffi::CString::new(format!("edgefn:runtime/{name}")).expect("no NUL in a file name");
                // SAFETY: the context is live for this closure; JS_Eval reads
                // the NUL-terminated source; the compiled function is freed
                // below, and the written buffer with js_free once copied.
                unsafe {
                    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
                    let function = qjs::JS_Eval(raw, source.as_ptr(), source.as_bytes().len() as _, filename.as_ptr(), flags);
                    if qjs::JS_IsException(function) {
                        panic!("{name}: {}", failure::describe(&ctx, javy::quickjs::Error::Exception));
                    }
                    let mut length = 0;
                    // Without the source text, which only Function.prototype.toString
                    // of the layer's own functions would show: the functions load
                    // closer together. Line numbers for stack traces stay.
                    let flags = (qjs::JS_WRITE_OBJ_BYTECODE | qjs::JS_WRITE_OBJ_STRIP_SOURCE) as i32;
                    let buffer = qjs::JS_WriteObject(raw, &mut length, function, flags);
                    qjs::JS_FreeValue(raw, function);
                    assert!(!buffer.is_null(), "{name}: writing its bytecode failed");
                    let bytecode = std::slice::from_raw_parts(buffer, length as usize).to_vec();
                    qjs::js_free(raw, buffer.cast());
                    (name, bytecode)
                }
            })
            .collect()
    })
}

/// Runs a script compiled by [`compile_runtime_sections`]; its completion
/// value (each section's is its function).
fn evaluate_script_bytecode<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> javy::quickjs::Result<Value<'js>> {
    use javy::quickjs::qjs;
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: the bytecode was written by this engine build's QuickJS moments
    // ago; JS_EvalFunction takes ownership of the function it is given, and
    // the value it returns is handed to rquickjs, which frees it.
    unsafe {
        let function = qjs::JS_ReadObject(raw, bytecode.as_ptr(), bytecode.len() as _, qjs::JS_READ_OBJ_BYTECODE as i32);
        if qjs::JS_IsException(function) {
            return Err(javy::quickjs::Error::Exception);
        }
        let completion = qjs::JS_EvalFunction(raw, function);
        if qjs::JS_IsException(completion) {
            return Err(javy::quickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), completion))
    }
}

/// Runs the job queue, the timers and outbound requests until `promise` settles.
fn drive<'js, T: FromJs<'js>>(ctx: &Ctx<'js>, engine: &Engine, promise: Promise<'js>) -> Result<T, Failure> {
    let run_event_loop = engine.run_event_loop.clone().restore(ctx).map_err(|e| failure::internal(ctx, e))?;
    loop {
        match promise.finish::<T>() {
            Ok(value) => return Ok(value),
            Err(javy::quickjs::Error::WouldBlock) => {
                let progressed: bool = run_event_loop
                    .call(())
                    .map_err(|e| failure::from_js(ctx, e, FailureKind::UncaughtException))?;
                if !progressed {
                    return Err(failure::never_settled());
                }
            }
            Err(e) => return Err(failure::from_js(ctx, e, FailureKind::UncaughtException)),
        }
    }
}

/// The module's default export, checked to be `{ fetch(request, env, ctx) }`.
fn fetch_handler<'js>(ctx: &Ctx<'js>, module: &Module<'js, javy::quickjs::module::Evaluated>) -> Result<Value<'js>, Failure> {
    let namespace = module.namespace().map_err(|e| failure::internal(ctx, e))?;
    let default: Value = namespace.get("default").map_err(|e| failure::internal(ctx, e))?;
    let found = match default.as_object() {
        Some(object) if !default.is_function() => {
            let fetch: Value = object.get("fetch").map_err(|e| failure::internal(ctx, e))?;
            if fetch.is_function() {
                return Ok(default);
            }
            "an object without a fetch method"
        }
        _ if default.is_undefined() => "no default export",
        _ if default.is_function() => "a function",
        _ => "a value that is not an object",
    };
    Err(failure::invalid_module(format!(
        "the module's default export must be an object with a fetch(request, env, ctx) method, \
         like `export default {{ async fetch(request) {{ ... }} }}`; found {found}"
    )))
}

export!(Component);
