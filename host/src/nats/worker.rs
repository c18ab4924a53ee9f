//! `host worker`: pulls batches of step calls from the work queue and runs each exactly as
//! the local runner does ([`WasmRunner`]: own instance, same limits, grants and typed errors),
//! sending what the step says to the run's stream. A batch is acknowledged once every call in
//! it has its result stored by the server (or was given up); while calls run, the worker tells
//! the server it is still working on them, so that only a dead worker's calls are redelivered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures_util::StreamExt;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::registry::{REFRESH, WorkerStatus};
use super::relay::{Line, relay};
use super::wire::{self, Answer, Assignment, AttemptKey, Report, Says};
use super::{CALLS_STREAM, Cluster, NatsError, Publisher, WORKERS_CONSUMER, backoff};
use crate::app::SharedEngine;
use crate::digest::Digest;
use crate::exec::{StepChannel, StepRunner};
use crate::runtime::{ComponentFile, EngineSize, Runtime, WasmRunner};
use crate::step_error::StepError;
use crate::value::NamedValues;

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub nats: String,
    pub name: String,
    pub max_concurrent: usize,
    /// Directories ops may be granted, canonical.
    pub allow_dirs: Vec<PathBuf>,
    /// Where compiled components are cached.
    pub cache_dir: Option<PathBuf>,
    /// How long the server waits for a sign of life before it redelivers a call.
    pub ack_wait: Duration,
}

