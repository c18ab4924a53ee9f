//! Resource limits of a step: what one op attempt may consume before the host stops it. Set
//! job-wide under `[limits]` and per op under `[ops.NAME.limits]`; unset values fall back to the
//! job's, then to [`Limits::DEFAULT`], which is safe for untrusted code.

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// The most linear memory any op may be given: the size of one slot of the instance pool.
pub const MAX_MEMORY: u64 = 4 << 30;

/// What each `log` call costs against `max_log_size` beyond its message: an event costs the
/// host and the run store about this much even when the message is empty.
pub const LOG_CALL_OVERHEAD: u64 = 64;

/// Limits as written in a job file; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Linear memory, all memories of the instance together, e.g. `"64MiB"`.
    pub memory: Option<ByteSize>,
    /// Wasm instructions one attempt may execute (wasmtime fuel).
    pub fuel: Option<u64>,
    /// Wall-clock time of one attempt, including time blocked in host calls, e.g. `"5s"`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Encoded size of one output value.
    pub max_output_size: Option<ByteSize>,
    /// Encoded size of all output values of one attempt together.
    pub max_step_output_size: Option<ByteSize>,
    /// Dynamic output values one attempt may yield, all dynamic outputs together.
    pub max_fanout: Option<u64>,
    /// Bytes of stdout, of stderr, and of log messages, each.
    pub max_log_size: Option<ByteSize>,
}

/// The limits a step runs under; they travel with each step call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub memory: u64,
    pub fuel: u64,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_output_size: u64,
    pub max_step_output_size: u64,
    pub max_fanout: u64,
    pub max_log_size: u64,
}

/// A limit that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit `{limit}` = `{value}` {reason}")]
pub struct LimitError {
    pub limit: &'static str,
    pub value: String,
    pub reason: String,
}

impl Limits {
    /// Defaults for untrusted code: a step gets 256 MiB, ten billion instructions (seconds of
    /// CPU), a minute of wall-clock time, 16 MiB per value and 64 MiB of outputs in all,
    /// 100,000 dynamic values and 1 MiB of each of stdout, stderr and log messages.
    pub const DEFAULT: Limits = Limits {
        memory: 256 << 20,
        fuel: 10_000_000_000,
        timeout: Duration::from_secs(60),
        max_output_size: 16 << 20,
        max_step_output_size: 64 << 20,
        max_fanout: 100_000,
        max_log_size: 1 << 20,
    };

    /// The limits of an op: its own, else the job's, else the defaults.
    pub fn layered(job: &LimitsSpec, op: &LimitsSpec) -> Result<Limits, LimitError> {
        let d = Limits::DEFAULT;
        let bytes = |op: Option<ByteSize>, job: Option<ByteSize>, default: u64| {
            op.or(job).map_or(default, |b| b.as_u64())
        };
        let limits = Limits {
            memory: bytes(op.memory, job.memory, d.memory),
            fuel: op.fuel.or(job.fuel).unwrap_or(d.fuel),
            timeout: op.timeout.or(job.timeout).unwrap_or(d.timeout),
            max_output_size: bytes(op.max_output_size, job.max_output_size, d.max_output_size),
            max_step_output_size: bytes(
                op.max_step_output_size,
                job.max_step_output_size,
                d.max_step_output_size,
            ),
            max_fanout: op.max_fanout.or(job.max_fanout).unwrap_or(d.max_fanout),
            max_log_size: bytes(op.max_log_size, job.max_log_size, d.max_log_size),
        };
        limits.check()?;
        Ok(limits)
    }

    fn check(&self) -> Result<(), LimitError> {
        let error = |limit, value: String, reason: &str| {
            Err(LimitError {
                limit,
                value,
                reason: reason.to_string(),
            })
        };
        if self.memory > MAX_MEMORY {
            return error(
                "memory",
                ByteSize(self.memory).to_string(),
                &format!(
                    "is above the most a step can have, {}",
                    ByteSize(MAX_MEMORY)
                ),
            );
        }
        if self.memory < 1 << 20 {
            return error(
                "memory",
                ByteSize(self.memory).to_string(),
                "is below 1 MiB",
            );
        }
        if self.timeout.is_zero() {
            return error("timeout", "0s".to_string(), "must be above zero");
        }
        if self.fuel == 0 {
            return error("fuel", "0".to_string(), "must be above zero");
        }
        if self.max_output_size > self.max_step_output_size {
            return error(
                "max_output_size",
                ByteSize(self.max_output_size).to_string(),
                &format!(
                    "is above `max_step_output_size` ({})",
                    ByteSize(self.max_step_output_size)
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> LimitsSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn op_overrides_job_overrides_defaults() {
        let job = spec("memory = '64MiB'\ntimeout = '5s'\nmax_fanout = 10");
        let op = spec("memory = '32 MiB'\nfuel = 1000");
        let limits = Limits::layered(&job, &op).unwrap();
        assert_eq!(limits.memory, 32 << 20);
        assert_eq!(limits.fuel, 1000);
        assert_eq!(limits.timeout, Duration::from_secs(5));
        assert_eq!(limits.max_fanout, 10);
        assert_eq!(limits.max_log_size, Limits::DEFAULT.max_log_size);
        assert_eq!(
            Limits::layered(&spec(""), &spec("")).unwrap(),
            Limits::DEFAULT
        );
    }

    #[test]
    fn plain_integers_are_bytes() {
        assert_eq!(
            spec("max_output_size = 1024").max_output_size,
            Some(ByteSize(1024))
        );
    }

    #[test]
    fn rejects_unusable_limits() {
        let err = Limits::layered(&spec("memory = '8GiB'"), &spec("")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "limit `memory` = `8.0 GiB` is above the most a step can have, 4.0 GiB"
        );
        let err = Limits::layered(&spec(""), &spec("timeout = '0s'")).unwrap_err();
        assert_eq!(err.limit, "timeout");
        let err = Limits::layered(&spec(""), &spec("max_output_size = '100MiB'")).unwrap_err();
        assert_eq!(err.limit, "max_output_size");
        assert!(toml::from_str::<LimitsSpec>("memroy = '1MiB'").is_err());
    }
}
