//! Turns JavaScript into what edgefn runs.
//!
//! edgefn links functions *dynamically* (see the README's architecture
//! section for the measurements behind the choice):
//!
//! - the **engine image** is built once per edgefn build: the Javy plugin
//!   component from `sdk-js/engine`, pre-initialized with Wizer so QuickJS and
//!   the Web API layer are already set up in its memory snapshot;
//! - a **function artifact** is the QuickJS bytecode of one source, produced by
//!   the engine's own `compiler.compile` export and run by `handler.handle`.
//!
//! This crate owns the first and the rules of the second (validation, hashes,
//! errors); the host's sandbox runs the engine that does the compiling.

#![deny(missing_docs)]

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};

/// The engine component as built from `sdk-js/engine`, before Wizer.
pub const ENGINE_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/engine.wasm"));

/// Identifies the engine build: bytecode is only valid for the engine that
/// produced it, so artifacts and caches are keyed by this. Hashed once: the
/// engine is 1.6 MB and every deploy and cache load asks.
pub fn engine_fingerprint() -> &'static str {
    static FINGERPRINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FINGERPRINT.get_or_init(|| sha256_hex(ENGINE_WASM))
}

/// Lower-case hex SHA-256, the content hash used throughout edgefn.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The largest source the build endpoint accepts by default.
pub const DEFAULT_MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// Why a source cannot become a deployment.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CompileError {
    /// The source is not UTF-8 text.
    #[error("the source is not valid UTF-8 text")]
    NotUtf8,
    /// The source is larger than the configured limit.
    #[error("the source is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Size of the uploaded source.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The source is empty.
    #[error("the source is empty")]
    Empty,
    /// QuickJS rejected the module, or evaluating it failed.
    #[error("{message}{}", location_suffix(*line, *column))]
    Invalid {
        /// The compiler's message, e.g. `SyntaxError: unexpected token`.
        message: String,
        /// 1-based line of the offending code, when known.
        line: Option<u32>,
        /// 1-based column of the offending code, when known.
        column: Option<u32>,
    },
}

fn location_suffix(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
        (Some(line), None) => format!(" (line {line})"),
        _ => String::new(),
    }
}

impl From<edgefn_world::types::CompileError> for CompileError {
    fn from(e: edgefn_world::types::CompileError) -> Self {
        CompileError::Invalid { message: e.message, line: e.line, column: e.column }
    }
}

/// Checks an uploaded source before any compiling happens.
pub fn validate_source(source: &[u8], limit: usize) -> Result<&str, CompileError> {
    if source.len() > limit {
        return Err(CompileError::TooLarge { size: source.len(), limit });
    }
    let text = std::str::from_utf8(source).map_err(|_| CompileError::NotUtf8)?;
    if text.trim().is_empty() {
        return Err(CompileError::Empty);
    }
    Ok(text)
}

/// A compiled function, ready to store and run.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// QuickJS bytecode for [`engine_fingerprint`]'s engine.
    pub bytecode: Vec<u8>,
    /// SHA-256 of the bytecode, checked before every load from storage.
    pub bytecode_hash: String,
    /// SHA-256 of the source: the deployment's content hash.
    pub source_hash: String,
    /// The engine the bytecode belongs to.
    pub engine: String,
}

impl Artifact {
    /// Wraps bytecode the engine produced for `source`.
    pub fn new(source: &str, bytecode: Vec<u8>) -> Self {
        Artifact {
            bytecode_hash: sha256_hex(&bytecode),
            source_hash: sha256_hex(source.as_bytes()),
            engine: engine_fingerprint().to_owned(),
            bytecode,
        }
    }

    /// True when stored bytecode is intact and belongs to this engine build,
    /// so it may be executed; anything else must be recompiled from source.
    pub fn is_runnable(bytecode: &[u8], bytecode_hash: &str, engine: &str) -> bool {
        engine == engine_fingerprint() && sha256_hex(bytecode) == bytecode_hash
    }
}

