//! What a run executes, recorded when it starts: the job text, the run config text and the
//! digest of every component it loaded. Resume and re-execute rebuild the run from this record
//! (and the component bytes the store keeps by digest), never from files that may have changed
//! since. What was chosen at launch (the ops to run, values for inputs) is recorded with it, so
//! that a resumed or re-executed run runs the same ops on the same values.

use std::path::PathBuf;

use indexmap::IndexMap;

use crate::digest::Digest;
use crate::inputs::InputValues;
use crate::job::tags::Tags;

/// A run's job, config and components as they were when it started.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// What was chosen at launch; absent from the records of runs that chose nothing.
    #[serde(default, skip_serializing_if = "Launch::is_empty")]
    pub launch: Launch,
}

/// What a run is launched with besides its job and run config.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Launch {
    /// The ops to run, in selection syntax (`--select`); empty for all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
    /// Values given to op inputs (`--input`), over the run config's and the job file's.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub inputs: InputValues,
}

impl Launch {
    pub fn is_empty(&self) -> bool {
        self.select.is_empty() && self.inputs.is_empty()
    }
}
