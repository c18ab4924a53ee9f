//! What one step attempt's `Store` holds: its sandboxed WASI context, its memory and log
//! budgets, its output guard and the channel to the scheduler. The host imports (`log`, `emit`,
//! `events`) are implemented here, and traps are told apart here.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::current::shoal;
use super::bindings::{DynamicValue, MetadataEntry, MetadataValue, OpError, Outputs, UserEvent};
use super::budget::MemoryBudget;
use crate::exec::{Grants, LogLevel, StepChannel, Stream};
use crate::limits::{LOG_CALL_OVERHEAD, Limits};
use crate::op_info::OpInfo;
use crate::outputs::{self, OutputGuard};
use crate::step_error::StepError;
use crate::user_event::{self, Metadata, RawValue, UserEventError};
use crate::value::NamedValues;

/// How much of a trapped guest's stderr goes into the error message (the end of it).
const STDERR_IN_MESSAGE: usize = 512;

pub struct StepState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryBudget,
    /// `None` while describing, when nothing may be emitted.
    step: Option<(OutputGuard, StepChannel)>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Bytes of log messages the step may still send.
    log_left: u64,
    max_log_size: u64,
    log_exceeded: bool,
}

impl StepState {
    /// State for calling `describe`: no grants, nothing to emit to.
    pub fn describing(limits: &Limits) -> Self {
        Self::with_wasi(WasiCtx::builder(), None, limits)
    }

