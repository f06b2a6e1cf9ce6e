//! Lets the engine's core module call the imports that wit-component routes
//! through its shim by the shim's table, rather than import the shim's
//! functions.
//!
//! Why: an import whose canonical options name the core module's memory or
//! `cabi_realloc` (28 of the engine's: 18 of `wasi:http` and `wasi:io`, 8 of
//! edgefn's console, secrets, database and module state, the wall clock and
//! the insecure seed) can only be lowered once that module is instantiated. So wit-component
//! makes a small shim module whose function `k` calls slot `k` of the shim's
//! table, gives those functions to the core module as its imports, and fills
//! the table with the lowered functions afterwards (the fixup module). For
//! every function one core instance imports from another, wasmtime looks up
//! the export and initializes its `VMFuncRef` anew in every instantiation,
//! mostly by looking up the module's code in the store. Measured with
//! callgrind (`benches/instructions.sh`): instantiation took 78.8K machine
//! instructions with the 28 imports and takes 53.6K without, a hello-world
//! request 347.1K and 325.2K.
//!
//! How: the core module imports the shim's table itself, under
//! [`SHIM_ARGUMENT`], and each of those imports becomes a function of the
//! core module that calls the same slot of that table (`prune`'s
//! [`Stub::TableSlot`]). A call goes through the same table to the same
//! lowered function as before, by a direct call to the stub where it was an
//! imported call to the shim's function. The component changes in two
//! places only: the core module, and its instantiation, which gets the
//! shim's instance as one more argument. No index of the component moves,
//! and the shim keeps its functions (now unused), so every alias of them
//! still resolves.
//!
//! The shim is recognized by its shape, not trusted to keep it: a module with
//! no imports, one table, and functions that each only pass their
//! parameters to a fixed slot of that table. Anything else in the component
//! is left as it is; the result is validated.

use crate::prune::{self, Stub, TableImport};
use crate::sections::{
    push_section, sections, Section, ALIAS_SECTION, CANONICAL_SECTION, CORE_INSTANCE_SECTION, CORE_MODULE_SECTION,
};
use std::collections::HashMap;
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{Encode, ModuleArg};
use wasmparser::{
    CanonicalFunction, ComponentAlias, ComponentAliasSectionReader, ComponentCanonicalSectionReader,
    ComponentOuterAliasKind, ExternalKind, Instance, InstanceSectionReader, Operator, Parser, Payload,
};

/// The name under which the engine's core module imports the shim's table:
/// the module name of the import, and of the instantiation argument that
/// provides it.
pub const SHIM_ARGUMENT: &str = "edgefn:shim";

