//! Native builds only: what the WIT imports would have sent the host (yielded values, log
//! lines, user events, output metadata), kept for a test to read. They are checked as the host
//! checks them, so that a test sees the rejection a component would get.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::de::DeserializeOwned;

use crate::Level;
use crate::bindings::shoal::op::events::{MetadataEntry, MetadataValue, UserEvent};
use crate::bindings::shoal::op::types::DynamicValue;
use crate::testing::LogLine;

/// The longest mapping key the host accepts, in bytes.
const MAX_KEY_LEN: usize = 128;

/// What one test context received.
#[derive(Default)]
pub(crate) struct Capture {
    /// Every accepted yield, in order.
    pub(crate) yielded: Vec<DynamicValue>,
    /// Every log line, in order.
    pub(crate) logs: Vec<LogLine>,
    /// Every accepted user event, in order.
    pub(crate) events: Vec<UserEvent>,
    /// Accepted output metadata, in order.
    pub(crate) metadata: Vec<AddedMetadata>,
    /// The first yield the host would have rejected: the step fails with it whatever the op
    /// returns.
    pub(crate) rejection: Option<String>,
    /// The op's outputs as `(name, dynamic?)`, when the context runs a known op; a context
    /// built for calling a function directly accepts yields on any output.
    pub(crate) outputs: Option<Vec<(String, bool)>>,
}

/// A capture shared by a context and the test that built it.
#[derive(Clone, Default)]
pub(crate) struct Shared(Arc<Mutex<Capture>>);

