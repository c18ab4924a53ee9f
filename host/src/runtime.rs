//! The Wasm side: one engine per process, shared by its runs, each component compiled once per
//! process (found again by the digest of its bytes) and pre-instantiated, and every step attempt
//! in a fresh `Store` with a deny-by-default WASI context.

mod bindings;
mod budget;
mod compile_cache;
pub mod footprint;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::digest::Digest;
use crate::exec::{StepCall, StepChannel, StepRunner};
use crate::limits::{Limits, MAX_MEMORY};
use crate::op_info::OpInfo;
use crate::step_error::StepError;
use crate::value::NamedValues;
use bindings::OpPre;
use footprint::Footprint;
use state::StepState;

/// How often the epoch advances: the granularity of step timeouts and of yielding to the
/// scheduler.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of a pooled memory or table stays mapped between steps, reset with memset rather
/// than madvise. The fanout bench's raw figure per call, without `pagemap_scan`: 43 µs with
/// none, 32 µs with 1 MiB (which memsets more than a small op touches), 25 µs with 256 KiB;
/// with it, 11 µs, and 1 to 8 MiB did no better (BENCHMARKS.md). With `pagemap_scan` a
/// memory keeps more than this when its components' initial memories are larger
/// ([`memory_keep_resident`]).
const KEEP_RESIDENT: usize = 256 << 10;

/// The most of one pooled memory kept resident between steps, whatever its initial size.
const MAX_KEEP_RESIDENT: usize = 32 << 20;

