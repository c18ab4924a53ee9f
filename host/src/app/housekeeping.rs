//! Deleting recorded runs: those named (`host rm`) or those a retention policy lets go
//! (`host gc`), each time with the output values only they kept.

use std::time::Duration;

use super::{App, AppError};
use crate::store::{Collected, RunRecord, RunStatus};

/// Which runs `host gc` deletes: those beyond the newest `keep` finished runs and older than
/// `older_than`, whichever are given; never a running or an interrupted one (it is left to be
/// resumed: `host serve` leaves its runs so when it stops; `host rm` deletes one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub keep: Option<usize>,
    pub older_than: Option<Duration>,
}

impl Retention {
    /// The ids of the runs of `runs` (newest first) this policy deletes at `now`. A run's age
    /// runs from when it finished.
    fn expired(&self, runs: &[RunRecord], now: f64) -> Vec<String> {
        if self.keep.is_none() && self.older_than.is_none() {
            return Vec::new();
        }
        runs.iter()
            .filter(|run| !matches!(run.status, RunStatus::Running | RunStatus::Interrupted))
            .skip(self.keep.unwrap_or(0))
            .filter(|run| {
                self.older_than
                    .is_none_or(|age| now - run.finished.unwrap_or(run.started) > age.as_secs_f64())
            })
            .map(|run| run.id.clone())
            .collect()
    }
}

impl App {
    /// Deletes the runs `names` name (see [`App::resolve_run`]), all or none: a run that a
    /// live process executes refuses them all. Output values no remaining run refers to go
    /// with them.
    pub fn remove_runs(&self, names: &[String]) -> Result<Collected, AppError> {
        let mut ids: Vec<String> = Vec::new();
        for name in names {
            let id = self.resolve_run(name)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(self.store().delete_runs(&ids)?)
    }

    /// Deletes the runs `retention` lets go and the output values no remaining run refers to
    /// (only those when it names no limit).
    pub fn collect_garbage(&self, retention: &Retention) -> Result<Collected, AppError> {
        let expired = retention.expired(&self.runs()?, crate::events::unix_now());
        Ok(self.store().delete_runs(&expired)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `(id, status, finished)`, newest first.
    fn runs(runs: &[(&str, RunStatus, f64)]) -> Vec<RunRecord> {
        runs.iter()
            .map(|&(id, status, finished)| RunRecord {
                id: id.into(),
                job_name: "job".into(),
                job_path: "/job.toml".into(),
                config_path: None,
                status,
                started: finished - 1.0,
                finished: (status != RunStatus::Running && status != RunStatus::Interrupted)
                    .then_some(finished),
                parent: None,
                owner: None,
                tenant: None,
                tags: Default::default(),
            })
            .collect()
    }

    fn expired(retention: Retention, runs: &[RunRecord]) -> Vec<String> {
        retention.expired(runs, 1000.0)
    }

    #[test]
    fn keep_counts_finished_runs_and_never_lets_a_running_or_interrupted_one_go() {
        let runs = runs(&[
            ("live", RunStatus::Running, 999.0),
            ("new", RunStatus::Success, 990.0),
            ("mid", RunStatus::Failure, 900.0),
            ("stopped", RunStatus::Interrupted, 500.0),
            ("old", RunStatus::Canceled, 100.0),
        ]);
        let keep = |n| Retention {
            keep: Some(n),
            older_than: None,
        };
        assert_eq!(expired(keep(1), &runs), ["mid", "old"]);
        assert_eq!(expired(keep(0), &runs), ["new", "mid", "old"]);
        assert!(expired(keep(5), &runs).is_empty());
    }

    #[test]
    fn older_than_measures_from_the_end_and_combines_with_keep() {
        let runs = runs(&[
            ("new", RunStatus::Success, 990.0),
            ("mid", RunStatus::Failure, 900.0),
            ("old", RunStatus::Canceled, 100.0),
        ]);
        let old = |keep| Retention {
            keep,
            older_than: Some(Duration::from_secs(50)),
        };
        assert_eq!(expired(old(None), &runs), ["mid", "old"]);
        assert_eq!(expired(old(Some(2)), &runs), ["old"]);
        assert!(expired(Retention::default(), &runs).is_empty());
    }
}
