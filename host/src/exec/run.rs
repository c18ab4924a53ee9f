//! What a run is made of and ends with: its steps, their statuses and outputs, and the values
//! producers yielded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::replay::Replay;
use super::share::TenantShare;
use super::step_index::StepIndex;
use crate::cancel::Cancel;
use crate::events::SinkError;
use crate::keyed;
use crate::packed::PackedValues;
use crate::plan::Plan;
use crate::step_error::StepError;
use crate::step_key::StepKey;
use crate::value::{self, KeyedValues, NamedValues};

/// How to execute.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    pub max_concurrent: usize,
    /// See [`DEFAULT_EMIT_WINDOW`].
    pub emit_window: usize,
    /// Work an earlier, interrupted execution of this run committed.
    pub prior: Prior,
    /// Stops the run early when requested: see [`Cancel`].
    pub cancel: Cancel,
    /// The slots of a server's tenant: each step attempt waits for one before it runs. `None`
    /// runs steps as soon as `max_concurrent` allows.
    pub share: Option<TenantShare>,
}

/// What a resumed run starts from: steps whose success was committed, with their outputs, and
/// the dynamic values every producer yielded, in order (also those of producers that did not
/// finish: their clones may have run, and a rerun must yield the same values again).
#[derive(Debug, Clone, Default)]
pub struct Prior {
    pub succeeded: Vec<(StepKey, NamedValues)>,
    pub emitted: Vec<(StepKey, String, KeyedValues)>,
}

/// Where a step is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    /// Boxed, like the skip below, to keep every step of a large fan-out small.
    Failed(Box<StepError>),
    Skipped(Box<Skip>),
}

impl Status {
    /// Succeeded, failed or skipped: nothing more happens to the step.
    pub fn is_final(&self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }
}

/// Why a step did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub reason: String,
    /// The failed step the skip follows from. `None` when an upstream step left out an
    /// optional output (Dagster's branching), which does not fail the run.
    pub failure: Option<usize>,
}

/// One step of a run.
#[derive(Debug)]
pub struct Step {
    pub key: StepKey,
    /// Rendered key, e.g. `compute_piece[3]`.
    pub name: String,
    pub status: Status,
    /// Non-dynamic outputs, once succeeded.
    pub outputs: PackedValues,
    pub duration: Option<Duration>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Inputs, kept until the step starts (and after, while it may be retried).
    pub(super) inputs: NamedValues,
    pub(super) started: Option<Instant>,
    /// Only for a retried or resumed producer (boxed: most steps of a large fan-out are not).
    pub(super) replay: Option<Box<Replay>>,
    /// Set when an interrupted earlier execution yielded values this step must yield again.
    pub(super) has_prior: bool,
}

impl Step {
    /// The value of the non-dynamic output `name`, once the step has succeeded.
    pub fn output(&self, name: &str) -> Option<&[u8]> {
        self.outputs.get(name)
    }
}

/// The outcome of a run: every step that ran or was skipped, and every dynamic value.
#[derive(Debug)]
pub struct Run {
    pub run_id: String,
    pub plan: Arc<Plan>,
    pub steps: Vec<Step>,
    pub(super) index: StepIndex,
    /// (producing step, output) -> mapping key -> value, in emission order.
    pub(super) emitted: HashMap<(usize, String), IndexMap<String, Vec<u8>>>,
    pub duration: Duration,
    /// The host's peak resident memory at the end of the run.
    pub peak_rss_bytes: Option<u64>,
    /// Steps the plan called for that the run ended without resolving (neither succeeded,
    /// failed nor skipped): a scheduler bug, which must fail the run rather than drop data.
    pub unresolved: Vec<String>,
    /// Why the event sink stopped taking events (the run store failed), which stopped the run.
    pub sink_error: Option<SinkError>,
    /// Failed and skipped steps that a partial-success collect went without: the run reports
    /// them and succeeds.
    pub tolerated: HashSet<usize>,
}

