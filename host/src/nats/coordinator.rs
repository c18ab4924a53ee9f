//! The coordinator's side: a [`StepRunner`] that hands each step attempt to the workers and
//! plays what the step says back into the scheduler's [`StepChannel`], as if it ran here.
//!
//! One task per run reads the run's step messages from the durable stream, from its start: a
//! coordinator that resumes a run finds there what workers published while it was down, and
//! takes over every attempt that succeeded meanwhile instead of running it again. Each attempt
//! follows one execution at a time: a redelivered call (its first worker died) starts another,
//! which takes over; what the scheduler was already given is compared, not given twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::wire::{self, Answer, Assignment, AttemptKey, Report, Says};
use super::{CALLS_SUBJECT, Cluster, NatsError, Publisher, STEPS_STREAM, backoff};
use crate::digest::Digest;
use crate::exec::{StepCall, StepChannel, StepMessage, StepReply, StepRunner};
use crate::step_error::StepError;
use crate::value::NamedValues;

/// How often the coordinator tells each execution it follows that it is alive: a worker
/// that hears nothing for a while gives up on a step that waits for an answer.
pub(super) const KEEPALIVE: Duration = Duration::from_secs(2);

/// A connection to the cluster, for the runs of one process.
#[derive(Clone)]
pub struct Coordinator {
    cluster: Cluster,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("url", &self.cluster.url())
            .finish()
    }
}

impl Coordinator {
    /// Connects to the NATS server at `url` and sets up Shoal's streams and buckets.
    pub async fn connect(url: &str) -> Result<Coordinator, NatsError> {
        Ok(Coordinator {
            cluster: Cluster::connect(url).await?,
        })
    }

    /// Makes sure the cluster has the component `digest`, taking its bytes from `bytes` when
    /// it does not.
    pub async fn ensure_component(
        &self,
        digest: &Digest,
        bytes: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<(), NatsError> {
        if self.cluster.components.has(digest).await {
            return Ok(());
        }
        let bytes = bytes().ok_or_else(|| NatsError::MissingComponent {
            digest: digest.to_string(),
        })?;
        self.cluster.components.put(digest, &bytes).await
    }

    /// A runner for run `run_id`, whose steps get `wasm_stack` bytes of wasm stack. It first
    /// reads what earlier executions of the run left in the stream.
    pub async fn runner(&self, run_id: &str, wasm_stack: u64) -> Result<NatsRunner, NatsError> {
        let subject = wire::steps_subject(run_id);
        let stream = self
            .cluster
            .js
            .get_stream(STEPS_STREAM)
            .await
            .map_err(NatsError::request)?;
        let known = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Some(message.sequence),
            Err(err)
                if err.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                None
            }
            Err(err) => return Err(NatsError::request(err)),
        };
        let (calls, queued) = mpsc::unbounded_channel();
        let (answers, to_answer) = mpsc::unbounded_channel();
        let (ready_tx, ready) = watch::channel(known.is_none());
        let shared = Arc::new(Shared {
            cluster: self.cluster.clone(),
            subject: subject.clone(),
            wasm_stack,
            calls,
            answers,
            table: Mutex::default(),
            ready,
        });
        tokio::spawn(answer(self.cluster.client.clone(), to_answer));
        let tasks = vec![
            tokio::spawn(dispatch(self.cluster.clone(), queued)),
            tokio::spawn(read_reports(
                shared.clone(),
                stream,
                subject,
                known,
                ready_tx,
            )),
        ];
        Ok(NatsRunner { shared, tasks })
    }
}

/// Runs step attempts on the cluster's workers; see the module documentation.
pub struct NatsRunner {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    cluster: Cluster,
    subject: String,
    wasm_stack: u64,
    calls: mpsc::UnboundedSender<Assignment>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
    table: Mutex<Table>,
    /// Set once the messages earlier executions left have been read.
    ready: watch::Receiver<bool>,
}

