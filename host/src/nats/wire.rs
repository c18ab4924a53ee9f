//! What crosses NATS, as CBOR: batches of step calls (coordinator to workers), batches of what
//! steps say (workers to coordinator, durable), and answers (coordinator to a worker's inbox,
//! not durable: a keepalive repeats the last one). Values above [`INLINE_LIMIT`] travel
//! through the values object store and are replaced by their digest (`blobs.rs`).

use std::io::Read;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::NatsError;
use crate::exec::{StepCall, StepMessage, StepReply};

/// Values larger than this go through the object store; smaller ones ride in the message.
pub const INLINE_LIMIT: usize = 64 << 10;

/// Log and captured text a worker sends with a step, at most (the rest is cut, saying so):
/// one message must stay under the server's 1 MiB.
pub const MAX_TEXT: usize = 64 << 10;

/// Most calls in one message of the work queue: a batch is taken by one worker, so larger
/// batches cost fewer messages per step but balance the load between workers less well.
pub const MAX_BATCH_CALLS: usize = 32;

/// Most bytes of one batch (NATS refuses messages above 1 MiB by default).
pub const MAX_BATCH_BYTES: usize = 512 << 10;

/// Step messages of run `RUN` are published on `shoal.steps.RUN`.
pub const STEPS_PREFIX: &str = "shoal.steps";

/// The subject of run `run_id`'s step messages. Run ids are letters, digits and `-`; any other
/// character (NATS gives `.`, `*`, `>` and spaces meaning) becomes `_`.
pub fn steps_subject(run_id: &str) -> String {
    format!("{STEPS_PREFIX}.{}", token(run_id))
}

/// `name` as one subject token: letters, digits, `-` and `_` kept, anything else `_`.
pub fn token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One step attempt, as a worker receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub call: StepCall,
    /// Where the step's messages go.
    pub subject: String,
    /// The engine setting the job asks for.
    pub wasm_stack: u64,
    /// Inputs (by index) whose bytes are the digest of a value in the object store.
    pub stored: Vec<usize>,
}

/// Identifies a step attempt within a run; the same across redeliveries and coordinator
/// restarts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptKey {
    pub step_key: String,
    pub attempt: u32,
}

impl AttemptKey {
    pub fn of(call: &StepCall) -> AttemptKey {
        AttemptKey {
            step_key: call.context.step_key.clone(),
            attempt: call.context.attempt,
        }
    }
}

/// Something a step said, from one execution of one attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub attempt: AttemptKey,
    /// Random per execution: a redelivered call runs as another execution.
    pub execution: u64,
    /// 0, 1, ... within the execution.
    pub seq: u64,
    /// The worker's inbox, for answers.
    pub inbox: String,
    pub message: StepMessage,
    /// Values (by index, see [`values_mut`]) whose bytes are a digest in the object store.
    pub stored: Vec<usize>,
}

/// What the coordinator tells one execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub attempt: AttemptKey,
    pub execution: u64,
    pub says: Says,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Says {
    /// An answer to message `seq`.
    Reply { seq: u64, reply: StepReply },
    /// The coordinator is alive and follows this execution; the last answer it sent, in case
    /// it was lost.
    Keepalive { last: Option<(u64, StepReply)> },
    /// Stop: another execution took over, the run ended, or the coordinator does not follow
    /// this execution.
    Stop,
}

/// `text` cut to [`MAX_TEXT`] bytes (at a character boundary), saying how much was cut.
pub fn cut(text: &mut String) {
    if text.len() <= MAX_TEXT {
        return;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("... ({cut} more bytes not sent by the worker)"));
}

/// True for messages whose step waits for an answer.
pub fn wants_answer(message: &StepMessage) -> bool {
    matches!(
        message,
        StepMessage::Yielded(_) | StepMessage::Log { .. } | StepMessage::Event(_)
    )
}

/// The value buffers of a message, in a fixed order.
pub fn values_mut(message: &mut StepMessage) -> Vec<&mut Vec<u8>> {
    match message {
        StepMessage::Yielded(value) | StepMessage::Returned(value) => vec![&mut value.value],
        StepMessage::Finished(Ok(values)) => values.iter_mut().map(|(_, v)| v).collect(),
        StepMessage::Log { .. }
        | StepMessage::Event(_)
        | StepMessage::OutputMetadata { .. }
        | StepMessage::Captured { .. }
        | StepMessage::Finished(Err(_)) => Vec::new(),
    }
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("writing CBOR into a Vec cannot fail");
    bytes
}

pub fn decode<T: DeserializeOwned>(bytes: impl Read) -> Result<T, NatsError> {
    ciborium::from_reader(bytes).map_err(|err| NatsError::Request(format!("bad message: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_saying_so() {
        let mut text = "é".repeat(MAX_TEXT);
        cut(&mut text);
        assert!(text.starts_with(&"é".repeat(MAX_TEXT / 2)));
        assert!(text.ends_with(&format!(
            "... ({MAX_TEXT} more bytes not sent by the worker)"
        )));
        let mut short = "ok".to_string();
        cut(&mut short);
        assert_eq!(short, "ok");
    }

    #[test]
    fn run_ids_become_one_subject_token() {
        assert_eq!(steps_subject("19a-0042-beef"), "shoal.steps.19a-0042-beef");
        assert_eq!(steps_subject("a.b *>c"), "shoal.steps.a_b___c");
    }
}
