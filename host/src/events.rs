//! Run events, named after Dagster's `DagsterEventType` so that users recognise them, and the
//! sinks they go to (`--json` writes them to stdout as JSON Lines).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::step_error::ErrorKind;
use crate::user_event::{self, AssetEvent, ExpectationResult, Metadata, UserEvent};
use crate::value;

/// One event of a run. The scheduler emits it borrowing what it describes; read back (from
/// `--json` output or the run store) it owns its text: `Event<'static>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<'a> {
    #[serde(flatten)]
    pub kind: EventKind<'a>,
    pub run_id: Cow<'a, str>,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_key: Option<Cow<'a, str>>,
    /// For an event a re-execution copied from its parent run: the parent's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<Cow<'a, str>>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind<'a> {
    RunStart {
        job: Cow<'a, str>,
    },
    StepStart {
        attempt: u32,
    },
    StepOutput {
        output: Cow<'a, str>,
        /// Set for the values of a dynamic output.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mapping_key: Option<Cow<'a, str>>,
        /// The CBOR value, rendered as JSON. Empty only where the value is kept apart: the run
        /// store's event rows leave it to its blobs (no CBOR item is empty).
        #[serde(
            default,
            skip_serializing_if = "<[u8]>::is_empty",
            serialize_with = "cbor_as_json",
            deserialize_with = "json_as_cbor"
        )]
        value: Cow<'a, [u8]>,
        /// What the op attached to the value (`add-output-metadata`); omitted when empty.
        #[serde(default, skip_serializing_if = "no_metadata")]
        metadata: Cow<'a, Metadata>,
    },
    StepSuccess {
        duration_ms: f64,
    },
    StepFailure {
        error_kind: ErrorKind,
        error: Cow<'a, str>,
        /// The guest's call stack, for traps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backtrace: Option<Cow<'a, str>>,
        duration_ms: f64,
    },
    /// An attempt failed and the step will run again after `delay_ms`.
    StepUpForRetry {
        error_kind: ErrorKind,
        error: Cow<'a, str>,
        /// The attempt that failed.
        attempt: u32,
        delay_ms: f64,
    },
    /// A retry attempt started.
    StepRestarted {
        attempt: u32,
    },
    StepSkipped {
        reason: Cow<'a, str>,
    },
    Logs {
        level: Cow<'a, str>,
        message: Cow<'a, str>,
    },
    /// An op wrote an asset (Dagster's `AssetMaterialization`).
    AssetMaterialization(AssetEvent),
    /// An op looked at an asset (Dagster's `AssetObservation`).
    AssetObservation(AssetEvent),
    /// An op checked its data (Dagster's `ExpectationResult`).
    StepExpectationResult(ExpectationResult),
    RunSuccess {
        duration_ms: f64,
        /// The host's peak resident memory, where the OS reports it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_rss_bytes: Option<u64>,
    },
    RunFailure {
        duration_ms: f64,
        failed_steps: Vec<String>,
        /// Steps the plan called for that never finished (see `Run::unresolved`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unresolved_steps: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_rss_bytes: Option<u64>,
    },
    /// The run was asked to stop (SIGINT, SIGTERM) and did, with steps left to run.
    RunCanceled {
        duration_ms: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_rss_bytes: Option<u64>,
    },
}

impl EventKind<'_> {
    /// The event's name as it appears in the `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::RunStart { .. } => "RUN_START",
            EventKind::StepStart { .. } => "STEP_START",
            EventKind::StepOutput { .. } => "STEP_OUTPUT",
            EventKind::StepSuccess { .. } => "STEP_SUCCESS",
            EventKind::StepFailure { .. } => "STEP_FAILURE",
            EventKind::StepUpForRetry { .. } => "STEP_UP_FOR_RETRY",
            EventKind::StepRestarted { .. } => "STEP_RESTARTED",
            EventKind::StepSkipped { .. } => "STEP_SKIPPED",
            EventKind::Logs { .. } => "LOGS",
            EventKind::AssetMaterialization(_) => "ASSET_MATERIALIZATION",
            EventKind::AssetObservation(_) => "ASSET_OBSERVATION",
            EventKind::StepExpectationResult(_) => "STEP_EXPECTATION_RESULT",
            EventKind::RunSuccess { .. } => "RUN_SUCCESS",
            EventKind::RunFailure { .. } => "RUN_FAILURE",
            EventKind::RunCanceled { .. } => "RUN_CANCELED",
        }
    }
}

