//! What a run executes, recorded when it starts: the job text, the run config text and the
//! digest of every component it loaded. Resume and re-execute rebuild the run from this record
//! (and the component bytes the store keeps by digest), never from files that may have changed
//! since.

use std::path::PathBuf;

use indexmap::IndexMap;

use crate::digest::Digest;
use crate::job::tags::Tags;

/// A run's job, config and components as they were when it started.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunSnapshot {
    /// Where the job file was: relative component and directory paths in it resolve against
    /// its folder.
    pub job_path: PathBuf,
    pub job_text: String,
    /// The run config layered over the job, if one was given.
    pub config_path: Option<PathBuf>,
    pub config_text: Option<String>,
    /// The job's component name -> digest of the bytes the run loaded.
    pub components: IndexMap<String, Digest>,
    /// Tags given at launch (`host run --tag`), over the job's and the run config's.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}
