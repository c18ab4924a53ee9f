//! Steps run by workers on other machines, over NATS JetStream. One coordinator owns a run
//! and its store and schedules it as always; its runner ([`Coordinator::runner`]) publishes
//! step calls to a durable work-queue stream instead of running them, and `host worker`
//! processes pull them, run each in its own sandboxed instance with the local runner, and
//! publish what the step says (yielded values, logs, the result) to a durable stream the
//! coordinator reads. Components travel by digest through an object store, so do values above
//! [`wire::INLINE_LIMIT`]; live workers announce themselves in a stream of statuses.
//!
//! Delivery is at least once (a worker that dies is replaced by a redelivery after the ack
//! deadline); effects are exactly once: the coordinator keys every attempt by run, step key
//! and attempt number, follows one execution of it at a time, and takes its result once.

mod blobs;
mod coordinator;
mod registry;
mod relay;
mod wire;
mod worker;

use std::time::Duration;

use async_nats::jetstream::{self, object_store, stream};

use blobs::Blobs;

pub use coordinator::{Coordinator, NatsRunner};
pub use registry::{WorkerStatus, live_workers};
pub use worker::{WorkerConfig, run_worker};

/// The work queue of step calls, pulled by every worker through one durable consumer.
const CALLS_STREAM: &str = "SHOAL_CALLS";
const CALLS_SUBJECT: &str = "shoal.calls";
const WORKERS_CONSUMER: &str = "shoal-workers";
/// What steps say back, one subject per run: `shoal.steps.RUN`.
const STEPS_STREAM: &str = "SHOAL_STEPS";
/// Component bytes by digest.
const COMPONENTS_BUCKET: &str = "shoal-components";
/// Values above the inline limit, by digest.
const VALUES_BUCKET: &str = "shoal-values";
/// One status message per live worker, `shoal.workers.NAME`, expiring unless refreshed.
const WORKERS_STREAM: &str = "SHOAL_WORKERS";
const WORKERS_PREFIX: &str = "shoal.workers";

/// How long unclaimed calls, step messages and large values are kept: a run stopped for
/// longer than this cannot take over what its workers finished meanwhile.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why the cluster cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("`{0}` is not a NATS URL; expected nats://HOST:PORT")]
    BadUrl(String),
    #[error("cannot connect to NATS at `{url}`: {message}")]
    Connect { url: String, message: String },
    #[error(
        "cannot set up JetStream `{name}` on `{url}`: {message} (is nats-server started with -js?)"
    )]
    Setup {
        url: String,
        name: &'static str,
        message: String,
    },
    #[error("NATS request failed: {0}")]
    Request(String),
    #[error("the server did not answer a fetch of step calls in time")]
    FetchStalled,
    #[error("component {digest} is not in the cluster's object store")]
    MissingComponent { digest: String },
    #[error("{0}")]
    Worker(String),
}

impl NatsError {
    fn request(err: impl std::fmt::Display) -> NatsError {
        NatsError::Request(err.to_string())
    }
}

/// A connection to a NATS server with Shoal's streams and buckets, created if missing.
#[derive(Clone)]
pub struct Cluster(std::sync::Arc<Connected>);

pub struct Connected {
    url: String,
    client: async_nats::Client,
    js: jetstream::Context,
    components: Blobs,
    values: Blobs,
}

impl std::ops::Deref for Cluster {
    type Target = Connected;

    fn deref(&self) -> &Connected {
        &self.0
    }
}