/// Where each report goes.
#[derive(Default)]
struct Table {
    /// Attempts the scheduler is running.
    live: HashMap<AttemptKey, mpsc::UnboundedSender<Report>>,
    /// Reports of attempts the scheduler has not asked for (yet): left by an earlier execution
    /// of the run, or arrived before the scheduler got to them.
    early: HashMap<AttemptKey, Vec<Report>>,
    /// Attempts whose result the scheduler has, or no longer wants.
    done: HashSet<AttemptKey>,
}

impl NatsRunner {
    /// Stops following the run; with `forget`, also deletes its step messages (the run ended
    /// and will not be resumed from them).
    pub async fn finish(&self, forget: bool) {
        if forget && let Ok(stream) = self.shared.cluster.js.get_stream(STEPS_STREAM).await {
            let _ignored = stream.purge().filter(&self.shared.subject).await;
        }
    }
}

impl Drop for NatsRunner {
    /// Stops reading and dispatching; the answers task ends by itself once the stops the
    /// dropped conversations queued are sent.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl StepRunner for NatsRunner {
    async fn run(&self, call: StepCall, channel: StepChannel) -> Result<NamedValues, StepError> {
        let shared = &self.shared;
        let mut ready = shared.ready.clone();
        // The sender lives as long as the runner.
        let _ready = ready.wait_for(|ready| *ready).await.is_ok();
        let key = AttemptKey::of(&call);
        let (tx, mut reports) = mpsc::unbounded_channel();
        let early = lock(&shared.table).register(&key, tx);
        let mut conversation = Conversation {
            shared,
            key: key.clone(),
            channel,
            link: Arc::default(),
            given: Counts::default(),
            current: Counts::default(),
            finished: false,
        };
        if let Some(reports) = adoptable(early) {
            conversation.link_mut().silent = true;
            for report in reports {
                if let Some(result) = conversation.take(report).await {
                    return result;
                }
            }
            conversation.link_mut().silent = false;
        }
        let assignment = match shared.assignment(call).await {
            Ok(assignment) => assignment,
            Err(err) => {
                return Err(StepError::Instantiate(format!(
                    "cannot send the step to the workers: {err}"
                )));
            }
        };
        let _sent = shared.calls.send(assignment);
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        loop {
            tokio::select! {
                report = reports.recv() => {
                    // The table holds the sender until the conversation is dropped.
                    let Some(report) = report else {
                        return Err(StepError::Instantiate("the step's messages were lost".into()));
                    };
                    let link = conversation.link.clone();
                    let taking = conversation.take(report);
                    tokio::pin!(taking);
                    let result = loop {
                        tokio::select! {
                            result = &mut taking => break result,
                            _ = keepalive.tick() => keep_alive(shared, &key, &link),
                        }
                    };
                    if let Some(result) = result {
                        return result;
                    }
                }
                _ = keepalive.tick() => keep_alive(shared, &key, &conversation.link),
            }
        }
    }
}

impl Shared {
    /// `call` as a worker receives it, its large inputs moved to the object store.
    async fn assignment(&self, mut call: StepCall) -> Result<Assignment, NatsError> {
        let inputs = call.inputs.iter_mut().map(|(_, value)| value).collect();
        let stored = self.cluster.values.stow(inputs).await?;
        Ok(Assignment {
            call,
            subject: self.subject.clone(),
            wasm_stack: self.wasm_stack,
            stored,
        })
    }

    fn tell(&self, inbox: &str, attempt: &AttemptKey, execution: u64, says: Says) {
        let answer = Answer {
            attempt: attempt.clone(),
            execution,
            says,
        };
        let _sent = self.answers.send((inbox.to_string(), answer));
    }
}

impl Table {
    /// Starts routing `key`'s reports to `tx`; returns those that came before.
    fn register(&mut self, key: &AttemptKey, tx: mpsc::UnboundedSender<Report>) -> Vec<Report> {
        self.done.remove(key);
        self.live.insert(key.clone(), tx);
        self.early.remove(key).unwrap_or_default()
    }
}

