//! What an op records beside its values (`shoal:op@0.3.0`'s `events` interface): metadata on
//! its outputs and user events (asset materializations and observations, expectation results),
//! in host types, checked before they reach the run's events.
//!
//! Metadata is a JSON object from label to a typed value, as Dagster types it:
//! `{"rows": {"int": 1200}, "source": {"url": "https://..."}, "schema": {"json": {...}}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Labelled metadata values, sorted by label.
pub type Metadata = BTreeMap<String, MetadataValue>;

/// One metadata value, serialized as `{"<type>": value}`; `json` holds the parsed JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataValue {
    Text(String),
    Int(i64),
    /// Always finite: JSON has no NaN or infinity.
    Float(f64),
    Boolean(bool),
    Url(String),
    Path(String),
    Json(serde_json::Value),
    Markdown(String),
}

/// An asset an op wrote (a materialization) or looked at (an observation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetEvent {
    /// Path components, never empty.
    pub asset_key: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// The outcome of a data quality check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    pub success: bool,
    /// What was checked, never empty.
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// An event an op logs (Dagster's `context.log_event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    AssetMaterialization(AssetEvent),
    AssetObservation(AssetEvent),
    ExpectationResult(ExpectationResult),
}

/// Why the host refused an event or metadata; the op is told, and may go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserEventError {
    #[error("an asset key must have at least one component")]
    EmptyAssetKey,
    #[error("asset key {0:?} has an empty component")]
    EmptyAssetKeyPart(Vec<String>),
    #[error("an expectation result needs a label")]
    EmptyExpectationLabel,
    #[error("a metadata entry needs a label")]
    EmptyLabel,
    #[error("metadata `{label}`: `{text}` is not JSON: {reason}")]
    BadJson {
        label: String,
        text: String,
        reason: String,
    },
    #[error("metadata `{label}`: float {value} is not finite")]
    NotFinite { label: String, value: f64 },
    #[error("op has no output `{0}`")]
    UnknownOutput(String),
    #[error("output `{0}` is dynamic: its metadata needs the value's mapping key")]
    KeyNeeded(String),
    #[error("output `{output}` is not dynamic: its metadata takes no mapping key (got `{key}`)")]
    KeyNotWanted { output: String, key: String },
    #[error("output `{output}` key `{key}` was already yielded: add its metadata before yielding")]
    AlreadyYielded { output: String, key: String },
    #[error("past the step's log limit of {0} bytes (log lines, events and metadata together)")]
    OverBudget(u64),
}

/// One metadata value as the op gave it, before [`metadata`] checks it (`json` as text).
pub enum RawValue {
    Text(String),
    Int(i64),
    Float(f64),
    Boolean(bool),
    Url(String),
    Path(String),
    Json(String),
    Markdown(String),
}

/// Checks and collects the op's entries; a label given again replaces the earlier value.
pub fn metadata(
    entries: impl IntoIterator<Item = (String, RawValue)>,
) -> Result<Metadata, UserEventError> {
    let mut metadata = Metadata::new();
    for (label, raw) in entries {
        if label.is_empty() {
            return Err(UserEventError::EmptyLabel);
        }
        let value = match raw {
            RawValue::Text(text) => MetadataValue::Text(text),
            RawValue::Int(n) => MetadataValue::Int(n),
            RawValue::Float(value) if !value.is_finite() => {
                return Err(UserEventError::NotFinite { label, value });
            }
            RawValue::Float(value) => MetadataValue::Float(value),
            RawValue::Boolean(b) => MetadataValue::Boolean(b),
            RawValue::Url(url) => MetadataValue::Url(url),
            RawValue::Path(path) => MetadataValue::Path(path),
            RawValue::Json(text) => match serde_json::from_str(&text) {
                Ok(json) => MetadataValue::Json(json),
                Err(err) => {
                    return Err(UserEventError::BadJson {
                        label,
                        text,
                        reason: err.to_string(),
                    });
                }
            },
            RawValue::Markdown(text) => MetadataValue::Markdown(text),
        };
        metadata.insert(label, value);
    }
    Ok(metadata)
}