/// `component` with its core module calling the shim's table directly (see
/// the module documentation).
pub fn call_through_shim_table(component: &[u8]) -> Result<Vec<u8>, String> {
    let sections = sections(component)?;
    let spaces = IndexSpaces::of(&sections)?;

    let shims: HashMap<u32, Shim> = spaces
        .module_sections
        .iter()
        .enumerate()
        .filter_map(|(index, section)| Some((index as u32, Shim::recognize(sections[(*section)?].contents)?)))
        .collect();
    if shims.len() != 1 {
        return Err(format!("expected one shim module in the engine component, found {}", shims.len()));
    }
    let (&shim_module, shim) = shims.iter().next().expect("one shim");

    // The module instance whose arguments hold the shim's functions.
    let mut rerouted = None;
    for (instance, entry) in spaces.instances.iter().enumerate() {
        let CoreInstance::Instantiate { module, args } = entry else { continue };
        let mut removals = Vec::new();
        let mut shim_instances = Vec::new();
        for &(import_module, bag) in args {
            let Some(CoreInstance::Exports(exports)) = spaces.instances.get(bag as usize) else { continue };
            for &(field, kind, index) in exports {
                if kind != ExternalKind::Func {
                    continue;
                }
                let Some(CoreFunc::Export { instance: from, name }) = spaces.funcs.get(index as usize) else { continue };
                let Some(CoreInstance::Instantiate { module: from_module, .. }) = spaces.instances.get(*from as usize) else { continue };
                if *from_module != shim_module {
                    continue;
                }
                let slot = *shim.slots.get(*name).ok_or_else(|| format!("the shim exports no function {name:?}"))?;
                removals.push((import_module, field, Stub::TableSlot(slot)));
                shim_instances.push(*from);
            }
        }
        if removals.is_empty() {
            continue;
        }
        shim_instances.sort_unstable();
        shim_instances.dedup();
        let [shim_instance] = shim_instances[..] else {
            return Err(format!("core instance {instance} imports from {} shim instances", shim_instances.len()));
        };
        if rerouted.is_some() {
            return Err("more than one core instance imports the shim's functions".into());
        }
        rerouted = Some((instance as u32, *module, shim_instance, removals));
    }
    let Some((main_instance, main_module, shim_instance, removals)) = rerouted else {
        return Err("no core instance imports the shim's functions".into());
    };
    let instantiations = spaces
        .instances
        .iter()
        .filter(|entry| matches!(entry, CoreInstance::Instantiate { module, .. } if *module == main_module))
        .count();
    if instantiations != 1 {
        return Err(format!("the core module is instantiated {instantiations} times; rewriting it would change them all"));
    }

    let main_section = spaces.module_sections[main_module as usize].ok_or("the core module is not defined in the component")?;
    let main = sections[main_section].contents;
    let table = TableImport { module: SHIM_ARGUMENT, name: &shim.table_name, ty: shim.table_type };
    let (rewritten, removed) = prune::prune(main, &removals, Some(table)).map_err(|e| e.to_string())?;
    if removed.len() != removals.len() {
        return Err(format!("{} of the shim's {} functions matched an import of the core module", removed.len(), removals.len()));
    }

    let mut out = component[..8].to_vec();
    let mut instance_index = 0;
    for (position, section) in sections.iter().enumerate() {
        match section.id {
            CORE_MODULE_SECTION if position == main_section => push_section(&mut out, section.id, &rewritten),
            CORE_INSTANCE_SECTION => {
                let entries = read_instances(section)?;
                let first = instance_index;
                instance_index += entries.len() as u32;
                if !(first..instance_index).contains(&main_instance) {
                    push_section(&mut out, section.id, section.contents);
                    continue;
                }
                let mut rebuilt = wasm_encoder::InstanceSection::new();
                for (index, entry) in (first..).zip(entries) {
                    match entry {
                        Instance::Instantiate { module_index, args } => {
                            let mut args: Vec<(&str, ModuleArg)> =
                                args.iter().map(|arg| (arg.name, ModuleArg::Instance(arg.index))).collect();
                            if index == main_instance {
                                args.push((SHIM_ARGUMENT, ModuleArg::Instance(shim_instance)));
                            }
                            rebuilt.instantiate(module_index, args);
                        }
                        Instance::FromExports(exports) => {
                            let exports = exports
                                .iter()
                                .map(|export| Ok((export.name, RoundtripReencoder.export_kind(export.kind)?, export.index)))
                                .collect::<Result<Vec<_>, wasm_encoder::reencode::Error>>()
                                .map_err(|e| format!("re-encoding a core instance: {e}"))?;
                            rebuilt.export_items(exports);
                        }
                    }
                }
                out.push(section.id);
                rebuilt.encode(&mut out);
            }
            _ => push_section(&mut out, section.id, section.contents),
        }
    }

    wasmparser::Validator::new()
        .validate_all(&out)
        .map_err(|e| format!("the component with its core module calling the shim's table is invalid: {e}"))?;
    Ok(out)
}

fn read_instances<'a>(section: &Section<'a>) -> Result<Vec<Instance<'a>>, String> {
    let invalid = |e: wasmparser::BinaryReaderError| format!("reading a core instance section: {e}");
    InstanceSectionReader::new(section.reader())
        .and_then(|reader| reader.into_iter().collect())
        .map_err(invalid)
}

