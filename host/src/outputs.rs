//! The rules a step's outputs must follow, checked as they arrive: dynamic values one at a time
//! (so a bad key fails the producer at once, before any clone of it starts), returned values when
//! the op returns.

use std::collections::{HashMap, HashSet};

use crate::limits::Limits;
use crate::name;
use crate::op_info::OpInfo;
use crate::step_error::StepError;
use crate::user_event::{Metadata, UserEventError};
use crate::value::{self, NamedValues};

/// One accepted value of a dynamic output, with the metadata the op attached to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DynamicValue {
    pub output: String,
    pub key: String,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// Checks a step's outputs against its op's declaration.
#[derive(Debug)]
pub struct OutputGuard {
    /// Declared outputs: name -> dynamic?
    declared: HashMap<String, bool>,
    /// Mapping keys seen so far, per dynamic output.
    seen: HashMap<String, HashSet<String>>,
    /// The first violation; the step fails with it whatever the op returns.
    violation: Option<StepError>,
    /// Metadata waiting for its value: by output and, for a dynamic output, mapping key.
    metadata: HashMap<(String, Option<String>), Metadata>,
    /// Dynamic values accepted so far, all outputs together.
    fanout: u64,
    /// Bytes of all values accepted so far.
    total: u64,
    max_fanout: u64,
    max_output_size: u64,
    max_step_output_size: u64,
}

impl OutputGuard {
    pub fn new(op: &OpInfo, limits: &Limits) -> Self {
        OutputGuard {
            declared: op
                .outputs
                .iter()
                .map(|o| (o.name.clone(), o.dynamic))
                .collect(),
            seen: HashMap::new(),
            violation: None,
            metadata: HashMap::new(),
            fanout: 0,
            total: 0,
            max_fanout: limits.max_fanout,
            max_output_size: limits.max_output_size,
            max_step_output_size: limits.max_step_output_size,
        }
    }

    /// Counts one value against the size limits.
    fn check_size(
        &mut self,
        output: &str,
        key: Option<&str>,
        size: usize,
    ) -> Result<(), StepError> {
        let size = size as u64;
        if size > self.max_output_size {
            return Err(StepError::OutputTooLarge {
                output: output.to_string(),
                key: key.map(str::to_string),
                size,
                limit: self.max_output_size,
            });
        }
        self.total += size;
        if self.total > self.max_step_output_size {
            return Err(StepError::StepOutputsTooLarge(self.max_step_output_size));
        }
        Ok(())
    }

    /// Accepts one dynamic value, with the metadata added for it so far, or records and returns
    /// why it is rejected.
    pub fn accept_dynamic(&mut self, mut value: DynamicValue) -> Result<DynamicValue, StepError> {
        let checked = self.check_dynamic(&value);
        if let Err(err) = &checked {
            self.violation.get_or_insert_with(|| err.clone());
        }
        checked?;
        let id = (value.output.clone(), Some(value.key.clone()));
        if let Some(metadata) = self.metadata.remove(&id) {
            value.metadata.extend(metadata);
        }
        Ok(value)
    }

    /// Adds metadata to a value the op has not handed over yet: of a non-dynamic output
    /// (`key` none) or of a dynamic one's value `key`. A label given again replaces its value.
    pub fn add_metadata(
        &mut self,
        output: String,
        key: Option<String>,
        metadata: Metadata,
    ) -> Result<(), UserEventError> {
        match (self.declared.get(&output), &key) {
            (None, _) => return Err(UserEventError::UnknownOutput(output)),
            (Some(true), None) => return Err(UserEventError::KeyNeeded(output)),
            (Some(false), Some(key)) => {
                return Err(UserEventError::KeyNotWanted {
                    output,
                    key: key.clone(),
                });
            }
            (Some(true), Some(key)) if self.seen.get(&output).is_some_and(|s| s.contains(key)) => {
                return Err(UserEventError::AlreadyYielded {
                    output,
                    key: key.clone(),
                });
            }
            _ => {}
        }
        self.metadata
            .entry((output, key))
            .or_default()
            .extend(metadata);
        Ok(())
    }

    /// The metadata added for non-dynamic outputs, which travels with the returned values.
    pub fn take_returned_metadata(&mut self) -> Vec<(String, Metadata)> {
        let returned: Vec<(String, Option<String>)> = self
            .metadata
            .keys()
            .filter(|(_, key)| key.is_none())
            .cloned()
            .collect();
        returned
            .into_iter()
            .filter_map(|id| self.metadata.remove(&id).map(|m| (id.0, m)))
            .collect()
    }

