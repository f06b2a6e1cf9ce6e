//! Builds the JS engine (`sdk-js/engine`, a Javy plugin) for wasm32-wasip2 and
//! hands the component to the crate as `$OUT_DIR/engine.wasm`.
//!
//! QuickJS is C, so `rquickjs-sys` needs a WASI SDK. It would download one;
//! instead we assemble one from Debian's packages (`scripts/install-deps`
//! installs them): clang-16, llvm-ar-16 and wasi-libc's sysroot.
//!
//! The engine is linked as a core module and made a component here, rather
//! than by the target's linker, so that the WASI imports no function can
//! use are taken out first (see `prune` and [`UNUSABLE_IMPORTS`]).

mod post_return;
mod prune;
mod sections;
mod shim;

use prune::Stub;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let engine_dir = root.join("sdk-js/engine");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    for watched in ["sdk-js/engine/src", "sdk-js/engine/Cargo.toml", "sdk-js/engine/Cargo.lock", "sdk-js/runtime", "wit/edgefn.wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=WASI_SDK");

    let wasi_sdk = match env::var_os("WASI_SDK") {
        Some(path) => PathBuf::from(path),
        None => assemble_wasi_sdk(&out_dir.join("wasi-sdk")),
    };
    // A target directory of its own: the outer cargo holds the lock on ours.
    let target_dir = root.join("target/engine");
    let mut cargo = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&engine_dir)
        .args(["rustc", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        // The engine crate's link only: its core module, with the WIT of
        // every import in custom sections, componentized below.
        .args(["--", "-Clink-arg=--skip-wit-component"])
        // The request arena (sdk-js/engine/src/arena.rs) sees every
        // allocation first.
        .args(["malloc", "calloc", "realloc", "free"].map(|symbol| format!("-Clink-arg=--wrap={symbol}")))
        .env("WASI_SDK", &wasi_sdk);
    // Settings meant for the host build must not leak into the guest build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS", "RUSTC_WORKSPACE_WRAPPER", "TARGET", "HOST", "OPT_LEVEL", "PROFILE", "DEBUG", "CC", "AR", "CFLAGS"] {
        cargo.env_remove(var);
    }
    let status = cargo.status().expect("running cargo for the engine");
    if !status.success() {
        panic!(
            "building the JS engine (sdk-js/engine) for wasm32-wasip2 failed; \
             did `scripts/install-deps` run? It installs the wasm targets and clang/wasi-libc."
        );
    }
    let built = target_dir.join("wasm32-wasip2/release/edgefn_engine.wasm");
    let core = fs::read(&built).expect("reading the engine's core module");
    fs::write(out_dir.join("engine.wasm"), componentize(&core)).expect("writing engine.wasm");
}

