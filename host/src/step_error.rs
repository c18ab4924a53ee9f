//! Why a step attempt failed, in words a user can act on. A failed step is data: it is
//! reported in the event stream and the summary, and never stops the host.

use std::time::Duration;

use bytesize::ByteSize;

use crate::name::NameError;
use crate::value::CborError;

/// What to add to a guest's message that quotes WASI's "no such file" or "not capable" error:
/// in the sandbox those mostly mean a path outside the directories the op was granted, which
/// the bare error number does not say.
fn sandbox_hint(message: &str) -> &'static str {
    if message.contains("(os error 44)") || message.contains("(os error 76)") {
        " (help: an op sees only the directories its job entry grants with `dirs`, at their guest paths)"
    } else {
        ""
    }
}

/// A typed step failure; it serializes, so that a step run elsewhere can report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum StepError {
    #[error("op failed: {0}{hint}", hint = sandbox_hint(.0))]
    OpFailed(String),
    #[error("op requested a retry: {0}")]
    RetryRequested(String),
    #[error("op rejected its input: {0}{hint}", hint = sandbox_hint(.0))]
    BadInput(String),
    /// `message` starts with "wasm trap:".
    #[error("{message}{}", sandbox_hint(message))]
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
    /// A zipped clone whose key one side never yielded (`unmatched = "fail"`).
    #[error(
        "mapping key `{key}` of `{present}` has no value in `{missing}`, which it is zipped with"
    )]
    UnmatchedKey {
        key: String,
        present: String,
        missing: String,
    },
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

    /// The kind of failure, for `--json` consumers.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StepError::OpFailed(_) => ErrorKind::OpFailed,
            StepError::RetryRequested(_) => ErrorKind::RetryRequested,
            StepError::BadInput(_) => ErrorKind::BadInput,
            StepError::Trap { .. } => ErrorKind::Trap,
            StepError::Timeout(_) => ErrorKind::Timeout,
            StepError::DuplicateKey { .. } => ErrorKind::DuplicateMappingKey,
            StepError::InvalidKey { .. } => ErrorKind::InvalidMappingKey,
            StepError::UnknownOutput { .. }
            | StepError::ValueForDynamic { .. }
            | StepError::DynamicForValue { .. }
            | StepError::DuplicateValue { .. }
            | StepError::MissingOutput { .. } => ErrorKind::OutputMismatch,
            StepError::InvalidCbor { .. } => ErrorKind::InvalidCbor,
            StepError::Instantiate(_) => ErrorKind::Instantiate,
            StepError::OutOfFuel(_) => ErrorKind::OutOfFuel,
            StepError::MemoryLimit(_) => ErrorKind::MemoryLimit,
            StepError::StackOverflow => ErrorKind::StackOverflow,
            StepError::LogLimit(_) => ErrorKind::LogLimit,
            StepError::OutputTooLarge { .. } => ErrorKind::OutputTooLarge,
            StepError::StepOutputsTooLarge(_) => ErrorKind::StepOutputsTooLarge,
            StepError::HostCallTooLarge(_) => ErrorKind::HostCallTooLarge,
            StepError::FanoutLimit(_) => ErrorKind::FanoutLimit,
            StepError::NondeterministicRetry(_) => ErrorKind::NondeterministicRetry,
            StepError::UnmatchedKey { .. } => ErrorKind::UnmatchedKey,
        }
    }
}

/// A short, stable name for a kind of step failure: the `error_kind` of `STEP_FAILURE` and
/// `STEP_UP_FOR_RETRY` events, serialized in snake case (`op_failed`, `memory_limit`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    OpFailed,
    RetryRequested,
    BadInput,
    Trap,
    Timeout,
    DuplicateMappingKey,
    InvalidMappingKey,
    /// The outputs do not match the op's declaration.
    OutputMismatch,
    InvalidCbor,
    Instantiate,
    OutOfFuel,
    MemoryLimit,
    StackOverflow,
    LogLimit,
    OutputTooLarge,
    StepOutputsTooLarge,
    HostCallTooLarge,
    FanoutLimit,
    NondeterministicRetry,
    UnmatchedKey,
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn error_kinds_keep_their_wire_names() {
        let kinds = [
            (ErrorKind::OpFailed, "op_failed"),
            (ErrorKind::RetryRequested, "retry_requested"),
            (ErrorKind::BadInput, "bad_input"),
            (ErrorKind::Trap, "trap"),
            (ErrorKind::Timeout, "timeout"),
            (ErrorKind::DuplicateMappingKey, "duplicate_mapping_key"),
            (ErrorKind::InvalidMappingKey, "invalid_mapping_key"),
            (ErrorKind::OutputMismatch, "output_mismatch"),
            (ErrorKind::InvalidCbor, "invalid_cbor"),
            (ErrorKind::Instantiate, "instantiate"),
            (ErrorKind::OutOfFuel, "out_of_fuel"),
            (ErrorKind::MemoryLimit, "memory_limit"),
            (ErrorKind::StackOverflow, "stack_overflow"),
            (ErrorKind::LogLimit, "log_limit"),
            (ErrorKind::OutputTooLarge, "output_too_large"),
            (ErrorKind::StepOutputsTooLarge, "step_outputs_too_large"),
            (ErrorKind::HostCallTooLarge, "host_call_too_large"),
            (ErrorKind::FanoutLimit, "fanout_limit"),
            (ErrorKind::NondeterministicRetry, "nondeterministic_retry"),
            (ErrorKind::UnmatchedKey, "unmatched_key"),
        ];
        for (kind, name) in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<ErrorKind>(name.into()).unwrap(),
                kind
            );
        }
    }
}
