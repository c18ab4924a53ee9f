//! What the run store records: runs, with their status and owner, and output values.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::lease::Owner;
use crate::job::tags::Tags;

/// A run's status. Only the first four are stored: `Interrupted` is a `RUNNING` run whose
/// process died (its lease is dead), so that a killed run does not look like it still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Success,
    Failure,
    /// Stopped by SIGINT or SIGTERM, with what completed committed.
    Canceled,
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Success,
        RunStatus::Failure,
        RunStatus::Canceled,
        RunStatus::Interrupted,
    ];

    /// The status named `text` (`SUCCESS`, ...).
    pub fn named(text: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Success => "SUCCESS",
            RunStatus::Failure => "FAILURE",
            RunStatus::Canceled => "CANCELED",
            RunStatus::Interrupted => "INTERRUPTED",
        }
    }

    /// The status stored as `text`.
    pub(super) fn stored(text: &str) -> Option<RunStatus> {
        RunStatus::named(text).filter(|status| *status != RunStatus::Interrupted)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub job_name: String,
    /// The job file, absolute.
    pub job_path: PathBuf,
    /// The run config file, if one was given.
    pub config_path: Option<PathBuf>,
    pub status: RunStatus,
    pub started: f64,
    pub finished: Option<f64>,
    /// The run this one re-executes, if any.
    pub parent: Option<String>,
    /// The process executing the run, or the one that died executing it.
    pub owner: Option<Owner>,
    /// The tenant that submitted the run to `host serve`; `None` for the local user's runs.
    pub tenant: Option<String>,
    /// The job's tags, the run config's and those given at launch.
    pub tags: Tags,
}

impl RunRecord {
    /// Refuses a run that a live process executes: a second writer would corrupt it.
    pub fn ensure_not_running(&self) -> Result<(), StoreError> {
        match (self.status, &self.owner) {
            (RunStatus::Running, Some(owner)) => Err(StoreError::StillRunning {
                run: self.id.clone(),
                pid: owner.pid,
                host: owner.host.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses to resume a run that a live process executes or that succeeded.
    pub fn ensure_resumable(&self) -> Result<(), StoreError> {
        self.ensure_not_running()?;
        if self.status == RunStatus::Success {
            return Err(StoreError::AlreadySucceeded(self.id.clone()));
        }
        Ok(())
    }
}

/// One recorded output value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub step_key: String,
    pub output: String,
    /// Set for values of dynamic outputs.
    pub mapping_key: Option<String>,
    pub value: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::RunStatus;

    #[test]
    fn statuses_serialize_as_their_names() {
        for status in [
            RunStatus::Running,
            RunStatus::Success,
            RunStatus::Failure,
            RunStatus::Canceled,
            RunStatus::Interrupted,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<RunStatus>(json).unwrap(), status);
        }
    }
}
