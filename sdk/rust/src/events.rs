//! What an op records beside its values (Dagster's `log_event` and `add_output_metadata`):
//! metadata values and the user events [`AssetMaterialization`], [`AssetObservation`] and
//! [`ExpectationResult`], passed to [`Context::log_event`](crate::Context::log_event).

use crate::bindings::shoal::op::events::{self as wit, MetadataEntry};

pub use crate::bindings::shoal::op::events::{MetadataValue, UserEvent};

/// Any metadata value: `3`, `0.5`, `true`, `"text"`, or [`MetadataValue::url`] and the other
/// constructors for the kinds a plain Rust value cannot tell.
impl MetadataValue {
    /// A URL.
    pub fn url(url: impl Into<String>) -> Self {
        MetadataValue::Url(url.into())
    }

    /// A file system path.
    pub fn path(path: impl Into<String>) -> Self {
        MetadataValue::Path(path.into())
    }

    /// Markdown text.
    pub fn markdown(text: impl Into<String>) -> Self {
        MetadataValue::Markdown(text.into())
    }

    /// Any JSON value.
    pub fn json(value: &serde_json::Value) -> Self {
        MetadataValue::Json(value.to_string())
    }
}

impl From<&str> for MetadataValue {
    fn from(text: &str) -> Self {
        MetadataValue::Text(text.to_string())
    }
}

impl From<String> for MetadataValue {
    fn from(text: String) -> Self {
        MetadataValue::Text(text)
    }
}

impl From<i64> for MetadataValue {
    fn from(n: i64) -> Self {
        MetadataValue::Int(n)
    }
}

impl From<i32> for MetadataValue {
    fn from(n: i32) -> Self {
        MetadataValue::Int(n.into())
    }
}

impl From<u32> for MetadataValue {
    fn from(n: u32) -> Self {
        MetadataValue::Int(n.into())
    }
}

/// Counts past `i64::MAX` saturate.
impl From<usize> for MetadataValue {
    fn from(n: usize) -> Self {
        MetadataValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for MetadataValue {
    fn from(x: f64) -> Self {
        MetadataValue::Float(x)
    }
}

impl From<bool> for MetadataValue {
    fn from(b: bool) -> Self {
        MetadataValue::Boolean(b)
    }
}

/// Labelled metadata entries from `(label, value)` pairs.
pub(crate) fn entries<L: Into<String>, V: Into<MetadataValue>>(
    entries: impl IntoIterator<Item = (L, V)>,
) -> Vec<MetadataEntry> {
    entries
        .into_iter()
        .map(|(label, value)| MetadataEntry {
            label: label.into(),
            value: value.into(),
        })
        .collect()
}

/// Generates a user event about an asset: the asset key, a description, a partition and
/// metadata, built with chained calls.
macro_rules! asset_event {
    ($(#[$doc:meta])* $name:ident => $variant:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name(wit::AssetEvent);

        impl $name {
            /// The asset with key `key`, its path components (e.g. `["warehouse", "orders"]`;
            /// the host refuses an empty one).
            pub fn new<K: Into<String>>(key: impl IntoIterator<Item = K>) -> Self {
                $name(wit::AssetEvent {
                    asset_key: key.into_iter().map(Into::into).collect(),
                    description: None,
                    partition: None,
                    metadata: Vec::new(),
                })
            }

            /// What happened, for humans.
            pub fn description(mut self, description: impl Into<String>) -> Self {
                self.0.description = Some(description.into());
                self
            }

            /// The asset's partition.
            pub fn partition(mut self, partition: impl Into<String>) -> Self {
                self.0.partition = Some(partition.into());
                self
            }

            /// Adds a metadata entry, e.g. `.metadata("rows", 1200)`.
            pub fn metadata(mut self, label: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
                self.0.metadata.extend(entries([(label, value)]));
                self
            }
        }

        impl From<$name> for UserEvent {
            fn from(event: $name) -> Self {
                UserEvent::$variant(event.0)
            }
        }
    };
}

asset_event!(
    /// An asset the op wrote (Dagster's `AssetMaterialization`): recorded as
    /// `ASSET_MATERIALIZATION`.
    AssetMaterialization => AssetMaterialization
);
asset_event!(
    /// An asset the op looked at without changing it (Dagster's `AssetObservation`): recorded
    /// as `ASSET_OBSERVATION`.
    AssetObservation => AssetObservation
);

/// The outcome of a data quality check (Dagster's `ExpectationResult`): recorded as
/// `STEP_EXPECTATION_RESULT`. A failed expectation does not fail the step.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectationResult(wit::ExpectationResult);

impl ExpectationResult {
    /// Whether check `label` (e.g. `no_null_ids`; not empty) passed.
    pub fn new(success: bool, label: impl Into<String>) -> Self {
        ExpectationResult(wit::ExpectationResult {
            success,
            label: label.into(),
            description: None,
            metadata: Vec::new(),
        })
    }

    /// What was checked, for humans.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.0.description = Some(description.into());
        self
    }

    /// Adds a metadata entry, e.g. `.metadata("nulls", 0)`.
    pub fn metadata(mut self, label: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.0.metadata.extend(entries([(label, value)]));
        self
    }
}

impl From<ExpectationResult> for UserEvent {
    fn from(event: ExpectationResult) -> Self {
        UserEvent::ExpectationResult(event.0)
    }
}