/// How much of each pooled memory stays resident between steps, for components whose largest
/// initial memory is `memory_bytes`. With `PAGEMAP_SCAN` (`pagemap`), wasmtime copies back from
/// the memory image the pages that are resident and written (by this step or by an earlier one
/// whose pages were kept), up to this many bytes and in at most 32 runs of pages, and gives the
/// rest back with madvise, to be faulted in again (read, then copy-on-write) by the next step.
/// An interpreter's heap lies in its initial memory (componentize-py and jco snapshot the
/// initialised interpreter), and every step writes across it: QuickJS's 1.6 MiB took 18 page
/// faults a step at 256 KiB and none at its own size. CPython's writes fall in more than 32
/// runs, so it takes about 210 a step either way (BENCHMARKS.md). Without `PAGEMAP_SCAN`,
/// keep-resident is a window memset or copied whole on every step, so it stays small.
fn memory_keep_resident(memory_bytes: u64, pagemap: bool) -> usize {
    if !pagemap {
        return KEEP_RESIDENT;
    }
    usize::try_from(memory_bytes)
        .unwrap_or(usize::MAX)
        .clamp(KEEP_RESIDENT, MAX_KEEP_RESIDENT)
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read component `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a WebAssembly file")]
    NotWasm { path: PathBuf },
    #[error("`{path}` is a core WebAssembly module, not a component; build it for wasm32-wasip2")]
    CoreModule { path: PathBuf },
    #[error("cannot compile component `{path}`: {message}")]
    Compile { path: PathBuf, message: String },
    #[error("component `{path}` does not implement the shoal:op interface: {message}")]
    NotAnOp { path: PathBuf, message: String },
    #[error("component `{path}` imports `{import}`, which the host does not provide to ops{hint}")]
    MissingImport {
        path: PathBuf,
        import: String,
        /// What to do about it, when known.
        hint: &'static str,
    },
    #[error("component `{path}` failed to describe its ops: {message}")]
    Describe { path: PathBuf, message: String },
    #[error("component `{path}`: {message}")]
    BadDescription { path: PathBuf, message: String },
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    #[error("cannot use the compiled-component cache `{path}`: {message}")]
    Cache { path: PathBuf, message: String },
}

/// Why a run cannot use an engine: it needs more of a setting than the engine was built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the run needs `{setting}` = {needed}, but the engine was built for {built}")]
pub struct EngineTooSmall {
    pub setting: &'static str,
    pub needed: u64,
    pub built: u64,
}

/// What an engine is built for, and what a run needs of the engine it runs on: the instance
/// pool is sized for `max_concurrent` steps of components of `footprint`, and the wasm stack is
/// an engine setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSize {
    pub max_concurrent: usize,
    /// Bytes of wasm stack of every step.
    pub wasm_stack: u64,
    pub footprint: Footprint,
}

impl EngineSize {
    /// What a run of at most `max_concurrent` steps at once of the components in `files` needs,
    /// with `wasm_stack` bytes of wasm stack (default 512 KiB).
    pub fn for_run(
        max_concurrent: usize,
        wasm_stack: Option<u64>,
        files: &[ComponentFile],
    ) -> EngineSize {
        EngineSize {
            max_concurrent,
            wasm_stack: wasm_stack.unwrap_or(DEFAULT_WASM_STACK),
            footprint: footprint(files),
        }
    }

    /// Room for a run needing `self` and for one needing `other`.
    pub fn union(&self, other: &EngineSize) -> EngineSize {
        EngineSize {
            max_concurrent: self.max_concurrent.max(other.max_concurrent),
            wasm_stack: self.wasm_stack.max(other.wasm_stack),
            footprint: self.footprint.max(other.footprint),
        }
    }

    /// Checks that a run needing `self` fits an engine built for `built`, setting by setting.
    pub fn check_fits(&self, built: &EngineSize) -> Result<(), EngineTooSmall> {
        let (needs, has) = (&self.footprint, &built.footprint);
        let settings = [
            (
                "max_concurrent",
                self.max_concurrent as u64,
                built.max_concurrent as u64,
            ),
            ("wasm_stack", self.wasm_stack, built.wasm_stack),
            (
                "core_instances",
                needs.core_instances.into(),
                has.core_instances.into(),
            ),
            ("memories", needs.memories.into(), has.memories.into()),
            ("tables", needs.tables.into(), has.tables.into()),
            (
                "memories_per_module",
                needs.memories_per_module.into(),
                has.memories_per_module.into(),
            ),
            (
                "tables_per_module",
                needs.tables_per_module.into(),
                has.tables_per_module.into(),
            ),
            ("table_elements", needs.table_elements, has.table_elements),
        ];
        match settings
            .into_iter()
            .find(|(_, needed, built)| needed > built)
        {
            Some((setting, needed, built)) => Err(EngineTooSmall {
                setting,
                needed,
                built,
            }),
            None => Ok(()),
        }
    }
}

/// A compiled, pre-linked component and the ops it describes.
pub struct LoadedComponent {
    pre: OpPre,
    /// The digest of the component's bytes, by which steps name it.
    pub digest: Digest,
    pub ops: Vec<OpInfo>,
    /// How long compiling (or loading from the cache) took, and whether it was compiled.
    pub compile: CompileReport,
}

/// How a component's machine code was obtained.
#[derive(Debug, Clone, Copy)]
pub struct CompileReport {
    pub elapsed: Duration,
    /// False when the code came from the compiled-component cache.
    pub compiled: bool,
}

/// The wasm stack of every step unless the job sets `[execution] wasm_stack`.
pub const DEFAULT_WASM_STACK: u64 = 512 << 10;

/// How long a component may take to describe its ops.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a step waits before trying again when the instance pool is momentarily full.
const POOL_RETRY: Duration = Duration::from_millis(2);

/// A component file's bytes, read before the engine is built so that the instance pool can be
/// sized for it.
pub struct ComponentFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl ComponentFile {
    pub fn read(path: &Path) -> Result<ComponentFile, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ComponentFile {
            path: path.to_path_buf(),
            bytes,
        })
    }
}

/// Pool room for one instance of any of `files`: at least what a Rust component needs; a file
/// that cannot be read as a component fails to compile later, with a clearer error.
pub fn footprint(files: &[ComponentFile]) -> Footprint {
    files
        .iter()
        .filter_map(|file| footprint::of_component(&file.bytes).ok())
        .fold(Footprint::RUST, Footprint::max)
}

/// The engine, the linker with Shoal's and WASI's imports, and the components loaded so far:
/// one per process, shared by every run (`Arc<Runtime>`).
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    cache: Option<wasmtime::Cache>,
    size: EngineSize,
    /// Every component loaded, by the digest of its bytes: compiled once per process.
    components: RwLock<HashMap<Digest, Arc<LoadedComponent>>>,
}

impl Runtime {
    /// An engine whose instance pool has room for `size.max_concurrent` steps at once of
    /// components that each take at most `size.footprint` (see [`footprint`]), giving every
    /// step `size.wasm_stack` bytes of wasm stack. With `cache`, compiled components are kept in
    /// that directory and reused by later processes.
    pub fn new(size: EngineSize, cache: Option<&Path>) -> Result<Self, LoadError> {
        let EngineSize {
            max_concurrent,
            wasm_stack,
            footprint,
        } = size;
        let engine_error = |err: wasmtime::Error| LoadError::Engine(format!("{err:#}"));
        // Up to `max_concurrent` running steps, as many paused by backpressure, and one spare.
        let slots = u32::try_from(max_concurrent.max(1) * 2 + 1).unwrap_or(u32::MAX);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(footprint.core_instances.max(1)))
            .total_memories(slots.saturating_mul(footprint.memories.max(1)))
            .total_tables(slots.saturating_mul(footprint.tables.max(1)))
            .max_memories_per_module(footprint.memories_per_module.max(1))
            .max_tables_per_module(footprint.tables_per_module.max(1))
            .table_elements(
                usize::try_from(footprint.table_elements)
                    .unwrap_or(usize::MAX)
                    .max(budget::MAX_TABLE_ELEMENTS),
            )
            .total_stacks(slots)
            // Each step's own memory limit is enforced by its store's limiter.
            .max_memory_size(MAX_MEMORY as usize)
            // Reset a reused slot's pages with memset instead of madvise: it saves page faults
            // and TLB shootdowns on every step. With PAGEMAP_SCAN (Linux 6.7+) only the pages
            // the step dirtied are reset, wherever they are: a Rust guest's stack and data sit
            // above 1 MiB, beyond the first-pages window.
            .linear_memory_keep_resident(memory_keep_resident(
                footprint.memory_bytes,
                PoolingAllocationConfig::is_pagemap_scan_available(),
            ))
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let wasm_stack = usize::try_from(wasm_stack)
            .map_err(|_| LoadError::Engine("`wasm_stack` is too large".to_string()))?;
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .consume_fuel(true)
            .max_wasm_stack(wasm_stack)
            // Host functions run on the rest of the async stack; keep 1 MiB for them.
            .async_stack_size(wasm_stack + (1 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let cache = cache.map(compile_cache::open).transpose()?;
        config.cache(cache.clone());
        let engine = Engine::new(&config).map_err(engine_error)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        bindings::add_to_linker(&mut linker).map_err(engine_error)?;

        // The ticker holds a weak reference so that it stops when the engine is dropped.
        let ticking = engine.weak();
        std::thread::spawn(move || {
            while let Some(engine) = ticking.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
        Ok(Runtime {
            engine,
            linker,
            cache,
            size,
            components: RwLock::default(),
        })
    }

    /// What the engine was built for.
    pub fn size(&self) -> EngineSize {
        self.size
    }

    /// Checks that a run needing `needs` can run on this engine.
    pub fn check_fits(&self, needs: &EngineSize) -> Result<(), EngineTooSmall> {
        needs.check_fits(&self.size)
    }

    /// The loaded component whose bytes have digest `digest`.
    pub fn component(&self, digest: &Digest) -> Option<Arc<LoadedComponent>> {
        let components = self.components.read().expect("component registry");
        components.get(digest).cloned()
    }

    /// Compiles the component at `path`, links it and asks it to describe its ops.
    pub async fn load(&self, path: &Path) -> Result<Arc<LoadedComponent>, LoadError> {
        let file = ComponentFile::read(path)?;
        self.load_bytes(path, &file.bytes).await
    }

    /// Like [`Runtime::load`], for bytes already read; `path` names them in errors. Bytes
    /// loaded before in this process give the same component, not compiled again.
    pub async fn load_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<LoadedComponent>, LoadError> {
        let digest = Digest::of(bytes);
        if let Some(loaded) = self.component(&digest) {
            return Ok(loaded);
        }
        check_header(path, bytes)?;
        let compile_error = |err: wasmtime::Error| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("{err:#}"),
        };
        let hits = || self.cache.as_ref().map(wasmtime::Cache::cache_hits);
        let hits_before = hits();
        let start = Instant::now();
        let component = Component::new(&self.engine, bytes).map_err(compile_error)?;
        let compile = CompileReport {
            elapsed: start.elapsed(),
            compiled: hits() == hits_before,
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|err| missing_import(path, &err))?;
        let pre = OpPre::new(&self.engine, pre).map_err(|message| LoadError::NotAnOp {
            path: path.to_path_buf(),
            message,
        })?;

        let limits = Limits::DEFAULT;
        let mut store = self.store(StepState::describing(&limits), &limits);
        let describe_error = |message: String| LoadError::Describe {
            path: path.to_path_buf(),
            message,
        };
        let describe = async {
            let instance = pre.instantiate(&mut store).await?;
            instance.describe(&mut store).await
        };
        let ops = match tokio::time::timeout(DESCRIBE_TIMEOUT, describe).await {
            Err(_) => Err(format!("no answer within {DESCRIBE_TIMEOUT:?}")),
            // Said as a step's trap is: the guest's panic message, its limits, its call stack.
            Ok(Err(err)) => {
                let err = store.data().classify(&err, true, &limits);
                Err(match err.backtrace() {
                    Some(backtrace) => format!("{err}\n{backtrace}"),
                    None => err.to_string(),
                })
            }
            Ok(Ok(ops)) => Ok(ops),
        }
        .map_err(describe_error)?;
        check_description(&ops).map_err(|message| LoadError::BadDescription {
            path: path.to_path_buf(),
            message,
        })?;
        let loaded = Arc::new(LoadedComponent {
            pre,
            digest,
            ops,
            compile,
        });
        // Two runs may have loaded the same bytes at once: both get the first one registered.
        let mut components = self.components.write().expect("component registry");
        Ok(components.entry(digest).or_insert(loaded).clone())
    }

    fn store(&self, state: StepState, limits: &Limits) -> Store<StepState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store
            .set_fuel(limits.fuel)
            .expect("fuel is enabled in the engine config");
        store.set_hostcall_fuel(usize::try_from(hostcall_fuel(limits)).unwrap_or(usize::MAX));
        // Yield to the scheduler at every tick so that a busy guest cannot starve the other
        // steps on its thread, and so that the step's timeout can fire.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
        store
    }
}

impl LoadedComponent {
    /// Instantiates the component in a fresh store, calls op `name` once and drops the store:
    /// the bare cost of a step with no scheduling, output checks or events. Benchmarks measure
    /// `host run` against it.
    pub async fn call_once(
        &self,
        runtime: &Runtime,
        name: &str,
        inputs: NamedValues,
    ) -> wasmtime::Result<()> {
        let limits = Limits::DEFAULT;
        let mut store = runtime.store(StepState::describing(&limits), &limits);
        let instance = self.pre.instantiate(&mut store).await?;
        let ctx = bindings::Context {
            run_id: String::new(),
            step_key: name.to_string(),
            mapping_keys: Vec::new(),
            attempt: 1,
            config: Vec::new(),
            tags: Vec::new(),
        };
        let inputs = wit_inputs(inputs);
        let returned = instance.run(&mut store, name, &ctx, &inputs).await?;
        returned
            .map(drop)
            .map_err(|err| wasmtime::format_err!("op `{name}` failed: {err:?}"))
    }
}

/// The most bytes a guest may hand the host in one call (wasmtime's hostcall fuel). A guest
/// can only pass what its memory holds, so this is its memory limit, or the step output limit if
/// larger: a log message or an output past its own limit then reaches the check that names it
/// (`log_limit`, `output_too_large`, ...). Only a call whose arguments alias the same memory
/// many times over exceeds it.
pub(crate) fn hostcall_fuel(limits: &Limits) -> u64 {
    limits
        .memory
        .max(limits.max_step_output_size)
        .saturating_add(1 << 20)
}

/// Inputs as the `run` export takes them.
fn wit_inputs(inputs: NamedValues) -> Vec<bindings::NamedValue> {
    inputs
        .into_iter()
        .map(|(name, value)| bindings::NamedValue { name, value })
        .collect()
}

/// Names the import the linker could not satisfy (wasmtime says "component imports instance
/// `NAME`, but a matching implementation was not found in the linker") and how to avoid it.
fn missing_import(path: &Path, err: &wasmtime::Error) -> LoadError {
    let outer = err.to_string();
    let import = outer
        .split('`')
        .nth(1)
        .map_or_else(|| format!("{err:#}"), str::to_string);
    let hint = if import.starts_with("wasi:http/") {
        "; ops have no network access: build the component without wasi:http (a Rust op must \
         not depend on an HTTP client; componentize-py and jco need a world without wasi:http)"
    } else if import.starts_with("shoal:op/") {
        "; this host implements shoal:op@0.3.0 (`wit/op.wit`), 0.2.0 and 0.1.0: build the \
         component against one of them"
    } else {
        "; ops may import WASI 0.2 (wasi:cli, clocks, filesystem, io, random, sockets) and \
         shoal:op/log, shoal:op/emit and shoal:op/events"
    };
    LoadError::MissingImport {
        path: path.to_path_buf(),
        import,
        hint,
    }
}

