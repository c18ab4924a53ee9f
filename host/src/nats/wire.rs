//! What crosses NATS, as CBOR: batches of step calls (coordinator to workers), batches of what
//! steps say (workers to coordinator, durable), and answers (coordinator to a worker's inbox,
//! not durable: a keepalive repeats the last one). Values above [`INLINE_LIMIT`] travel
//! through the values object store and are replaced by their digest.

use std::io::Read;

use async_nats::jetstream::object_store::ObjectStore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::NatsError;
use crate::digest::Digest;
use crate::exec::{StepCall, StepMessage, StepReply};

/// Values larger than this go through the object store; smaller ones ride in the message.
pub const INLINE_LIMIT: usize = 64 << 10;

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

/// True for messages whose step waits for an answer.
pub fn wants_answer(message: &StepMessage) -> bool {
    matches!(message, StepMessage::Yielded(_) | StepMessage::Log { .. })
}

/// The value buffers of a message, in a fixed order.
pub fn values_mut(message: &mut StepMessage) -> Vec<&mut Vec<u8>> {
    match message {
        StepMessage::Yielded(value) | StepMessage::Returned(value) => vec![&mut value.value],
        StepMessage::Finished(Ok(values)) => values.iter_mut().map(|(_, v)| v).collect(),
        StepMessage::Log { .. } | StepMessage::Captured { .. } | StepMessage::Finished(Err(_)) => {
            Vec::new()
        }
    }
}

/// Moves every buffer above the inline limit to the object store, leaving its digest.
pub async fn stow(
    store: &ObjectStore,
    buffers: Vec<&mut Vec<u8>>,
) -> Result<Vec<usize>, NatsError> {
    let mut stored = Vec::new();
    for (index, buffer) in buffers.into_iter().enumerate() {
        if buffer.len() <= INLINE_LIMIT {
            continue;
        }
        let digest = Digest::of(buffer);
        let name = digest.to_string();
        if store.info(&name).await.is_err() {
            let mut reader = buffer.as_slice();
            store
                .put(name.as_str(), &mut reader)
                .await
                .map_err(NatsError::request)?;
        }
        *buffer = name.into_bytes();
        stored.push(index);
    }
    Ok(stored)
}

/// Puts back the values [`stow`] moved, checking each against its digest.
pub async fn unstow(
    store: &ObjectStore,
    mut buffers: Vec<&mut Vec<u8>>,
    stored: &[usize],
) -> Result<(), NatsError> {
    for &index in stored {
        let buffer = buffers
            .get_mut(index)
            .ok_or_else(|| NatsError::Request(format!("no value {index} to fetch")))?;
        let name = String::from_utf8_lossy(buffer).into_owned();
        let bytes = fetch(store, &name).await?;
        **buffer = bytes;
    }
    Ok(())
}

/// The object `name` (a digest), checked against it.
pub async fn fetch(store: &ObjectStore, name: &str) -> Result<Vec<u8>, NatsError> {
    let digest: Digest = name
        .parse()
        .map_err(|_| NatsError::Request(format!("`{name}` is not a digest")))?;
    let mut object = store.get(name).await.map_err(NatsError::request)?;
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
        .await
        .map_err(NatsError::request)?;
    if Digest::of(&bytes) != digest {
        return Err(NatsError::Request(format!(
            "object `{name}` does not match its digest"
        )));
    }
    Ok(bytes)
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
    fn run_ids_become_one_subject_token() {
        assert_eq!(steps_subject("19a-0042-beef"), "shoal.steps.19a-0042-beef");
        assert_eq!(steps_subject("a.b *>c"), "shoal.steps.a_b___c");
    }
}
