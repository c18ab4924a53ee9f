//! The scheduler: runs a plan's steps as soon as their inputs exist, at most `max_concurrent`
//! at once, cloning mapped ops per mapping key *while the producer still runs* (Dagster waits
//! for the producer to finish).
//!
//! One task owns all run state; steps run in their own tasks and report back over a channel
//! (yielded values, logs, the final result), so no lock guards the state. A step whose input
//! failed or was skipped is skipped; siblings of a failed clone go on.
//!
//! Backpressure: every yielded value takes one of `emit_window` credits, handed back once the
//! scheduler has taken the value and at most half of `emit_window` steps wait to start. A producer
//! out of credits pauses inside its `yield-output` call and gives its concurrency slot to the
//! clones it is waiting for, so a fast producer cannot fill memory with queued clones, even at
//! `--max-concurrent 1`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::cancel::Cancel;
use crate::events::{Event, EventKind, EventSink, SinkError};
use crate::memory_usage;
use crate::outputs::DynamicValue;
use crate::packed::PackedValues;
use crate::plan::{InputSource, Plan};
use crate::step_error::StepError;
use crate::step_key::StepKey;
use crate::value::{self, KeyedValues, NamedValues};
use step_index::StepIndex;

/// One step attempt, as handed to a [`StepRunner`].
#[derive(Debug, Clone)]
pub struct StepCall {
    /// Index of the op in the plan.
    pub node: usize,
    pub run_id: String,
    pub step_key: String,
    pub mapping_keys: Vec<String>,
    pub attempt: u32,
    /// Input name -> CBOR value, in the op's declared order.
    pub inputs: NamedValues,
}

/// Runs one step attempt: the seam between scheduling and Wasm, so that the scheduler can be
/// tested without components.
pub trait StepRunner: Send + Sync + 'static {
    /// Returns the step's non-dynamic outputs; dynamic ones go through `channel` as they come.
    fn run(
        &self,
        call: StepCall,
        channel: StepChannel,
    ) -> impl Future<Output = Result<NamedValues, StepError>> + Send;
}

/// How many yielded values may be in flight, and how many steps may wait to start, before
/// producers pause: enough to keep every slot busy, small enough that queued clones stay a few
/// MiB.
pub const DEFAULT_EMIT_WINDOW: usize = 1024;

enum Message {
    /// A retry's delay is over.
    Retry,
    /// `credited`: the value took an emit credit, to be handed back. `verdict`, for an
    /// attempt that must replay what an earlier one yielded, learns whether the value matched.
    Emitted {
        value: DynamicValue,
        credited: bool,
        verdict: Option<oneshot::Sender<Result<(), StepError>>>,
    },
    /// The step waits for an emit credit (it gives up its slot meanwhile).
    Paused,
    Resumed,
    /// `charged`: log-queue bytes the message holds, to be handed back.
    Log {
        level: &'static str,
        message: String,
        charged: u32,
    },
    Finished(Result<NamedValues, StepError>),
}

/// A running step's line back to the scheduler.
#[derive(Clone)]
pub struct StepChannel {
    step: usize,
    tx: mpsc::UnboundedSender<(usize, Message)>,
    credits: Arc<Semaphore>,
    paused: Arc<PauseClock>,
    /// Set for a retried or resumed producer: each value waits for the scheduler's comparison
    /// with what an earlier attempt yielded, so that a divergent value is refused at once.
    replaying: bool,
    /// Bytes of log messages sent but not yet taken by the scheduler, run-wide.
    log_queue: Arc<Semaphore>,
}

/// How many bytes of log messages may wait for the scheduler, all steps together.
const LOG_QUEUE_BYTES: u32 = 4 << 20;

/// What a log message holds of the log queue: its bytes and a fixed cost per message, at most
/// the whole queue (a message larger than the queue waits until the queue is empty).
fn queued_size(message: &str) -> u32 {
    let size = message
        .len()
        .saturating_add(crate::limits::LOG_CALL_OVERHEAD as usize);
    u32::try_from(size).unwrap_or(u32::MAX).min(LOG_QUEUE_BYTES)
}

impl StepChannel {
    /// Hands over one value yielded while the step runs, first waiting for an emit credit when
    /// the run has too much queued work. An error means the value diverges from what an earlier
    /// attempt yielded: it was not recorded, and the step fails with that error.
    pub async fn emit(&self, value: DynamicValue) -> Result<(), StepError> {
        match self.credits.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => {
                self.paused.pause();
                self.send(Message::Paused);
                // The scheduler never closes the semaphore.
                if let Ok(permit) = self.credits.acquire().await {
                    permit.forget();
                }
                self.paused.resume();
                self.send(Message::Resumed);
            }
        }
        if !self.replaying {
            self.send(Message::Emitted {
                value,
                credited: true,
                verdict: None,
            });
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.send(Message::Emitted {
            value,
            credited: true,
            verdict: Some(tx),
        });
        // The scheduler answers every verdict it receives; no answer means it has stopped.
        rx.await.unwrap_or(Ok(()))
    }