impl Run {
    /// True when every step the plan called for succeeded, and was recorded; skipped for want
    /// of an optional output; or failed (or skipped after a failure) with a partial-success
    /// collect going without it.
    pub fn succeeded(&self) -> bool {
        self.sink_error.is_none()
            && self.unresolved.is_empty()
            && self
                .steps
                .iter()
                .enumerate()
                .all(|(id, step)| match &step.status {
                    Status::Succeeded => true,
                    Status::Skipped(skip) if skip.failure.is_none() => true,
                    Status::Failed(_) | Status::Skipped(_) => self.tolerated.contains(&id),
                    Status::Queued | Status::Running => false,
                })
    }

    /// The failed steps a partial-success collect went without, in the order they ran.
    pub fn tolerated_failures(&self) -> Vec<&str> {
        let mut ids: Vec<usize> = self
            .tolerated
            .iter()
            .copied()
            .filter(|&id| matches!(self.steps[id].status, Status::Failed(_)))
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| self.steps[id].name.as_str())
            .collect()
    }

    /// True when the run was asked to stop, and did with steps queued or running (aborted).
    pub fn canceled(&self) -> bool {
        self.sink_error.is_none() && self.steps.iter().any(|s| !s.status.is_final())
    }

    /// The step with this key, if it was created.
    pub fn step(&self, key: &StepKey) -> Option<&Step> {
        self.id_of(key).map(|id| &self.steps[id])
    }

    pub(super) fn id_of(&self, key: &StepKey) -> Option<usize> {
        self.index.get(key, |id| &self.steps[id].key)
    }

    /// The values a step yielded on a dynamic output, in emission order.
    pub fn emitted(&self, key: &StepKey, output: &str) -> Option<&IndexMap<String, Vec<u8>>> {
        let step = self.id_of(key)?;
        self.emitted.get(&(step, output.to_string()))
    }

    /// The output of op `node` as JSON (Dagster's `output_for_node`): the value of a plain step;
    /// for a mapped op, an object from mapping key to value (nested when mapped twice); for a
    /// dynamic output, an object from mapping key to value. Steps that did not succeed are left
    /// out (a plain step that did not succeed gives `null`); a value that is `null` is kept.
    pub fn output_for_node(&self, node: usize, output: &str) -> Json {
        if self.plan.nodes[node].depth() == 0 {
            let key = StepKey::new(node, Vec::new());
            return self.step_output(&key, output).unwrap_or(Json::Null);
        }
        let mut entries = Vec::new();
        self.clone_outputs(node, output, &mut Vec::new(), &mut entries);
        keyed::nest(entries)
    }

    /// Adds the output of every succeeded clone of op `node` below mapping-key path `keys`, in
    /// emission order; an outer key none of whose clones succeeded still gets its object.
    fn clone_outputs(
        &self,
        node: usize,
        output: &str,
        keys: &mut Vec<String>,
        entries: &mut Vec<(Vec<String>, Json)>,
    ) {
        let depth = self.plan.nodes[node].depth();
        let creator = &self.plan.nodes[node].scope[keys.len()];
        let mapping_keys: Vec<String> = self
            .emitted(&StepKey::new(creator.node, keys.clone()), &creator.output)
            .map(|values| values.keys().cloned().collect())
            .unwrap_or_default();
        for key in mapping_keys {
            keys.push(key);
            if keys.len() < depth {
                let before = entries.len();
                self.clone_outputs(node, output, keys, entries);
                if entries.len() == before {
                    entries.push((keys.clone(), Json::Object(serde_json::Map::new())));
                }
            } else if let Some(value) = self.step_output(&StepKey::new(node, keys.clone()), output)
            {
                entries.push((keys.clone(), value));
            }
            keys.pop();
        }
    }

    /// The output of step `key` once it has succeeded: its value, or for a dynamic output its
    /// values keyed by mapping key.
    pub fn step_output(&self, key: &StepKey, output: &str) -> Option<Json> {
        let step = self.step(key).filter(|s| s.status == Status::Succeeded)?;
        let node = &self.plan.nodes[key.node];
        if node.op.output(output).is_some_and(|o| o.dynamic) {
            let values = self.emitted(key, output).into_iter().flatten();
            return Some(keyed::nest(
                values.map(|(mapping_key, value)| ([mapping_key], value::to_json(value))),
            ));
        }
        step.output(output).map(value::to_json)
    }
}