/// Of the reports an earlier execution of the run left for an attempt, those of one execution
/// that succeeded, complete from its first message: the attempt's result, taken over.
/// Anything else (a failure, an execution cut short) is run again.
fn adoptable(early: Vec<Report>) -> Option<Vec<Report>> {
    let mut executions: HashMap<u64, Vec<Report>> = HashMap::new();
    for report in early {
        executions.entry(report.execution).or_default().push(report);
    }
    executions.into_values().find_map(|mut reports| {
        reports.sort_by_key(|r| r.seq);
        reports.dedup_by_key(|r| r.seq);
        let complete = reports.iter().enumerate().all(|(i, r)| r.seq == i as u64);
        let succeeded = matches!(
            reports.last().map(|r| &r.message),
            Some(StepMessage::Finished(Ok(_)))
        );
        (complete && succeeded).then_some(reports)
    })
}

/// What an attempt's executions have told the scheduler, by kind: a later execution's first
/// messages repeat them and are not passed on again.
#[derive(Default)]
struct Counts {
    /// Digests of the yielded values, to compare a later execution's with.
    yields: Vec<Digest>,
    /// Digests of the dynamic values returned.
    returned: Vec<Digest>,
    logs: usize,
    events: usize,
    captured: usize,
    /// The next message expected of the followed execution: one stored twice (a publish
    /// retried past the server's duplicate window) is dropped.
    next_seq: u64,
}

/// The execution an attempt follows.
#[derive(Default)]
struct Link {
    /// Its id and the worker inbox it hears answers on.
    bound: Option<(u64, String)>,
    /// Executions superseded or never followed.
    rejected: HashSet<u64>,
    /// The last answer sent: a keepalive repeats it.
    last: Option<(u64, StepReply)>,
    /// Replaying reports an earlier coordinator left: nobody waits for the answers.
    silent: bool,
    /// A value refused (it diverged from what was given): the attempt fails with this, whatever
    /// the step says after (it may have gone on before it heard).
    refused: Option<StepError>,
}

/// One attempt, as the coordinator plays it into the scheduler.
struct Conversation<'a> {
    shared: &'a Shared,
    key: AttemptKey,
    channel: StepChannel,
    link: Arc<Mutex<Link>>,
    /// What the scheduler was given.
    given: Counts,
    /// What the followed execution has sent so far.
    current: Counts,
    finished: bool,
}

