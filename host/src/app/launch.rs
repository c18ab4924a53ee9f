//! What a run is launched with, applied to its job: the values given to inputs wired in, then
//! only the selected ops kept (Dagster's `input_values` and `op_selection`).

use super::AppError;
use crate::inputs::{Given, InputValues};
use crate::job::{Job, LoadedJob};
use crate::selection::ops;
use crate::snapshot::{Launch, RunSnapshot};

/// Applies `launch`, and the values `run_config` gives inputs, to `job`: given values are wired
/// in, then only the selected ops are kept, refusing one that still reads from an op left out.
/// Returns the given values, by which later errors about them are explained.
pub(super) fn apply(
    job: &mut Job,
    run_config: &InputValues,
    launch: &Launch,
) -> Result<Given, AppError> {
    let selected = ops::select(job, &launch.select)?;
    let given = Given::layered(run_config, &launch.inputs);
    given.apply(job, &selected)?;
    ops::check_upstream(job, &selected)?;
    ops::retain(job, &selected);
    Ok(given)
}

/// The job `snapshot`'s run executed, as written, with only the ops it selected: for showing
/// what it ran (its final outputs, its graph). Paths stay as written; nothing is read from disk.
pub fn executed_job(snapshot: &RunSnapshot) -> Result<Job, AppError> {
    let mut job = LoadedJob::parse_text_only(&snapshot.job_text, &snapshot.job_path)?;
    let selected = ops::select(&job, &snapshot.launch.select)?;
    ops::retain(&mut job, &selected);
    Ok(job)
}
