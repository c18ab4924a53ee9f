//! What one instance of a component takes from the instance pool: core instances, memories and
//! tables. Read from the component's bytes before the engine exists, because the pool is sized
//! when the engine is built: a Rust op component needs 4 core instances, a Python one
//! (componentize-py) 14.

use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentTypeRef, Instance, Parser, Payload,
};

/// Pool slots one instance of a component needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub core_instances: u32,
    pub memories: u32,
    pub tables: u32,
    /// The most memories any one of its core modules defines.
    pub memories_per_module: u32,
    /// The most tables any one of its core modules defines.
    pub tables_per_module: u32,
    /// The largest initial size of any table, in elements.
    pub table_elements: u64,
    /// The largest initial size of any memory, in bytes: where an interpreter's heap image lies
    /// (componentize-py and jco snapshot the initialised interpreter into it). Not a limit:
    /// it sizes how much of a memory the pool keeps resident between steps.
    pub memory_bytes: u64,
}

impl Footprint {
    /// What a Rust component built for `wasm32-wasip2` needs: the least the pool is sized for.
    pub const RUST: Footprint = Footprint {
        core_instances: 4,
        memories: 2,
        tables: 4,
        memories_per_module: 1,
        tables_per_module: 1,
        table_elements: 0,
        memory_bytes: 0,
    };

    /// Room for any one of `self` and `other`.
    pub fn max(self, other: Footprint) -> Footprint {
        Footprint {
            core_instances: self.core_instances.max(other.core_instances),
            memories: self.memories.max(other.memories),
            tables: self.tables.max(other.tables),
            memories_per_module: self.memories_per_module.max(other.memories_per_module),
            tables_per_module: self.tables_per_module.max(other.tables_per_module),
            table_elements: self.table_elements.max(other.table_elements),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
        }
    }

    fn add(&mut self, other: &Footprint) {
        self.core_instances = self.core_instances.saturating_add(other.core_instances);
        self.memories = self.memories.saturating_add(other.memories);
        self.tables = self.tables.saturating_add(other.tables);
        self.memories_per_module = self.memories_per_module.max(other.memories_per_module);
        self.tables_per_module = self.tables_per_module.max(other.tables_per_module);
        self.table_elements = self.table_elements.max(other.table_elements);
        self.memory_bytes = self.memory_bytes.max(other.memory_bytes);
    }
}

/// A component or core module being read; nested ones are read inside their parent.
enum Frame {
    /// A core module's own memories and tables.
    Module(Footprint),
    Component {
        /// What instantiating each entry of the core module index space takes (`None`:
        /// imported or aliased, unknown here).
        modules: Vec<Option<Footprint>>,
        components: Vec<Option<Footprint>>,
        /// What instantiating this component takes.
        total: Footprint,
    },
}

/// Adds up what instantiating the component in `bytes` takes. Counts are a lower bound for
/// components that instantiate imported modules or components; the pool is at least
/// [`Footprint::RUST`] per slot, and a step that finds the pool full waits rather than fails.
pub fn of_component(bytes: &[u8]) -> Result<Footprint, wasmparser::BinaryReaderError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut result = Footprint::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::Version { encoding, .. } => stack.push(match encoding {
                wasmparser::Encoding::Module => Frame::Module(Footprint::default()),
                wasmparser::Encoding::Component => Frame::Component {
                    modules: Vec::new(),
                    components: Vec::new(),
                    total: Footprint::default(),
                },
            }),
            Payload::MemorySection(reader) => {
                if let Some(Frame::Module(own)) = stack.last_mut() {
                    own.memories = own.memories.saturating_add(reader.count());
                    own.memories_per_module = own.memories;
                    for memory in reader {
                        let memory = memory?;
                        let page = 1u64
                            .checked_shl(memory.page_size_log2.unwrap_or(16))
                            .unwrap_or(u64::MAX);
                        own.memory_bytes =
                            own.memory_bytes.max(memory.initial.saturating_mul(page));
                    }
                }
            }
            Payload::TableSection(reader) => {
                if let Some(Frame::Module(own)) = stack.last_mut() {
                    own.tables = own.tables.saturating_add(reader.count());
                    own.tables_per_module = own.tables;
                    for table in reader {
                        own.table_elements = own.table_elements.max(table?.ty.initial);
                    }
                }
            }
            Payload::InstanceSection(reader) => {
                if let Some(Frame::Component { modules, total, .. }) = stack.last_mut() {
                    for instance in reader {
                        if let Instance::Instantiate { module_index, .. } = instance? {
                            let module = modules.get(module_index as usize).copied().flatten();
                            total.add(&Footprint {
                                core_instances: 1,
                                ..module.unwrap_or_default()
                            });
                        }
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                if let Some(Frame::Component {
                    components, total, ..
                }) = stack.last_mut()
                {
                    for instance in reader {
                        if let wasmparser::ComponentInstance::Instantiate {
                            component_index, ..
                        } = instance?
                        {
                            let nested =
                                components.get(component_index as usize).copied().flatten();
                            total.add(&nested.unwrap_or_default());
                        }
                    }
                }
            }
            // Index-space entries this reader cannot see into.
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    match import?.ty {
                        ComponentTypeRef::Module(_) => unknown(&mut stack, true),
                        ComponentTypeRef::Component(_) => unknown(&mut stack, false),
                        _ => {}
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    match alias? {
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Component,
                            ..
                        } => unknown(&mut stack, false),
                        ComponentAlias::Outer { kind, .. } => match kind {
                            wasmparser::ComponentOuterAliasKind::CoreModule => {
                                unknown(&mut stack, true);
                            }
                            wasmparser::ComponentOuterAliasKind::Component => {
                                unknown(&mut stack, false);
                            }
                            _ => {}
                        },
                        _ => {}
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    match export?.kind {
                        ComponentExternalKind::Module => unknown(&mut stack, true),
                        ComponentExternalKind::Component => unknown(&mut stack, false),
                        _ => {}
                    }
                }
            }
            Payload::End(_) => match stack.pop() {
                Some(Frame::Module(own)) => {
                    if let Some(Frame::Component { modules, .. }) = stack.last_mut() {
                        modules.push(Some(own));
                    }
                }
                Some(Frame::Component { total, .. }) => match stack.last_mut() {
                    Some(Frame::Component { components, .. }) => components.push(Some(total)),
                    _ => result = total,
                },
                None => {}
            },
            _ => {}
        }
    }
    Ok(result)
}