/// Distinguishes a core module from a component before compiling, for a clearer error.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    match bytes {
        [0x00, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00, ..] => Err(LoadError::CoreModule {
            path: path.to_path_buf(),
        }),
        [0x00, b'a', b's', b'm', ..] => Ok(()),
        _ => Err(LoadError::NotWasm {
            path: path.to_path_buf(),
        }),
    }
}

/// Rejects descriptions the rest of the host relies on not seeing: bad or repeated names.
fn check_description(ops: &[OpInfo]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for op in ops {
        crate::name::check(&op.name)
            .map_err(|reason| format!("invalid op name `{}`: {reason}", op.name))?;
        if !names.insert(op.name.as_str()) {
            return Err(format!("op `{}` is described twice", op.name));
        }
        let mut inputs = std::collections::HashSet::new();
        let schemas = (op
            .config_schema
            .iter()
            .map(|schema| ("config".to_string(), schema)))
        .chain(op.inputs.iter().filter_map(|input| {
            let schema = input.schema.as_ref()?;
            Some((format!("input `{}`", input.name), schema))
        }))
        .chain(op.outputs.iter().filter_map(|output| {
            let schema = output.schema.as_ref()?;
            Some((format!("output `{}`", output.name), schema))
        }));
        for (what, schema) in schemas {
            crate::schema::compile(schema)
                .map_err(|reason| format!("op `{}`: {what}: {reason}", op.name))?;
        }
        for input in op.inputs.iter().map(|input| &input.name) {
            crate::name::check(input).map_err(|reason| {
                format!(
                    "op `{}` has an invalid input name `{input}`: {reason}",
                    op.name
                )
            })?;
            if !inputs.insert(input.as_str()) {
                return Err(format!("op `{}` declares input `{input}` twice", op.name));
            }
        }
        let mut outputs = std::collections::HashSet::new();
        for output in &op.outputs {
            crate::name::check(&output.name).map_err(|reason| {
                format!(
                    "op `{}` has an invalid output name `{}`: {reason}",
                    op.name, output.name
                )
            })?;
            if !outputs.insert(output.name.as_str()) {
                return Err(format!(
                    "op `{}` declares output `{}` twice",
                    op.name, output.name
                ));
            }
        }
    }
    Ok(())
}