    /// State for one attempt of `op` under `limits`: only the directories and environment
    /// variables in `grants`.
    pub fn new(
        op: &OpInfo,
        limits: &Limits,
        grants: &Grants,
        channel: StepChannel,
    ) -> Result<Self, StepError> {
        let mut wasi = WasiCtx::builder();
        for dir in &grants.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            let cannot = |err: &dyn std::fmt::Display| {
                StepError::Instantiate(format!(
                    "cannot grant directory `{}`: {err:#}",
                    dir.host.display()
                ))
            };
            match &dir.root {
                // Opened beneath its root now, and handed over as the directory opened, so that
                // nothing planted since the job was checked can lead the step out of the root.
                #[cfg(target_os = "linux")]
                Some(root) => {
                    let opened = crate::beneath::open(root, &dir.host)
                        .map_err(|_| cannot(&"it is no longer a directory beneath its root"))?;
                    wasi.preopened_dir(opened.path(), &dir.guest, perms)
                        .map_err(|err| cannot(&err))?;
                }
                #[cfg(not(target_os = "linux"))]
                Some(_) => return Err(cannot(&"confined grants need Linux")),
                None => {
                    wasi.preopened_dir(&dir.host, &dir.guest, perms)
                        .map_err(|err| cannot(&err))?;
                }
            }
        }
        for (name, value) in &grants.env {
            wasi.env(name, value);
        }
        let guard = OutputGuard::new(op, limits);
        Ok(Self::with_wasi(wasi, Some((guard, channel)), limits))
    }

    fn with_wasi(
        mut wasi: WasiCtxBuilder,
        step: Option<(OutputGuard, StepChannel)>,
        limits: &Limits,
    ) -> Self {
        // One byte past the limit, so that output past it is seen (the guest may ignore the
        // failed write) while output of exactly the limit is not mistaken for it.
        let capture = usize::try_from(limits.max_log_size.saturating_add(1)).unwrap_or(usize::MAX);
        let stdout = MemoryOutputPipe::new(capture);
        let stderr = MemoryOutputPipe::new(capture);
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        StepState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryBudget::new(limits.memory),
            step,
            stdout,
            stderr,
            log_left: limits.max_log_size,
            max_log_size: limits.max_log_size,
            log_exceeded: false,
        }
    }

    /// Says in plain words why the guest stopped: a limit it hit, or the trap itself.
    pub fn classify(
        &self,
        err: &wasmtime::Error,
        instantiating: bool,
        limits: &Limits,
    ) -> StepError {
        if self.memory.exceeded {
            return StepError::MemoryLimit(limits.memory);
        }
        if self.log_exceeded() {
            return StepError::LogLimit(self.max_log_size);
        }
        if let Some(err) = self.step.as_ref().and_then(|(guard, _)| guard.violation()) {
            return err.clone();
        }
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => return StepError::OutOfFuel(limits.fuel),
            Some(wasmtime::Trap::StackOverflow) => return StepError::StackOverflow,
            _ => {}
        }
        let message = format!("{err:#}");
        // wasmtime's hostcall fuel caps the bytes one call hands the host (see `hostcall_fuel`).
        if message.contains("fuel allocated for hostcalls has been exhausted") {
            return StepError::HostCallTooLarge(super::hostcall_fuel(limits));
        }
        if instantiating && err.downcast_ref::<wasmtime::Trap>().is_none() {
            return StepError::Instantiate(message);
        }
        trap(err, &self.stderr.contents())
    }

    /// Takes `size` bytes (and the cost of a call) of the log budget for an event or metadata;
    /// past it the host refuses them, but the guest may go on.
    fn spend_on_event(&mut self, size: u64) -> Result<(), UserEventError> {
        let size = size.saturating_add(LOG_CALL_OVERHEAD);
        if size > self.log_left {
            return Err(UserEventError::OverBudget(self.max_log_size));
        }
        self.log_left -= size;
        Ok(())
    }

    /// True when the guest logged, or wrote to stdout or stderr, more than its limit allows
    /// (even if it ignored the failed write and went on).
    fn log_exceeded(&self) -> bool {
        let over = |pipe: &MemoryOutputPipe| pipe.contents().len() as u64 > self.max_log_size;
        self.log_exceeded || over(&self.stdout) || over(&self.stderr)
    }

    /// Turns what `run` returned into the step's outputs: returned dynamic values go through the
    /// same checks as yielded ones, after them; captured stdout and stderr become log events.
    pub fn finish(
        self,
        returned: Result<Result<Outputs, OpError>, StepError>,
    ) -> Result<NamedValues, StepError> {
        let log_exceeded = self.log_exceeded();
        let (mut guard, channel) = self.step.expect("finish is only called on step states");
        for (stream, pipe) in [
            (Stream::Stdout, &self.stdout),
            (Stream::Stderr, &self.stderr),
        ] {
            let text = pipe.contents();
            // The byte past the limit only told that the limit was passed.
            let kept = text
                .len()
                .min(usize::try_from(self.max_log_size).unwrap_or(usize::MAX));
            if kept > 0 {
                channel.log_captured(stream, String::from_utf8_lossy(&text[..kept]).into_owned());
            }
        }
        // The same order as `classify`: the memory limit, then the log limit, then the outputs.
        if log_exceeded && !matches!(returned, Err(StepError::MemoryLimit(_))) {
            return Err(StepError::LogLimit(self.max_log_size));
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
            channel.emit_returned(guard.accept_dynamic(dynamic(value))?);
        }
        for (output, metadata) in guard.take_returned_metadata() {
            channel.output_metadata(output, metadata);
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

fn dynamic(value: DynamicValue) -> outputs::DynamicValue {
    outputs::DynamicValue {
        output: value.output,
        key: value.mapping_key,
        value: value.value,
        metadata: Metadata::new(),
    }
}

/// A trap in plain words: what trapped, what the guest last wrote to stderr (a Rust panic
/// prints its message there) and, separately, the guest's call stack.
fn trap(err: &wasmtime::Error, stderr: &[u8]) -> StepError {
    let mut message = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("wasm trap: {err:#}"),
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
    /// Forwards a log line; past the step's log budget the guest is stopped. Every call costs
    /// [`LOG_CALL_OVERHEAD`] beyond its message, so that empty messages are not free.
    async fn log(&mut self, level: shoal::op::log::Level, message: String) -> wasmtime::Result<()> {
        use shoal::op::log::Level;
        let size = (message.len() as u64).saturating_add(LOG_CALL_OVERHEAD);
        if size > self.log_left {
            self.log_exceeded = true;
            wasmtime::bail!("log limit of {} bytes exceeded", self.max_log_size);
        }
        self.log_left -= size;
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        if let Some((_, channel)) = &self.step {
            channel.log(level, message).await;
        }
        Ok(())
    }
}

impl shoal::op::emit::Host for StepState {
    /// Checks and forwards one dynamic value, waiting while the run has too much queued work.
    /// The first rejected value is reported to the guest; a guest that keeps yielding after
    /// that is stopped.
    async fn yield_output(&mut self, value: DynamicValue) -> wasmtime::Result<Result<(), String>> {
        let Some((guard, channel)) = &mut self.step else {
            return Ok(Err("outputs cannot be yielded while describing".to_string()));
        };
        if let Some(err) = guard.violation() {
            wasmtime::bail!("the op kept yielding after its output was rejected: {err}");
        }
        let refused = match guard.accept_dynamic(dynamic(value)) {
            Ok(accepted) => match channel.emit(accepted).await {
                Ok(()) => return Ok(Ok(())),
                Err(err) => guard.refuse(err),
            },
            Err(err) => err,
        };
        Ok(Err(refused.to_string()))
    }
}

impl shoal::op::events::Host for StepState {
    /// Checks one user event and forwards it, waiting for room in the log queue.
    async fn log_event(&mut self, event: UserEvent) -> Result<(), String> {
        let event = host_event(event).map_err(|err| err.to_string())?;
        self.spend_on_event(event.size())
            .map_err(|err| err.to_string())?;
        if let Some((_, channel)) = &self.step {
            channel.log_event(event).await;
        }
        Ok(())
    }

    /// Checks metadata and keeps it for its value, which it leaves the step with.
    fn add_output_metadata(
        &mut self,
        output: String,
        mapping_key: Option<String>,
        metadata: Vec<MetadataEntry>,
    ) -> Result<(), String> {
        let metadata = host_metadata(metadata).map_err(|err| err.to_string())?;
        self.spend_on_event(user_event::metadata_size(&metadata))
            .map_err(|err| err.to_string())?;
        let Some((guard, _)) = &mut self.step else {
            return Err("metadata cannot be added while describing".to_string());
        };
        guard
            .add_metadata(output, mapping_key, metadata)
            .map_err(|err| err.to_string())
    }
}

/// The guest's metadata in host types, checked.
fn host_metadata(entries: Vec<MetadataEntry>) -> Result<Metadata, UserEventError> {
    user_event::metadata(entries.into_iter().map(|entry| {
        let value = match entry.value {
            MetadataValue::Text(text) => RawValue::Text(text),
            MetadataValue::Int(n) => RawValue::Int(n),
            MetadataValue::Float(x) => RawValue::Float(x),
            MetadataValue::Boolean(b) => RawValue::Boolean(b),
            MetadataValue::Url(url) => RawValue::Url(url),
            MetadataValue::Path(path) => RawValue::Path(path),
            MetadataValue::Json(json) => RawValue::Json(json),
            MetadataValue::Markdown(text) => RawValue::Markdown(text),
        };
        (entry.label, value)
    }))
}

/// The guest's event in host types, checked.
fn host_event(event: UserEvent) -> Result<user_event::UserEvent, UserEventError> {
    let asset = |asset: shoal::op::events::AssetEvent| -> Result<_, UserEventError> {
        Ok(user_event::AssetEvent {
            asset_key: asset.asset_key,
            description: asset.description,
            partition: asset.partition,
            metadata: host_metadata(asset.metadata)?,
        })
    };
    let event = match event {
        UserEvent::AssetMaterialization(a) => {
            user_event::UserEvent::AssetMaterialization(asset(a)?)
        }
        UserEvent::AssetObservation(a) => user_event::UserEvent::AssetObservation(asset(a)?),
        UserEvent::ExpectationResult(result) => {
            user_event::UserEvent::ExpectationResult(user_event::ExpectationResult {
                success: result.success,
                label: result.label,
                description: result.description,
                metadata: host_metadata(result.metadata)?,
            })
        }
    };
    event.check()
}