    /// Hands over a dynamic value the step returned from `run`: it is in memory already, so
    /// it does not wait for a credit.
    pub fn emit_returned(&self, value: DynamicValue) {
        self.send(Message::Emitted {
            value,
            credited: false,
            verdict: None,
        });
    }

    /// How long this attempt has been paused by backpressure, which its timeout does not count.
    pub fn paused_for(&self) -> Duration {
        self.paused.total()
    }

    fn send(&self, message: Message) {
        // The scheduler outlives every step task; a send can only fail once it has stopped.
        let _ignored = self.tx.send((self.step, message));
    }

    /// Records a log line the guest sent, first waiting for room in the log queue: a guest
    /// that logs faster than the run store writes is slowed down rather than queued in memory.
    pub async fn log(&self, level: &'static str, message: String) {
        let charged = queued_size(&message);
        // The scheduler never closes the semaphore.
        if let Ok(permits) = self.log_queue.acquire_many(charged).await {
            permits.forget();
        }
        self.send(Message::Log {
            level,
            message,
            charged,
        });
    }

    /// Records captured output once the attempt is over; it is bounded by the log limit and
    /// held in memory already, so it does not wait.
    pub fn log_captured(&self, stream: &'static str, message: String) {
        self.send(Message::Log {
            level: stream,
            message,
            charged: 0,
        });
    }
}

/// Time a step attempt spent paused, including a pause in progress.
#[derive(Default)]
struct PauseClock(Mutex<(Duration, Option<Instant>)>);

impl PauseClock {
    fn pause(&self) {
        self.0.lock().expect("pause clock").1 = Some(Instant::now());
    }

    fn resume(&self) {
        let mut clock = self.0.lock().expect("pause clock");
        if let Some(since) = clock.1.take() {
            clock.0 += since.elapsed();
        }
    }

    fn total(&self) -> Duration {
        let clock = self.0.lock().expect("pause clock");
        clock.0 + clock.1.map_or(Duration::ZERO, |since| since.elapsed())
    }
}

/// Reports a step as finished even if its task dies without saying so (a host bug), so that the
/// run cannot hang.
struct FinishGuard {
    channel: StepChannel,
    sent: bool,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if !self.sent {
            let lost = Err(StepError::Trap {
                message: "wasm trap: the host lost this step (internal error)".into(),
                backtrace: None,
            });
            self.channel.send(Message::Finished(lost));
        }
    }
}

/// How to execute.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    pub max_concurrent: usize,
    /// See [`DEFAULT_EMIT_WINDOW`].
    pub emit_window: usize,
    /// Work an earlier, interrupted execution of this run committed.
    pub prior: Prior,
    /// Stops the run early when requested: see [`Cancel`].
    pub cancel: Cancel,
}

/// What a resumed run starts from: steps whose success was committed, with their outputs, and
/// the dynamic values every producer yielded, in order (also those of producers that did not
/// finish: their clones may have run, and a rerun must yield the same values again).
#[derive(Debug, Clone, Default)]
pub struct Prior {
    pub succeeded: Vec<(StepKey, NamedValues)>,
    pub emitted: Vec<(StepKey, String, KeyedValues)>,
}

/// Where a step is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    /// Boxed, like the reason below, to keep every step of a large fan-out small.
    Failed(Box<StepError>),
    Skipped(Box<str>),
}

/// One step of a run.
#[derive(Debug)]
pub struct Step {
    pub key: StepKey,
    /// Rendered key, e.g. `compute_piece[3]`.
    pub name: String,
    pub status: Status,
    /// Non-dynamic outputs, once succeeded.
    pub outputs: PackedValues,
    pub duration: Option<Duration>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Inputs, kept until the step starts (and after, while it may be retried).
    inputs: NamedValues,
    started: Option<Instant>,
    /// Only for a retried or resumed producer (boxed: most steps of a large fan-out are not).
    replay: Option<Box<Replay>>,
    /// Set when an interrupted earlier execution yielded values this step must yield again.
    has_prior: bool,
}

/// How a retried or resumed producer's values compare with what it yielded before.
#[derive(Debug, Default)]
struct Replay {
    /// Per dynamic output, how many values the current attempt has yielded: a retry must yield
    /// again what earlier attempts yielded (clones of those already run), then may go on.
    replayed: HashMap<String, usize>,
    /// Set when a retry yielded something other than an earlier attempt did.
    divergence: Option<StepError>,
}

impl Step {
    /// The value of the non-dynamic output `name`, once the step has succeeded.
    pub fn output(&self, name: &str) -> Option<&[u8]> {
        self.outputs.get(name)
    }
}

