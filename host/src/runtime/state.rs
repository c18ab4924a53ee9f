//! What one step attempt's `Store` holds: its sandboxed WASI context, its output guard and the
//! channel to the scheduler. The host imports (`log`, `emit`) are implemented here.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::MAX_MEMORY;
use super::bindings::{DynamicValue, OpError, Outputs, shoal};
use crate::exec::StepChannel;
use crate::outputs::{self, OutputGuard};
use crate::plan::Node;
use crate::step_error::StepError;

/// How much of a step's stdout and of its stderr is kept; the rest is dropped.
const CAPTURE_LIMIT: usize = 1 << 20;

pub struct StepState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    /// `None` while describing, when nothing may be emitted.
    step: Option<(OutputGuard, StepChannel)>,
    stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
}

impl StepState {
    /// State for calling `describe`: no grants, nothing to emit to.
    pub fn describing() -> Self {
        Self::with_wasi(WasiCtx::builder(), None)
    }

    /// State for one attempt of `node`: only the directories the job grants it.
    pub fn new(node: &Node, channel: StepChannel) -> Result<Self, StepError> {
        let mut wasi = WasiCtx::builder();
        for dir in &node.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|err| {
                    StepError::Instantiate(format!(
                        "cannot grant directory `{}`: {err:#}",
                        dir.host.display()
                    ))
                })?;
        }
        Ok(Self::with_wasi(
            wasi,
            Some((OutputGuard::new(&node.op), channel)),
        ))
    }

    fn with_wasi(
        mut wasi: wasmtime_wasi::WasiCtxBuilder,
        step: Option<(OutputGuard, StepChannel)>,
    ) -> Self {
        let stdout = MemoryOutputPipe::new(CAPTURE_LIMIT);
        let stderr = MemoryOutputPipe::new(CAPTURE_LIMIT);
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        StepState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_MEMORY)
                .trap_on_grow_failure(true)
                .build(),
            step,
            stdout,
            stderr,
        }
    }

    /// Turns what `run` returned into the step's outputs: returned dynamic values go through the
    /// same checks as yielded ones, after them; captured stdout and stderr become log events.
    pub fn finish(
        self,
        returned: Result<Result<Outputs, OpError>, StepError>,
    ) -> Result<Vec<(String, Vec<u8>)>, StepError> {
        let (mut guard, channel) = self.step.expect("finish is only called on step states");
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = pipe.contents();
            if !text.is_empty() {
                channel.log(stream, String::from_utf8_lossy(&text).into_owned());
            }
        }
        if let Some(err) = guard.violation() {
            return Err(err.clone());
        }
        let outputs = match returned? {
            Ok(outputs) => outputs,
            Err(OpError::Failed(message)) => return Err(StepError::OpFailed(message)),
            Err(OpError::RetryRequested(message)) => {
                return Err(StepError::RetryRequested(message));
            }
            Err(OpError::BadInput(message)) => return Err(StepError::BadInput(message)),
        };
        for value in outputs.dynamic {
            let accepted = guard.accept_dynamic(outputs::DynamicValue {
                output: value.output,
                key: value.mapping_key,
                value: value.value,
            })?;
            channel.emit(accepted);
        }
        guard.finish(
            outputs
                .values
                .into_iter()
                .map(|v| (v.name, v.value))
                .collect(),
        )
    }
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl shoal::op::types::Host for StepState {}

impl shoal::op::log::Host for StepState {
    fn log(&mut self, level: shoal::op::log::Level, message: String) {
        use shoal::op::log::Level;
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        if let Some((_, channel)) = &self.step {
            channel.log(level, message);
        }
    }
}

impl shoal::op::emit::Host for StepState {
    fn yield_output(&mut self, value: DynamicValue) -> Result<(), String> {
        let Some((guard, channel)) = &mut self.step else {
            return Err("outputs cannot be yielded while describing".to_string());
        };
        let value = outputs::DynamicValue {
            output: value.output,
            key: value.mapping_key,
            value: value.value,
        };
        let accepted = guard.accept_dynamic(value).map_err(|err| err.to_string())?;
        channel.emit(accepted);
        Ok(())
    }
}