impl EventKind<'_> {
    /// A user event as a line among log lines (the terminal, `host logs`): a level-like name
    /// and the text, e.g. `materialization` and `warehouse/orders rows=3`.
    pub fn user_event_line(&self) -> Option<(&'static str, String)> {
        let (what, mut text, description, metadata) = match self {
            EventKind::AssetMaterialization(asset) | EventKind::AssetObservation(asset) => {
                let what = if matches!(self, EventKind::AssetMaterialization(_)) {
                    "materialization"
                } else {
                    "observation"
                };
                let mut text = user_event::asset_key_text(&asset.asset_key);
                if let Some(partition) = &asset.partition {
                    text.push_str(&format!(" partition {partition}"));
                }
                (what, text, &asset.description, &asset.metadata)
            }
            EventKind::StepExpectationResult(result) => {
                let outcome = if result.success { "passed" } else { "failed" };
                let text = format!("{} {outcome}", result.label);
                ("expectation", text, &result.description, &result.metadata)
            }
            _ => return None,
        };
        if let Some(description) = description {
            text.push_str(&format!(": {description}"));
        }
        if !metadata.is_empty() {
            text.push_str(&format!(" ({})", user_event::metadata_text(metadata)));
        }
        Some((what, text))
    }
}

fn no_metadata(metadata: &Cow<'_, Metadata>) -> bool {
    metadata.is_empty()
}

impl From<UserEvent> for EventKind<'_> {
    fn from(event: UserEvent) -> Self {
        match event {
            UserEvent::AssetMaterialization(asset) => EventKind::AssetMaterialization(asset),
            UserEvent::AssetObservation(asset) => EventKind::AssetObservation(asset),
            UserEvent::ExpectationResult(result) => EventKind::StepExpectationResult(result),
        }
    }
}

fn cbor_as_json<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    value::to_json(bytes).serialize(serializer)
}

/// The inverse of [`cbor_as_json`] on what it renders: JSON as CBOR, which renders back as the
/// same JSON.
fn json_as_cbor<'de, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'a, [u8]>, D::Error> {
    let json = serde_json::Value::deserialize(deserializer)?;
    let mut bytes = Vec::new();
    ciborium::into_writer(&json, &mut bytes).map_err(D::Error::custom)?;
    Ok(Cow::Owned(bytes))
}

/// The moment `seconds` after the Unix epoch (as events and the store keep times); times
/// before it, which no clock here gives, are the epoch.
pub fn unix_time(seconds: f64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs_f64(seconds.max(0.0))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl<'a> Event<'a> {
    /// An event stamped with the current time.
    pub fn now(run_id: &'a str, step_key: Option<&'a str>, kind: EventKind<'a>) -> Self {
        Event {
            kind,
            run_id: Cow::Borrowed(run_id),
            timestamp: unix_now(),
            step_key: step_key.map(Cow::Borrowed),
            reused_from: None,
        }
    }
}

/// Why a sink could not take an event: it stopped, and takes none from then on (a run store
/// whose writer failed). The scheduler stops the run on it rather than run on unrecorded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(Arc<dyn std::error::Error + Send + Sync>);

impl SinkError {
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        SinkError(Arc::new(cause))
    }

    /// What stopped the sink.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// Receives every event of a run, in order.
pub trait EventSink: Send {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError>;
}

impl<S: EventSink + ?Sized> EventSink for &mut S {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        (**self).event(event)
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        (**self).event(event)
    }
}

/// Sends every event to two sinks; the first failure is reported once both have it.
pub struct Both<A: EventSink, B: EventSink>(pub A, pub B);

impl<A: EventSink, B: EventSink> EventSink for Both<A, B> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        let first = self.0.event(event);
        let second = self.1.event(event);
        first.and(second)
    }
}

/// Discards events.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&mut self, _: &Event<'_>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Writes events as JSON Lines.
pub struct JsonLines<W: std::io::Write + Send>(pub W);