/// The outcome of a run: every step that ran or was skipped, and every dynamic value.
#[derive(Debug)]
pub struct Run {
    pub run_id: String,
    pub plan: Arc<Plan>,
    pub steps: Vec<Step>,
    index: StepIndex,
    /// (producing step, output) -> mapping key -> value, in emission order.
    emitted: HashMap<(usize, String), IndexMap<String, Vec<u8>>>,
    pub duration: Duration,
    /// The host's peak resident memory at the end of the run.
    pub peak_rss_bytes: Option<u64>,
    /// Steps the plan called for that the run ended without resolving (neither succeeded,
    /// failed nor skipped): a scheduler bug, which must fail the run rather than drop data.
    pub unresolved: Vec<String>,
    /// Why the event sink stopped taking events (the run store failed), which stopped the run.
    pub sink_error: Option<SinkError>,
}

impl Run {
    /// True when every step the plan called for succeeded, and was recorded.
    pub fn succeeded(&self) -> bool {
        self.sink_error.is_none()
            && self.unresolved.is_empty()
            && self.steps.iter().all(|s| s.status == Status::Succeeded)
    }

    /// True when the run was asked to stop, and did with steps queued or running (aborted).
    pub fn canceled(&self) -> bool {
        self.sink_error.is_none()
            && self
                .steps
                .iter()
                .any(|s| matches!(s.status, Status::Queued | Status::Running))
    }

    /// The step with this key, if it was created.
    pub fn step(&self, key: &StepKey) -> Option<&Step> {
        self.id_of(key).map(|id| &self.steps[id])
    }

    fn id_of(&self, key: &StepKey) -> Option<usize> {
        self.index.get(key, |id| &self.steps[id].key)
    }

    /// The values a step yielded on a dynamic output, in emission order.
    pub fn emitted(&self, key: &StepKey, output: &str) -> Option<&IndexMap<String, Vec<u8>>> {
        let step = self.id_of(key)?;
        self.emitted.get(&(step, output.to_string()))
    }

    /// The output of op `node` as JSON (Dagster's `output_for_node`): the value of a plain step;
    /// for a mapped op, an object from mapping key to value (nested when mapped twice); for a
    /// dynamic output, an object from mapping key to value. Steps that did not succeed are left
    /// out (a plain step that did not succeed gives `null`); a value that is `null` is kept.
    pub fn output_for_node(&self, node: usize, output: &str) -> serde_json::Value {
        self.output_below(node, output, &mut Vec::new())
            .unwrap_or(serde_json::Value::Null)
    }

    fn output_below(
        &self,
        node: usize,
        output: &str,
        keys: &mut Vec<String>,
    ) -> Option<serde_json::Value> {
        let plan_node = &self.plan.nodes[node];
        if keys.len() < plan_node.depth() {
            let creator = &plan_node.scope[keys.len()];
            let creator_key = StepKey::new(creator.node, keys.clone());
            let mut object = serde_json::Map::new();
            let mapping_keys: Vec<String> = self
                .emitted(&creator_key, &creator.output)
                .map(|values| values.keys().cloned().collect())
                .unwrap_or_default();
            for key in mapping_keys {
                keys.push(key.clone());
                let value = self.output_below(node, output, keys);
                keys.pop();
                if let Some(value) = value {
                    object.insert(key, value);
                }
            }
            return Some(serde_json::Value::Object(object));
        }
        let key = StepKey::new(node, keys.clone());
        let step = self.step(&key).filter(|s| s.status == Status::Succeeded)?;
        if let Some(values) = self.emitted(&key, output) {
            return Some(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), value::to_json(v)))
                    .collect(),
            );
        }
        let is_dynamic = plan_node.op.output(output).is_some_and(|o| o.dynamic);
        if is_dynamic {
            return Some(serde_json::Value::Object(serde_json::Map::new()));
        }
        step.output(output).map(value::to_json)
    }
}

/// Why a succeeded step's output can be unwrapped: [`crate::outputs::OutputGuard`] only lets a
/// step succeed with every declared non-dynamic output.
const DECLARED: &str = "a succeeded step has every declared output";

/// What an input check concluded.
enum Readiness {
    Ready(NamedValues),
    Wait,
    Skip(String),
}

struct Scheduler<'a> {
    run: Run,
    sink: &'a mut dyn EventSink,
    ready: VecDeque<usize>,
    /// For a collect input of a step not yet created: how many leading clones have succeeded,
    /// so that each clone's completion costs O(1) rather than a scan of all clones.
    collect_progress: HashMap<(StepKey, usize), usize>,
    /// Values yielded by producers of an interrupted execution that have no step yet.
    prior_emitted: HashMap<StepKey, Vec<(String, KeyedValues)>>,
}

