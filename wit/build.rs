//! Makes `wit/deps/` hold the WASI packages our world imports.
//!
//! We do not commit WASI's WIT files (they are not ours); the exact versions our
//! host implements ship inside the `wasmtime-wasi-http` crate, so we copy them
//! from its sources in Cargo's registry. Guest and host then bind against the
//! very same definitions.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let lockfile = manifest_dir.join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lockfile.display());
    println!("cargo:rerun-if-changed=edgefn.wit");

    let version = locked_version(&lockfile, "wasmtime-wasi-http")
        .expect("Cargo.lock must pin wasmtime-wasi-http (run cargo from the workspace root)");
    let source = find_crate_source("wasmtime-wasi-http", &version).unwrap_or_else(|| {
        panic!(
            "cannot find the sources of wasmtime-wasi-http {version} in Cargo's registry; \
             run `cargo fetch` first"
        )
    });
    let target = manifest_dir.join("deps");
    fs::create_dir_all(&target).unwrap();
    for entry in fs::read_dir(source.join("wit/deps")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wit") {
            let dest = target.join(path.file_name().unwrap());
            let contents = fs::read(&path).unwrap();
            if fs::read(&dest).ok().as_deref() != Some(&contents[..]) {
                fs::write(&dest, contents).unwrap();
            }
        }
    }
}

fn locked_version(lockfile: &Path, name: &str) -> Option<String> {
    let lock = fs::read_to_string(lockfile).ok()?;
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let end = lock[start..].find('"')? + start;
    Some(lock[start..end].to_string())
}

fn find_crate_source(name: &str, version: &str) -> Option<PathBuf> {
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let dir_name = format!("{name}-{version}");
    fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .filter_map(|registry| registry.ok())
        .map(|registry| registry.path().join(&dir_name))
        .find(|candidate| candidate.join("wit/deps").is_dir())
}
