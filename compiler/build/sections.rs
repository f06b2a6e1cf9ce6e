//! The top-level sections of a component, for the rewrites that change a
//! few of them and copy the rest byte for byte (`shim`, `post_return`).

use wasm_encoder::Encode;
use wasmparser::BinaryReader;

/// Component section ids (the component model's binary format).
pub const CORE_MODULE_SECTION: u8 = 1;
pub const CORE_INSTANCE_SECTION: u8 = 2;
pub const ALIAS_SECTION: u8 = 6;
pub const CANONICAL_SECTION: u8 = 8;

/// A top-level section of a component.
pub struct Section<'a> {
    pub id: u8,
    pub contents: &'a [u8],
    /// Where `contents` starts in the component, for readers' error offsets.
    pub offset: usize,
}

impl<'a> Section<'a> {
    /// A reader of the section's contents that reports offsets in the component.
    pub fn reader(&self) -> BinaryReader<'a> {
        BinaryReader::new(self.contents, self.offset)
    }
}

/// The component's sections, in order; its first 8 bytes are the header.
pub fn sections(component: &[u8]) -> Result<Vec<Section<'_>>, String> {
    const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    if !component.starts_with(&COMPONENT_HEADER) {
        return Err("the engine is not a component".into());
    }
    let invalid = |e: wasmparser::BinaryReaderError| format!("reading the engine component: {e}");
    let mut reader = BinaryReader::new(&component[8..], 8);
    let mut sections = Vec::new();
    while !reader.eof() {
        let id = reader.read_u8().map_err(invalid)?;
        let size = reader.read_var_u32().map_err(invalid)? as usize;
        let offset = reader.original_position();
        let contents = reader.read_bytes(size).map_err(invalid)?;
        sections.push(Section { id, contents, offset });
    }
    Ok(sections)
}

/// Appends a section with these contents.
pub fn push_section(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
    out.push(id);
    (contents.len() as u32).encode(out);
    out.extend_from_slice(contents);
}