/// Runs a worker until `stop` is set: then it takes no new calls, finishes those it has and
/// leaves the registry.
pub async fn run_worker(
    mut config: WorkerConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), NatsError> {
    let cluster = Cluster::connect(&config.nats).await?;
    let consumer = cluster
        .js
        .get_stream(CALLS_STREAM)
        .await
        .map_err(NatsError::request)?
        .get_or_create_consumer(
            WORKERS_CONSUMER,
            pull::Config {
                durable_name: Some(WORKERS_CONSUMER.into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                ..Default::default()
            },
        )
        .await
        .map_err(NatsError::request)?;
    // The first worker sets the deadline of the work queue's one consumer; the others keep to
    // it, or their calls would be redelivered while they run them.
    let deadline = consumer.cached_info().config.ack_wait;
    if deadline != config.ack_wait {
        tracing::warn!(
            "the work queue's ack deadline is {} (set by the first worker); `--ack-wait {}` does not apply",
            humantime::format_duration(deadline),
            humantime::format_duration(config.ack_wait)
        );
        config.ack_wait = deadline;
    }
    let inbox = cluster.client.new_inbox();
    let answers = cluster
        .client
        .subscribe(inbox.clone())
        .await
        .map_err(NatsError::request)?;
    let (outgoing, to_publish) = mpsc::unbounded_channel();
    let worker = Arc::new(Worker {
        slots: Arc::new(Semaphore::new(config.max_concurrent)),
        instances: Semaphore::new(2 * config.max_concurrent),
        started: crate::events::unix_now(),
        config,
        cluster,
        inbox,
        engine: SharedEngine::default(),
        components: Mutex::default(),
        loading: tokio::sync::Mutex::default(),
        executions: Mutex::default(),
        outgoing,
        queued: AtomicUsize::new(0),
        running: AtomicUsize::new(0),
        finished: AtomicU64::new(0),
        changed: Notify::new(),
    });
    let mut background = JoinSet::new();
    background.spawn(publish(worker.cluster.clone(), to_publish));
    background.spawn(listen(worker.clone(), answers));
    background.spawn(announce(worker.clone()));
    let mut batches = JoinSet::new();
    let mut failures = 0;
    while !*stop.borrow() {
        let room = tokio::select! {
            room = worker.room() => room,
            _ = stop.changed() => break,
        };
        // As many messages (batches of calls) as there is room for, of those waiting; if none
        // is, wait up to a second for one.
        let now = consumer.fetch().max_messages(room).messages().await;
        let pulled = match tokio::time::timeout(FETCH_DEADLINE, worker.pull(now, &mut batches))
            .await
            .unwrap_or(Err(NatsError::FetchStalled))
        {
            Ok(0) => {
                let next = consumer
                    .batch()
                    .max_messages(1)
                    .expires(Duration::from_secs(1))
                    .messages();
                tokio::select! {
                    pulled = async { worker.pull(next.await, &mut batches).await } => pulled,
                    _ = stop.changed() => break,
                }
            }
            pulled => pulled,
        };
        match pulled {
            Ok(_) => failures = 0,
            Err(err) => {
                tracing::warn!("pulling step calls failed; trying again: {err}");
                backoff(&mut failures).await;
            }
        }
        while batches.try_join_next().is_some() {}
    }
    while batches.join_next().await.is_some() {}
    background.abort_all();
    worker.cluster.retire(&worker.config.name).await;
    Ok(())
}

pub(super) struct Worker {
    config: WorkerConfig,
    pub(super) cluster: Cluster,
    pub(super) inbox: String,
    engine: SharedEngine,
    /// Components fetched so far, with what an engine needs to run them.
    components: Mutex<HashMap<Digest, Fetched>>,
    /// Held while a component is fetched or compiled, so that it is done once.
    loading: tokio::sync::Mutex<()>,
    /// Where each execution's answers go, by execution id.
    executions: Mutex<HashMap<u64, mpsc::UnboundedSender<Says>>>,
    pub(super) outgoing: mpsc::UnboundedSender<Outgoing>,
    /// One permit per step executing, at most `max_concurrent`.
    pub(super) slots: Arc<Semaphore>,
    /// One permit per step instantiated, executing or paused: the engine's pool has room for
    /// twice `max_concurrent` (paused steps give their slot back, not their instance).
    instances: Semaphore,
    /// Calls taken from the queue that wait for a slot.
    queued: AtomicUsize,
    running: AtomicUsize,
    finished: AtomicU64,
    /// Signalled when a call starts or ends, or gives its slot back.
    pub(super) changed: Notify,
    started: f64,
}

/// A component's bytes, and the engine size it needs.
type Fetched = (Arc<Vec<u8>>, EngineSize);

/// Most reports taken from the queue at once (then split by subject and size).
const MAX_REPORTS: usize = 256;

/// How long a no-wait fetch of step calls may take. Unlike a batch with an expiry, it has no
/// deadline of its own: a request the server lost while it restarted would never be answered,
/// and the worker would take no more calls (a run then never ends). The server answers one at
/// once; one not answered by then is given up and made again.
const FETCH_DEADLINE: Duration = Duration::from_secs(5);

/// A report to publish, and who waits until the server has stored it.
pub(super) struct Outgoing {
    pub subject: String,
    pub report: Report,
    pub stored: Option<oneshot::Sender<()>>,
}

impl Worker {
    /// Waits until fewer calls wait for a slot than the worker runs at once, and returns how
    /// many more messages to take: the next calls are here when a slot frees, and a worker
    /// holds few more than it can start (a batch per missing call at most).
    async fn room(&self) -> usize {
        loop {
            let changed = self.changed.notified();
            let queued = self.queued.load(SeqCst);
            if queued < self.config.max_concurrent {
                return self.config.max_concurrent - queued;
            }
            changed.await;
        }
    }

    /// Takes the messages of one pull request, each into a task; returns how many came.
    async fn pull(
        self: &Arc<Self>,
        request: Result<pull::Batch, pull::BatchError>,
        batches: &mut JoinSet<()>,
    ) -> Result<usize, NatsError> {
        let mut messages = request.map_err(NatsError::request)?;
        let mut pulled = 0;
        while let Some(message) = messages.next().await {
            let message = message.map_err(NatsError::request)?;
            pulled += 1;
            if let Some(assignments) = self.accept(&message).await {
                batches.spawn(self.clone().take(message, assignments));
            }
        }
        Ok(pulled)
    }

    /// The calls of one message of the work queue, counted as queued; `None` (and the message
    /// dropped for good) when it is malformed.
    async fn accept(&self, message: &async_nats::jetstream::Message) -> Option<Vec<Assignment>> {
        if let Ok(info) = message.info()
            && info.delivered > 1
        {
            tracing::info!(
                "a batch of step calls is delivered again (delivery {}): its worker stopped",
                info.delivered
            );
        }
        match wire::decode::<Vec<Assignment>>(message.payload.as_ref()) {
            Ok(assignments) => {
                tracing::debug!(calls = assignments.len(), "took step calls");
                self.queued.fetch_add(assignments.len(), SeqCst);
                Some(assignments)
            }
            Err(err) => {
                tracing::error!("dropping a malformed batch of step calls: {err}");
                let _ignored = message.ack_with(AckKind::Term).await;
                None
            }
        }
    }

    /// Runs every call of one message of the work queue, then acknowledges it.
    async fn take(
        self: Arc<Self>,
        message: async_nats::jetstream::Message,
        assignments: Vec<Assignment>,
    ) {
        let message = Arc::new(message);
        let progress = {
            let message = message.clone();
            let every = self.config.ack_wait / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ignored = message.ack_with(AckKind::Progress).await;
                }
            })
        };
        let mut calls = JoinSet::new();
        for assignment in assignments {
            calls.spawn(self.clone().execute(assignment));
        }
        while calls.join_next().await.is_some() {}
        progress.abort();
        let _ignored = message.ack().await;
    }

    /// Runs one call as a new execution until it finishes and its result is stored, or the
    /// coordinator stops it or is lost.
    async fn execute(self: Arc<Self>, assignment: Assignment) {
        let mut instance = self.instances.acquire().await.ok();
        let slots = self.slots.clone();
        let permit = slots.acquire_owned().await.ok();
        self.queued.fetch_sub(1, SeqCst);
        self.running.fetch_add(1, SeqCst);
        self.changed.notify_waiters();
        let execution = fastrand::u64(..);
        let (tx, answers) = mpsc::unbounded_channel();
        lock(&self.executions).insert(execution, tx);
        let (channel, end) = StepChannel::remote();
        let line = Line {
            worker: self.clone(),
            subject: assignment.subject.clone(),
            attempt: AttemptKey::of(&assignment.call),
            execution,
            permit,
        };
        let relaying = relay(line, end.messages, answers, end.replies);
        let run = self.run_call(assignment, channel.clone());
        tokio::pin!(relaying, run);
        let mut ran = false;
        loop {
            tokio::select! {
                result = &mut run, if !ran => {
                    ran = true;
                    // The instance is gone; its result is on its way.
                    drop(instance.take());
                    channel.finish(result);
                }
                // Finished once the last message is stored; dropped, the step stops with it.
                () = &mut relaying => break,
            }
        }
        lock(&self.executions).remove(&execution);
        self.running.fetch_sub(1, SeqCst);
        self.finished.fetch_add(1, SeqCst);
        self.changed.notify_waiters();
    }

    /// The step itself: its grants checked against what this worker serves, its large inputs
    /// fetched, its component loaded, then the local runner.
    async fn run_call(
        &self,
        assignment: Assignment,
        channel: StepChannel,
    ) -> Result<NamedValues, StepError> {
        let Assignment {
            mut call,
            wasm_stack,
            stored,
            ..
        } = assignment;
        for grant in &mut call.grants.dirs {
            let (root, dir) = self.root_of(&grant.host)?;
            // Opened beneath the root when the step starts, as a tenant's grants are.
            grant.root = Some(root);
            grant.host = dir;
        }
        let inputs = call.inputs.iter_mut().map(|(_, value)| value).collect();
        self.cluster
            .values
            .unstow(inputs, &stored)
            .await
            .map_err(|err| StepError::Instantiate(format!("cannot fetch an input: {err}")))?;
        let runtime = self
            .runtime_for(&call.component, wasm_stack)
            .await
            .map_err(|err| StepError::Instantiate(err.to_string()))?;
        WasmRunner::new(runtime).run(call, channel).await
    }

    /// The allowed directory `dir` lies in, and `dir` made canonical.
    fn root_of(&self, dir: &Path) -> Result<(PathBuf, PathBuf), StepError> {
        let name = &self.config.name;
        let canonical = dir.canonicalize().map_err(|err| {
            StepError::Instantiate(format!(
                "worker `{name}` cannot grant directory `{}`: {err}",
                dir.display()
            ))
        })?;
        self.config
            .allow_dirs
            .iter()
            .find(|root| canonical.starts_with(root))
            .map(|root| (root.clone(), canonical.clone()))
            .ok_or_else(|| {
                StepError::Instantiate(format!(
                    "worker `{name}` does not serve directory `{}`: start workers with \
                     `--allow-dir {}` (or a directory above it)",
                    dir.display(),
                    canonical.display()
                ))
            })
    }

    /// An engine with component `digest` loaded, fetching and compiling it the first time.
    async fn runtime_for(
        &self,
        digest: &Digest,
        wasm_stack: u64,
    ) -> Result<Arc<Runtime>, NatsError> {
        let known = lock(&self.components).get(digest).cloned();
        if let Some((_, size)) = &known
            && let Ok(runtime) = self.engine.for_run(*size, self.config.cache_dir.as_deref())
            && runtime.component(digest).is_some()
            && runtime.size().wasm_stack == wasm_stack
        {
            return Ok(runtime);
        }
        let _loading = self.loading.lock().await;
        let (bytes, size) = match known {
            Some((bytes, size)) => (bytes, size),
            None => {
                let bytes = self.cluster.components.fetch(digest).await?;
                let file = ComponentFile {
                    path: PathBuf::from(format!("nats:{}", digest.short())),
                    bytes,
                };
                let size = EngineSize::for_run(
                    self.config.max_concurrent,
                    Some(wasm_stack),
                    std::slice::from_ref(&file),
                );
                let entry = (Arc::new(file.bytes), size);
                lock(&self.components).insert(*digest, entry.clone());
                entry
            }
        };
        let size = EngineSize { wasm_stack, ..size };
        let runtime = self
            .engine
            .for_run(size, self.config.cache_dir.as_deref())
            .map_err(|err| NatsError::Worker(err.to_string()))?;
        let path = PathBuf::from(format!("nats:{}", digest.short()));
        runtime
            .load_bytes(&path, &bytes)
            .await
            .map_err(|err| NatsError::Worker(err.to_string()))?;
        Ok(runtime)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .expect("no thread panics holding a worker lock")
}