impl Cluster {
    /// Connects to `url` (`nats://[USER:PASSWORD@]HOST:PORT`) and sets up the streams and
    /// buckets. The client reconnects by itself if the server goes away later.
    pub async fn connect(url: &str) -> Result<Cluster, NatsError> {
        if url.strip_prefix("nats://").is_none_or(str::is_empty) {
            return Err(NatsError::BadUrl(redacted(url)));
        }
        let (secret, url) = (url, redacted(url));
        let url = url.as_str();
        let connect_error = |err: &dyn std::fmt::Display| NatsError::Connect {
            url: url.to_string(),
            message: err.to_string(),
        };
        let client = async_nats::ConnectOptions::new()
            .name("shoal")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(secret)
            .await
            .map_err(|err| connect_error(&err))?;
        let js = jetstream::new(client.clone());
        let setup = |name: &'static str| {
            move |err: &dyn std::fmt::Display| NatsError::Setup {
                url: url.to_string(),
                name,
                message: err.to_string(),
            }
        };
        ensure_stream(
            &js,
            stream::Config {
                name: CALLS_STREAM.into(),
                subjects: vec![CALLS_SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                max_age: RETENTION,
                ..Default::default()
            },
        )
        .await
        .map_err(|err| setup(CALLS_STREAM)(&err))?;
        ensure_stream(
            &js,
            stream::Config {
                name: STEPS_STREAM.into(),
                subjects: vec![format!("{}.*", wire::STEPS_PREFIX)],
                storage: stream::StorageType::File,
                max_age: RETENTION,
                ..Default::default()
            },
        )
        .await
        .map_err(|err| setup(STEPS_STREAM)(&err))?;
        let components = object_bucket(&js, COMPONENTS_BUCKET, Duration::ZERO)
            .await
            .map_err(|err| setup(COMPONENTS_BUCKET)(&err))?;
        let values = object_bucket(&js, VALUES_BUCKET, RETENTION)
            .await
            .map_err(|err| setup(VALUES_BUCKET)(&err))?;
        ensure_stream(
            &js,
            stream::Config {
                name: WORKERS_STREAM.into(),
                subjects: vec![format!("{WORKERS_PREFIX}.*")],
                max_messages_per_subject: 1,
                max_age: registry::EXPIRY,
                storage: stream::StorageType::Memory,
                ..Default::default()
            },
        )
        .await
        .map_err(|err| setup(WORKERS_STREAM)(&err))?;
        Ok(Cluster(std::sync::Arc::new(Connected {
            url: url.to_string(),
            client,
            js,
            components: Blobs::new(components),
            values: Blobs::new(values),
        })))
    }

    /// The URL this connects to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `url` without the password or token it may carry, for messages.
pub fn redacted(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| {
        let (credentials, host) = rest.split_once('@')?;
        Some(match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://***@{host}"),
        })
    }) {
        Some(shown) => shown,
        None => url.to_string(),
    }
}

/// The stream `config` names, created if missing.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<(), async_nats::Error> {
    let name = config.name.clone();
    match js.get_or_create_stream(config).await {
        Ok(_) => Ok(()),
        // Another process created it between our lookup and our creation: the server refuses
        // ours as overlapping the subjects of the one that won, which is the one we want.
        Err(err) => js.get_stream(&name).await.map(drop).map_err(|_| err.into()),
    }
}

/// The object store `bucket`, created if missing; `max_age` zero keeps objects forever.
async fn object_bucket(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
) -> Result<object_store::ObjectStore, async_nats::Error> {
    if let Ok(store) = js.get_object_store(bucket).await {
        return Ok(store);
    }
    let created = js
        .create_object_store(object_store::Config {
            bucket: bucket.into(),
            max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await;
    match created {
        Ok(store) => Ok(store),
        // Another process (a worker and a coordinator starting together on a new server)
        // created it meanwhile: the server refuses the second creation as overlapping.
        Err(err) => js.get_object_store(bucket).await.map_err(|_| err.into()),
    }
}

/// Publishes batches to JetStream, each one CBOR array of items already encoded, and retries
/// each until the server has stored it (it may be restarting); a retried batch keeps its
/// message id, so the server stores it once.
struct Publisher {
    id: u64,
    sent: u64,
}

impl Publisher {
    fn new() -> Publisher {
        Publisher {
            id: fastrand::u64(..),
            sent: 0,
        }
    }

    /// Returns once `items` are stored on `subject`.
    async fn store(&mut self, js: &jetstream::Context, subject: &str, items: &[Vec<u8>]) {
        self.sent += 1;
        let publish = jetstream::message::PublishMessage::build()
            .payload(crate::value::array(items.iter().map(Vec::as_slice)).into())
            .message_id(format!("{:016x}-{}", self.id, self.sent));
        let mut failures = 0;
        loop {
            let stored = match js.send_publish(subject.to_string(), publish.clone()).await {
                Ok(ack) => ack.await.map(drop).map_err(|err| err.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match stored {
                Ok(()) => {
                    tracing::debug!(subject, items = items.len(), "published");
                    return;
                }
                Err(err) => {
                    tracing::warn!("publishing to `{subject}` failed; trying again: {err}");
                    backoff(&mut failures).await;
                }
            }
        }
    }
}

/// Waits before trying a failed NATS operation again: the server may be restarting.
async fn backoff(failures: &mut u32) {
    *failures = failures.saturating_add(1);
    let millis = 50u64 << (*failures).min(5);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_in_urls_are_not_shown() {
        assert_eq!(redacted("nats://a:secret@h:4222"), "nats://a:***@h:4222");
        assert_eq!(redacted("nats://h:4222"), "nats://h:4222");
        assert_eq!(redacted("nats://token@h:4222"), "nats://***@h:4222");
    }
}