impl Conversation<'_> {
    fn link_mut(&self) -> std::sync::MutexGuard<'_, Link> {
        self.link.lock().expect("no thread panics holding a link")
    }

    /// Plays one report; returns the attempt's result once it has one.
    async fn take(&mut self, mut report: Report) -> Option<Result<NamedValues, StepError>> {
        if !self.follow(&report) {
            return None;
        }
        let values = wire::values_mut(&mut report.message);
        if let Err(err) = self
            .shared
            .cluster
            .values
            .unstow(values, &report.stored)
            .await
        {
            return Some(Err(StepError::Instantiate(format!(
                "cannot fetch a value the step sent: {err}"
            ))));
        }
        let seq = report.seq;
        let repeat = match &report.message {
            StepMessage::Yielded(value) => {
                let digest = Digest::of(&wire::encode(value));
                match repeated(&mut self.current.yields, &mut self.given.yields, digest) {
                    Repeat::New => None,
                    Repeat::Same => Some(StepReply::Verdict(Ok(()))),
                    Repeat::Different(index) => Some(StepReply::Verdict(Err(diverged(&format!(
                        "yielded `{}` on output `{}` as value {}",
                        value.key,
                        value.output,
                        index + 1
                    ))))),
                }
            }
            StepMessage::Returned(value) => {
                let digest = Digest::of(&wire::encode(value));
                match repeated(&mut self.current.returned, &mut self.given.returned, digest) {
                    Repeat::New => None,
                    Repeat::Same => return None,
                    Repeat::Different(index) => {
                        self.link_mut().refused.get_or_insert_with(|| {
                            diverged(&format!("returned `{}` as value {}", value.key, index + 1))
                        });
                        return None;
                    }
                }
            }
            StepMessage::Log { .. } => {
                counted(&mut self.current.logs, &mut self.given.logs).then_some(StepReply::Logged)
            }
            StepMessage::Event(_) => counted(&mut self.current.events, &mut self.given.events)
                .then_some(StepReply::Logged),
            // The scheduler keeps the last metadata of each output: a repeat replaces it.
            StepMessage::OutputMetadata { .. } => None,
            StepMessage::Captured { .. } => {
                if counted(&mut self.current.captured, &mut self.given.captured) {
                    return None;
                }
                None
            }
            StepMessage::Finished(Ok(_)) => {
                let short = self.current.yields.len() < self.given.yields.len()
                    || self.current.returned.len() < self.given.returned.len();
                if short {
                    self.link_mut().refused.get_or_insert_with(|| {
                        diverged("gave fewer dynamic values than the first execution")
                    });
                }
                if let Some(refused) = self.link_mut().refused.clone() {
                    report.message = StepMessage::Finished(Err(refused));
                }
                None
            }
            StepMessage::Finished(Err(_)) => None,
        };
        if let Some(reply) = repeat {
            self.answer(seq, reply);
            return None;
        }
        let link = self.link.clone();
        let (shared, key) = (self.shared, &self.key);
        let result = self
            .channel
            .serve(report.message, |reply| {
                answer_on(shared, key, &link, seq, reply);
            })
            .await;
        if result.is_some() {
            self.finished = true;
        }
        result
    }

    /// Decides whether `report`'s execution is the one followed, taking over from the one
    /// followed so far when a new execution starts (a redelivered call).
    fn follow(&mut self, report: &Report) -> bool {
        let mut link = self.link_mut();
        match &link.bound {
            Some((execution, _)) if *execution == report.execution => {
                drop(link);
                if report.seq < self.current.next_seq {
                    return false;
                }
                self.current.next_seq = report.seq + 1;
                return true;
            }
            _ => {}
        }
        if link.rejected.contains(&report.execution) || report.seq != 0 {
            link.rejected.insert(report.execution);
            drop(link);
            self.stop(&report.inbox, report.execution, report);
            return false;
        }
        if let Some((old, inbox)) = link.bound.take() {
            link.rejected.insert(old);
            self.shared.tell(&inbox, &self.key, old, Says::Stop);
        }
        link.bound = Some((report.execution, report.inbox.clone()));
        link.last = None;
        drop(link);
        self.current = Counts {
            next_seq: 1,
            ..Counts::default()
        };
        true
    }

    /// Tells an execution that is not followed to stop, if it waits for an answer.
    fn stop(&self, inbox: &str, execution: u64, report: &Report) {
        if wire::wants_answer(&report.message) {
            self.shared.tell(inbox, &self.key, execution, Says::Stop);
        }
    }

    fn answer(&self, seq: u64, reply: StepReply) {
        answer_on(self.shared, &self.key, &self.link, seq, reply);
    }
}

/// How a value compares with what an earlier execution gave at its place.
enum Repeat {
    /// Nothing was given there: pass it on.
    New,
    Same,
    /// Something else was given there, at this index.
    Different(usize),
}

/// Where `digest`, the next value of its kind from the followed execution, stands against
/// what earlier executions gave; counts it either way.
fn repeated(current: &mut Vec<Digest>, given: &mut Vec<Digest>, digest: Digest) -> Repeat {
    let index = current.len();
    current.push(digest);
    match given.get(index) {
        None => {
            given.push(digest);
            Repeat::New
        }
        Some(earlier) if *earlier == digest => Repeat::Same,
        Some(_) => Repeat::Different(index),
    }
}

/// The failure of an execution that took over and did not do what the first one did.
fn diverged(what: &str) -> StepError {
    StepError::NondeterministicRetry(format!(
        "the execution that took over {what}, which differs from what the first execution did"
    ))
}

/// True when the `current`-th message of its kind was already given to the scheduler by an
/// earlier execution; counts it either way.
fn counted(current: &mut usize, given: &mut usize) -> bool {
    *current += 1;
    if *current <= *given {
        return true;
    }
    *given = *current;
    false
}

/// Sends `reply` to message `seq` of the followed execution, remembering it for keepalives.
fn answer_on(shared: &Shared, key: &AttemptKey, link: &Mutex<Link>, seq: u64, reply: StepReply) {
    let mut link = link.lock().expect("no thread panics holding a link");
    if let StepReply::Verdict(Err(err)) = &reply {
        link.refused.get_or_insert_with(|| err.clone());
    }
    if link.silent {
        return;
    }
    link.last = Some((seq, reply.clone()));
    if let Some((execution, inbox)) = &link.bound {
        shared.tell(inbox, key, *execution, Says::Reply { seq, reply });
    }
}