/// Routes answers from the worker's inbox to their executions.
async fn listen(worker: Arc<Worker>, mut inbox: async_nats::Subscriber) {
    while let Some(message) = inbox.next().await {
        let Ok(answers) = wire::decode::<Vec<Answer>>(message.payload.as_ref()) else {
            continue;
        };
        let executions = lock(&worker.executions);
        for answer in answers {
            if let Some(tx) = executions.get(&answer.execution) {
                let _sent = tx.send(answer.says);
            }
        }
    }
}

/// Publishes reports, those waiting in one message per run, each message retried until the
/// server has stored it (the server may be restarting); then tells who waits.
async fn publish(cluster: Cluster, mut to_publish: mpsc::UnboundedReceiver<Outgoing>) {
    let mut publisher = Publisher::new();
    while let Some(first) = to_publish.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_REPORTS
            && let Ok(next) = to_publish.try_recv()
        {
            batch.push(next);
        }
        let mut by_subject: indexmap::IndexMap<String, Vec<Outgoing>> = indexmap::IndexMap::new();
        for outgoing in batch {
            by_subject
                .entry(outgoing.subject.clone())
                .or_default()
                .push(outgoing);
        }
        for (subject, outgoing) in by_subject {
            for chunk in chunks(outgoing) {
                let (items, waiting): (Vec<_>, Vec<_>) = chunk.into_iter().unzip();
                publisher.store(&cluster.js, &subject, &items).await;
                for tx in waiting.into_iter().flatten() {
                    let _sent = tx.send(());
                }
            }
        }
    }
}

