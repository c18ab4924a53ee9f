//! Run events, named after Dagster's `DagsterEventType` so that users recognise them, and the
//! sinks they go to (`--json` writes them to stdout as JSON Lines).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::value;

/// One event of a run.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(flatten)]
    pub kind: EventKind<'a>,
    pub run_id: &'a str,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_key: Option<&'a str>,
}

/// What happened.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind<'a> {
    RunStart {
        job: &'a str,
    },
    StepStart {
        attempt: u32,
    },
    StepOutput {
        output: &'a str,
        /// Set for the values of a dynamic output.
        #[serde(skip_serializing_if = "Option::is_none")]
        mapping_key: Option<&'a str>,
        /// The CBOR value rendered as JSON.
        #[serde(serialize_with = "cbor_as_json")]
        value: &'a [u8],
    },
    StepSuccess {
        duration_ms: f64,
    },
    StepFailure {
        error_kind: &'static str,
        error: String,
        /// The guest's call stack, for traps.
        #[serde(skip_serializing_if = "Option::is_none")]
        backtrace: Option<&'a str>,
        duration_ms: f64,
    },
    /// An attempt failed and the step will run again after `delay_ms`.
    StepUpForRetry {
        error_kind: &'static str,
        error: String,
        /// The attempt that failed.
        attempt: u32,
        delay_ms: f64,
    },
    /// A retry attempt started.
    StepRestarted {
        attempt: u32,
    },
    StepSkipped {
        reason: &'a str,
    },
    Logs {
        level: &'a str,
        message: &'a str,
    },
    RunSuccess {
        duration_ms: f64,
        /// The host's peak resident memory, where the OS reports it.
        #[serde(skip_serializing_if = "Option::is_none")]
        peak_rss_bytes: Option<u64>,
    },
    RunFailure {
        duration_ms: f64,
        failed_steps: Vec<String>,
        /// Steps the plan called for that never finished (see `Run::unresolved`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        unresolved_steps: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        peak_rss_bytes: Option<u64>,
    },
    /// The run was asked to stop (SIGINT, SIGTERM) and did, with steps left to run.
    RunCanceled {
        duration_ms: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
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
            EventKind::RunSuccess { .. } => "RUN_SUCCESS",
            EventKind::RunFailure { .. } => "RUN_FAILURE",
            EventKind::RunCanceled { .. } => "RUN_CANCELED",
        }
    }
}

fn cbor_as_json<S: Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    value::to_json(bytes).serialize(serializer)
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
        let timestamp = unix_now();
        Event {
            kind,
            run_id,
            timestamp,
            step_key,
        }
    }
}

/// Receives every event of a run, in order.
pub trait EventSink: Send {
    fn event(&mut self, event: &Event<'_>);
}

impl<S: EventSink + ?Sized> EventSink for &mut S {
    fn event(&mut self, event: &Event<'_>) {
        (**self).event(event);
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn event(&mut self, event: &Event<'_>) {
        (**self).event(event);
    }
}

/// Sends every event to two sinks.
pub struct Both<A: EventSink, B: EventSink>(pub A, pub B);

impl<A: EventSink, B: EventSink> EventSink for Both<A, B> {
    fn event(&mut self, event: &Event<'_>) {
        self.0.event(event);
        self.1.event(event);
    }
}

/// Discards events.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&mut self, _: &Event<'_>) {}
}

/// Writes events as JSON Lines.
pub struct JsonLines<W: std::io::Write + Send>(pub W);

impl<W: std::io::Write + Send> EventSink for JsonLines<W> {
    fn event(&mut self, event: &Event<'_>) {
        // A closed stdout (e.g. `| head`) must not fail the run; the run's result still counts.
        let _ignored = serde_json::to_writer(&mut self.0, event)
            .map_err(std::io::Error::from)
            .and_then(|()| self.0.write_all(b"\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_output_carries_key_and_json_value() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&vec![2, 4], &mut bytes).unwrap();
        let event = Event {
            kind: EventKind::StepOutput {
                output: "result",
                mapping_key: Some("1"),
                value: &bytes,
            },
            run_id: "r",
            timestamp: 1.5,
            step_key: Some("load_pieces"),
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

    #[test]
    fn names_match_the_serialized_event_field() {
        let kinds = [
            EventKind::RunStart { job: "j" },
            EventKind::StepStart { attempt: 1 },
            EventKind::StepOutput {
                output: "o",
                mapping_key: None,
                value: &[0],
            },
            EventKind::StepSuccess { duration_ms: 0.0 },
            EventKind::StepFailure {
                error_kind: "k",
                error: "e".into(),
                backtrace: None,
                duration_ms: 0.0,
            },
            EventKind::StepUpForRetry {
                error_kind: "k",
                error: "e".into(),
                attempt: 1,
                delay_ms: 0.0,
            },
            EventKind::StepRestarted { attempt: 2 },
            EventKind::StepSkipped { reason: "r" },
            EventKind::Logs {
                level: "info",
                message: "m",
            },
            EventKind::RunSuccess {
                duration_ms: 0.0,
                peak_rss_bytes: None,
            },
            EventKind::RunFailure {
                duration_ms: 0.0,
                failed_steps: vec![],
                unresolved_steps: vec![],
                peak_rss_bytes: None,
            },
            EventKind::RunCanceled {
                duration_ms: 0.0,
                peak_rss_bytes: None,
            },
        ];
        for kind in kinds {
            let name = kind.name();
            let json = serde_json::to_value(Event {
                kind,
                run_id: "r",
                timestamp: 0.0,
                step_key: None,
            })
            .unwrap();
            assert_eq!(json["event"], name);
        }
    }
}