/// WASI imports that wasi-libc's stdio, environment and exit bring into the
/// engine, which no function can reach usefully: edgefn gives functions no
/// stdin, stdout, stderr, terminal or environment variables (console output
/// goes through `edgefn:function/console`). Every import is wired anew into
/// every instance, so each request paid for these: they go, each replaced
/// by a function inside the engine (19 of the core module's 73 imports, and
/// 12 of the component's 30 core instances).
///
/// `get-environment` returns an empty list, as the host's did (an `anyhow`
/// error in the engine asks for `RUST_LIB_BACKTRACE` through it). The rest
/// trap. The host gave stdio as empty input and discarding output, but
/// nothing a function can reach reads or writes it (Javy's own console,
/// which prints to stdout, is replaced by `sdk-js/runtime/console.js`,
/// captured through the host, before the snapshot) except a Rust panic's
/// message, and a panic ends the request with a trap either way; nothing
/// exits.
/// Clocks and `pollable.block` stay: `Date`, timers and `sleep` use them.
const UNUSABLE_IMPORTS: &[(&str, &str, Stub)] = &[
    ("wasi:cli/environment@0.2.0", "get-environment", Stub::EmptyList),
    ("wasi:cli/exit@0.2.0", "exit", Stub::Trap),
    ("wasi:cli/stdin@0.2.0", "get-stdin", Stub::Trap),
    ("wasi:cli/stdout@0.2.0", "get-stdout", Stub::Trap),
    ("wasi:cli/stderr@0.2.0", "get-stderr", Stub::Trap),
    ("wasi:cli/terminal-stdin@0.2.0", "get-terminal-stdin", Stub::Trap),
    ("wasi:cli/terminal-stdout@0.2.0", "get-terminal-stdout", Stub::Trap),
    ("wasi:cli/terminal-stderr@0.2.0", "get-terminal-stderr", Stub::Trap),
    ("wasi:cli/terminal-input@0.2.0", "[resource-drop]terminal-input", Stub::Trap),
    ("wasi:cli/terminal-output@0.2.0", "[resource-drop]terminal-output", Stub::Trap),
    ("wasi:io/error@0.2.0", "[resource-drop]error", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[resource-drop]input-stream", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[resource-drop]output-stream", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[method]input-stream.blocking-read", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[method]input-stream.subscribe", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[method]output-stream.check-write", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[method]output-stream.write", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[method]output-stream.blocking-flush", Stub::Trap),
    ("wasi:io/streams@0.2.0", "[method]output-stream.subscribe", Stub::Trap),
];

/// Fails unless the engine keeps all its state in linear memory, as module
/// states (`host/src/sandbox/module_state.rs`) assume: the host saves and
/// writes back memory only, so no mutable global but the stack pointer
/// (which every call leaves where it found it) and no instruction that
/// changes a table.
fn check_state_lives_in_memory(core: &[u8]) {
    use wasmparser::{Operator, Payload};
    let mut mutable_globals = 0;
    for payload in wasmparser::Parser::new(0).parse_all(core) {
        match payload.unwrap_or_else(|e| panic!("reading the engine: {e}")) {
            Payload::GlobalSection(globals) => {
                for global in globals {
                    mutable_globals += usize::from(global.unwrap_or_else(|e| panic!("reading the engine: {e}")).ty.mutable);
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut operators = body.get_operators_reader().unwrap_or_else(|e| panic!("reading the engine: {e}"));
                while !operators.eof() {
                    match operators.read().unwrap_or_else(|e| panic!("reading the engine: {e}")) {
                        Operator::TableSet { .. }
                        | Operator::TableGrow { .. }
                        | Operator::TableFill { .. }
                        | Operator::TableCopy { .. }
                        | Operator::TableInit { .. }
                        | Operator::ElemDrop { .. } => panic!("the engine changes a table: module states would not cover it"),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    assert!(mutable_globals <= 1, "the engine has {mutable_globals} mutable globals: module states cover only the stack pointer");
}

/// The engine's core module, less [`UNUSABLE_IMPORTS`], as a component, made
/// as the target's linker (`wasm-component-ld`) makes it by default, except
/// that the core module calls through the shim's table itself (`shim`) and
/// the exports have no post-return functions (`post_return`).
fn componentize(core: &[u8]) -> Vec<u8> {
    check_state_lives_in_memory(core);
    let (pruned, removed) = prune::prune(core, UNUSABLE_IMPORTS, None).unwrap_or_else(|e| panic!("{e}"));
    // A list that no longer matches the engine (a wasi-libc or Rust update
    // renamed an import) must be looked at, not silently do nothing.
    if removed.len() != UNUSABLE_IMPORTS.len() {
        let missing: Vec<_> = UNUSABLE_IMPORTS
            .iter()
            .map(|(module, name, _)| format!("{module}#{name}"))
            .filter(|import| !removed.contains(import))
            .collect();
        panic!("the engine no longer imports {missing:?}: update UNUSABLE_IMPORTS in compiler/build/main.rs");
    }
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .merge_imports_based_on_semver(true)
        .module(&pruned)
        .and_then(|mut encoder| encoder.encode())
        .unwrap_or_else(|e| panic!("making the engine a component: {e:#}"));
    let component = shim::call_through_shim_table(&component)
        .unwrap_or_else(|e| panic!("letting the engine call wit-component's shim table itself: {e}"));
    post_return::without_post_return(&component)
        .unwrap_or_else(|e| panic!("taking the post-return functions out of the engine's exports: {e}"))
}

/// A WASI SDK layout made of symlinks into Debian's packages.
fn assemble_wasi_sdk(dir: &Path) -> PathBuf {
    let links = [
        ("bin/clang", "/usr/bin/clang-16"),
        ("bin/ar", "/usr/bin/llvm-ar-16"),
        ("share/wasi-sysroot/include", "/usr/include/wasm32-wasi"),
        ("share/wasi-sysroot/lib/wasm32-wasip1", "/usr/lib/wasm32-wasi"),
        ("share/wasi-sysroot/lib/wasm32-wasip2", "/usr/lib/wasm32-wasi"),
    ];
    for (link, target) in links {
        if !Path::new(target).exists() {
            panic!("{target} is missing: run `scripts/install-deps` (clang-16 lld-16 llvm-16 wasi-libc libclang-rt-16-dev-wasm32)");
        }
        let link = dir.join(link);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
    }
    dir.to_path_buf()
}
