//! A run's steps summarised per op, so that a run of a million clones reads in a few lines:
//! steps by status, how long they took, and the first failures with their errors.

use indexmap::IndexMap;
use serde::Serialize;

use super::{StepStatus, StepSummary, UserEventCounts};

/// Failures listed per op; the others are counted.
pub const FAILURES_SHOWN: usize = 10;

/// One op's steps (the op's own, or all its clones').
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpSummary {
    pub op: String,
    /// Steps by status (`SUCCESS`, ...), successes first.
    pub statuses: IndexMap<String, usize>,
    /// Of the steps whose last attempt ended; `None` when none did.
    pub duration_ms: Option<Durations>,
    /// The first [`FAILURES_SHOWN`] failed steps.
    pub failures: Vec<Failure>,
    /// Failed steps beyond those.
    pub more_failures: usize,
    /// The user events of all its steps; left out when there were none.
    #[serde(skip_serializing_if = "UserEventCounts::is_empty")]
    pub events: UserEventCounts,
}

/// Step durations in milliseconds: the median, the 95th percentile (nearest rank) and the
/// longest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Durations {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

/// A failed step and its error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub step: String,
    pub error: String,
}

/// `steps` per op, the ops in the order their first step appears.
pub fn per_op(steps: &[StepSummary]) -> Vec<OpSummary> {
    let mut ops: IndexMap<&str, Vec<&StepSummary>> = IndexMap::new();
    for step in steps {
        let op = crate::step_key::parse(&step.step_key).map_or(step.step_key.as_str(), |p| p.0);
        ops.entry(op).or_default().push(step);
    }
    ops.into_iter()
        .map(|(op, steps)| summarize(op, &steps))
        .collect()
}

fn summarize(op: &str, steps: &[&StepSummary]) -> OpSummary {
    let mut by_status: Vec<(StepStatus, usize)> = Vec::new();
    for step in steps {
        match by_status
            .iter_mut()
            .find(|(status, _)| *status == step.status)
        {
            Some((_, count)) => *count += 1,
            None => by_status.push((step.status, 1)),
        }
    }
    by_status.sort_by_key(|(status, _)| rank(*status));
    let failed: Vec<Failure> = steps
        .iter()
        .filter(|step| step.status == StepStatus::Failure)
        .map(|step| Failure {
            step: step.step_key.clone(),
            error: step.detail.clone(),
        })
        .collect();
    let more_failures = failed.len().saturating_sub(FAILURES_SHOWN);
    let mut durations: Vec<f64> = steps.iter().filter_map(|step| step.duration_ms).collect();
    durations.sort_by(f64::total_cmp);
    let mut events = UserEventCounts::default();
    for step in steps {
        events.add(&step.events);
    }
    OpSummary {
        op: op.to_string(),
        statuses: by_status
            .into_iter()
            .map(|(status, count)| (status.to_string(), count))
            .collect(),
        duration_ms: Durations::of_sorted(&durations),
        failures: failed.into_iter().take(FAILURES_SHOWN).collect(),
        more_failures,
        events,
    }
}

/// Where a status is listed: how the steps ended, then those that have not.
fn rank(status: StepStatus) -> u8 {
    match status {
        StepStatus::Success => 0,
        StepStatus::Failure => 1,
        StepStatus::Skipped => 2,
        StepStatus::Stopped(_) => 3,
        StepStatus::Retrying => 4,
        StepStatus::Running => 5,
    }
}

impl Durations {
    fn of_sorted(sorted: &[f64]) -> Option<Durations> {
        let max = *sorted.last()?;
        let rank = |percent: usize| sorted[(sorted.len() * percent).div_ceil(100).max(1) - 1];
        Some(Durations {
            p50: rank(50),
            p95: rank(95),
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: &str, status: StepStatus, ms: Option<f64>, detail: &str) -> StepSummary {
        StepSummary {
            step_key: key.into(),
            status,
            attempts: 1,
            duration_ms: ms,
            detail: detail.into(),
            events: UserEventCounts::default(),
        }
    }

    #[test]
    fn clones_count_under_their_op_with_percentiles_and_the_first_failures() {
        let mut steps = vec![step("fan_out", StepStatus::Success, Some(5.0), "")];
        for i in 1..=100 {
            let (status, detail) = if i % 4 == 0 {
                (StepStatus::Failure, format!("value {i} is unlucky"))
            } else {
                (StepStatus::Success, String::new())
            };
            steps.push(step(
                &format!("fail_on[k{i}]"),
                status,
                Some(f64::from(i)),
                &detail,
            ));
        }
        steps.push(step("sum", StepStatus::Skipped, None, "an input failed"));
        let ops = per_op(&steps);
        assert_eq!(
            ops.iter().map(|o| o.op.as_str()).collect::<Vec<_>>(),
            ["fan_out", "fail_on", "sum"]
        );
        let fail_on = &ops[1];
        assert_eq!(
            fail_on.statuses,
            IndexMap::from([("SUCCESS".to_string(), 75), ("FAILURE".to_string(), 25)])
        );
        assert_eq!(
            fail_on.duration_ms,
            Some(Durations {
                p50: 50.0,
                p95: 95.0,
                max: 100.0
            })
        );
        assert_eq!(fail_on.failures.len(), FAILURES_SHOWN);
        assert_eq!(
            fail_on.failures[0],
            Failure {
                step: "fail_on[k4]".into(),
                error: "value 4 is unlucky".into()
            }
        );
        assert_eq!(fail_on.more_failures, 15);
        assert_eq!(ops[2].duration_ms, None);
        assert_eq!(ops[2].failures, []);
    }

    #[test]
    fn one_duration_is_every_percentile() {
        assert_eq!(
            Durations::of_sorted(&[3.0]),
            Some(Durations {
                p50: 3.0,
                p95: 3.0,
                max: 3.0
            })
        );
    }
}
