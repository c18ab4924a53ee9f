//! Live workers: each publishes its status every few seconds to its own subject of a stream
//! that keeps one message per subject for [`EXPIRY`], so the stream lists the workers alive
//! now. (A stream rather than a key-value bucket: async-nats creates buckets with a request
//! Debian's nats-server 2.9 answers in a form it cannot read.)

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Cluster, NatsError, WORKERS_PREFIX, WORKERS_STREAM, wire};

/// How long an entry outlives its last refresh.
pub const EXPIRY: Duration = Duration::from_secs(15);

/// How often a worker refreshes its entry.
pub const REFRESH: Duration = Duration::from_secs(3);

/// What a worker says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub max_concurrent: usize,
    /// Steps executing now.
    pub running: usize,
    /// Step attempts finished since the worker started.
    pub finished: u64,
    /// Directories it may grant to ops.
    pub allow_dirs: Vec<PathBuf>,
    /// Seconds since the epoch.
    pub started: f64,
}

impl Cluster {
    /// Publishes `status` as the worker's entry.
    pub(super) async fn announce(&self, status: &WorkerStatus) -> Result<(), NatsError> {
        let ack = self
            .js
            .publish(subject(&status.name), wire::encode(status).into())
            .await
            .map_err(NatsError::request)?;
        ack.await.map(drop).map_err(NatsError::request)
    }

    /// Removes a worker's entry (it stops).
    pub(super) async fn retire(&self, name: &str) {
        if let Ok(stream) = self.js.get_stream(WORKERS_STREAM).await {
            let _ignored = stream.purge().filter(subject(name)).await;
        }
    }
}

/// The subject of worker `name`'s status; a name is one subject token.
fn subject(name: &str) -> String {
    format!("{WORKERS_PREFIX}.{}", wire::token(name))
}

/// The workers alive now, by name.
pub async fn live_workers(cluster: &Cluster) -> Result<Vec<WorkerStatus>, NatsError> {
    let stream = cluster
        .js
        .get_stream(WORKERS_STREAM)
        .await
        .map_err(NatsError::request)?;
    let mut subjects = stream
        .info_with_subjects(format!("{WORKERS_PREFIX}.*"))
        .await
        .map_err(NatsError::request)?;
    let mut names = Vec::new();
    while let Some(entry) = subjects.next().await {
        names.push(entry.map_err(NatsError::request)?.0);
    }
    let mut workers = Vec::new();
    for name in names {
        // Gone since it was listed: expired or retired.
        if let Ok(message) = stream.get_last_raw_message_by_subject(&name).await {
            workers.push(wire::decode::<WorkerStatus>(message.payload.as_ref())?);
        }
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(workers)
}
