//! How an event is kept in its row of `events`. Format 1 (written before schema 8) is the
//! event's whole `--json` form; format 2 keeps in `json` only what the row's columns do not
//! hold (the kind with its fields, and `reused_from`), which halves the bytes a step writes.
//! Either way a `STEP_OUTPUT`'s value is in the row's `value` or in `blobs`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventKind};

/// The format this build writes.
pub const FORMAT: i64 = 2;

/// The whole `--json` form of the event.
const WHOLE: i64 = 1;

/// An event's `json` in format 2, for `K` an [`EventKind`] or a reference to one.
#[derive(Serialize, Deserialize)]
struct Payload<K> {
    #[serde(flatten)]
    kind: K,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reused_from: Option<String>,
}

/// The `json` of `event` in [`FORMAT`]; a `STEP_OUTPUT`'s value is left out.
pub fn payload(event: &Event<'_>) -> String {
    let reused_from = event.reused_from.as_deref().map(str::to_string);
    let json = match &event.kind {
        EventKind::StepOutput {
            output,
            mapping_key,
            metadata,
            ..
        } => serde_json::to_string(&Payload {
            kind: &EventKind::StepOutput {
                output: Cow::Borrowed(output.as_ref()),
                mapping_key: mapping_key.as_deref().map(Cow::Borrowed),
                value: Cow::default(),
                metadata: Cow::Borrowed(metadata.as_ref()),
            },
            reused_from,
        }),
        kind => serde_json::to_string(&Payload { kind, reused_from }),
    };
    json.expect("events serialize")
}

/// What an event's row holds besides its value.
pub struct Row<'r> {
    pub run_id: &'r str,
    pub format: i64,
    pub json: &'r str,
    pub timestamp: f64,
    pub step_key: Option<String>,
}

/// Why a row cannot be read as an event.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("has format {0}, which this build does not read (it reads formats 1 and 2)")]
    Format(i64),
    #[error("cannot be read: {0}")]
    Json(#[from] serde_json::Error),
}

impl Row<'_> {
    /// The event the row holds, its value (for a `STEP_OUTPUT`) left empty.
    pub fn event(self) -> Result<Event<'static>, RowError> {
        match self.format {
            WHOLE => Ok(serde_json::from_str(self.json)?),
            FORMAT => {
                let payload: Payload<EventKind<'static>> = serde_json::from_str(self.json)?;
                Ok(Event {
                    kind: payload.kind,
                    run_id: Cow::Owned(self.run_id.to_string()),
                    timestamp: self.timestamp,
                    step_key: self.step_key.map(Cow::Owned),
                    reused_from: payload.reused_from.map(Cow::Owned),
                })
            }
            other => Err(RowError::Format(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'r>(json: &'r str, format: i64, step_key: Option<&str>) -> Row<'r> {
        Row {
            run_id: "r1",
            format,
            json,
            timestamp: 2.5,
            step_key: step_key.map(str::to_string),
        }
    }

    #[test]
    fn a_payload_reads_back_as_the_event_less_its_value() {
        let value = crate::value::encode(&7.into());
        let mut event = Event::now(
            "r1",
            Some("emit"),
            EventKind::StepOutput {
                output: "result".into(),
                mapping_key: Some("k1".into()),
                value: (&value).into(),
                metadata: Default::default(),
            },
        );
        event.timestamp = 2.5;
        event.reused_from = Some("r0".into());
        let json = payload(&event);
        assert!(!json.contains("r1") && !json.contains("2.5"), "{json}");
        let read = row(&json, FORMAT, Some("emit")).event().unwrap();
        let EventKind::StepOutput { value: empty, .. } = &read.kind else {
            panic!("{read:?}")
        };
        assert!(empty.is_empty());
        let mut expected = event.clone();
        if let EventKind::StepOutput { value, .. } = &mut expected.kind {
            *value = Cow::default();
        }
        assert_eq!(read, expected);
    }

    #[test]
    fn whole_events_of_format_1_still_read_and_unknown_formats_are_named() {
        let event = Event::now("r1", None, EventKind::RunStart { job: "job".into() });
        let whole = serde_json::to_string(&event).unwrap();
        assert_eq!(row(&whole, WHOLE, None).event().unwrap(), event);
        let err = row(&whole, 99, None).event().unwrap_err();
        assert!(err.to_string().contains("has format 99"), "{err}");
        let err = row("{", FORMAT, None).event().unwrap_err();
        assert!(err.to_string().starts_with("cannot be read: "), "{err}");
    }
}
