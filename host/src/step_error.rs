//! Why a step attempt failed, in words a user can act on. A failed step is data: it is
//! reported in the event stream and the summary, and never stops the host.

use std::time::Duration;

use bytesize::ByteSize;

use crate::name::NameError;
use crate::value::CborError;

/// A typed step failure; it serializes, so that a step run elsewhere can report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum StepError {
    #[error("op failed: {0}")]
    OpFailed(String),
    #[error("op requested a retry: {0}")]
    RetryRequested(String),
    #[error("op rejected its input: {0}")]
    BadInput(String),
    /// `message` starts with "wasm trap:".
    #[error("{message}")]
    Trap {
        message: String,
        /// The guest's call stack when it trapped, one frame per line.
        backtrace: Option<String>,
    },
    #[error("timed out after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("mapping key `{key}` was yielded twice on output `{output}`")]
    DuplicateKey { output: String, key: String },
    #[error("invalid mapping key `{key}` on output `{output}`: {reason}")]
    InvalidKey {
        output: String,
        key: String,
        reason: NameError,
    },
    #[error("op produced output `{output}`, which it does not declare")]
    UnknownOutput { output: String },
    #[error("op returned a single value for dynamic output `{output}`; yield keyed values instead")]
    ValueForDynamic { output: String },
    #[error("op yielded a keyed value on output `{output}`, which is not dynamic")]
    DynamicForValue { output: String },
    #[error("op returned output `{output}` twice")]
    DuplicateValue { output: String },
    #[error("op did not produce output `{output}`")]
    MissingOutput { output: String },
    #[error("output `{output}`{}: {source}", key.as_ref().map(|k| format!(" key `{k}`")).unwrap_or_default())]
    InvalidCbor {
        output: String,
        key: Option<String>,
        source: CborError,
    },
    #[error("cannot start the op: {0}")]
    Instantiate(String),
    #[error("out of fuel: the op executed more than {0} instructions")]
    OutOfFuel(u64),
    #[error("memory limit exceeded: the op tried to use more than {} of linear memory", ByteSize(*.0))]
    MemoryLimit(u64),
    #[error("stack overflow: the op recursed deeper than the wasm stack allows")]
    StackOverflow,
    #[error("log limit exceeded: the op wrote more than {} to stdout, stderr or the log", ByteSize(*.0))]
    LogLimit(u64),
    #[error("output `{output}`{}: {size} bytes is more than the limit of {}", key.as_ref().map(|k| format!(" key `{k}`")).unwrap_or_default(), ByteSize(*limit))]
    OutputTooLarge {
        output: String,
        key: Option<String>,
        size: u64,
        limit: u64,
    },
    #[error("the op's outputs together are more than the limit of {}", ByteSize(*.0))]
    StepOutputsTooLarge(u64),
    #[error("the op handed the host more than {} in one call", ByteSize(*.0))]
    HostCallTooLarge(u64),
    #[error("fan-out limit exceeded: the op yielded more than {0} dynamic values")]
    FanoutLimit(u64),
    #[error("a retry yielded different dynamic values than an earlier attempt: {0}")]
    NondeterministicRetry(String),
}

impl StepError {
    /// Whether another attempt could succeed: transient failures are retried under the op's
    /// policy; limits, bad outputs and bad input would fail again the same way.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StepError::OpFailed(_)
                | StepError::RetryRequested(_)
                | StepError::Trap { .. }
                | StepError::Timeout(_)
                | StepError::Instantiate(_)
        )
    }

    /// The guest's call stack, for traps that have one.
    pub fn backtrace(&self) -> Option<&str> {
        match self {
            StepError::Trap { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }

    /// A short, stable name for the kind of failure, for `--json` consumers.
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::OpFailed(_) => "op_failed",
            StepError::RetryRequested(_) => "retry_requested",
            StepError::BadInput(_) => "bad_input",
            StepError::Trap { .. } => "trap",
            StepError::Timeout(_) => "timeout",
            StepError::DuplicateKey { .. } => "duplicate_mapping_key",
            StepError::InvalidKey { .. } => "invalid_mapping_key",
            StepError::UnknownOutput { .. }
            | StepError::ValueForDynamic { .. }
            | StepError::DynamicForValue { .. }
            | StepError::DuplicateValue { .. }
            | StepError::MissingOutput { .. } => "output_mismatch",
            StepError::InvalidCbor { .. } => "invalid_cbor",
            StepError::Instantiate(_) => "instantiate",
            StepError::OutOfFuel(_) => "out_of_fuel",
            StepError::MemoryLimit(_) => "memory_limit",
            StepError::StackOverflow => "stack_overflow",
            StepError::LogLimit(_) => "log_limit",
            StepError::OutputTooLarge { .. } => "output_too_large",
            StepError::StepOutputsTooLarge(_) => "step_outputs_too_large",
            StepError::HostCallTooLarge(_) => "host_call_too_large",
            StepError::FanoutLimit(_) => "fanout_limit",
            StepError::NondeterministicRetry(_) => "nondeterministic_retry",
        }
    }
}
