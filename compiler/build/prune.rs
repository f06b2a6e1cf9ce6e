//! Takes function imports out of a core module: each becomes a function
//! the module defines, of the same type (see [`Stub`]), and every function
//! index in the module is renumbered to match. It can also add the import
//! of a table that stubs call through ([`TableImport`]).

use std::collections::BTreeMap;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasmparser::{Name, Parser, Payload, TypeRef};

/// What replaces a removed import.
#[derive(Clone, Copy)]
pub enum Stub {
    /// Traps (`unreachable`).
    Trap,
    /// Returns an empty list through the return pointer (`(param i32)`):
    /// `get-environment` with no variables.
    EmptyList,
    /// Passes its parameters on to the function in this slot of the
    /// [`TableImport`] (`call_indirect`), and returns what it returns.
    TableSlot(u32),
}

/// A table the rewritten module imports, after every import it had; the
/// module's own tables are renumbered past it.
pub struct TableImport<'a> {
    pub module: &'a str,
    pub name: &'a str,
    pub ty: wasmparser::TableType,
}

/// The imports removed, by module and name, with what replaces each.
pub type Removals<'a> = &'a [(&'a str, &'a str, Stub)];

/// Why the module could not be read or rewritten.
#[derive(Debug)]
pub struct PruneError(pub String);

impl std::fmt::Display for PruneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

struct Pruner<'a> {
    /// Function import index → its position among the removed.
    removed: BTreeMap<u32, u32>,
    /// What replaces each removed import, and its type index, by position.
    stubs: Vec<(Stub, u32)>,
    imported_functions: u32,
    defined_functions: u32,
    /// Parameter counts, by type index.
    parameters: Vec<usize>,
    imported_tables: u32,
    table_import: Option<TableImport<'a>>,
}

impl Pruner<'_> {
    /// How many removed imports come before function `index`.
    fn removed_before(&self, index: u32) -> u32 {
        self.removed.range(..index).count() as u32
    }
}

impl Reencode for Pruner<'_> {
    type Error = PruneError;

    fn function_index(&mut self, index: u32) -> Result<u32, ReencodeError<PruneError>> {
        let removed = self.removed.len() as u32;
        Ok(if let Some(&position) = self.removed.get(&index) {
            // Stubs go after every function the module defines.
            self.imported_functions - removed + self.defined_functions + position
        } else if index < self.imported_functions {
            index - self.removed_before(index)
        } else {
            index - removed
        })
    }

    fn table_index(&mut self, table: u32) -> Result<u32, ReencodeError<PruneError>> {
        // The added import is the last imported table.
        Ok(if self.table_import.is_some() && table >= self.imported_tables { table + 1 } else { table })
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError<PruneError>> {
        let mut function = 0;
        for import in section.into_imports() {
            let import = import?;
            if let TypeRef::Func(_) = import.ty {
                function += 1;
                if self.removed.contains_key(&(function - 1)) {
                    continue;
                }
            }
            imports.import(import.module, import.name, self.entity_type(import.ty)?);
        }
        if let Some((module, name, ty)) = self.table_import.as_ref().map(|table| (table.module, table.name, table.ty)) {
            let ty = self.table_type(ty)?;
            imports.import(module, name, ty);
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError<PruneError>> {
        for function in section {
            functions.function(self.type_index(function?)?);
        }
        for &(_, ty) in &self.stubs {
            functions.function(ty);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError<PruneError>> {
        for body in section {
            self.parse_function_body(code, body?)?;
        }
        for &(stub, ty) in &self.stubs {
            let mut body = wasm_encoder::Function::new([]);
            match stub {
                Stub::Trap => {
                    body.instructions().unreachable();
                }
                Stub::EmptyList => {
                    let at = |offset| wasm_encoder::MemArg { offset, align: 2, memory_index: 0 };
                    body.instructions()
                        .local_get(0)
                        .i32_const(0)
                        .i32_store(at(0))
                        .local_get(0)
                        .i32_const(0)
                        .i32_store(at(4));
                }
                Stub::TableSlot(slot) => {
                    let table = self.imported_tables;
                    let parameters = *self.parameters.get(ty as usize).ok_or_else(|| {
                        ReencodeError::UserError(PruneError(format!("type {ty} of a removed import is not a function type")))
                    })?;
                    let mut instructions = body.instructions();
                    for local in 0..parameters {
                        instructions.local_get(local as u32);
                    }
                    instructions.i32_const(slot as i32).call_indirect(table, ty);
                }
            }
            body.instructions().end();
            code.function(&body);
        }
        Ok(())
    }

    fn parse_custom_name_subsection(
        &mut self,
        names: &mut wasm_encoder::NameSection,
        section: Name<'_>,
    ) -> Result<(), ReencodeError<PruneError>> {
        // Function names only, in index order: a removed import's name moves
        // to its stub, past every defined function.
        match section {
            Name::Module { name, .. } => names.module(name),
            Name::Function(map) => {
                let mut sorted = Vec::new();
                for naming in map {
                    let naming = naming?;
                    sorted.push((self.function_index(naming.index)?, naming.name));
                }
                sorted.sort_unstable_by_key(|&(index, _)| index);
                let mut map = wasm_encoder::NameMap::new();
                for (index, name) in sorted {
                    map.append(index, name);
                }
                names.functions(&map);
            }
            _ => {}
        }
        Ok(())
    }
}

/// `module` without the function imports in `removals`, each replaced by a
/// function of the same type defined in the module; every reference to a
/// function index is renumbered. With a `table_import`, the module also
/// imports that table, and references to its own tables are renumbered.
/// Imports in `removals` that the module does not have are ignored; the
/// names of those it had are returned.
pub fn prune(
    module: &[u8],
    removals: Removals<'_>,
    table_import: Option<TableImport<'_>>,
) -> Result<(Vec<u8>, Vec<String>), PruneError> {
    let invalid = |e: wasmparser::BinaryReaderError| PruneError(format!("reading the engine's core module: {e}"));
    let mut pruner = Pruner {
        removed: BTreeMap::new(),
        stubs: Vec::new(),
        imported_functions: 0,
        defined_functions: 0,
        parameters: Vec::new(),
        imported_tables: 0,
        table_import,
    };
    let mut pruned_names = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(section) => {
                for ty in section.into_iter_err_on_gc_types() {
                    pruner.parameters.push(ty.map_err(invalid)?.params().len());
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import.map_err(invalid)?;
                    if let TypeRef::Table(_) = import.ty {
                        pruner.imported_tables += 1;
                    }
                    let TypeRef::Func(ty) = import.ty else { continue };
                    let index = pruner.imported_functions;
                    pruner.imported_functions += 1;
                    if let Some(&(_, _, stub)) = removals.iter().find(|(m, n, _)| *m == import.module && *n == import.name) {
                        pruner.removed.insert(index, pruner.stubs.len() as u32);
                        pruner.stubs.push((stub, ty));
                        pruned_names.push(format!("{}#{}", import.module, import.name));
                    }
                }
            }
            Payload::FunctionSection(section) => pruner.defined_functions = section.count(),
            _ => {}
        }
    }
    let mut encoded = wasm_encoder::Module::new();
    pruner.parse_core_module(&mut encoded, Parser::new(0), module).map_err(|e| match e {
        ReencodeError::UserError(e) => e,
        other => PruneError(format!("rewriting the engine's core module: {other}")),
    })?;
    Ok((encoded.finish(), pruned_names))
}
