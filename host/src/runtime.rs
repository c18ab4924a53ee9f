//! The Wasm side: one engine per run, each component compiled once and pre-instantiated, and
//! every step attempt in a fresh `Store` with a deny-by-default WASI context.

mod bindings;
mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::exec::{StepCall, StepChannel, StepRunner};
use crate::op_info::OpInfo;
use crate::plan::Plan;
use crate::step_error::StepError;
use bindings::{OpComponent, OpComponentPre};
use state::StepState;

/// How often the epoch advances: the granularity of step timeouts and of yielding to the
/// scheduler.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most linear memory one step may use, all memories together.
pub const MAX_MEMORY: usize = 256 << 20;

/// How much of a pooled memory or table stays mapped between steps.
const KEEP_RESIDENT: usize = 1 << 20;

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
    #[error("component `{path}` failed to describe its ops: {message}")]
    Describe { path: PathBuf, message: String },
    #[error("component `{path}`: {message}")]
    BadDescription { path: PathBuf, message: String },
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
}

/// A compiled, pre-linked component and the ops it describes.
pub struct LoadedComponent {
    pre: OpComponentPre<StepState>,
    pub ops: Vec<OpInfo>,
}

/// The engine, the linker with Shoal's and WASI's imports, and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    /// An engine whose instance pool has room for `max_concurrent` steps at once.
    pub fn new(max_concurrent: usize) -> Result<Self, LoadError> {
        let engine_error = |err: wasmtime::Error| LoadError::Engine(format!("{err:#}"));
        let slots = u32::try_from(max_concurrent.max(1) + 1).unwrap_or(u32::MAX);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(4))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(4))
            .total_stacks(slots)
            .max_memory_size(MAX_MEMORY)
            // Reset a reused slot's first pages with memset instead of madvise: it saves page
            // faults and TLB shootdowns on every step (measured by the fanout bench).
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_error)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        OpComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(engine_error)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                ticking.increment_epoch();
            }
        });
        Ok(Runtime {
            engine,
            linker,
            stop_ticker,
        })
    }

    /// Compiles the component at `path`, links it and asks it to describe its ops.
    pub async fn load(&self, path: &Path) -> Result<LoadedComponent, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        check_header(path, &bytes)?;
        let compile_error = |err: wasmtime::Error| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("{err:#}"),
        };
        let component = Component::new(&self.engine, &bytes).map_err(compile_error)?;
        let not_an_op = |err: wasmtime::Error| LoadError::NotAnOp {
            path: path.to_path_buf(),
            message: format!("{err:#}"),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(not_an_op)?;
        let pre = OpComponentPre::new(pre).map_err(not_an_op)?;

        let mut store = self.store(StepState::describing());
        let describe_error = |err: wasmtime::Error| LoadError::Describe {
            path: path.to_path_buf(),
            message: format!("{err:#}"),
        };
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(describe_error)?;
        let described = instance
            .shoal_op_op()
            .call_describe(&mut store)
            .await
            .map_err(describe_error)?;
        let ops: Vec<OpInfo> = described.into_iter().map(OpInfo::from).collect();
        check_description(&ops).map_err(|message| LoadError::BadDescription {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(LoadedComponent { pre, ops })
    }

    fn store(&self, state: StepState) -> Store<StepState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
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
        inputs: &[(String, Vec<u8>)],
    ) -> wasmtime::Result<()> {
        let mut store = runtime.store(StepState::describing());
        let instance = self.pre.instantiate_async(&mut store).await?;
        let ctx = bindings::Context {
            run_id: String::new(),
            step_key: name.to_string(),
            mapping_keys: Vec::new(),
            attempt: 1,
            config: Vec::new(),
        };
        let inputs: Vec<bindings::NamedValue> = inputs
            .iter()
            .map(|(name, value)| bindings::NamedValue {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        let returned = instance
            .shoal_op_op()
            .call_run(&mut store, name, &ctx, &inputs)
            .await?;
        returned
            .map(drop)
            .map_err(|err| wasmtime::format_err!("op `{name}` failed: {err:?}"))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
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
        if !names.insert(op.name.as_str()) {
            return Err(format!("op `{}` is described twice", op.name));
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

/// Runs the steps of one plan with its loaded components.
pub struct WasmRunner {
    runtime: Runtime,
    plan: Arc<Plan>,
    /// Indexed like [`Plan::components`].
    components: Vec<LoadedComponent>,
    step_timeout: Duration,
}

impl WasmRunner {
    pub fn new(
        runtime: Runtime,
        plan: Arc<Plan>,
        components: Vec<LoadedComponent>,
        step_timeout: Duration,
    ) -> Self {
        WasmRunner {
            runtime,
            plan,
            components,
            step_timeout,
        }
    }

    async fn attempt(
        &self,
        call: StepCall,
        channel: StepChannel,
    ) -> Result<Vec<(String, Vec<u8>)>, StepError> {
        let node = &self.plan.nodes[call.node];
        let state = StepState::new(node, channel)?;
        let stderr = state.stderr.clone();
        let mut store = self.runtime.store(state);
        let pre = &self.components[node.component].pre;
        let ctx = bindings::Context {
            run_id: call.run_id,
            step_key: call.step_key,
            mapping_keys: call.mapping_keys,
            attempt: call.attempt,
            config: node.config.clone(),
        };
        let inputs: Vec<bindings::NamedValue> = call
            .inputs
            .into_iter()
            .map(|(name, value)| bindings::NamedValue { name, value })
            .collect();
        let run = async {
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|err| StepError::Instantiate(format!("{err:#}")))?;
            instance
                .shoal_op_op()
                .call_run(&mut store, &node.op.name, &ctx, &inputs)
                .await
                .map_err(|err| trap(&err, &stderr.contents()))
        };
        let returned = match tokio::time::timeout(self.step_timeout, run).await {
            Err(_elapsed) => Err(StepError::Timeout(self.step_timeout)),
            Ok(result) => result,
        };
        store.into_data().finish(returned)
    }
}

/// A trap in plain words: what trapped, what the guest last wrote to stderr (a Rust panic
/// prints its message there) and, separately, the guest's call stack.
fn trap(err: &wasmtime::Error, stderr: &[u8]) -> StepError {
    let mut message = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    let stderr = String::from_utf8_lossy(stderr);
    let said: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("note: "))
        .collect();
    if !said.is_empty() {
        let said = said.join(" ");
        let start = said.len().saturating_sub(STDERR_IN_MESSAGE);
        let start = (start..said.len())
            .find(|&i| said.is_char_boundary(i))
            .unwrap_or(0);
        message = format!("{message}; guest stderr: {}", &said[start..]);
    }
    let backtrace = err
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| bt.to_string());
    StepError::Trap { message, backtrace }
}

/// How much of a trapped guest's stderr goes into the error message (the end of it).
const STDERR_IN_MESSAGE: usize = 512;

impl StepRunner for WasmRunner {
    async fn run(
        &self,
        call: StepCall,
        channel: StepChannel,
    ) -> Result<Vec<(String, Vec<u8>)>, StepError> {
        self.attempt(call, channel).await
    }
}

/// Loads every component of `plan`'s job, in order, reporting the first failure.
pub async fn load_all(
    runtime: &Runtime,
    paths: impl IntoIterator<Item = &PathBuf>,
) -> Result<Vec<LoadedComponent>, LoadError> {
    let mut loaded = Vec::new();
    for path in paths {
        loaded.push(runtime.load(path).await?);
    }
    Ok(loaded)
}
