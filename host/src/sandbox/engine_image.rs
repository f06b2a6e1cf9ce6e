//! The compiled engine image, cached on disk so a restart skips Wizer and
//! Cranelift (about two seconds) and maps the machine code instead.
//!
//! Invariant: bytes are only handed to `Component::deserialize` after their
//! SHA-256 matches the digest written beside them. A truncated or tampered
//! cache file is rebuilt, never executed.

use std::path::{Path, PathBuf};
use super::store::StoreState;
use wasmtime::component::{Component, Linker};

/// Loads the engine image from `cache_dir`, or builds and caches it.
pub async fn load_or_build(
    engine: &wasmtime::Engine,
    linker: &Linker<StoreState>,
    init_state: StoreState,
    cache_dir: &Path,
) -> anyhow::Result<Component> {
    let name = format!(
        "engine-{}-edgefn-{}",
        &edgefn_compiler::engine_fingerprint()[..16],
        env!("CARGO_PKG_VERSION")
    );
    let image_path = cache_dir.join(format!("{name}.cwasm"));
    let digest_path = cache_dir.join(format!("{name}.sha256"));

    match read_verified(&image_path, &digest_path) {
        Ok(Some(bytes)) => {
            // SAFETY: the bytes were produced by `Component::serialize` in this
            // very build (the file name carries the engine fingerprint) and
            // their digest matches; wasmtime re-checks engine compatibility.
            match unsafe { Component::deserialize(engine, &bytes) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(path = %image_path.display(), error = %e, "engine cache unusable; rebuilding"),
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
    Ok(component)
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
}
