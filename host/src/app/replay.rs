//! Running one step of a recorded run again (`host replay`), in this process, from what the
//! run recorded: its job, config and components, and the outputs of the steps it read from. It
//! reproduces a failure to debug it, or tries a run config that fixes it, and records nothing.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;

use super::AppError;
use crate::events::{Event, EventSink, SinkError};
use crate::exec::{Prior, Status};
use crate::plan::{InputSource, Plan};
use crate::step_error::StepError;
use crate::step_key::StepKey;
use crate::store::RunStore;

/// What `host replay` changes about the step it runs again.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// A run config to use instead of the run's.
    pub config: Option<PathBuf>,
}

/// How a replayed step ended.
#[derive(Debug)]
pub struct Replayed {
    /// Its outputs as JSON once it succeeded (as `host run` prints an op's: its one output's
    /// value, or an object by output name; a dynamic output's values by mapping key), or why
    /// it failed.
    pub result: Result<Json, StepError>,
    pub duration: Duration,
}

/// The step of `plan` that `text` names in run `run_id`.
pub fn target(
    store: &dyn RunStore,
    run_id: &str,
    plan: &Plan,
    text: &str,
) -> Result<StepKey, AppError> {
    if let Some(key) = plan.step_key(text) {
        return Ok(key);
    }
    match plan.node(text) {
        Some(node) if plan.nodes[node].depth() > 0 => Err(AppError::MappedOp {
            op: text.to_string(),
            some: crate::op_info::join(
                super::queries::some_steps(store, run_id, Some(text))?
                    .iter()
                    .map(String::as_str),
            ),
        }),
        _ => Err(super::queries::no_such_step(store, run_id, text)?),
    }
}

/// What one input of a step reads of its run.
enum Read {
    /// A non-dynamic output of this step.
    Output(StepKey),
    /// The value this producer yielded under this mapping key (on this output).
    Yielded(StepKey, String, String),
    /// The values this step yielded on this output; with a collected op, the output of its
    /// clone under each of them.
    Collected(StepKey, String, Option<usize>),
}

/// What each input of step `key` reads, by input name.
fn reads(plan: &Plan, key: &StepKey) -> Vec<(String, Read)> {
    let node = &plan.nodes[key.node];
    let outer =
        |source: usize| StepKey::new(source, key.keys[..plan.nodes[source].depth()].to_vec());
    node.inputs
        .iter()
        .filter_map(|input| {
            let read = match &input.source {
                InputSource::Value(_) => return None,
                InputSource::From(source) => Read::Output(outer(source.node)),
                InputSource::Map(source) | InputSource::Zip(source, _) => {
                    let (last, _) = key.keys.split_last().expect("a mapped step has a key");
                    Read::Yielded(outer(source.node), source.output.clone(), last.clone())
                }
                InputSource::Collect(source) | InputSource::Failures(source) => {
                    let collected = &plan.nodes[source.node];
                    let dynamic = collected
                        .op
                        .output(&source.output)
                        .is_some_and(|o| o.dynamic);
                    if dynamic {
                        let creator = StepKey::new(source.node, key.keys.clone());
                        Read::Collected(creator, source.output.clone(), None)
                    } else {
                        let scope = collected
                            .scope
                            .last()
                            .expect("the plan checked it is mapped");
                        let creator = StepKey::new(scope.node, key.keys.clone());
                        Read::Collected(creator, scope.output.clone(), Some(source.node))
                    }
                }
            };
            Some((input.name.clone(), read))
        })
        .collect()
}

/// The steps (each with its clones) that `reads` reads from, each once.
fn read_steps(plan: &Plan, reads: &[(String, Read)]) -> Vec<String> {
    let name = |key: &StepKey| key.display(&plan.nodes[key.node].name).to_string();
    let mut steps: Vec<String> = Vec::new();
    for (_, read) in reads {
        let (step, clones) = match read {
            Read::Output(step) | Read::Yielded(step, _, _) => (step, None),
            Read::Collected(creator, _, clones) => (
                creator,
                clones.map(|node| name(&StepKey::new(node, creator.keys.clone()))),
            ),
        };
        for step in std::iter::once(name(step)).chain(clones) {
            if !steps.contains(&step) {
                steps.push(step);
            }
        }
    }
    steps
}