thread_local! {
    /// The newest testing context of this thread, which the log macros write to.
    static CURRENT: RefCell<Weak<Mutex<Capture>>> = const { RefCell::new(Weak::new()) };
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Capture> {
        // A test that panicked while holding it left nothing half-written that matters here.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes this the capture that [`log_current`] writes to on this thread.
    pub(crate) fn make_current(&self) {
        CURRENT.with(|current| *current.borrow_mut() = Arc::downgrade(&self.0));
    }

    pub(crate) fn log(&self, level: Level, message: String) {
        self.lock().logs.push(LogLine { level, message });
    }

    /// Accepts `value` as the host would, or says why not (and remembers the first refusal).
    pub(crate) fn yield_output(&self, value: DynamicValue) -> Result<(), String> {
        let mut capture = self.lock();
        match check_dynamic(&capture, &value) {
            Ok(()) => {
                capture.yielded.push(value);
                Ok(())
            }
            Err(reason) => {
                capture.rejection.get_or_insert_with(|| reason.clone());
                Err(reason)
            }
        }
    }
}

/// One accepted `add_output_metadata`: output, mapping key, entries.
pub(crate) type AddedMetadata = (String, Option<String>, Vec<MetadataEntry>);

/// The metadata `added` to `output` (its value `key`), later labels replacing earlier ones.
pub(crate) fn metadata_of(
    added: &[AddedMetadata],
    output: &str,
    key: Option<&str>,
) -> BTreeMap<String, MetadataValue> {
    added
        .iter()
        .filter(|(o, k, _)| o == output && k.as_deref() == key)
        .flat_map(|(_, _, entries)| entries)
        .map(|entry| (entry.label.clone(), entry.value.clone()))
        .collect()
}

impl Shared {
    /// Accepts `event` as the host would, or says why not.
    pub(crate) fn log_event(&self, event: UserEvent) -> Result<(), String> {
        let (metadata, problem) = match &event {
            UserEvent::AssetMaterialization(asset) | UserEvent::AssetObservation(asset) => {
                let problem = if asset.asset_key.is_empty() {
                    Some("an asset key must have at least one component".to_string())
                } else if asset.asset_key.iter().any(String::is_empty) {
                    Some(format!(
                        "asset key {:?} has an empty component",
                        asset.asset_key
                    ))
                } else {
                    None
                };
                (&asset.metadata, problem)
            }
            UserEvent::ExpectationResult(result) => (
                &result.metadata,
                result
                    .label
                    .is_empty()
                    .then(|| "an expectation result needs a label".to_string()),
            ),
        };
        if let Some(problem) = problem {
            return Err(problem);
        }
        check_metadata(metadata)?;
        self.lock().events.push(event);
        Ok(())
    }

    /// Accepts metadata for `output` (its value `key`) as the host would, or says why not.
    pub(crate) fn add_output_metadata(
        &self,
        output: &str,
        key: Option<&str>,
        metadata: Vec<MetadataEntry>,
    ) -> Result<(), String> {
        check_metadata(&metadata)?;
        let mut capture = self.lock();
        let dynamic = match &capture.outputs {
            Some(outputs) => match outputs.iter().find(|(name, _)| name == output) {
                None => return Err(format!("op has no output `{output}`")),
                Some((_, dynamic)) => Some(*dynamic),
            },
            None => None,
        };
        match (dynamic, key) {
            (Some(true), None) => {
                return Err(format!(
                    "output `{output}` is dynamic: its metadata needs the value's mapping key"
                ));
            }
            (Some(false), Some(key)) => {
                return Err(format!(
                    "output `{output}` is not dynamic: its metadata takes no mapping key (got \
                     `{key}`)"
                ));
            }
            _ => {}
        }
        if let Some(key) = key
            && capture
                .yielded
                .iter()
                .any(|v| v.output == output && v.mapping_key == key)
        {
            return Err(format!(
                "output `{output}` key `{key}` was already yielded: add its metadata before \
                 yielding"
            ));
        }
        capture
            .metadata
            .push((output.to_string(), key.map(str::to_string), metadata));
        Ok(())
    }
}

/// Why the host would refuse metadata `entries`, if it would: an empty label, invalid JSON, a
/// float that is not finite.
fn check_metadata(entries: &[MetadataEntry]) -> Result<(), String> {
    for MetadataEntry { label, value } in entries {
        if label.is_empty() {
            return Err("a metadata entry needs a label".to_string());
        }
        match value {
            MetadataValue::Json(text) => {
                if let Err(err) = serde_json::from_str::<serde_json::Value>(text) {
                    return Err(format!("metadata `{label}`: `{text}` is not JSON: {err}"));
                }
            }
            MetadataValue::Float(x) if !x.is_finite() => {
                return Err(format!("metadata `{label}`: float {x} is not finite"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Logs through the thread's newest testing context, or to stderr when it has none.
pub(crate) fn log_current(level: Level, message: &str) {
    let capture = CURRENT.with(|current| current.borrow().upgrade());
    match capture {
        Some(capture) => Shared(capture).log(level, message.to_string()),
        None => eprintln!("[{level:?}] {message}"),
    }
}

/// Why the host would refuse `value` as the next dynamic value, if it would.
pub(crate) fn check_dynamic(capture: &Capture, value: &DynamicValue) -> Result<(), String> {
    let DynamicValue {
        output,
        mapping_key: key,
        ..
    } = value;
    if let Some(outputs) = &capture.outputs {
        match outputs.iter().find(|(name, _)| name == output) {
            None => {
                return Err(format!(
                    "op produced output `{output}`, which it does not declare"
                ));
            }
            Some((_, false)) => {
                return Err(format!(
                    "op yielded a keyed value on output `{output}`, which is not dynamic"
                ));
            }
            Some((_, true)) => {}
        }
    }
    check_name(key)
        .map_err(|reason| format!("invalid mapping key `{key}` on output `{output}`: {reason}"))?;
    if capture
        .yielded
        .iter()
        .any(|v| v.output == *output && v.mapping_key == *key)
    {
        return Err(format!(
            "mapping key `{key}` was yielded twice on output `{output}`"
        ));
    }
    Ok(())
}

/// Checks a name or mapping key against `^[A-Za-z0-9_]+$` and the length limit, as the host
/// does.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_string());
    }
    if name.len() > MAX_KEY_LEN {
        return Err(format!(
            "it is {} bytes long; the limit is {MAX_KEY_LEN}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        Some(c) => Err(format!(
            "it contains {c:?}; only ASCII letters, digits and `_` are allowed"
        )),
        None => Ok(()),
    }
}

/// The values of dynamic output `output` among `values`, decoded, with their keys.
pub(crate) fn decode_dynamic<T: DeserializeOwned>(
    values: &[DynamicValue],
    output: &str,
) -> Vec<(String, T)> {
    values
        .iter()
        .filter(|v| v.output == output)
        .map(|v| {
            let what = format!("dynamic output `{output}` key `{}`", v.mapping_key);
            let value =
                crate::from_cbor(&v.value, &what).unwrap_or_else(|err| panic!("{}", err.message()));
            (v.mapping_key.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_hosts_rule() {
        for ok in ["0", "num_1", "ABC_def_9", &"k".repeat(MAX_KEY_LEN)] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_name(""), Err("it is empty".to_string()));
        assert_eq!(
            check_name("a-b"),
            Err("it contains '-'; only ASCII letters, digits and `_` are allowed".to_string())
        );
        assert_eq!(
            check_name(&"k".repeat(129)),
            Err("it is 129 bytes long; the limit is 128".to_string())
        );
    }
}