/// Failure to build the engine image itself: a defect in edgefn, not in a
/// user's function.
#[derive(Debug, thiserror::Error)]
#[error("building the engine image failed: {0:#}")]
pub struct EngineBuildError(#[from] wasmtime::Error);

/// Runs the engine's `initialize-runtime` under Wizer and returns the
/// snapshotted component. Takes about a second; callers cache the result.
///
/// `linker` must satisfy every import of the `function` world, exactly as
/// for running functions: initialization itself calls none of the host
/// capabilities, but the engine cannot be instantiated without them.
pub async fn preinitialize_engine<T: Send + 'static>(
    store: &mut wasmtime::Store<T>,
    linker: &Linker<T>,
) -> Result<Vec<u8>, EngineBuildError> {
    let mut wizer = wasmtime_wizer::Wizer::new();
    // Without keeping the init func the rewritten component fails to parse
    // (wasmtime-wizer 48); the host never calls it again.
    wizer.init_func("initialize-runtime").keep_init_func(true);
    let (snapshot, _) = wizer
        .run_component(store, ENGINE_WASM, async |store, component: &Component| {
            linker.instantiate_async(store, component).await
        })
        .await?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_sources_before_compiling() {
        assert!(matches!(validate_source(b"\xff\xfe", 10), Err(CompileError::NotUtf8)));
        assert!(matches!(validate_source(b"  \n", 10), Err(CompileError::Empty)));
        assert!(matches!(
            validate_source(b"export default {}", 4),
            Err(CompileError::TooLarge { size: 17, limit: 4 })
        ));
        assert_eq!(validate_source(b"let x = 1", 100).unwrap(), "let x = 1");
    }

    #[test]
    fn compile_errors_say_where() {
        let e = CompileError::Invalid { message: "SyntaxError: unexpected token".into(), line: Some(3), column: Some(7) };
        assert_eq!(e.to_string(), "SyntaxError: unexpected token (line 3, column 7)");
    }

    #[test]
    fn tampered_bytecode_is_not_runnable() {
        let artifact = Artifact::new("src", vec![1, 2, 3]);
        assert!(Artifact::is_runnable(&artifact.bytecode, &artifact.bytecode_hash, &artifact.engine));
        assert!(!Artifact::is_runnable(&[1, 2, 4], &artifact.bytecode_hash, &artifact.engine));
        assert!(!Artifact::is_runnable(&artifact.bytecode, &artifact.bytecode_hash, "another-engine"));
    }

    #[test]
    fn the_engine_imports_no_interface_a_function_cannot_use() {
        // build/main.rs takes wasi-libc's stdio, environment and exit imports
        // out of the engine; a toolchain update that brought them back would
        // put their wiring back into every instantiation.
        let mut imports = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(ENGINE_WASM) {
            if let wasmparser::Payload::ComponentImportSection(section) = payload.unwrap() {
                imports.extend(section.into_iter().map(|import| import.unwrap().name.name.to_owned()));
            }
        }
        assert!(imports.iter().any(|name| name.starts_with("wasi:http/types@")), "{imports:?}");
        assert!(imports.iter().any(|name| name.starts_with("wasi:clocks/wall-clock@")), "{imports:?}");
        assert!(!imports.iter().any(|name| name.starts_with("wasi:cli/")), "{imports:?}");
    }

    #[test]
    fn the_engine_calls_through_the_shim_table_itself() {
        // build/shim.rs: the imports lowered after the core module exists
        // (their options name its memory or `cabi_realloc`) are called
        // through wit-component's shim table, not imported from the shim,
        // whose every function would cost each instantiation a funcref.
        let core = wasmparser::Parser::new(0)
            .parse_all(ENGINE_WASM)
            .filter_map(|payload| match payload.unwrap() {
                wasmparser::Payload::ModuleSection { unchecked_range, .. } => Some(&ENGINE_WASM[unchecked_range]),
                _ => None,
            })
            .max_by_key(|module| module.len())
            .unwrap();
        let (mut functions, mut tables) = (Vec::new(), Vec::new());
        for payload in wasmparser::Parser::new(0).parse_all(core) {
            if let wasmparser::Payload::ImportSection(section) = payload.unwrap() {
                for import in section.into_imports() {
                    let import = import.unwrap();
                    match import.ty {
                        wasmparser::TypeRef::Func(_) => functions.push(format!("{}#{}", import.module, import.name)),
                        wasmparser::TypeRef::Table(_) => tables.push(import.module.to_owned()),
                        _ => {}
                    }
                }
            }
        }
        assert_eq!(tables, ["edgefn:shim"]);
        // Lowered with the core module's memory and realloc: through the table.
        assert!(!functions.iter().any(|f| f.ends_with("#[method]fields.entries")), "{functions:?}");
        assert!(!functions.iter().any(|f| f.starts_with("edgefn:function/console@")), "{functions:?}");
        // Lowered without them: still imported directly.
        assert!(functions.iter().any(|f| f.ends_with("#[resource-drop]fields")), "{functions:?}");
    }

    #[test]
    fn no_export_of_the_engine_has_a_post_return_function() {
        // build/post_return.rs: every instance serves one call and is then
        // dropped, so the functions that would free what an export returned
        // only cost each instantiation a funcref.
        let mut lifted = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(ENGINE_WASM) {
            let payload = payload.unwrap();
            if let wasmparser::Payload::ComponentCanonicalSection(section) = payload {
                for function in section {
                    if let wasmparser::CanonicalFunction::Lift { options, .. } = function.unwrap() {
                        lifted.push(options.iter().any(|o| matches!(o, wasmparser::CanonicalOption::PostReturn(_))));
                    }
                }
            }
        }
        // initialize-runtime, compile, handle, prepare, resume.
        assert_eq!(lifted, [false; 5]);
    }
}