enum CoreInstance<'a> {
    Instantiate { module: u32, args: Vec<(&'a str, u32)> },
    Exports(Vec<(&'a str, ExternalKind, u32)>),
}

enum CoreFunc<'a> {
    /// An alias of a core instance's export.
    Export { instance: u32, name: &'a str },
    /// Made by a canonical built-in (a lowered import, a resource drop...).
    Canonical,
}

/// The component's core index spaces that the rewrite reads: modules (the
/// section of each one defined in it), instances and functions.
struct IndexSpaces<'a> {
    module_sections: Vec<Option<usize>>,
    instances: Vec<CoreInstance<'a>>,
    funcs: Vec<CoreFunc<'a>>,
}

impl<'a> IndexSpaces<'a> {
    fn of(sections: &[Section<'a>]) -> Result<Self, String> {
        let invalid = |e: wasmparser::BinaryReaderError| format!("reading the engine component: {e}");
        let mut spaces = IndexSpaces { module_sections: Vec::new(), instances: Vec::new(), funcs: Vec::new() };
        for (position, section) in sections.iter().enumerate() {
            let reader = section.reader();
            match section.id {
                CORE_MODULE_SECTION => spaces.module_sections.push(Some(position)),
                CORE_INSTANCE_SECTION => {
                    for entry in read_instances(section)? {
                        spaces.instances.push(match entry {
                            Instance::Instantiate { module_index, args } => CoreInstance::Instantiate {
                                module: module_index,
                                args: args.iter().map(|arg| (arg.name, arg.index)).collect(),
                            },
                            Instance::FromExports(exports) => CoreInstance::Exports(
                                exports.iter().map(|export| (export.name, export.kind, export.index)).collect(),
                            ),
                        });
                    }
                }
                ALIAS_SECTION => {
                    for alias in ComponentAliasSectionReader::new(reader).map_err(invalid)? {
                        match alias.map_err(invalid)? {
                            ComponentAlias::CoreInstanceExport { kind: ExternalKind::Func, instance_index, name } => {
                                spaces.funcs.push(CoreFunc::Export { instance: instance_index, name });
                            }
                            ComponentAlias::Outer { kind: ComponentOuterAliasKind::CoreModule, .. } => {
                                spaces.module_sections.push(None);
                            }
                            _ => {}
                        }
                    }
                }
                CANONICAL_SECTION => {
                    for function in ComponentCanonicalSectionReader::new(reader).map_err(invalid)? {
                        // Every canonical built-in but `lift` defines a core function.
                        if !matches!(function.map_err(invalid)?, CanonicalFunction::Lift { .. }) {
                            spaces.funcs.push(CoreFunc::Canonical);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(spaces)
    }
}

/// wit-component's shim module: its table, and the slot each exported
/// function calls.
struct Shim {
    table_name: String,
    table_type: wasmparser::TableType,
    /// Export name → the table slot that function calls.
    slots: HashMap<String, u32>,
}

impl Shim {
    /// `module`'s table and slots if it has the shim's shape, else `None`.
    fn recognize(module: &[u8]) -> Option<Shim> {
        let mut tables = Vec::new();
        let mut slot_of_function = Vec::new();
        let mut exports = Vec::new();
        for payload in Parser::new(0).parse_all(module) {
            match payload.ok()? {
                Payload::ImportSection(section) => {
                    if section.count() > 0 {
                        return None;
                    }
                }
                Payload::TableSection(section) => {
                    for table in section {
                        tables.push(table.ok()?.ty);
                    }
                }
                Payload::ExportSection(section) => {
                    for export in section {
                        let export = export.ok()?;
                        exports.push((export.name.to_owned(), export.kind, export.index));
                    }
                }
                Payload::CodeSectionEntry(body) => slot_of_function.push(Self::called_slot(&body)?),
                _ => {}
            }
        }
        let [table_type] = tables[..] else { return None };
        let mut table_name = None;
        let mut slots = HashMap::new();
        for (name, kind, index) in exports {
            match kind {
                ExternalKind::Table => table_name = Some(name),
                ExternalKind::Func => {
                    slots.insert(name, *slot_of_function.get(index as usize)?);
                }
                _ => return None,
            }
        }
        (!slots.is_empty()).then_some(Shim { table_name: table_name?, table_type, slots })
    }

    /// The slot of table 0 a body calls if it does nothing else: passes its
    /// parameters in order, then `call_indirect` with a constant slot.
    fn called_slot(body: &wasmparser::FunctionBody<'_>) -> Option<u32> {
        let mut operators = body.get_operators_reader().ok()?;
        let mut next_local = 0;
        let mut slot = None;
        loop {
            match operators.read().ok()? {
                Operator::LocalGet { local_index } if local_index == next_local && slot.is_none() => next_local += 1,
                Operator::I32Const { value } if slot.is_none() => slot = Some(u32::try_from(value).ok()?),
                Operator::CallIndirect { table_index: 0, .. } if slot.is_some() => break,
                _ => return None,
            }
        }
        matches!(operators.read().ok()?, Operator::End).then_some(())?;
        operators.eof().then_some(slot?)
    }
}