    fn check_dynamic(&mut self, v: &DynamicValue) -> Result<(), StepError> {
        if let Some(err) = &self.violation {
            // Once the step has failed, nothing more it yields is used.
            return Err(err.clone());
        }
        match self.declared.get(&v.output) {
            None => {
                return Err(StepError::UnknownOutput {
                    output: v.output.clone(),
                });
            }
            Some(false) => {
                return Err(StepError::DynamicForValue {
                    output: v.output.clone(),
                });
            }
            Some(true) => {}
        }
        self.fanout += 1;
        if self.fanout > self.max_fanout {
            return Err(StepError::FanoutLimit(self.max_fanout));
        }
        self.check_size(&v.output, Some(&v.key), v.value.len())?;
        name::check(&v.key).map_err(|reason| StepError::InvalidKey {
            output: v.output.clone(),
            key: v.key.clone(),
            reason,
        })?;
        value::check(&v.value).map_err(|source| StepError::InvalidCbor {
            output: v.output.clone(),
            key: Some(v.key.clone()),
            source,
        })?;
        if !self
            .seen
            .entry(v.output.clone())
            .or_default()
            .insert(v.key.clone())
        {
            return Err(StepError::DuplicateKey {
                output: v.output.clone(),
                key: v.key.clone(),
            });
        }
        Ok(())
    }

    /// Records that the scheduler refused an accepted value (a retry that diverged from an
    /// earlier attempt): the step fails with `err`, and later values are rejected with it.
    pub fn refuse(&mut self, err: StepError) -> StepError {
        self.violation.get_or_insert(err).clone()
    }

    /// The first rule the step broke, if any. It wins over whatever the op returned: an op that
    /// was told its value was rejected typically fails because of it.
    pub fn violation(&self) -> Option<&StepError> {
        self.violation.as_ref()
    }