/// A report encoded, and who waits until it is stored.
type Encoded = (Vec<u8>, Option<oneshot::Sender<()>>);

/// Encodes reports and splits them into messages of at most [`wire::MAX_BATCH_BYTES`] (a
/// report larger than that alone: its large values are in the object store already), each
/// with who waits until it is stored.
fn chunks(outgoing: Vec<Outgoing>) -> Vec<Vec<Encoded>> {
    let mut chunks = vec![Vec::new()];
    let mut bytes = 0;
    for Outgoing { report, stored, .. } in outgoing {
        let item = wire::encode(&report);
        if bytes + item.len() > wire::MAX_BATCH_BYTES && !chunks.last().is_some_and(Vec::is_empty) {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += item.len();
        chunks
            .last_mut()
            .expect("one chunk at least")
            .push((item, stored));
    }
    chunks
}

/// Keeps the worker's entry in the registry fresh.
async fn announce(worker: Arc<Worker>) {
    loop {
        let status = WorkerStatus {
            name: worker.config.name.clone(),
            host: crate::store::this_host().to_string(),
            pid: std::process::id(),
            max_concurrent: worker.config.max_concurrent,
            running: worker.running.load(SeqCst),
            finished: worker.finished.load(SeqCst),
            allow_dirs: worker.config.allow_dirs.clone(),
            started: worker.started,
        };
        if let Err(err) = worker.cluster.announce(&status).await {
            tracing::warn!("cannot announce the worker: {err}");
        }
        tokio::time::sleep(REFRESH).await;
    }
}
