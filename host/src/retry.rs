//! Retry policies (Dagster's `RetryPolicy`): how often a failed step attempt is tried again, and
//! after how long. Set job-wide under `[retry]` and per op under `[ops.NAME.retry]`. Each clone
//! is retried on its own.

use std::time::Duration;

use serde::Deserialize;

/// How the delay grows from one retry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// The same delay every time.
    #[default]
    Constant,
    /// `n × delay` before the n-th retry.
    Linear,
    /// `(2ⁿ − 1) × delay` before the n-th retry.
    Exponential,
}

/// Randomness added to the delay, so that many clones failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    #[default]
    None,
    /// A uniformly random delay between zero and the computed one.
    Full,
    /// The computed delay plus or minus up to `delay`.
    PlusMinus,
}

/// A retry policy as written in a job file; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts after the first; 0 (the default) never retries.
    pub max_retries: Option<u32>,
    /// Base delay before a retry, e.g. `"500ms"`; default 0.
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
    pub backoff: Option<Backoff>,
    pub jitter: Option<Jitter>,
}

/// The retry policy a step runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub delay: Duration,
    pub backoff: Backoff,
    pub jitter: Jitter,
}

impl RetryPolicy {
    /// The op's policy: its own fields, else the job's, else never retry.
    pub fn layered(job: &RetrySpec, op: &RetrySpec) -> RetryPolicy {
        RetryPolicy {
            max_retries: op.max_retries.or(job.max_retries).unwrap_or(0),
            delay: op.delay.or(job.delay).unwrap_or(Duration::ZERO),
            backoff: op.backoff.or(job.backoff).unwrap_or_default(),
            jitter: op.jitter.or(job.jitter).unwrap_or_default(),
        }
    }

    /// Whether a step whose attempt `attempt` (1-based) failed gets another one.
    pub fn allows_retry_after(&self, attempt: u32) -> bool {
        attempt <= self.max_retries
    }

    /// The delay before retry number `retry` (1 for the first retry), before jitter.
    pub fn backoff_delay(&self, retry: u32) -> Duration {
        let factor = match self.backoff {
            Backoff::Constant => 1,
            Backoff::Linear => retry,
            Backoff::Exponential => 2u32.saturating_pow(retry).saturating_sub(1),
        };
        self.delay.saturating_mul(factor)
    }

    /// The delay before retry number `retry`, with jitter drawn from `random` (in `0.0..1.0`).
    pub fn delay_before(&self, retry: u32, random: f64) -> Duration {
        let delay = self.backoff_delay(retry);
        match self.jitter {
            Jitter::None => delay,
            Jitter::Full => delay.mul_f64(random),
            Jitter::PlusMinus => {
                let offset = self.delay.mul_f64(random * 2.0);
                (delay + offset).saturating_sub(self.delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            delay: Duration::from_millis(100),
            backoff,
            jitter,
        }
    }

    #[test]
    fn backoff_follows_dagster() {
        let ms = |p: RetryPolicy, n| p.backoff_delay(n).as_millis();
        let constant = policy(Backoff::Constant, Jitter::None);
        let linear = policy(Backoff::Linear, Jitter::None);
        let exponential = policy(Backoff::Exponential, Jitter::None);
        assert_eq!([1, 2, 3].map(|n| ms(constant, n)), [100, 100, 100]);
        assert_eq!([1, 2, 3].map(|n| ms(linear, n)), [100, 200, 300]);
        assert_eq!([1, 2, 3].map(|n| ms(exponential, n)), [100, 300, 700]);
    }

    #[test]
    fn jitter_stays_in_its_range() {
        let full = policy(Backoff::Linear, Jitter::Full);
        assert_eq!(full.delay_before(2, 0.0), Duration::ZERO);
        assert_eq!(full.delay_before(2, 0.5), Duration::from_millis(100));
        let plus_minus = policy(Backoff::Constant, Jitter::PlusMinus);
        assert_eq!(plus_minus.delay_before(1, 0.0), Duration::ZERO);
        assert_eq!(plus_minus.delay_before(1, 0.5), Duration::from_millis(100));
        assert_eq!(plus_minus.delay_before(1, 0.99).as_millis(), 198);
    }

    #[test]
    fn op_fields_override_job_fields() {
        let job: RetrySpec =
            toml::from_str("max_retries = 2\ndelay = '1s'\nbackoff = 'exponential'").unwrap();
        let op: RetrySpec = toml::from_str("delay = '10ms'\njitter = 'full'").unwrap();
        let policy = RetryPolicy::layered(&job, &op);
        assert_eq!(policy.max_retries, 2);
        assert_eq!(policy.delay, Duration::from_millis(10));
        assert_eq!(policy.backoff, Backoff::Exponential);
        assert_eq!(policy.jitter, Jitter::Full);
        assert!(policy.allows_retry_after(2) && !policy.allows_retry_after(3));
        assert!(toml::from_str::<RetrySpec>("backoff = 'quadratic'").is_err());
    }
}