/// Records an entry of the current component's module (or component) index space whose
/// footprint is not known.
fn unknown(stack: &mut [Frame], module: bool) {
    if let Some(Frame::Component {
        modules,
        components,
        ..
    }) = stack.last_mut()
    {
        if module {
            modules.push(None);
        } else {
            components.push(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component with `modules` core modules of one memory and two tables each, each
    /// instantiated `times` times, as wasm-encoder writes it.
    fn component(modules: u32, times: u32) -> Vec<u8> {
        use wasm_encoder::{
            Component, InstanceSection, MemorySection, MemoryType, Module, ModuleSection, RefType,
            TableSection, TableType,
        };
        let mut module = Module::new();
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut tables = TableSection::new();
        for initial in [10, 300] {
            tables.table(TableType {
                element_type: RefType::FUNCREF,
                table64: false,
                minimum: initial,
                maximum: None,
                shared: false,
            });
        }
        module.section(&tables).section(&memories);
        let mut component = Component::new();
        for _ in 0..modules {
            component.section(&ModuleSection(&module));
        }
        let mut instances = InstanceSection::new();
        for index in 0..modules {
            for _ in 0..times {
                instances.instantiate(index, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
            }
        }
        component.section(&instances);
        component.finish()
    }

    #[test]
    fn counts_every_instantiation_with_its_memories_and_tables() {
        let footprint = of_component(&component(3, 2)).unwrap();
        assert_eq!(
            footprint,
            Footprint {
                core_instances: 6,
                memories: 6,
                tables: 12,
                memories_per_module: 1,
                tables_per_module: 2,
                table_elements: 300,
                memory_bytes: 64 << 10,
            }
        );
    }

    #[test]
    fn memory_bytes_is_the_largest_initial_memory_of_any_module() {
        use wasm_encoder::{Component, MemorySection, MemoryType, Module, ModuleSection};
        let module = |minimum: u64, page_size_log2: Option<u32>| {
            let mut memories = MemorySection::new();
            memories.memory(MemoryType {
                minimum,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2,
            });
            let mut module = Module::new();
            module.section(&memories);
            module
        };
        let mut component = Component::new();
        // 26 pages of 64 KiB (jco's QuickJS), and 100 one-byte pages.
        component.section(&ModuleSection(&module(26, None)));
        component.section(&ModuleSection(&module(100, Some(0))));
        let mut instances = wasm_encoder::InstanceSection::new();
        for index in 0..2 {
            instances.instantiate(index, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
        }
        component.section(&instances);
        let footprint = of_component(&component.finish()).unwrap();
        assert_eq!(footprint.memory_bytes, 26 << 16);
        assert_eq!(footprint.memories, 2);
    }

    #[test]
    fn a_core_module_alone_needs_nothing_counted() {
        assert_eq!(
            of_component(&wasm_encoder::Module::new().finish()).unwrap(),
            Footprint::default()
        );
    }
}
