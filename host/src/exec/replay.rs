//! Replay checking: a retried or resumed producer must yield again what earlier attempts
//! yielded (their clones already ran), in the same order, before it may go on.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::scheduler::Scheduler;
use crate::step_error::StepError;
use crate::value;

/// How a retried or resumed producer's values compare with what it yielded before.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// Per dynamic output, how many values the current attempt has yielded: a retry must yield
    /// again what earlier attempts yielded (clones of those already run), then may go on.
    pub(super) replayed: HashMap<String, usize>,
    /// Set when a retry yielded something other than an earlier attempt did.
    divergence: Option<StepError>,
}

impl Scheduler<'_> {
    /// Matches a value yielded by a retry against what earlier attempts yielded. Returns true
    /// when the value is new and must be recorded, false when it repeats an earlier one (its
    /// clones exist already). Once the attempt has diverged, every value is refused: nothing
    /// from an attempt that contradicts the recorded values may start a clone.
    pub(super) fn replay(
        &mut self,
        step: usize,
        output: &str,
        key: &str,
        value: &[u8],
    ) -> Result<bool, StepError> {
        if self.run.steps[step].attempts == 1 && !self.run.steps[step].has_prior {
            return Ok(true);
        }
        let earlier = self.run.emitted.get(&(step, output.to_string()));
        let record = self.run.steps[step].replay.get_or_insert_default();
        if let Some(divergence) = &record.divergence {
            return Err(divergence.clone());
        }
        let position = record.replayed.entry(output.to_string()).or_default();
        let index = *position;
        *position += 1;
        let divergence = match earlier.and_then(|values| values.get_index(index)) {
            Some((k, v)) if k == key && v == value => return Ok(false),
            Some((k, v)) if k == key => format!(
                "key `{key}` of output `{output}` was recorded with value {} and is now yielded with value {}",
                value::preview(v),
                value::preview(value)
            ),
            Some((k, v)) => format!(
                "value {index} of output `{output}` was recorded as key `{k}` (value {}) and is now yielded as key `{key}` (value {})",
                value::preview(v),
                value::preview(value)
            ),
            None => match earlier.and_then(|values| values.get_index_of(key)) {
                Some(recorded) => format!(
                    "key `{key}` of output `{output}` was recorded as value {recorded} and is now yielded as value {index}"
                ),
                None => return Ok(true),
            },
        };
        let err = StepError::NondeterministicRetry(divergence);
        record.divergence = Some(err.clone());
        Err(err)
    }

    /// A retry must have yielded at least everything earlier attempts did.
    pub(super) fn check_replay_complete(&self, step: usize) -> Result<(), StepError> {
        let record = &self.run.steps[step];
        let replay = record.replay.as_deref();
        if let Some(err) = replay.and_then(|r| r.divergence.as_ref()) {
            return Err(err.clone());
        }
        if record.attempts == 1 && !record.has_prior {
            return Ok(());
        }
        let op = &self.run.plan.nodes[record.key.node].op;
        for output in op.outputs.iter().filter(|o| o.dynamic).map(|o| &o.name) {
            let earlier = self
                .run
                .emitted
                .get(&(step, output.clone()))
                .map_or(0, IndexMap::len);
            let replayed = replay
                .and_then(|r| r.replayed.get(output).copied())
                .unwrap_or(0);
            if replayed < earlier {
                return Err(StepError::NondeterministicRetry(format!(
                    "output `{output}` yielded {replayed} values, an earlier attempt {earlier}"
                )));
            }
        }
        Ok(())
    }
}
