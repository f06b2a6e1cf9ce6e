//! The compiled engine image, cached on disk so a restart skips Wizer and
//! Cranelift (about two seconds) and maps the machine code instead.
//!
//! Invariant: bytes are only handed to wasmtime after their SHA-256 matches
//! the digest written beside them. A truncated or tampered cache file is
//! rebuilt, never executed.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use super::store::StoreState;
use wasmtime::component::{Component, Linker};

/// The serialized engine image, verified, from which the sandbox loads its
/// copies of the engine (`sandbox/mod.rs`, `EngineCopy`).
pub enum EngineImage {
    /// The bytes in a file of this process's own, unlinked, which every copy
    /// maps: the machine code and the memory image are then in memory once,
    /// however many copies there are.
    Mapped(std::fs::File),
    /// Where no such file could be made or mapped: each copy holds its own
    /// (6.8 MB).
    InMemory(Vec<u8>),
}

impl EngineImage {
    /// The image of `bytes`, and a first copy of the engine loaded from it,
    /// which is also the check that it loads: from a file where one can be
    /// made and mapped, else from the bytes. An error means the bytes do not
    /// load in this engine.
    fn open(engine: &wasmtime::Engine, bytes: Vec<u8>, dir: &Path) -> anyhow::Result<(Self, Component)> {
        let mapped = private_copy(&bytes, dir).map_err(anyhow::Error::from).and_then(|file| {
            let image = EngineImage::Mapped(file);
            image.load(engine).map(|component| (image, component))
        });
        match mapped {
            Ok(opened) => Ok(opened),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "could not map the engine image from a file; each copy of the engine keeps its own");
                let image = EngineImage::InMemory(bytes);
                let component = image.load(engine)?;
                Ok((image, component))
            }
        }
    }

    /// Loads one more copy of the engine: another module to wasmtime, with
    /// the same code and memory image.
    pub fn load(&self, engine: &wasmtime::Engine) -> anyhow::Result<Component> {
        // SAFETY: the bytes were produced by `Component::serialize` of this
        // very build, and their digest matched (or this process made them);
        // the file is ours, unlinked, and never written after it was filled.
        let component = unsafe {
            match self {
                EngineImage::Mapped(file) => Component::deserialize_file(engine, format!("/proc/self/fd/{}", file.as_raw_fd())),
                EngineImage::InMemory(bytes) => Component::deserialize(engine, bytes),
            }
        };
        Ok(component?)
    }
}

/// `bytes` in a new file in `dir` that only the returned handle still names.
fn private_copy(bytes: &[u8], dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(".engine-mapped-{}-{:x}", std::process::id(), rand::random::<u64>()));
    let file = std::fs::write(&path, bytes).and_then(|()| std::fs::File::open(&path));
    // Unlinked whether or not it was filled: nothing is left behind.
    let removed = std::fs::remove_file(&path);
    let file = file?;
    removed?;
    Ok(file)
}

/// Loads the engine image from `cache_dir`, or builds and caches it; with
/// a first copy of the engine loaded from it.
pub async fn load_or_build(
    engine: &wasmtime::Engine,
    linker: &Linker<StoreState>,
    init_state: StoreState,
    cache_dir: &Path,
) -> anyhow::Result<(EngineImage, Component)> {
    let name = format!(
        "engine-{}-edgefn-{}",
        &edgefn_compiler::engine_fingerprint()[..16],
        env!("CARGO_PKG_VERSION")
    );
    let image_path = cache_dir.join(format!("{name}.cwasm"));
    let digest_path = cache_dir.join(format!("{name}.sha256"));

    match read_verified(&image_path, &digest_path) {
        Ok(Some(bytes)) => {
            // The bytes were produced by `Component::serialize` in this very
            // build (the file name carries the engine fingerprint) and their
            // digest matches; wasmtime re-checks engine compatibility.
            match EngineImage::open(engine, bytes, cache_dir) {
                Ok(opened) => return Ok(opened),
                Err(e) => tracing::warn!(path = %image_path.display(), error = %format!("{e:#}"), "engine cache unusable; rebuilding"),
            }
        }
        Ok(None) => {}
        Err(reason) => tracing::warn!(path = %image_path.display(), %reason, "engine cache corrupt; rebuilding"),
    }

    let started = std::time::Instant::now();
    let mut store = super::store::unmetered(engine, init_state)?;
    let snapshot = edgefn_compiler::preinitialize_engine(&mut store, linker).await?;
    let component = Component::new(engine, &snapshot)?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "built the engine image");
    let bytes = component.serialize()?;
    if let Err(e) = write_atomically(cache_dir, &image_path, &bytes, &digest_path) {
        tracing::warn!(error = %e, "could not cache the engine image; the next start rebuilds it");
    }
    EngineImage::open(engine, bytes, cache_dir)
}

/// `Ok(None)` when nothing is cached; `Err` with a reason when the cache is
/// present but must not be trusted.
fn read_verified(image_path: &Path, digest_path: &Path) -> Result<Option<Vec<u8>>, String> {
    let (Ok(bytes), Ok(expected)) = (std::fs::read(image_path), std::fs::read_to_string(digest_path)) else {
        return Ok(None);
    };
    let actual = edgefn_compiler::sha256_hex(&bytes);
    if actual != expected.trim() {
        return Err(format!("digest {actual} does not match the recorded {}", expected.trim()));
    }
    Ok(Some(bytes))
}

fn write_atomically(dir: &Path, image_path: &Path, bytes: &[u8], digest_path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = |path: &Path| -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".tmp-{}", std::process::id()));
        PathBuf::from(name)
    };
    let (image_tmp, digest_tmp) = (temporary(image_path), temporary(digest_path));
    std::fs::write(&image_tmp, bytes)?;
    std::fs::write(&digest_tmp, edgefn_compiler::sha256_hex(bytes))?;
    // The image first: a reader that sees the new digest sees the new image.
    std::fs::rename(&image_tmp, image_path)?;
    std::fs::rename(&digest_tmp, digest_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_cache_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("edgefn-engine-image-{}", std::process::id()));
        let (image, digest) = (dir.join("e.cwasm"), dir.join("e.sha256"));
        write_atomically(&dir, &image, b"machine code", &digest).unwrap();
        assert_eq!(read_verified(&image, &digest).unwrap().unwrap(), b"machine code");
        std::fs::write(&image, b"machine codf").unwrap();
        assert!(read_verified(&image, &digest).unwrap_err().contains("does not match"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read_verified(&image, &digest).unwrap(), None);
    }

    #[test]
    fn the_mapped_copy_is_named_by_no_path() {
        use std::io::Read;
        let dir = std::env::temp_dir().join(format!("edgefn-engine-mapped-{}", std::process::id()));
        let mut file = private_copy(b"machine code", &dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left in the cache directory");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"machine code");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
