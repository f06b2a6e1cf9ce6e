//! Takes `post-return` out of the canonical options of the engine's exports.
//!
//! Why: wit-bindgen gives every export that returns a string or a list
//! (`compile`, `handle`, `prepare`) a post-return function, which frees what
//! the call returned once the host has read it. For each one, wasmtime looks
//! up that function and initializes a funcref for it in every
//! instantiation, and calls it after the export returns. But an edgefn
//! instance is dropped right after the one call that returns something
//! (`resume`, which runs before `handle` in the same instance, returns
//! nothing): the memory that function would free goes with the instance, or
//! is reset with its pool slot, right after.
//!
//! How: the canonical section's `lift`s are re-encoded without the option;
//! nothing else changes, so no index in the component moves. The core
//! functions the options named stay (aliases of the core module's exports).

use crate::sections::{push_section, sections, CANONICAL_SECTION};
use wasm_encoder::reencode::ReencodeComponent;
use wasm_encoder::reencode::RoundtripReencoder;
use wasm_encoder::Encode;
use wasmparser::{CanonicalFunction, CanonicalOption, ComponentCanonicalSectionReader};

/// `component` with no post-return option on any export; fails if it had
/// none, as then this rewrite is stale.
pub fn without_post_return(component: &[u8]) -> Result<Vec<u8>, String> {
    let invalid = |e: wasmparser::BinaryReaderError| format!("reading the engine component's canonical functions: {e}");
    let reencode = |e: wasm_encoder::reencode::Error| format!("re-encoding a canonical function: {e}");
    let mut out = component[..8].to_vec();
    let mut removed = 0;
    for section in sections(component)? {
        if section.id != CANONICAL_SECTION {
            push_section(&mut out, section.id, section.contents);
            continue;
        }
        let mut rebuilt = wasm_encoder::CanonicalFunctionSection::new();
        for function in ComponentCanonicalSectionReader::new(section.reader()).map_err(invalid)? {
            match function.map_err(invalid)? {
                CanonicalFunction::Lift { core_func_index, type_index, options } => {
                    let mut kept = Vec::with_capacity(options.len());
                    for &option in options.iter() {
                        if matches!(option, CanonicalOption::PostReturn(_)) {
                            removed += 1;
                        } else {
                            kept.push(RoundtripReencoder.canonical_option(option).map_err(reencode)?);
                        }
                    }
                    rebuilt.lift(core_func_index, type_index, kept);
                }
                other => RoundtripReencoder.parse_component_canonical(&mut rebuilt, other).map_err(reencode)?,
            }
        }
        out.push(CANONICAL_SECTION);
        rebuilt.encode(&mut out);
    }
    if removed == 0 {
        return Err("no export of the engine has a post-return function any more".into());
    }
    wasmparser::Validator::new()
        .validate_all(&out)
        .map_err(|e| format!("the component without post-return functions is invalid: {e}"))?;
    Ok(out)
}
