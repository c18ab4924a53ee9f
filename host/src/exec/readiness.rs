//! When a step can be created: readiness of its inputs (including `collect`, which waits for
//! every clone), which steps a finished one wakes, and which planned steps a run never resolved.

use indexmap::IndexMap;

use super::run::{Status, Step};
use super::scheduler::Scheduler;
use crate::events::EventKind;
use crate::plan::InputSource;
use crate::step_key::StepKey;
use crate::value::{self, NamedValues};

/// Why a succeeded step's output can be unwrapped: [`crate::outputs::OutputGuard`] only lets a
/// step succeed with every declared non-dynamic output.
const DECLARED: &str = "a succeeded step has every declared output";

/// What an input check concluded.
pub(super) enum Readiness {
    Ready(NamedValues),
    Wait,
    Skip(String),
}

impl Scheduler<'_> {
    /// Reconsiders every step that may have been waiting on `step`.
    pub(super) fn wake(&mut self, step: usize) {
        let plan = self.run.plan.clone();
        let key = self.run.steps[step].key.clone();
        for &dependent in &plan.nodes[key.node].dependents {
            let depth = plan.nodes[dependent].depth();
            if depth <= key.keys.len() {
                self.consider(StepKey::new(dependent, key.keys[..depth].to_vec()));
            } else if plan.nodes[dependent]
                .inputs
                .iter()
                .any(|input| matches!(&input.source, InputSource::From(s) if s.node == key.node))
            {
                // A value broadcast into a mapped op: every clone created so far may be waiting.
                // (Clones mapped over this step's values never wait for it to finish.)
                for keys in self.known_keys(dependent, key.keys.clone()) {
                    self.consider(StepKey::new(dependent, keys));
                }
            }
        }
    }

    /// The steps the plan calls for, given the values yielded, that are missing or not finished:
    /// every plain op's step and one clone per mapping-key path must have succeeded, failed or
    /// been skipped by the time the run ends.
    pub(super) fn unresolved(&self) -> Vec<String> {
        let plan = &self.run.plan;
        let mut unresolved = Vec::new();
        for node in 0..plan.nodes.len() {
            for keys in self.known_keys(node, Vec::new()) {
                let key = StepKey::new(node, keys);
                let finished = self.run.step(&key).is_some_and(|step| {
                    matches!(
                        step.status,
                        Status::Succeeded | Status::Failed(_) | Status::Skipped(_)
                    )
                });
                if !finished {
                    unresolved.push(key.display(&plan.nodes[node].name).to_string());
                }
            }
        }
        unresolved
    }

    /// All mapping-key paths of op `node` that extend `prefix`, from the values emitted so far.
    pub(super) fn known_keys(&self, node: usize, prefix: Vec<String>) -> Vec<Vec<String>> {
        let scope = &self.run.plan.nodes[node].scope;
        let mut paths = vec![prefix];
        while paths.first().is_some_and(|p| p.len() < scope.len()) {
            let level = &scope[paths[0].len()];
            paths = paths
                .into_iter()
                .flat_map(|path| {
                    let keys: Vec<String> = self
                        .run
                        .emitted(&StepKey::new(level.node, path.clone()), &level.output)
                        .map(|values| values.keys().cloned().collect())
                        .unwrap_or_default();
                    keys.into_iter().map(move |k| {
                        let mut path = path.clone();
                        path.push(k);
                        path
                    })
                })
                .collect();
        }
        paths
    }

    /// Creates step `key` if all its inputs are available (queued) or one of them never will be
    /// (skipped); otherwise leaves it to be considered again.
    pub(super) fn consider(&mut self, key: StepKey) {
        let excluded = self.only.as_ref().is_some_and(|only| *only != key);
        if excluded || self.run.id_of(&key).is_some() {
            return;
        }
        let readiness = self.readiness(&key);
        let status = match readiness {
            Readiness::Wait => return,
            Readiness::Ready(_) => Status::Queued,
            Readiness::Skip(ref reason) => Status::Skipped(reason.as_str().into()),
        };
        self.collect_progress.retain(|(k, _), _| k != &key);
        let inputs = match readiness {
            Readiness::Ready(inputs) => inputs,
            _ => Vec::new(),
        };
        let prior = self.prior_emitted.remove(&key);
        let id = self.create(key, status, inputs);
        if let Some(prior) = prior {
            // An interrupted execution yielded these: this step must yield them again, and
            // their clones need not wait for that.
            self.run.steps[id].has_prior = true;
            for (output, values) in prior {
                self.adopt_emitted(id, output, values);
            }
        }
        match &self.run.steps[id].status {
            Status::Queued => self.ready.push_back(id),
            Status::Skipped(reason) => {
                let reason = reason.clone();
                self.event(
                    Some(id),
                    EventKind::StepSkipped {
                        reason: (&*reason).into(),
                    },
                );
                self.wake(id);
            }
            _ => unreachable!("a new step is queued or skipped"),
        }
    }

    /// The step `key` if it succeeded; otherwise whether to wait for it or skip because of it.
    fn succeeded(&self, key: &StepKey) -> Result<&Step, Readiness> {
        match self.run.step(key) {
            Some(step) if step.status == Status::Succeeded => Ok(step),
            Some(Step {
                status: Status::Failed(_) | Status::Skipped(_),
                ..
            }) => Err(Readiness::Skip(self.not_succeeded(key))),
            _ => Err(Readiness::Wait),
        }
    }

    fn readiness(&mut self, key: &StepKey) -> Readiness {
        let plan = self.run.plan.clone();
        let node = &plan.nodes[key.node];
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for (index, input) in node.inputs.iter().enumerate() {
            let value = match &input.source {
                InputSource::Value(bytes) => bytes.clone(),
                InputSource::From(source) => {
                    let upstream = StepKey::new(
                        source.node,
                        key.keys[..plan.nodes[source.node].depth()].to_vec(),
                    );
                    match self.succeeded(&upstream) {
                        Ok(step) => step.output(&source.output).expect(DECLARED).to_vec(),
                        Err(readiness) => return readiness,
                    }
                }
                InputSource::Map(source) => {
                    let (last, outer) = key.keys.split_last().expect("a mapped step has a key");
                    let producer = StepKey::new(source.node, outer.to_vec());
                    match self
                        .run
                        .emitted(&producer, &source.output)
                        .and_then(|v| v.get(last))
                    {
                        Some(bytes) => bytes.clone(),
                        None => return Readiness::Wait,
                    }
                }
                InputSource::Collect(source) => match self.collect(key, index, source) {
                    Ok(bytes) => bytes,
                    Err(readiness) => return readiness,
                },
            };
            inputs.push((input.name.clone(), value));
        }
        Readiness::Ready(inputs)
    }

    /// The list a collect input of step `key` receives, once complete.
    fn collect(
        &mut self,
        key: &StepKey,
        input: usize,
        source: &crate::plan::Source,
    ) -> Result<Vec<u8>, Readiness> {
        let plan = self.run.plan.clone();
        let collected = &plan.nodes[source.node];
        let direct = collected
            .op
            .output(&source.output)
            .is_some_and(|o| o.dynamic);
        // The step whose dynamic output defines the list of mapping keys.
        let (creator, output) = if direct {
            (StepKey::new(source.node, key.keys.clone()), &source.output)
        } else {
            let scope = collected
                .scope
                .last()
                .expect("the plan checked it is mapped");
            (StepKey::new(scope.node, key.keys.clone()), &scope.output)
        };
        self.succeeded(&creator)?;
        let empty = IndexMap::new();
        let values = self.run.emitted(&creator, output).unwrap_or(&empty);
        if direct {
            return Ok(value::array(values.values().map(Vec::as_slice)));
        }
        let clone_of = |mapping_key: &String| {
            let mut keys = key.keys.clone();
            keys.push(mapping_key.clone());
            StepKey::new(source.node, keys)
        };
        let progress_key = (key.clone(), input);
        let mut done = self
            .collect_progress
            .get(&progress_key)
            .copied()
            .unwrap_or(0);
        while let Some((mapping_key, _)) = values.get_index(done) {
            match self.succeeded(&clone_of(mapping_key)) {
                Ok(_) => done += 1,
                Err(Readiness::Wait) => {
                    self.collect_progress.insert(progress_key, done);
                    return Err(Readiness::Wait);
                }
                Err(skip) => return Err(skip),
            }
        }
        let items: Vec<&[u8]> = values
            .keys()
            .map(|mapping_key| {
                let step = self
                    .run
                    .step(&clone_of(mapping_key))
                    .expect("succeeded above");
                step.output(&source.output).expect(DECLARED)
            })
            .collect();
        Ok(value::array(items.into_iter()))
    }

    fn not_succeeded(&self, upstream: &StepKey) -> String {
        let step = self
            .run
            .step(upstream)
            .expect("only called for created steps");
        let verb = if matches!(step.status, Status::Failed(_)) {
            "failed"
        } else {
            "was skipped"
        };
        format!("upstream step `{}` {verb}", step.name)
    }
}