fn keep_alive(shared: &Shared, key: &AttemptKey, link: &Mutex<Link>) {
    let link = link.lock().expect("no thread panics holding a link");
    if let Some((execution, inbox)) = &link.bound {
        let last = link.last.clone();
        shared.tell(inbox, key, *execution, Says::Keepalive { last });
    }
}

impl Drop for Conversation<'_> {
    /// The scheduler has the result or no longer wants it: later reports of the attempt are
    /// dropped, and an execution still running is told to stop.
    fn drop(&mut self) {
        let mut table = lock(&self.shared.table);
        table.live.remove(&self.key);
        table.done.insert(self.key.clone());
        drop(table);
        if !self.finished
            && let Some((execution, inbox)) = &self.link_mut().bound
        {
            self.shared.tell(inbox, &self.key, *execution, Says::Stop);
        }
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table.lock().expect("no thread panics holding the table")
}

/// Reads the run's step messages from the stream, from the first, and routes each to its
/// attempt; sets `ready` once it has read up to `known` (what was there when it started).
/// Starts again after the last message read if the server goes away.
async fn read_reports(
    shared: Arc<Shared>,
    stream: async_nats::jetstream::stream::Stream,
    subject: String,
    known: Option<u64>,
    ready: watch::Sender<bool>,
) {
    let mut next = 1;
    let mut failures = 0;
    loop {
        // Pushed by the server (with flow control and heartbeats): a pulled ordered consumer
        // stalled here until its pull request expired (30 s) now and then.
        let config = push::OrderedConfig {
            deliver_subject: shared.cluster.client.new_inbox(),
            filter_subject: subject.clone(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: next,
            },
            ..Default::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(consumer) => {
                // Nothing left to read (what was there expired meanwhile, say).
                if consumer.cached_info().num_pending == 0 {
                    ready.send_replace(true);
                }
                consumer.messages().await
            }
            Err(err) => Err(async_nats::jetstream::consumer::StreamError::with_source(
                async_nats::jetstream::consumer::StreamErrorKind::Other,
                err,
            )),
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!("reading step messages failed; trying again: {err}");
                backoff(&mut failures).await;
                continue;
            }
        };
        while let Some(Ok(message)) = messages.next().await {
            failures = 0;
            let Ok(info) = message.info() else { continue };
            let sequence = info.stream_sequence;
            next = sequence + 1;
            if let Ok(reports) = wire::decode::<Vec<Report>>(message.payload.as_ref()) {
                tracing::debug!(sequence, reports = reports.len(), "read step messages");
                let mut table = lock(&shared.table);
                for report in reports {
                    route(&shared, &mut table, report);
                }
            }
            if info.pending == 0 || known.is_some_and(|known| sequence >= known) {
                ready.send_replace(true);
            }
        }
        backoff(&mut failures).await;
    }
}

fn route(shared: &Shared, table: &mut Table, report: Report) {
    if table.done.contains(&report.attempt) {
        if wire::wants_answer(&report.message) {
            shared.tell(&report.inbox, &report.attempt, report.execution, Says::Stop);
        }
        return;
    }
    if let Some(tx) = table.live.get(&report.attempt) {
        let _sent = tx.send(report);
        return;
    }
    table
        .early
        .entry(report.attempt.clone())
        .or_default()
        .push(report);
}

/// Publishes assignments to the work queue, as many as are waiting in one message (see
/// [`wire::MAX_BATCH_CALLS`]), retrying each message until the server has stored it.
async fn dispatch(cluster: Cluster, mut queued: mpsc::UnboundedReceiver<Assignment>) {
    let mut publisher = Publisher::new();
    // An assignment that did not fit the last batch: it starts the next one.
    let mut carried: Option<Vec<u8>> = None;
    loop {
        let first = match carried.take() {
            Some(item) => item,
            None => match queued.recv().await {
                Some(first) => wire::encode(&first),
                None => break,
            },
        };
        let mut bytes = first.len();
        let mut items = vec![first];
        while items.len() < wire::MAX_BATCH_CALLS {
            let Ok(next) = queued.try_recv() else { break };
            let item = wire::encode(&next);
            if bytes + item.len() > wire::MAX_BATCH_BYTES {
                carried = Some(item);
                break;
            }
            bytes += item.len();
            items.push(item);
        }
        publisher.store(&cluster.js, CALLS_SUBJECT, &items).await;
    }
}