    /// Checks the op's returned non-dynamic values: each declared once, every one present,
    /// well-formed. Fails with an earlier violation of a dynamic output if there was one.
    pub fn finish(mut self, values: NamedValues) -> Result<NamedValues, StepError> {
        if let Some(err) = self.violation {
            return Err(err);
        }
        for (output, bytes) in &values {
            self.check_size(output, None, bytes.len())?;
        }
        let mut seen = HashSet::new();
        for (output, bytes) in &values {
            match self.declared.get(output) {
                None => {
                    return Err(StepError::UnknownOutput {
                        output: output.clone(),
                    });
                }
                Some(true) => {
                    return Err(StepError::ValueForDynamic {
                        output: output.clone(),
                    });
                }
                Some(false) => {}
            }
            if !seen.insert(output.as_str()) {
                return Err(StepError::DuplicateValue {
                    output: output.clone(),
                });
            }
            value::check(bytes).map_err(|source| StepError::InvalidCbor {
                output: output.clone(),
                key: None,
                source,
            })?;
        }
        let mut missing: Vec<&String> = self
            .declared
            .iter()
            .filter(|(name, dynamic)| !**dynamic && !seen.contains(name.as_str()))
            .map(|(name, _)| name)
            .collect();
        missing.sort();
        match missing.first() {
            Some(output) => Err(StepError::MissingOutput {
                output: (*output).clone(),
            }),
            None => Ok(values),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> OutputGuard {
        guard_with(Limits::DEFAULT)
    }

    fn guard_with(limits: Limits) -> OutputGuard {
        let op = OpInfo::new(
            "op",
            &[],
            &[("items", true), ("other", true), ("total", false)],
        );
        OutputGuard::new(&op, &limits)
    }

    fn dynamic(output: &str, key: &str, value: &[u8]) -> DynamicValue {
        DynamicValue {
            output: output.into(),
            key: key.into(),
            value: value.to_vec(),
            metadata: Metadata::new(),
        }
    }

    fn rows(n: i64) -> Metadata {
        Metadata::from([("rows".to_string(), crate::user_event::MetadataValue::Int(n))])
    }

    #[test]
    fn metadata_travels_with_its_value_and_only_before_it_leaves() {
        let mut guard = guard();
        guard
            .add_metadata("items".into(), Some("a".into()), rows(1))
            .unwrap();
        let accepted = guard.accept_dynamic(dynamic("items", "a", &[1])).unwrap();
        assert_eq!(accepted.metadata, rows(1));
        let err = guard
            .add_metadata("items".into(), Some("a".into()), rows(2))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "output `items` key `a` was already yielded: add its metadata before yielding"
        );
        guard.add_metadata("total".into(), None, rows(2)).unwrap();
        guard.add_metadata("total".into(), None, rows(3)).unwrap();
        assert_eq!(guard.take_returned_metadata(), [("total".into(), rows(3))]);
    }

    #[test]
    fn metadata_needs_a_declared_output_and_the_right_key() {
        let mut guard = guard();
        let err = guard
            .add_metadata("nope".into(), None, rows(1))
            .unwrap_err();
        assert_eq!(err, UserEventError::UnknownOutput("nope".into()));
        let err = guard
            .add_metadata("items".into(), None, rows(1))
            .unwrap_err();
        assert_eq!(err, UserEventError::KeyNeeded("items".into()));
        let err = guard
            .add_metadata("total".into(), Some("k".into()), rows(1))
            .unwrap_err();
        assert!(matches!(err, UserEventError::KeyNotWanted { .. }));
    }

    #[test]
    fn the_same_key_is_fine_on_different_outputs_but_not_twice_on_one() {
        let mut guard = guard();
        guard.accept_dynamic(dynamic("items", "a", &[1])).unwrap();
        guard.accept_dynamic(dynamic("other", "a", &[1])).unwrap();
        let err = guard
            .accept_dynamic(dynamic("items", "a", &[2]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mapping key `a` was yielded twice on output `items`"
        );
        // The violation sticks: the step fails even if the op then returns normally.
        assert_eq!(
            guard.finish(vec![("total".into(), vec![0])]).unwrap_err(),
            err
        );
    }

    #[test]
    fn rejects_bad_keys_outputs_and_cbor() {
        let err = guard()
            .accept_dynamic(dynamic("items", "a b", &[1]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mapping key `a b` on output `items`: it contains ' '; only ASCII letters, digits and `_` are allowed"
        );
        let err = guard()
            .accept_dynamic(dynamic("total", "a", &[1]))
            .unwrap_err();
        assert!(matches!(err, StepError::DynamicForValue { .. }));
        let err = guard()
            .accept_dynamic(dynamic("nope", "a", &[1]))
            .unwrap_err();
        assert!(matches!(err, StepError::UnknownOutput { .. }));
        let err = guard()
            .accept_dynamic(dynamic("items", "a", &[0xb8, 0x18]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("output `items` key `a`: invalid CBOR"),
            "{err}"
        );
    }

    #[test]
    fn enforces_fanout_and_size_limits() {
        let limits = Limits {
            max_fanout: 2,
            max_output_size: 4,
            max_step_output_size: 6,
            ..Limits::DEFAULT
        };
        let mut guard = guard_with(limits);
        guard
            .accept_dynamic(dynamic("items", "a", &[0x01]))
            .unwrap();
        guard
            .accept_dynamic(dynamic("items", "b", &[0x01]))
            .unwrap();
        let err = guard
            .accept_dynamic(dynamic("items", "c", &[0x01]))
            .unwrap_err();
        assert_eq!(err, StepError::FanoutLimit(2));

        let big = [0x45, 1, 2, 3, 4, 5];
        let err = guard_with(limits)
            .accept_dynamic(dynamic("items", "a", &big))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "output `items` key `a`: 6 bytes is more than the limit of 4 B"
        );

        let four = [0x43, 1, 2, 3];
        let mut guard = guard_with(limits);
        guard.accept_dynamic(dynamic("items", "a", &four)).unwrap();
        let err = guard
            .finish(vec![("total".into(), four.to_vec())])
            .unwrap_err();
        assert_eq!(err, StepError::StepOutputsTooLarge(6));
    }

    #[test]
    fn returned_values_must_match_the_declaration() {
        assert!(guard().finish(vec![("total".into(), vec![1])]).is_ok());
        let err = guard().finish(vec![]).unwrap_err();
        assert_eq!(err.to_string(), "op did not produce output `total`");
        let err = guard().finish(vec![("items".into(), vec![1])]).unwrap_err();
        assert!(matches!(err, StepError::ValueForDynamic { .. }));
        let twice = vec![("total".into(), vec![1]), ("total".into(), vec![1])];
        assert!(matches!(
            guard().finish(twice).unwrap_err(),
            StepError::DuplicateValue { .. }
        ));
    }
}
