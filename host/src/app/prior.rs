//! What an earlier execution of a run committed, read back for resume, re-execute and replay.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::AppError;
use super::event_query::{EventQuery, Events};
use crate::events::EventKind;
use crate::exec::Prior;
use crate::plan::Plan;
use crate::store::{OutputRecord, RunStore};
use crate::value::{KeyedValues, NamedValues};

/// The steps of run `run_id` whose success was committed, with their outputs, and every value
/// its producers yielded, in terms of `plan`.
pub fn committed(store: &dyn RunStore, run_id: &str, plan: &Plan) -> Result<Prior, AppError> {
    let succeeded: HashSet<String> = store.succeeded_steps(run_id)?.into_iter().collect();
    prior_of(run_id, plan, &succeeded, store.outputs(run_id, None)?)
}

/// [`committed`], of the steps under `steps` alone (each a step and its clones): what one step
/// reads, without reading the rest of a huge run.
pub fn committed_under(
    store: &dyn RunStore,
    run_id: &str,
    plan: &Plan,
    steps: &[String],
) -> Result<Prior, AppError> {
    if steps.is_empty() {
        // A query without steps would read every step's.
        return Ok(Prior::default());
    }
    let query = EventQuery {
        steps: steps.to_vec(),
        kinds: vec!["STEP_SUCCESS"],
    };
    let mut succeeded = HashSet::new();
    for event in Events::new(store, run_id, &query) {
        let event = event?;
        if let (EventKind::StepSuccess { .. }, Some(step)) = (event.kind, event.step_key) {
            succeeded.insert(step.into_owned());
        }
    }
    let mut outputs = Vec::new();
    for step in steps {
        outputs.extend(store.outputs(run_id, Some(step))?);
    }
    prior_of(run_id, plan, &succeeded, outputs)
}

/// The steps of `succeeded` with their outputs among `outputs`, and the values yielded among
/// `outputs`, in terms of `plan`.
fn prior_of(
    run_id: &str,
    plan: &Plan,
    succeeded: &HashSet<String>,
    outputs: Vec<OutputRecord>,
) -> Result<Prior, AppError> {
    let parse = |text: &str| {
        plan.step_key(text).ok_or_else(|| AppError::UnknownStep {
            run: run_id.to_string(),
            step: text.to_string(),
        })
    };
    let mut values: IndexMap<String, NamedValues> = IndexMap::new();
    let mut emitted: IndexMap<(String, String), KeyedValues> = IndexMap::new();
    for record in outputs {
        match record.mapping_key {
            Some(key) => emitted
                .entry((record.step_key, record.output))
                .or_default()
                .push((key, record.value)),
            None if succeeded.contains(&record.step_key) => {
                values
                    .entry(record.step_key)
                    .or_default()
                    .push((record.output, record.value));
            }
            None => {}
        }
    }
    let mut prior = Prior::default();
    for step in succeeded {
        let outputs = values.shift_remove(step).unwrap_or_default();
        prior.succeeded.push((parse(step)?, outputs));
    }
    for ((step, output), values) in emitted {
        prior.emitted.push((parse(&step)?, output, values));
    }
    Ok(prior)
}

/// The rendered keys of the steps whose results `prior` reuses.
pub fn step_names(prior: &Prior, plan: &Plan) -> HashSet<String> {
    let name = |key: &crate::step_key::StepKey| key.display(&plan.nodes[key.node].name).to_string();
    prior
        .succeeded
        .iter()
        .map(|(key, _)| name(key))
        .chain(prior.emitted.iter().map(|(key, _, _)| name(key)))
        .collect()
}