impl<W: std::io::Write + Send> EventSink for JsonLines<W> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        // A closed stdout (e.g. `| head`) must not fail the run; the run's result still counts.
        let _ignored = serde_json::to_writer(&mut self.0, event)
            .map_err(std::io::Error::from)
            .and_then(|()| self.0.write_all(b"\n"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(value: &impl Serialize) -> Vec<u8> {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn step_output_carries_key_and_json_value() {
        let bytes = cbor(&vec![2, 4]);
        let event = Event::now(
            "r",
            Some("load_pieces"),
            EventKind::StepOutput {
                output: "result".into(),
                mapping_key: Some("1".into()),
                value: Cow::Borrowed(&bytes),
                metadata: Cow::Owned(Metadata::new()),
            },
        );
        let event = Event {
            timestamp: 1.5,
            ..event
        };
        assert_eq!(event.kind.name(), "STEP_OUTPUT");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "event": "STEP_OUTPUT", "output": "result", "mapping_key": "1", "value": [2, 4],
                "run_id": "r", "timestamp": 1.5, "step_key": "load_pieces"
            })
        );
    }

    fn sample_metadata() -> Metadata {
        use crate::user_event::MetadataValue;
        Metadata::from([
            ("rows".to_string(), MetadataValue::Int(1200)),
            ("ratio".to_string(), MetadataValue::Float(0.5)),
            ("ok".to_string(), MetadataValue::Boolean(true)),
            (
                "schema".to_string(),
                MetadataValue::Json(serde_json::json!({"a": [1, "x", null]})),
            ),
            ("url".to_string(), MetadataValue::Url("https://x".into())),
        ])
    }

    #[test]
    fn user_events_are_flat_and_named_as_in_dagster() {
        let event = Event {
            timestamp: 1.5,
            ..Event::now(
                "r",
                Some("s"),
                EventKind::AssetMaterialization(AssetEvent {
                    asset_key: vec!["w".into(), "orders".into()],
                    description: None,
                    partition: None,
                    metadata: Metadata::from([(
                        "rows".to_string(),
                        crate::user_event::MetadataValue::Int(3),
                    )]),
                }),
            )
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "event": "ASSET_MATERIALIZATION", "asset_key": ["w", "orders"],
                "metadata": {"rows": {"int": 3}}, "run_id": "r", "timestamp": 1.5, "step_key": "s"
            })
        );
    }

    fn every_kind() -> Vec<EventKind<'static>> {
        vec![
            EventKind::RunStart { job: "j".into() },
            EventKind::StepStart { attempt: 1 },
            EventKind::StepOutput {
                output: "o".into(),
                mapping_key: None,
                value: cbor(&serde_json::json!({"a": [1, -2, 3.5, "x", null, true]})).into(),
                metadata: Cow::Owned(Metadata::new()),
            },
            EventKind::StepOutput {
                output: "o".into(),
                mapping_key: Some("k".into()),
                value: cbor(&1).into(),
                metadata: Cow::Owned(sample_metadata()),
            },
            EventKind::StepSuccess { duration_ms: 0.5 },
            EventKind::StepFailure {
                error_kind: ErrorKind::Trap,
                error: "e".into(),
                backtrace: Some("0: f".into()),
                duration_ms: 0.0,
            },
            EventKind::StepUpForRetry {
                error_kind: ErrorKind::OpFailed,
                error: "e".into(),
                attempt: 1,
                delay_ms: 0.0,
            },
            EventKind::StepRestarted { attempt: 2 },
            EventKind::StepSkipped { reason: "r".into() },
            EventKind::Logs {
                level: "info".into(),
                message: "m".into(),
            },
            EventKind::AssetMaterialization(AssetEvent {
                asset_key: vec!["warehouse".into(), "orders".into()],
                description: Some("d".into()),
                partition: Some("2026-12-01".into()),
                metadata: sample_metadata(),
            }),
            EventKind::AssetObservation(AssetEvent {
                asset_key: vec!["a".into()],
                description: None,
                partition: None,
                metadata: Metadata::new(),
            }),
            EventKind::StepExpectationResult(ExpectationResult {
                success: false,
                label: "no_nulls".into(),
                description: None,
                metadata: sample_metadata(),
            }),
            EventKind::RunSuccess {
                duration_ms: 0.0,
                peak_rss_bytes: Some(7),
            },
            EventKind::RunFailure {
                duration_ms: 0.0,
                failed_steps: vec!["a".into()],
                unresolved_steps: vec![],
                peak_rss_bytes: None,
            },
            EventKind::RunCanceled {
                duration_ms: 0.0,
                peak_rss_bytes: None,
            },
        ]
    }

    #[test]
    fn names_match_the_serialized_event_field() {
        for kind in every_kind() {
            let name = kind.name();
            let json = serde_json::to_value(Event::now("r", None, kind)).unwrap();
            assert_eq!(json["event"], name);
        }
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        for kind in every_kind() {
            // A time that JSON holds exactly: serde_json reads some others back 1 ulp off.
            let event = Event {
                timestamp: 1.5,
                ..Event::now("r", Some("s"), kind)
            };
            let json = serde_json::to_string(&event).unwrap();
            let read: Event<'static> = serde_json::from_str(&json).unwrap();
            assert_eq!(read, event, "{json}");
        }
    }

    #[test]
    fn an_unknown_event_is_an_error_naming_it() {
        let err = serde_json::from_str::<Event<'static>>(
            r#"{"event": "STEP_EXPLODED", "run_id": "r", "timestamp": 0.0}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("STEP_EXPLODED"), "{err}");
    }
}