/// What run `run_id` committed of the steps that step `key` reads from, once every input it
/// reads was produced.
pub fn inputs(
    store: &dyn RunStore,
    run_id: &str,
    plan: &Plan,
    key: &StepKey,
) -> Result<Prior, AppError> {
    let reads = reads(plan, key);
    let prior = super::prior::committed_under(store, run_id, plan, &read_steps(plan, &reads))?;
    let name = |key: &StepKey| key.display(&plan.nodes[key.node].name).to_string();
    let step = name(key);
    let succeeded = |key: &StepKey| prior.succeeded.iter().any(|(done, _)| done == key);
    let yielded = |key: &StepKey, output: &str| {
        prior
            .emitted
            .iter()
            .find(|(producer, named, _)| producer == key && named == output)
            .map(|(_, _, values)| values.as_slice())
            .unwrap_or_default()
    };
    let unproduced = |input: &str, why: String| AppError::NotReplayable {
        run: run_id.to_string(),
        step: step.clone(),
        why: format!("its input `{input}` was never produced: {why}"),
    };
    let did_not_succeed = |key: &StepKey| format!("step `{}` did not succeed", name(key));
    for (input, read) in &reads {
        match read {
            Read::Output(upstream) if !succeeded(upstream) => {
                return Err(unproduced(input, did_not_succeed(upstream)));
            }
            Read::Yielded(producer, output, mapping_key) => {
                if !yielded(producer, output)
                    .iter()
                    .any(|(k, _)| k == mapping_key)
                {
                    // The run never had this clone.
                    return Err(super::queries::no_such_step(store, run_id, &step)?);
                }
                if !succeeded(producer) {
                    return Err(unproduced(
                        input,
                        format!(
                            "{} (replay reads values of producers that did)",
                            did_not_succeed(producer)
                        ),
                    ));
                }
            }
            Read::Collected(creator, output, clones) => {
                if !succeeded(creator) {
                    return Err(unproduced(input, did_not_succeed(creator)));
                }
                let Some(node) = clones else { continue };
                for (mapping_key, _) in yielded(creator, output) {
                    let mut keys = creator.keys.clone();
                    keys.push(mapping_key.clone());
                    let clone = StepKey::new(*node, keys);
                    if !succeeded(&clone) {
                        return Err(unproduced(input, did_not_succeed(&clone)));
                    }
                }
            }
            Read::Output(_) => {}
        }
    }
    Ok(prior)
}

/// A step of a recorded run, loaded with the outputs it reads, ready to run again.
pub struct StepReplay {
    pub(super) run_id: String,
    pub(super) step: String,
    pub(super) key: StepKey,
    pub(super) prepared: super::Prepared,
    pub(super) prior: Prior,
}

impl StepReplay {
    /// The step's key.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// What the user should know about how the run's job was loaded (e.g. a component file
    /// that changed since: the run's own version runs).
    pub fn notices(&self) -> &[String] {
        &self.prepared.notices
    }

    /// Runs the step once (no retries: replaying again is the retry), sending its events to
    /// `sink`, and returns how it ended.
    pub async fn execute(self, sink: &mut dyn EventSink) -> Result<Replayed, AppError> {
        let StepReplay {
            run_id,
            step,
            key,
            mut prepared,
            prior,
        } = self;
        prepared.plan.nodes[key.node].retry.max_retries = 0;
        let mut events = StepEvents {
            step: step.clone(),
            sink,
        };
        let run = prepared
            .run_one(run_id.clone(), prior, key.clone(), &mut events)
            .await;
        let Some(ran) = run.step(&key) else {
            // The inputs were checked: a bug rather than a bad request, but no reason to panic.
            return Err(AppError::NotReplayable {
                run: run_id,
                step,
                why: "its inputs were not all produced".into(),
            });
        };
        let duration = ran.duration.unwrap_or_default();
        let result = match &ran.status {
            Status::Succeeded => {
                let node = &run.plan.nodes[key.node];
                let value = |name: &str| run.step_output(&key, name).unwrap_or(Json::Null);
                Ok(match node.op.outputs.as_slice() {
                    [only] => value(&only.name),
                    several => several
                        .iter()
                        .map(|o| (o.name.clone(), value(&o.name)))
                        .collect(),
                })
            }
            Status::Failed(err) => Err((**err).clone()),
            Status::Skipped(_) | Status::Queued | Status::Running => {
                return Err(AppError::NotReplayable {
                    run: run_id,
                    step,
                    why: "it did not run to its end".into(),
                });
            }
        };
        Ok(Replayed { result, duration })
    }
}

/// Passes on the events of one step: a replay's run-level events describe no run.
struct StepEvents<'a> {
    step: String,
    sink: &'a mut dyn EventSink,
}

impl EventSink for StepEvents<'_> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        if event.step_key.as_deref() == Some(self.step.as_str()) {
            self.sink.event(event)?;
        }
        Ok(())
    }
}
