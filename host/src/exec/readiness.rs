//! When a step can be created: readiness of its inputs (including `collect`, which waits for
//! every clone), which steps a finished one wakes, and which planned steps a run never resolved.

use indexmap::IndexMap;

use super::run::{Skip, Status, Step};
use super::scheduler::Scheduler;
use crate::events::EventKind;
use crate::job::{CollectSpec, Unmatched};
use crate::plan::{InputSource, Source};
use crate::step_error::StepError;
use crate::step_key::StepKey;
use crate::value::{self, NamedValues};

/// The values of a dynamic output that yielded none.
static EMPTY: std::sync::LazyLock<IndexMap<String, Vec<u8>>> =
    std::sync::LazyLock::new(IndexMap::new);

/// What an input check concluded.
pub(super) enum Readiness {
    /// The inputs, and the failed or skipped steps that a partial-success collect among them
    /// goes without (tolerated once the step is created).
    Ready(NamedValues, Vec<usize>),
    Wait,
    Skip(Skip),
    /// The step cannot run and is a failure of its own (a zipped key with no match).
    Fail(StepError),
}

/// Where a clone collected by a step stands.
enum Gathered<'a> {
    Value(&'a [u8]),
    /// Skipped for want of an optional output, or succeeded without the collected one: left
    /// out, as Dagster's fan-in leaves out skipped branches.
    Omitted,
    /// Failed, or skipped after a failure: the reason, and the failed steps behind it.
    Failed(String, Vec<usize>),
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
            } else if self.zips_over(dependent, key.node) {
                // Its keys are all known now: a clone whose key it did not yield can be decided.
                for keys in self.known_keys(dependent, key.keys.clone()) {
                    self.consider(StepKey::new(dependent, keys));
                }
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
    /// been skipped by the time the run ends. Steps are only ever created on known paths, so an
    /// op with as many finished steps as known paths has none missing: only then are its paths
    /// listed one by one (a million clones' paths made up a third of such a run's peak memory).
    pub(super) fn unresolved(&self) -> Vec<String> {
        let plan = &self.run.plan;
        let mut finished = vec![0usize; plan.nodes.len()];
        for step in &self.run.steps {
            if step.status.is_final() {
                finished[step.key.node] += 1;
            }
        }
        let mut unresolved = Vec::new();
        for (node, &finished) in finished.iter().enumerate() {
            let planned: usize = self
                .key_prefixes(node, Vec::new())
                .iter()
                .map(|prefix| self.paths_under(node, prefix))
                .sum();
            if finished == planned {
                continue;
            }
            for keys in self.known_keys(node, Vec::new()) {
                let key = StepKey::new(node, keys);
                if !self
                    .run
                    .step(&key)
                    .is_some_and(|step| step.status.is_final())
                {
                    unresolved.push(key.display(&plan.nodes[node].name).to_string());
                }
            }
        }
        unresolved
    }

    /// Whether op `node` zips outputs of op `producer` with the one it maps over (or maps over
    /// one of `producer`'s and zips another): its clones come from both sides.
    fn zips_over(&self, node: usize, producer: usize) -> bool {
        self.zipped(node).next().is_some()
            && self.run.plan.nodes[node].inputs.iter().any(|input| {
                matches!(&input.source, InputSource::Map(s) | InputSource::Zip(s, _) if s.node == producer)
            })
    }

    /// The outputs op `node` zips with the one it maps over.
    fn zipped(&self, node: usize) -> impl Iterator<Item = &Source> {
        self.run.plan.nodes[node]
            .inputs
            .iter()
            .filter_map(|input| match &input.source {
                InputSource::Zip(s, _) => Some(s),
                _ => None,
            })
    }

    /// All mapping-key paths of op `node` that extend `prefix`, from the values emitted so far.
    /// A zipping op's last key comes from either side.
    pub(super) fn known_keys(&self, node: usize, prefix: Vec<String>) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        for prefix in self.key_prefixes(node, prefix) {
            match self.last_keys(node, &prefix) {
                None => paths.push(prefix),
                Some(keys) => paths.extend(keys.into_iter().map(|key| {
                    let mut path = prefix.clone();
                    path.push(key.to_string());
                    path
                })),
            }
        }
        paths
    }

    /// The paths of op `node` that extend `prefix` up to one key short of its depth (`prefix`
    /// itself when it is that long already, or longer).
    fn key_prefixes(&self, node: usize, prefix: Vec<String>) -> Vec<Vec<String>> {
        let scope = &self.run.plan.nodes[node].scope;
        let mut paths = vec![prefix];
        while paths.first().is_some_and(|p| p.len() + 1 < scope.len()) {
            let side = &scope[paths[0].len()];
            paths = paths
                .into_iter()
                .flat_map(|path| {
                    let keys: Vec<String> = self
                        .run
                        .emitted(&StepKey::new(side.node, path.clone()), &side.output)
                        .map(|values| values.keys().cloned().collect())
                        .unwrap_or_default();
                    keys.into_iter().map(move |key| {
                        let mut path = path.clone();
                        path.push(key);
                        path
                    })
                })
                .collect();
        }
        paths
    }

    /// How many paths of op `node` extend `prefix`, which is one key short of its depth or is
    /// its whole path: [`Self::last_keys`] without listing them where no zip asks for a union.
    fn paths_under(&self, node: usize, prefix: &[String]) -> usize {
        let scope = &self.run.plan.nodes[node].scope;
        let zips = self.zipped(node).next().is_some();
        match scope.get(prefix.len()) {
            Some(side) if !zips && prefix.len() + 1 == scope.len() => self
                .run
                .emitted(&StepKey::new(side.node, prefix.to_vec()), &side.output)
                .map_or(0, |values| values.len()),
            _ => self.last_keys(node, prefix).map_or(1, |keys| keys.len()),
        }
    }

    /// The last keys of op `node`'s paths under `prefix`, one key short of its depth: those its
    /// scope's last producer yielded there and, for a zipping op, those the zipped outputs did,
    /// each once, in order. `None` when `prefix` is not one key short (a plain op's is empty).
    fn last_keys(&self, node: usize, prefix: &[String]) -> Option<indexmap::IndexSet<&str>> {
        let scope = &self.run.plan.nodes[node].scope;
        if prefix.len() + 1 != scope.len() {
            return None;
        }
        let mut keys = indexmap::IndexSet::new();
        for side in std::iter::once(&scope[prefix.len()]).chain(self.zipped(node)) {
            let producer = StepKey::new(side.node, prefix.to_vec());
            if let Some(values) = self.run.emitted(&producer, &side.output) {
                keys.extend(values.keys().map(String::as_str));
            }
        }
        Some(keys)
    }

    /// Creates step `key` if all its inputs are available (queued) or one of them never will be
    /// (skipped); otherwise leaves it to be considered again.
    pub(super) fn consider(&mut self, key: StepKey) {
        let excluded = self.only.as_ref().is_some_and(|only| *only != key);
        if excluded || self.run.id_of(&key).is_some() {
            return;
        }
        let (status, inputs) = match self.readiness(&key) {
            Readiness::Wait => return,
            Readiness::Ready(inputs, tolerated) => {
                self.run.tolerated.extend(tolerated);
                (Status::Queued, inputs)
            }
            Readiness::Skip(skip) => (Status::Skipped(Box::new(skip)), Vec::new()),
            Readiness::Fail(err) => (Status::Failed(Box::new(err)), Vec::new()),
        };
        self.collect_progress.retain(|(k, _), _| k != &key);
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
            Status::Skipped(skip) => {
                let reason = skip.reason.clone();
                self.event(
                    Some(id),
                    EventKind::StepSkipped {
                        reason: reason.into(),
                    },
                );
                self.wake(id);
            }
            Status::Failed(err) => {
                let err = err.clone();
                self.event(
                    Some(id),
                    EventKind::StepFailure {
                        error_kind: err.kind(),
                        error: err.to_string().into(),
                        backtrace: None,
                        duration_ms: 0.0,
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

    /// The value of `output` of step `upstream` once it succeeded; a skip when it left that
    /// (optional) output out.
    fn output_of(&self, upstream: &StepKey, output: &str) -> Result<Vec<u8>, Readiness> {
        let step = self.succeeded(upstream)?;
        match step.output(output) {
            Some(value) => Ok(value.to_vec()),
            None => Err(Readiness::Skip(Skip {
                reason: format!(
                    "upstream step `{}` did not produce optional output `{output}`",
                    step.name
                ),
                failure: None,
            })),
        }
    }

    /// The value with the step's own last key of dynamic output `source`, yielded by the step
    /// with its outer keys. A zipped clone's key may be missing on one side: once that side's
    /// producer is done, the clone fails or is skipped as `unmatched` says.
    fn keyed_value(
        &self,
        key: &StepKey,
        source: &Source,
        unmatched: Unmatched,
    ) -> Result<Vec<u8>, Readiness> {
        let (last, outer) = key.keys.split_last().expect("a mapped step has a key");
        let producer = StepKey::new(source.node, outer.to_vec());
        if let Some(bytes) = self
            .run
            .emitted(&producer, &source.output)
            .and_then(|values| values.get(last))
        {
            return Ok(bytes.clone());
        }
        self.succeeded(&producer)?;
        let plan = &self.run.plan;
        let output_name = |s: &Source| format!("{}.{}", plan.nodes[s.node].name, s.output);
        let present = plan.nodes[key.node]
            .inputs
            .iter()
            .filter_map(|input| match &input.source {
                InputSource::Map(s) | InputSource::Zip(s, _) if s != source => Some(s),
                _ => None,
            })
            .find(|s| {
                self.run
                    .emitted(&StepKey::new(s.node, outer.to_vec()), &s.output)
                    .is_some_and(|values| values.contains_key(last))
            })
            .map_or_else(String::new, output_name);
        Err(match unmatched {
            Unmatched::Fail => Readiness::Fail(StepError::UnmatchedKey {
                key: last.clone(),
                present,
                missing: output_name(source),
            }),
            Unmatched::Skip => Readiness::Skip(Skip {
                reason: format!(
                    "mapping key `{last}` of `{present}` has no value in `{}`",
                    output_name(source)
                ),
                failure: None,
            }),
        })
    }

    fn readiness(&mut self, key: &StepKey) -> Readiness {
        let plan = self.run.plan.clone();
        let node = &plan.nodes[key.node];
        // What a missing key on the mapped side does: as the op's zipped inputs say.
        let unmatched = node
            .inputs
            .iter()
            .find_map(|input| match input.source {
                InputSource::Zip(_, unmatched) => Some(unmatched),
                _ => None,
            })
            .unwrap_or_default();
        let mut inputs = Vec::with_capacity(node.inputs.len());
        let mut tolerated = Vec::new();
        for (index, input) in node.inputs.iter().enumerate() {
            let value = match &input.source {
                InputSource::Value(bytes) => Ok(bytes.clone()),
                InputSource::From(source) => {
                    let upstream = StepKey::new(
                        source.node,
                        key.keys[..plan.nodes[source.node].depth()].to_vec(),
                    );
                    self.output_of(&upstream, &source.output)
                }
                InputSource::Map(source) => self.keyed_value(key, source, unmatched),
                InputSource::Zip(source, unmatched) => self.keyed_value(key, source, *unmatched),
                InputSource::Collect(source) => {
                    let spec = input.collect;
                    self.collect(key, index, source, spec, &mut tolerated)
                        .map(|gathered| gathered.value(spec))
                }
                InputSource::Failures(source) => {
                    // Decided exactly as the partial collect of the same op beside it.
                    let spec = node
                        .inputs
                        .iter()
                        .find(|other| {
                            matches!(&other.source, InputSource::Collect(s) if s.node == source.node)
                                && other.collect.min_success.is_some()
                        })
                        .map(|other| other.collect)
                        .expect("the plan pairs failures with a partial collect");
                    self.collect(key, index, source, spec, &mut tolerated)
                        .map(|gathered| gathered.failures())
                }
            };
            match value {
                Ok(value) => inputs.push((input.name.clone(), value)),
                Err(readiness) => return readiness,
            }
        }
        Readiness::Ready(inputs, tolerated)
    }

    /// What a collect input of step `key` gathers, once every clone it waits for is done: all
    /// of them succeeded, or (with `min_success`) all finished. The failures a partial collect
    /// goes without are added to `tolerated`.
    fn collect(
        &mut self,
        key: &StepKey,
        input: usize,
        source: &Source,
        spec: CollectSpec,
        tolerated: &mut Vec<usize>,
    ) -> Result<Collected<'_>, Readiness> {
        let plan = self.run.plan.clone();
        let collected = &plan.nodes[source.node];
        let direct = collected
            .op
            .output(&source.output)
            .is_some_and(|o| o.dynamic);
        // The step whose dynamic output defines the list of mapping keys.
        let creator_output = if direct {
            source
        } else {
            collected
                .scope
                .last()
                .expect("the plan checked it is mapped")
        };
        let creator = StepKey::new(creator_output.node, key.keys.clone());
        self.succeeded(&creator)?;
        let values = self
            .run
            .emitted(&creator, &creator_output.output)
            .unwrap_or(&EMPTY);
        let optional = plan.nodes[creator_output.node]
            .op
            .output(&creator_output.output)
            .is_some_and(|o| !o.required);
        if values.is_empty() && optional {
            return Err(Readiness::Skip(Skip {
                reason: format!(
                    "optional dynamic output `{}.{}` yielded no values",
                    plan.nodes[creator_output.node].name, creator_output.output
                ),
                failure: None,
            }));
        }
        if direct {
            return Ok(Collected {
                values: values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect(),
                failures: Vec::new(),
            });
        }
        let clone_of = |mapping_key: &String| {
            let mut keys = key.keys.clone();
            keys.push(mapping_key.clone());
            StepKey::new(source.node, keys)
        };
        // Clones are waited for in emission order; how many are done is kept between calls.
        let progress_key = (key.clone(), input);
        let mut done = self
            .collect_progress
            .get(&progress_key)
            .copied()
            .unwrap_or(0);
        while let Some((mapping_key, _)) = values.get_index(done) {
            match self.gathered(&clone_of(mapping_key), &source.output) {
                None => {
                    self.collect_progress.insert(progress_key, done);
                    return Err(Readiness::Wait);
                }
                Some(Gathered::Failed(..)) if spec.min_success.is_none() => {
                    return Err(Readiness::Skip(self.not_succeeded(&clone_of(mapping_key))));
                }
                Some(_) => done += 1,
            }
        }
        let mut collected_values = Vec::new();
        let mut failures = Vec::new();
        let mut behind = Vec::new();
        let mut omitted = 0;
        for mapping_key in values.keys() {
            match self
                .gathered(&clone_of(mapping_key), &source.output)
                .expect("every clone is done")
            {
                Gathered::Value(value) => collected_values.push((mapping_key.as_str(), value)),
                Gathered::Omitted => omitted += 1,
                Gathered::Failed(error, steps) => {
                    failures.push((mapping_key.as_str(), error));
                    behind.extend(steps);
                }
            }
        }
        let name = &collected.name;
        if let Some(min_success) = spec.min_success {
            let total = collected_values.len() + failures.len();
            if !min_success.met(collected_values.len(), total) {
                return Err(Readiness::Skip(Skip {
                    reason: format!(
                        "{} of {total} clones of `{name}` succeeded, fewer than min_success {min_success}",
                        collected_values.len()
                    ),
                    failure: behind.first().copied(),
                }));
            }
            tolerated.extend(behind);
        }
        if collected_values.is_empty() && failures.is_empty() && omitted > 0 {
            return Err(Readiness::Skip(Skip {
                reason: format!("no clone of `{name}` produced output `{}`", source.output),
                failure: None,
            }));
        }
        Ok(Collected {
            values: collected_values,
            failures,
        })
    }

    /// Where a collected clone stands; `None` while it is not done.
    fn gathered(&self, clone: &StepKey, output: &str) -> Option<Gathered<'_>> {
        let id = self.run.id_of(clone)?;
        let step = &self.run.steps[id];
        Some(match &step.status {
            Status::Succeeded => step
                .output(output)
                .map_or(Gathered::Omitted, Gathered::Value),
            Status::Skipped(skip) if skip.failure.is_none() => Gathered::Omitted,
            Status::Skipped(skip) => {
                Gathered::Failed(skip.reason.clone(), vec![id, skip.failure.expect("set")])
            }
            Status::Failed(err) => Gathered::Failed(err.to_string(), vec![id]),
            Status::Queued | Status::Running => return None,
        })
    }

    /// Why a step is skipped because `upstream` failed or was skipped, and the failure behind
    /// it, if any.
    fn not_succeeded(&self, upstream: &StepKey) -> Skip {
        let id = self
            .run
            .id_of(upstream)
            .expect("only called for created steps");
        let step = &self.run.steps[id];
        let (verb, failure) = match &step.status {
            Status::Failed(_) => ("failed", Some(id)),
            Status::Skipped(skip) => ("was skipped", skip.failure),
            _ => unreachable!("only called for failed or skipped steps"),
        };
        Skip {
            reason: format!("upstream step `{}` {verb}", step.name),
            failure,
        }
    }
}

/// What a collect gathered: the values of the clones that produced one, in emission order, and
/// the failures a partial collect goes without.
pub(super) struct Collected<'a> {
    values: Vec<(&'a str, &'a [u8])>,
    failures: Vec<(&'a str, String)>,
}

impl Collected<'_> {
    /// The collect input: a CBOR array of the values, or a map from mapping key to value.
    fn value(self, spec: CollectSpec) -> Vec<u8> {
        if spec.by_key {
            value::map(self.values.into_iter())
        } else {
            value::array(self.values.into_iter().map(|(_, v)| v))
        }
    }

    /// The failures input: a CBOR map from mapping key to error message.
    fn failures(self) -> Vec<u8> {
        let texts: Vec<(&str, Vec<u8>)> = self
            .failures
            .into_iter()
            .map(|(k, error)| (k, value::encode(&error.into())))
            .collect();
        value::map(texts.iter().map(|(k, v)| (*k, v.as_slice())))
    }
}