impl UserEvent {
    /// Checks what metadata cannot: an asset key with components, none empty; a labelled
    /// expectation.
    pub fn check(self) -> Result<Self, UserEventError> {
        match &self {
            UserEvent::AssetMaterialization(asset) | UserEvent::AssetObservation(asset) => {
                if asset.asset_key.is_empty() {
                    return Err(UserEventError::EmptyAssetKey);
                }
                if asset.asset_key.iter().any(String::is_empty) {
                    return Err(UserEventError::EmptyAssetKeyPart(asset.asset_key.clone()));
                }
            }
            UserEvent::ExpectationResult(result) if result.label.is_empty() => {
                return Err(UserEventError::EmptyExpectationLabel);
            }
            UserEvent::ExpectationResult(_) => {}
        }
        Ok(self)
    }

    /// What the event costs against the step's log budget: its JSON size.
    pub fn size(&self) -> u64 {
        serde_json::to_vec(self).map_or(0, |json| json.len() as u64)
    }
}

/// What `metadata` costs against the step's log budget: its JSON size.
pub fn metadata_size(metadata: &Metadata) -> u64 {
    serde_json::to_vec(metadata).map_or(0, |json| json.len() as u64)
}

/// The asset key as Dagster prints it: components joined by `/`.
pub fn asset_key_text(key: &[String]) -> String {
    key.join("/")
}

/// Metadata in one line for terminals and log views: `rows=1200 source=https://...`.
pub fn metadata_text(metadata: &Metadata) -> String {
    metadata
        .iter()
        .map(|(label, value)| format!("{label}={}", value_text(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn value_text(value: &MetadataValue) -> String {
    match value {
        MetadataValue::Text(text)
        | MetadataValue::Url(text)
        | MetadataValue::Path(text)
        | MetadataValue::Markdown(text) => text.clone(),
        MetadataValue::Int(n) => n.to_string(),
        MetadataValue::Float(x) => x.to_string(),
        MetadataValue::Boolean(b) => b.to_string(),
        MetadataValue::Json(json) => json.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_typed_json_and_a_later_label_wins() {
        let checked = metadata([
            ("rows".to_string(), RawValue::Int(3)),
            ("schema".to_string(), RawValue::Json(r#"{"a": [1]}"#.into())),
            ("rows".to_string(), RawValue::Int(4)),
        ])
        .unwrap();
        assert_eq!(
            serde_json::to_value(&checked).unwrap(),
            serde_json::json!({"rows": {"int": 4}, "schema": {"json": {"a": [1]}}})
        );
        assert_eq!(metadata_text(&checked), r#"rows=4 schema={"a":[1]}"#);
    }

    #[test]
    fn bad_metadata_is_refused_naming_it() {
        let err = metadata([("s".to_string(), RawValue::Json("{nope".into()))]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("metadata `s`: `{nope` is not JSON"),
            "{err}"
        );
        let err = metadata([(String::new(), RawValue::Int(1))]).unwrap_err();
        assert_eq!(err, UserEventError::EmptyLabel);
        let err = metadata([("x".to_string(), RawValue::Float(f64::NAN))]).unwrap_err();
        assert_eq!(err.to_string(), "metadata `x`: float NaN is not finite");
    }

    #[test]
    fn asset_keys_and_labels_must_not_be_empty() {
        let asset = |key: &[&str]| {
            UserEvent::AssetMaterialization(AssetEvent {
                asset_key: key.iter().map(|k| k.to_string()).collect(),
                description: None,
                partition: None,
                metadata: Metadata::new(),
            })
        };
        assert_eq!(asset(&[]).check(), Err(UserEventError::EmptyAssetKey));
        assert_eq!(
            asset(&["a", ""]).check().unwrap_err().to_string(),
            r#"asset key ["a", ""] has an empty component"#
        );
        assert!(asset(&["a", "b"]).check().is_ok());
        let expectation = UserEvent::ExpectationResult(ExpectationResult {
            success: true,
            label: String::new(),
            description: None,
            metadata: Metadata::new(),
        });
        assert_eq!(
            expectation.check(),
            Err(UserEventError::EmptyExpectationLabel)
        );
    }
}