/// Runs step calls on a shared engine, each with the component its call names by digest.
pub struct WasmRunner {
    runtime: Arc<Runtime>,
}

impl WasmRunner {
    /// Runs steps of components loaded into `runtime`.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        WasmRunner { runtime }
    }
}

impl StepRunner for WasmRunner {
    /// One attempt in a fresh store: instantiate, run under the op's limits and timeout, then
    /// check what the op produced. When the instance pool is momentarily full (more components
    /// of a larger shape than it was sized for are running), the step waits for room, and the
    /// wait does not count against its timeout.
    async fn run(&self, call: StepCall, channel: StepChannel) -> Result<NamedValues, StepError> {
        let component = self.runtime.component(&call.component).ok_or_else(|| {
            StepError::Instantiate(format!("component `{}` is not loaded", call.component))
        })?;
        let op = component
            .ops
            .iter()
            .find(|op| op.name == call.op)
            .ok_or_else(|| {
                StepError::Instantiate(format!(
                    "component `{}` has no op `{}`",
                    call.component, call.op
                ))
            })?;
        let limits = call.limits;
        let pre = &component.pre;
        let started = tokio::time::Instant::now();
        let mut pool_wait = Duration::ZERO;
        let (mut store, instantiated) = loop {
            let mut store = self.runtime.store(
                StepState::new(op, &limits, &call.grants, channel.clone())?,
                &limits,
            );
            let instantiated = within(limits.timeout, &channel, pre.instantiate(&mut store)).await;
            match instantiated {
                Some(Err(err))
                    if err.is::<wasmtime::PoolConcurrencyLimitError>()
                        && pool_wait < limits.timeout =>
                {
                    drop(store);
                    tokio::time::sleep(POOL_RETRY).await;
                    pool_wait += POOL_RETRY;
                }
                instantiated => break (store, instantiated),
            }
        };
        let instance = match instantiated {
            None => {
                return store
                    .into_data()
                    .finish(Err(StepError::Timeout(limits.timeout)));
            }
            Some(Err(err)) => {
                let err = store.data().classify(&err, true, &limits);
                return store.into_data().finish(Err(err));
            }
            Some(Ok(instance)) => instance,
        };
        let context = call.context;
        let ctx = bindings::Context {
            run_id: context.run_id,
            step_key: context.step_key,
            mapping_keys: context.mapping_keys,
            attempt: context.attempt,
            config: context.config,
            tags: context
                .tags
                .into_iter()
                .map(|(key, value)| bindings::Tag { key, value })
                .collect(),
        };
        let inputs = wit_inputs(call.inputs);
        let left = limits
            .timeout
            .saturating_sub(started.elapsed().saturating_sub(pool_wait));
        let run = instance.run(&mut store, &call.op, &ctx, &inputs);
        let returned = match within(left, &channel, run).await {
            None => Err(StepError::Timeout(limits.timeout)),
            Some(Ok(returned)) => Ok(returned),
            Some(Err(err)) => Err(store.data().classify(&err, false, &limits)),
        };
        store.into_data().finish(returned)
    }
}