/// Executes `plan` to the end and returns what happened. Step failures are part of the result;
/// this never fails.
pub async fn execute<R: StepRunner>(
    plan: Arc<Plan>,
    runner: Arc<R>,
    options: RunOptions,
    sink: &mut dyn EventSink,
) -> Run {
    let started = Instant::now();
    let run = Run {
        run_id: options.run_id,
        plan: plan.clone(),
        steps: Vec::new(),
        index: StepIndex::default(),
        emitted: HashMap::new(),
        duration: Duration::ZERO,
        peak_rss_bytes: None,
        unresolved: Vec::new(),
        sink_error: None,
    };
    let mut scheduler = Scheduler {
        run,
        sink,
        ready: VecDeque::new(),
        collect_progress: HashMap::new(),
        prior_emitted: HashMap::new(),
    };
    scheduler.event(
        None,
        EventKind::RunStart {
            job: (&plan.job_name).into(),
        },
    );
    scheduler.restore(options.prior);

    for node in 0..plan.nodes.len() {
        if plan.nodes[node].depth() == 0 {
            scheduler.consider(StepKey::new(node, Vec::new()));
        }
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let max_concurrent = options.max_concurrent.max(1);
    let window = options.emit_window.max(1);
    let credits = Arc::new(Semaphore::new(window));
    let log_queue = Arc::new(Semaphore::new(LOG_QUEUE_BYTES as usize));
    // Credits of values taken but not handed back yet.
    let mut owed = 0usize;
    let mut running = 0usize;
    // Running steps waiting for a credit: they do not count against `max_concurrent`.
    let mut paused = 0usize;
    // Steps waiting out a retry delay.
    let mut delayed = 0usize;
    // Running steps, to abort when a stop's grace period is over.
    let mut tasks: HashMap<usize, tokio::task::AbortHandle> = HashMap::new();
    let requested = options.cancel.requested();
    tokio::pin!(requested);
    // Once a stop is requested: no step starts, and those running are aborted at this deadline.
    let mut stopping = options
        .cancel
        .is_requested()
        .then(|| tokio::time::Instant::now() + options.cancel.grace());
    loop {
        // A sink that failed stops the run at once, as a cancel without grace: nothing it does
        // from then on could be recorded.
        if stopping.is_none() && scheduler.run.sink_error.is_some() {
            stopping = Some(tokio::time::Instant::now());
        }
        // Paused steps still hold an instance: at most `max_concurrent` of them are allowed
        // for (the instance pool has room for twice `max_concurrent`).
        while stopping.is_none()
            && running - paused < max_concurrent
            && running < 2 * max_concurrent
        {
            let Some(step) = scheduler.ready.pop_front() else {
                break;
            };
            running += 1;
            let call = scheduler.start(step);
            let record = &scheduler.run.steps[step];
            let channel = StepChannel {
                step,
                tx: tx.clone(),
                credits: credits.clone(),
                paused: Arc::default(),
                replaying: record.attempts > 1 || record.has_prior,
                log_queue: log_queue.clone(),
            };
            let runner = runner.clone();
            let task = tokio::spawn(async move {
                let mut guard = FinishGuard {
                    channel,
                    sent: false,
                };
                let result = runner.run(call, guard.channel.clone()).await;
                guard.channel.send(Message::Finished(result));
                guard.sent = true;
            });
            tasks.insert(step, task.abort_handle());
        }
        // A stopping run does not wait out retry delays: those steps stay queued.
        if running == 0 && (delayed == 0 || stopping.is_some()) {
            break;
        }
        let deadline = stopping;
        let grace_over = async move {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let (step, message) = tokio::select! {
            received = rx.recv() => received.expect("the scheduler holds a sender"),
            () = &mut requested, if stopping.is_none() => {
                stopping = Some(tokio::time::Instant::now() + options.cancel.grace());
                continue;
            }
            () = grace_over => {
                // Aborted steps stay `Running`: not failed, and resume runs them again.
                for task in tasks.values() {
                    task.abort();
                }
                break;
            }
        };
        match message {
            Message::Retry => {
                delayed -= 1;
                scheduler.ready.push_back(step);
            }
            Message::Emitted {
                value,
                credited,
                verdict,
            } => {
                let recorded = scheduler.emitted(step, value);
                if let Some(verdict) = verdict {
                    let _ignored = verdict.send(recorded);
                }
                owed += usize::from(credited);
            }
            Message::Paused => paused += 1,
            Message::Resumed => paused -= 1,
            Message::Log {
                level,
                message,
                charged,
            } => {
                scheduler.log(step, level, &message);
                log_queue.add_permits(charged as usize);
            }
            Message::Finished(result) => {
                running -= 1;
                tasks.remove(&step);
                if let Some(delay) = scheduler.finished(step, result) {
                    delayed += 1;
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ignored = tx.send((step, Message::Retry));
                    });
                }
            }
        }
        // Hand credits back once the queue is down to half the window, all at once so that a
        // producer yields in batches rather than pausing at every value; or when so many
        // producers are paused that no slot is left for them.
        if owed > 0 && (scheduler.ready.len() <= window / 2 || paused >= max_concurrent * 2) {
            credits.add_permits(owed);
            owed = 0;
        }
    }

    // A canceled run, or one whose sink failed, leaves steps unfinished on purpose; `resume`
    // runs them.
    if !scheduler.run.canceled() && scheduler.run.sink_error.is_none() {
        scheduler.run.unresolved = scheduler.unresolved();
    }
    scheduler.run.duration = started.elapsed();
    let duration_ms = scheduler.run.duration.as_secs_f64() * 1e3;
    let failed_steps: Vec<String> = scheduler
        .run
        .steps
        .iter()
        .filter(|s| matches!(s.status, Status::Failed(_)))
        .map(|s| s.name.clone())
        .collect();
    let peak_rss_bytes = memory_usage::peak_rss_bytes();
    scheduler.run.peak_rss_bytes = peak_rss_bytes;
    let kind = if scheduler.run.canceled() {
        EventKind::RunCanceled {
            duration_ms,
            peak_rss_bytes,
        }
    } else if scheduler.run.succeeded() {
        EventKind::RunSuccess {
            duration_ms,
            peak_rss_bytes,
        }
    } else {
        EventKind::RunFailure {
            duration_ms,
            failed_steps,
            unresolved_steps: scheduler.run.unresolved.clone(),
            peak_rss_bytes,
        }
    };
    scheduler.event(None, kind);
    scheduler.run
}

