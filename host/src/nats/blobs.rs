//! Bytes kept in a JetStream object store by their BLAKE3 digest: components, and values too
//! large for a message. Every object is checked against its digest when fetched. Each process
//! stores a digest once (async-nats replaces an object it is given again, which would cut off
//! a reader of the old copy) and retries while the server restarts.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::object_store::ObjectStore;

use super::wire::{INLINE_LIMIT, MAX_BATCH_BYTES};
use super::{NatsError, backoff};
use crate::digest::Digest;

/// How long a put or a fetch is tried again before it fails: longer than a server restart.
const PATIENCE: Duration = Duration::from_secs(60);

/// How long one fetch may take before it is tried again.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Below this, a value rides in the message even when its message is large.
const SMALL: usize = 1 << 10;

/// An object store of bytes named by their digest.
pub struct Blobs {
    store: ObjectStore,
    /// Digests this process knows the store has.
    known: Mutex<HashSet<Digest>>,
    /// Held while putting, so that one digest is put once.
    putting: tokio::sync::Mutex<()>,
}

impl Blobs {
    pub fn new(store: ObjectStore) -> Blobs {
        Blobs {
            store,
            known: Mutex::default(),
            putting: tokio::sync::Mutex::default(),
        }
    }

    /// Stores `bytes` under `digest` unless the store has them.
    pub async fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), NatsError> {
        if self.knows(digest) {
            return Ok(());
        }
        let _putting = self.putting.lock().await;
        let name = digest.to_string();
        let mut failures = 0;
        let started = std::time::Instant::now();
        loop {
            if self.knows(digest) || self.store.info(&name).await.is_ok() {
                break;
            }
            let mut reader = bytes;
            match self.store.put(name.as_str(), &mut reader).await {
                Ok(_) => break,
                Err(err) if started.elapsed() > PATIENCE => return Err(NatsError::request(err)),
                Err(err) => {
                    tracing::warn!(
                        "storing object {} failed; trying again: {err}",
                        digest.short()
                    );
                    backoff(&mut failures).await;
                }
            }
        }
        self.known
            .lock()
            .expect("no thread panics holding it")
            .insert(*digest);
        Ok(())
    }

    fn knows(&self, digest: &Digest) -> bool {
        self.known
            .lock()
            .expect("no thread panics holding it")
            .contains(digest)
    }

    /// True when the store has `digest`.
    pub async fn has(&self, digest: &Digest) -> bool {
        self.knows(digest) || self.store.info(digest.to_string()).await.is_ok()
    }

    /// The bytes stored under `digest`, checked against it.
    pub async fn fetch(&self, digest: &Digest) -> Result<Vec<u8>, NatsError> {
        let name = digest.to_string();
        let mut failures = 0;
        let started = std::time::Instant::now();
        loop {
            let fetched = tokio::time::timeout(FETCH_TIMEOUT, async {
                let mut object = self.store.get(&name).await.map_err(NatsError::request)?;
                let mut bytes = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
                    .await
                    .map_err(NatsError::request)?;
                Ok::<_, NatsError>(bytes)
            })
            .await
            .unwrap_or_else(|_| Err(NatsError::Request("timed out".into())));
            match fetched {
                Ok(bytes) if Digest::of(&bytes) == *digest => return Ok(bytes),
                Ok(_) => {
                    return Err(NatsError::Request(format!(
                        "object {name} does not match its digest"
                    )));
                }
                Err(err) if started.elapsed() > PATIENCE => return Err(err),
                Err(err) => {
                    tracing::warn!(
                        "fetching object {} failed; trying again: {err}",
                        digest.short()
                    );
                    backoff(&mut failures).await;
                }
            }
        }
    }

    /// Moves the buffers too large to ride in a message to the store, leaving their digest's
    /// name; returns their indexes. Above [`INLINE_LIMIT`] a value always goes; when the
    /// buffers together would make a message too large, every one above 1 KiB does.
    pub async fn stow(&self, buffers: Vec<&mut Vec<u8>>) -> Result<Vec<usize>, NatsError> {
        let total: usize = buffers.iter().map(|b| b.len()).sum();
        let limit = if total > MAX_BATCH_BYTES / 2 {
            SMALL
        } else {
            INLINE_LIMIT
        };
        let mut stored = Vec::new();
        for (index, buffer) in buffers.into_iter().enumerate() {
            if buffer.len() <= limit {
                continue;
            }
            let digest = Digest::of(buffer);
            self.put(&digest, buffer).await?;
            *buffer = digest.to_string().into_bytes();
            stored.push(index);
        }
        Ok(stored)
    }

    /// Puts back the values [`Blobs::stow`] moved.
    pub async fn unstow(
        &self,
        mut buffers: Vec<&mut Vec<u8>>,
        stored: &[usize],
    ) -> Result<(), NatsError> {
        for &index in stored {
            let buffer = buffers
                .get_mut(index)
                .ok_or_else(|| NatsError::Request(format!("no value {index} to fetch")))?;
            let name = String::from_utf8_lossy(buffer);
            let digest: Digest = name
                .parse()
                .map_err(|_| NatsError::Request(format!("`{name}` is not a digest")))?;
            **buffer = self.fetch(&digest).await?;
        }
        Ok(())
    }
}