/// Runs `work` for at most `limit`, not counting the time the step spent paused by
/// backpressure (`channel` tells).
async fn within<F: Future>(limit: Duration, channel: &StepChannel, work: F) -> Option<F::Output> {
    let start = tokio::time::Instant::now();
    let mut work = std::pin::pin!(work);
    loop {
        let deadline = start + limit + channel.paused_for();
        match tokio::time::timeout_at(deadline, &mut work).await {
            Ok(output) => return Some(output),
            Err(_) if start + limit + channel.paused_for() <= tokio::time::Instant::now() => {
                return None;
            }
            Err(_) => {}
        }
    }
}

/// Loads the components in `files`, in order, reporting the first failure.
pub async fn load_all(
    runtime: &Runtime,
    files: &[ComponentFile],
) -> Result<Vec<Arc<LoadedComponent>>, LoadError> {
    let mut loaded = Vec::new();
    for file in files {
        loaded.push(runtime.load_bytes(&file.path, &file.bytes).await?);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_needs_more_than_its_engine_was_built_for_is_refused() {
        let runtime = Runtime::new(EngineSize::for_run(2, None, &[]), None).expect("engine");
        let built = runtime.size();
        assert_eq!(runtime.check_fits(&built), Ok(()));
        let smaller = EngineSize {
            max_concurrent: 1,
            ..built
        };
        assert_eq!(runtime.check_fits(&smaller), Ok(()));
        let refused = |needs: EngineSize| runtime.check_fits(&needs).unwrap_err().to_string();
        assert_eq!(
            refused(EngineSize {
                max_concurrent: 3,
                ..built
            }),
            "the run needs `max_concurrent` = 3, but the engine was built for 2"
        );
        assert_eq!(
            refused(EngineSize::for_run(2, Some(1 << 20), &[])),
            "the run needs `wasm_stack` = 1048576, but the engine was built for 524288"
        );
        let python = Footprint {
            core_instances: 14,
            ..Footprint::RUST
        };
        assert_eq!(
            refused(EngineSize {
                footprint: python,
                ..built
            }),
            "the run needs `core_instances` = 14, but the engine was built for 4"
        );
    }

    #[test]
    fn a_memory_keeps_its_initial_size_resident_only_with_pagemap_scan() {
        let quickjs = 26 << 16;
        assert_eq!(memory_keep_resident(quickjs, true), quickjs as usize);
        assert_eq!(memory_keep_resident(quickjs, false), KEEP_RESIDENT);
        // Nothing known of the components: the floor.
        assert_eq!(memory_keep_resident(0, true), KEEP_RESIDENT);
        assert_eq!(memory_keep_resident(4 << 10, true), KEEP_RESIDENT);
        assert_eq!(memory_keep_resident(1 << 40, true), MAX_KEEP_RESIDENT);
        assert_eq!(memory_keep_resident(u64::MAX, true), MAX_KEEP_RESIDENT);
    }

    #[test]
    fn descriptions_follow_the_naming_rules_for_ops_inputs_and_outputs() {
        let op = |name: &str, inputs: &[&str], outputs: &[(&str, bool)]| {
            check_description(&[OpInfo::new(name, inputs, outputs)])
        };
        assert_eq!(op("ok", &["a", "b"], &[("result", false)]), Ok(()));
        assert_eq!(
            op("ok", &["a", "a"], &[]),
            Err("op `ok` declares input `a` twice".into())
        );
        assert_eq!(
            op("ok", &["a b"], &[]),
            Err("op `ok` has an invalid input name `a b`: it contains ' '; only ASCII letters, digits and `_` are allowed".into())
        );
        assert_eq!(
            op("ok", &[""], &[]),
            Err("op `ok` has an invalid input name ``: it is empty".into())
        );
        assert_eq!(
            op("a-b", &[], &[]),
            Err("invalid op name `a-b`: it contains '-'; only ASCII letters, digits and `_` are allowed".into())
        );
        assert_eq!(
            op("ok", &[], &[("x", true), ("x", false)]),
            Err("op `ok` declares output `x` twice".into())
        );
    }
}