impl Scheduler<'_> {
    /// Sends an event; the first sink failure is kept, and stops the run (see [`execute`]).
    fn event(&mut self, step: Option<usize>, kind: EventKind<'_>) {
        let step_key = step.map(|s| self.run.steps[s].name.as_str());
        let sent = self
            .sink
            .event(&Event::now(&self.run.run_id, step_key, kind));
        if let Err(err) = sent {
            self.run.sink_error.get_or_insert(err);
        }
    }

    /// Recreates the committed steps of an interrupted execution, then starts what they unblock.
    fn restore(&mut self, prior: Prior) {
        let mut restored = Vec::new();
        for (key, outputs) in prior.succeeded {
            let id = self.create(key, Status::Succeeded, Vec::new());
            let step = &mut self.run.steps[id];
            step.outputs = PackedValues::pack(&outputs);
            step.attempts = 1;
            restored.push(id);
        }
        for (producer, output, values) in prior.emitted {
            match self.run.id_of(&producer) {
                Some(id) => self.adopt_emitted(id, output, values),
                None => self
                    .prior_emitted
                    .entry(producer)
                    .or_default()
                    .push((output, values)),
            }
        }
        for id in restored {
            self.wake(id);
        }
    }

    fn log(&mut self, step: usize, level: &str, message: &str) {
        self.event(
            Some(step),
            EventKind::Logs {
                level: level.into(),
                message: message.into(),
            },
        );
    }

    fn start(&mut self, step: usize) -> StepCall {
        let retries = self.run.plan.nodes[self.run.steps[step].key.node]
            .retry
            .max_retries;
        let record = &mut self.run.steps[step];
        record.status = Status::Running;
        record.started = Some(Instant::now());
        record.attempts += 1;
        if let Some(replay) = &mut record.replay {
            replay.replayed.clear();
        }
        let attempt = record.attempts;
        // Keep the inputs only while another attempt may need them.
        let inputs = if attempt <= retries {
            record.inputs.clone()
        } else {
            std::mem::take(&mut record.inputs)
        };
        let call = StepCall {
            node: record.key.node,
            run_id: self.run.run_id.clone(),
            step_key: record.name.clone(),
            mapping_keys: record.key.keys.clone(),
            attempt,
            inputs,
        };
        let kind = if attempt == 1 {
            EventKind::StepStart { attempt }
        } else {
            EventKind::StepRestarted { attempt }
        };
        self.event(Some(step), kind);
        call
    }

    /// Records a yielded value and starts its clones; a retry's value is first matched against
    /// what earlier attempts yielded.
    fn emitted(&mut self, step: usize, value: DynamicValue) -> Result<(), StepError> {
        let DynamicValue { output, key, value } = value;
        if !self.replay(step, &output, &key, &value)? {
            return Ok(());
        }
        self.event(
            Some(step),
            EventKind::StepOutput {
                output: (&output).into(),
                mapping_key: Some((&key).into()),
                value: (&value).into(),
            },
        );
        self.run
            .emitted
            .entry((step, output.clone()))
            .or_default()
            .insert(key.clone(), value);
        // Start the clones mapped over this value now, while the producer keeps running.
        self.start_clones(step, &output, &key);
        Ok(())
    }

    /// Records values an interrupted execution of step `id` yielded, and starts their clones.
    fn adopt_emitted(&mut self, id: usize, output: String, values: KeyedValues) {
        let keys: Vec<String> = values.iter().map(|(k, _)| k.clone()).collect();
        self.run
            .emitted
            .insert((id, output.clone()), values.into_iter().collect());
        for key in keys {
            self.start_clones(id, &output, &key);
        }
    }

    /// Considers the clones mapped over value `key` of output `output` of step `producer`.
    fn start_clones(&mut self, producer: usize, output: &str, key: &str) {
        let plan = self.run.plan.clone();
        let producer = self.run.steps[producer].key.clone();
        for &dependent in &plan.nodes[producer.node].dependents {
            let maps_this = plan.nodes[dependent].inputs.iter().any(|input| {
                matches!(&input.source, InputSource::Map(s) if s.node == producer.node && s.output == output)
            });
            if maps_this {
                // Sized exactly: a million clones each keep their key path.
                let mut keys = Vec::with_capacity(producer.keys.len() + 1);
                keys.extend(producer.keys.iter().cloned());
                keys.push(key.to_string());
                self.consider(StepKey::new(dependent, keys));
            }
        }
    }

    /// Matches a value yielded by a retry against what earlier attempts yielded. Returns true
    /// when the value is new and must be recorded, false when it repeats an earlier one (its
    /// clones exist already). Once the attempt has diverged, every value is refused: nothing
    /// from an attempt that contradicts the recorded values may start a clone.
    fn replay(
        &mut self,
        step: usize,
        output: &str,
        key: &str,
        value: &[u8],
    ) -> Result<bool, StepError> {
        if self.run.steps[step].attempts == 1 && !self.run.steps[step].has_prior {
            return Ok(true);
        }
        let earlier = self.run.emitted.get(&(step, output.to_string()));
        let record = self.run.steps[step].replay.get_or_insert_default();
        if let Some(divergence) = &record.divergence {
            return Err(divergence.clone());
        }
        let position = record.replayed.entry(output.to_string()).or_default();
        let index = *position;
        *position += 1;
        let divergence = match earlier.and_then(|values| values.get_index(index)) {
            Some((k, v)) if k == key && v == value => return Ok(false),
            Some((k, v)) if k == key => format!(
                "key `{key}` of output `{output}` was recorded with value {} and is now yielded with value {}",
                value::preview(v),
                value::preview(value)
            ),
            Some((k, v)) => format!(
                "value {index} of output `{output}` was recorded as key `{k}` (value {}) and is now yielded as key `{key}` (value {})",
                value::preview(v),
                value::preview(value)
            ),
            None => match earlier.and_then(|values| values.get_index_of(key)) {
                Some(recorded) => format!(
                    "key `{key}` of output `{output}` was recorded as value {recorded} and is now yielded as value {index}"
                ),
                None => return Ok(true),
            },
        };
        let err = StepError::NondeterministicRetry(divergence);
        record.divergence = Some(err.clone());
        Err(err)
    }

    /// A retry must have yielded at least everything earlier attempts did.
    fn check_replay_complete(&self, step: usize) -> Result<(), StepError> {
        let record = &self.run.steps[step];
        let replay = record.replay.as_deref();
        if let Some(err) = replay.and_then(|r| r.divergence.as_ref()) {
            return Err(err.clone());
        }
        if record.attempts == 1 && !record.has_prior {
            return Ok(());
        }
        let op = &self.run.plan.nodes[record.key.node].op;
        for output in op.outputs.iter().filter(|o| o.dynamic).map(|o| &o.name) {
            let earlier = self
                .run
                .emitted
                .get(&(step, output.clone()))
                .map_or(0, IndexMap::len);
            let replayed = replay
                .and_then(|r| r.replayed.get(output).copied())
                .unwrap_or(0);
            if replayed < earlier {
                return Err(StepError::NondeterministicRetry(format!(
                    "output `{output}` yielded {replayed} values, an earlier attempt {earlier}"
                )));
            }
        }
        Ok(())
    }

    /// Records how an attempt ended. Returns the delay before the next attempt when the step
    /// is retried.
    fn finished(
        &mut self,
        step: usize,
        result: Result<NamedValues, StepError>,
    ) -> Option<Duration> {
        let result = match (result, self.check_replay_complete(step)) {
            (_, Err(divergence)) => Err(divergence),
            (result, Ok(())) => result,
        };
        let policy = self.run.plan.nodes[self.run.steps[step].key.node].retry;
        let record = &mut self.run.steps[step];
        let duration = record.started.map(|s| s.elapsed()).unwrap_or_default();
        record.duration = Some(duration);
        let duration_ms = duration.as_secs_f64() * 1e3;
        match result {
            Err(err) if err.is_retryable() && policy.allows_retry_after(record.attempts) => {
                let attempt = record.attempts;
                record.status = Status::Queued;
                let delay = policy.delay_before(attempt, fastrand::f64());
                self.event(
                    Some(step),
                    EventKind::StepUpForRetry {
                        error_kind: err.kind(),
                        error: err.to_string().into(),
                        attempt,
                        delay_ms: delay.as_secs_f64() * 1e3,
                    },
                );
                return Some(delay);
            }
            Ok(outputs) => {
                record.status = Status::Succeeded;
                for (output, value) in &outputs {
                    self.event(
                        Some(step),
                        EventKind::StepOutput {
                            output: output.into(),
                            mapping_key: None,
                            value: value.into(),
                        },
                    );
                }
                self.run.steps[step].outputs = PackedValues::pack(&outputs);
                self.event(Some(step), EventKind::StepSuccess { duration_ms });
            }
            Err(err) => {
                record.status = Status::Failed(Box::new(err.clone()));
                self.event(
                    Some(step),
                    EventKind::StepFailure {
                        error_kind: err.kind(),
                        error: err.to_string().into(),
                        backtrace: err.backtrace().map(Into::into),
                        duration_ms,
                    },
                );
            }
        }
        self.wake(step);
        None
    }

    /// Reconsiders every step that may have been waiting on `step`.
    fn wake(&mut self, step: usize) {
        let plan = self.run.plan.clone();
        let key = self.run.steps[step].key.clone();
        for &dependent in &plan.nodes[key.node].dependents {
            let depth = plan.nodes[dependent].depth();
            if depth <= key.keys.len() {
                self.consider(StepKey::new(dependent, key.keys[..depth].to_vec()));
            } else if plan.nodes[dependent]
                .inputs
                .iter()
                .any(|input| matches!(&input.source, InputSource::From(s) if s.node == key.node))
            {
                // A value broadcast into a mapped op: every clone created so far may be waiting.
                // (Clones mapped over this step's values never wait for it to finish.)
                for keys in self.known_keys(dependent, key.keys.clone()) {
                    self.consider(StepKey::new(dependent, keys));
                }
            }
        }
    }

    /// The steps the plan calls for, given the values yielded, that are missing or not finished:
    /// every plain op's step and one clone per mapping-key path must have succeeded, failed or
    /// been skipped by the time the run ends.
    fn unresolved(&self) -> Vec<String> {
        let plan = &self.run.plan;
        let mut unresolved = Vec::new();
        for node in 0..plan.nodes.len() {
            for keys in self.known_keys(node, Vec::new()) {
                let key = StepKey::new(node, keys);
                let finished = self.run.step(&key).is_some_and(|step| {
                    matches!(
                        step.status,
                        Status::Succeeded | Status::Failed(_) | Status::Skipped(_)
                    )
                });
                if !finished {
                    unresolved.push(key.display(&plan.nodes[node].name).to_string());
                }
            }
        }
        unresolved
    }

    /// All mapping-key paths of op `node` that extend `prefix`, from the values emitted so far.
    fn known_keys(&self, node: usize, prefix: Vec<String>) -> Vec<Vec<String>> {
        let scope = &self.run.plan.nodes[node].scope;
        let mut paths = vec![prefix];
        while paths.first().is_some_and(|p| p.len() < scope.len()) {
            let level = &scope[paths[0].len()];
            paths = paths
                .into_iter()
                .flat_map(|path| {
                    let keys: Vec<String> = self
                        .run
                        .emitted(&StepKey::new(level.node, path.clone()), &level.output)
                        .map(|values| values.keys().cloned().collect())
                        .unwrap_or_default();
                    keys.into_iter().map(move |k| {
                        let mut path = path.clone();
                        path.push(k);
                        path
                    })
                })
                .collect();
        }
        paths
    }

    /// Creates step `key` if all its inputs are available (queued) or one of them never will be
    /// (skipped); otherwise leaves it to be considered again.
    fn consider(&mut self, key: StepKey) {
        if self.run.id_of(&key).is_some() {
            return;
        }
        let readiness = self.readiness(&key);
        let status = match readiness {
            Readiness::Wait => return,
            Readiness::Ready(_) => Status::Queued,
            Readiness::Skip(ref reason) => Status::Skipped(reason.as_str().into()),
        };
        self.collect_progress.retain(|(k, _), _| k != &key);
        let inputs = match readiness {
            Readiness::Ready(inputs) => inputs,
            _ => Vec::new(),
        };
        let prior = self.prior_emitted.remove(&key);
        let id = self.create(key, status, inputs);
        if let Some(prior) = prior {
            // An interrupted execution yielded these: this step must yield them again, and
            // their clones need not wait for that.
            self.run.steps[id].has_prior = true;
            for (output, values) in prior {
                self.adopt_emitted(id, output, values);
            }
        }
        match &self.run.steps[id].status {
            Status::Queued => self.ready.push_back(id),
            Status::Skipped(reason) => {
                let reason = reason.clone();
                self.event(
                    Some(id),
                    EventKind::StepSkipped {
                        reason: (&*reason).into(),
                    },
                );
                self.wake(id);
            }
            _ => unreachable!("a new step is queued or skipped"),
        }
    }

    /// Adds the record of step `key`.
    fn create(&mut self, key: StepKey, status: Status, inputs: NamedValues) -> usize {
        let id = self.run.steps.len();
        let name = key.display(&self.run.plan.nodes[key.node].name).to_string();
        self.run.steps.push(Step {
            key,
            name,
            status,
            outputs: PackedValues::default(),
            duration: None,
            attempts: 0,
            replay: None,
            has_prior: false,
            inputs,
            started: None,
        });
        let steps = &self.run.steps;
        self.run
            .index
            .insert(&steps[id].key, id, |other| &steps[other].key);
        id
    }

    /// The step `key` if it succeeded; otherwise whether to wait for it or skip because of it.
    fn succeeded(&self, key: &StepKey) -> Result<&Step, Readiness> {
        match self.run.step(key) {
            Some(step) if step.status == Status::Succeeded => Ok(step),
            Some(Step {
                status: Status::Failed(_) | Status::Skipped(_),
                ..
            }) => Err(Readiness::Skip(self.not_succeeded(key))),
            _ => Err(Readiness::Wait),
        }
    }

    fn readiness(&mut self, key: &StepKey) -> Readiness {
        let plan = self.run.plan.clone();
        let node = &plan.nodes[key.node];
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for (index, input) in node.inputs.iter().enumerate() {
            let value = match &input.source {
                InputSource::Value(bytes) => bytes.clone(),
                InputSource::From(source) => {
                    let upstream = StepKey::new(
                        source.node,
                        key.keys[..plan.nodes[source.node].depth()].to_vec(),
                    );
                    match self.succeeded(&upstream) {
                        Ok(step) => step.output(&source.output).expect(DECLARED).to_vec(),
                        Err(readiness) => return readiness,
                    }
                }
                InputSource::Map(source) => {
                    let (last, outer) = key.keys.split_last().expect("a mapped step has a key");
                    let producer = StepKey::new(source.node, outer.to_vec());
                    match self
                        .run
                        .emitted(&producer, &source.output)
                        .and_then(|v| v.get(last))
                    {
                        Some(bytes) => bytes.clone(),
                        None => return Readiness::Wait,
                    }
                }
                InputSource::Collect(source) => match self.collect(key, index, source) {
                    Ok(bytes) => bytes,
                    Err(readiness) => return readiness,
                },
            };
            inputs.push((input.name.clone(), value));
        }
        Readiness::Ready(inputs)
    }

    /// The list a collect input of step `key` receives, once complete.
    fn collect(
        &mut self,
        key: &StepKey,
        input: usize,
        source: &crate::plan::Source,
    ) -> Result<Vec<u8>, Readiness> {
        let plan = self.run.plan.clone();
        let collected = &plan.nodes[source.node];
        let direct = collected
            .op
            .output(&source.output)
            .is_some_and(|o| o.dynamic);
        // The step whose dynamic output defines the list of mapping keys.
        let (creator, output) = if direct {
            (StepKey::new(source.node, key.keys.clone()), &source.output)
        } else {
            let scope = collected
                .scope
                .last()
                .expect("the plan checked it is mapped");
            (StepKey::new(scope.node, key.keys.clone()), &scope.output)
        };
        self.succeeded(&creator)?;
        let empty = IndexMap::new();
        let values = self.run.emitted(&creator, output).unwrap_or(&empty);
        if direct {
            return Ok(value::array(values.values().map(Vec::as_slice)));
        }
        let clone_of = |mapping_key: &String| {
            let mut keys = key.keys.clone();
            keys.push(mapping_key.clone());
            StepKey::new(source.node, keys)
        };
        let progress_key = (key.clone(), input);
        let mut done = self
            .collect_progress
            .get(&progress_key)
            .copied()
            .unwrap_or(0);
        while let Some((mapping_key, _)) = values.get_index(done) {
            match self.succeeded(&clone_of(mapping_key)) {
                Ok(_) => done += 1,
                Err(Readiness::Wait) => {
                    self.collect_progress.insert(progress_key, done);
                    return Err(Readiness::Wait);
                }
                Err(skip) => return Err(skip),
            }
        }
        let items: Vec<&[u8]> = values
            .keys()
            .map(|mapping_key| {
                let step = self
                    .run
                    .step(&clone_of(mapping_key))
                    .expect("succeeded above");
                step.output(&source.output).expect(DECLARED)
            })
            .collect();
        Ok(value::array(items.into_iter()))
    }

    fn not_succeeded(&self, upstream: &StepKey) -> String {
        let step = self
            .run
            .step(upstream)
            .expect("only called for created steps");
        let verb = if matches!(step.status, Status::Failed(_)) {
            "failed"
        } else {
            "was skipped"
        };
        format!("upstream step `{}` {verb}", step.name)
    }
}

mod step_index;
#[cfg(test)]
mod tests;