/// Publishes answers, those waiting for the same inbox in one message. Answers are not
/// durable: one lost while the server restarts is repeated by the next keepalive.
async fn answer(
    client: async_nats::Client,
    mut to_answer: mpsc::UnboundedReceiver<(String, Answer)>,
) {
    while let Some((inbox, answer)) = to_answer.recv().await {
        let mut by_inbox: HashMap<String, Vec<Answer>> = HashMap::new();
        by_inbox.entry(inbox).or_default().push(answer);
        while let Ok((inbox, answer)) = to_answer.try_recv() {
            by_inbox.entry(inbox).or_default().push(answer);
            if by_inbox.len() > 64 {
                break;
            }
        }
        for (inbox, answers) in by_inbox {
            let _ignored = client.publish(inbox, wire::encode(&answers).into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::DynamicValue;

    fn report(execution: u64, seq: u64, message: StepMessage) -> Report {
        Report {
            attempt: AttemptKey {
                step_key: "op[a]".into(),
                attempt: 1,
            },
            execution,
            seq,
            inbox: "inbox".into(),
            message,
            stored: Vec::new(),
        }
    }

    fn yielded(key: &str) -> StepMessage {
        StepMessage::Yielded(DynamicValue {
            output: "out".into(),
            key: key.into(),
            value: vec![0x01],
            metadata: Default::default(),
        })
    }

    fn done() -> StepMessage {
        StepMessage::Finished(Ok(vec![("result".into(), vec![0x02])]))
    }

    #[test]
    fn only_a_complete_success_left_by_an_earlier_coordinator_is_taken_over() {
        // One execution, complete from its first message to its success, duplicates and all.
        let complete = vec![
            report(7, 1, yielded("b")),
            report(7, 0, yielded("a")),
            report(7, 1, yielded("b")),
            report(7, 2, done()),
        ];
        let adopted = adoptable(complete).expect("taken over");
        assert_eq!(adopted.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
        // Cut short, missing its start, or failed: run again.
        assert!(adoptable(vec![report(7, 0, yielded("a"))]).is_none());
        assert!(adoptable(vec![report(7, 1, yielded("b")), report(7, 2, done())]).is_none());
        let failed = StepMessage::Finished(Err(StepError::OpFailed("no".into())));
        assert!(adoptable(vec![report(7, 0, failed)]).is_none());
        // Of two executions, the one that succeeded.
        let two = vec![report(1, 0, yielded("a")), report(2, 0, done())];
        assert_eq!(adoptable(two).expect("taken over")[0].execution, 2);
    }

    #[test]
    fn a_later_execution_repeats_what_was_given_or_diverges_at_its_index() {
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        let mut given = Vec::new();
        let mut first = Vec::new();
        assert!(matches!(repeated(&mut first, &mut given, a), Repeat::New));
        assert!(matches!(repeated(&mut first, &mut given, b), Repeat::New));
        // The execution that took over: the same first value, another second one, then new.
        let mut second = Vec::new();
        assert!(matches!(repeated(&mut second, &mut given, a), Repeat::Same));
        assert!(matches!(
            repeated(&mut second, &mut given, c),
            Repeat::Different(1)
        ));
        assert!(matches!(repeated(&mut second, &mut given, c), Repeat::New));
        assert_eq!(given, [a, b, c]);
        let (mut logs_given, mut logs_now) = (0, 0);
        assert!(!counted(&mut logs_now, &mut logs_given));
        let mut again = 0;
        assert!(counted(&mut again, &mut logs_given));
        assert!(!counted(&mut again, &mut logs_given));
        assert_eq!(logs_given, 2);
    }
}
