//! Builds the JS engine (`sdk-js/engine`, a Javy plugin) for wasm32-wasip2 and
//! hands the component to the crate as `$OUT_DIR/engine.wasm`.
//!
//! QuickJS is C, so `rquickjs-sys` needs a WASI SDK. It would download one;
//! instead we assemble one from Debian's packages (`scripts/install-deps`
//! installs them): clang-16, llvm-ar-16 and wasi-libc's sysroot.

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
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
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
    fs::copy(&built, out_dir.join("engine.wasm")).expect("copying engine.wasm");
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
