//! The main loop: starts ready steps within the concurrency limit, takes what running steps
//! report, records results and retries, and stops cleanly when asked.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use super::channel::{
    FinishGuard, LOG_QUEUE_BYTES, Local, Message, StepChannel, StepSlot, queued_event_len,
    queued_size,
};
use super::message::StepMessage;
use super::run::{Prior, Run, RunOptions, Status, Step};
use super::step_index::StepIndex;
use super::{Grants, StepCall, StepContext, StepRunner};
use crate::events::{Event, EventKind, EventSink};
use crate::memory_usage;
use crate::outputs::DynamicValue;
use crate::packed::PackedValues;
use crate::plan::{InputSource, Node, Plan};
use crate::step_error::StepError;
use crate::step_key::StepKey;
use crate::user_event::Metadata;
use crate::value::{KeyedValues, NamedValues};

/// The state of one run, owned by the task that executes it.
pub(super) struct Scheduler<'a> {
    pub(super) run: Run,
    sink: &'a mut dyn EventSink,
    pub(super) ready: VecDeque<usize>,
    /// For a collect input of a step not yet created: how many leading clones have succeeded,
    /// so that each clone's completion costs O(1) rather than a scan of all clones.
    pub(super) collect_progress: HashMap<(StepKey, usize), usize>,
    /// Values yielded by producers of an interrupted execution that have no step yet.
    pub(super) prior_emitted: HashMap<StepKey, Vec<(String, KeyedValues)>>,
    /// Metadata a running attempt sent for its non-dynamic outputs, by step and output: it
    /// goes on their `STEP_OUTPUT` events when the attempt succeeds.
    output_metadata: HashMap<usize, HashMap<String, Metadata>>,
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
        output_metadata: HashMap::new(),
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
            let slot = options.share.clone().map(StepSlot::new);
            // A step that waits for a slot starts, for its events and its duration, once it
            // has one.
            let call = scheduler.start(step, slot.is_none());
            let record = &scheduler.run.steps[step];
            let channel = StepChannel::local(Local {
                step,
                tx: tx.clone(),
                credits: credits.clone(),
                replaying: record.attempts > 1 || record.has_prior,
                log_queue: log_queue.clone(),
                slot: slot.clone(),
            });
            let runner = runner.clone();
            let task = tokio::spawn(async move {
                let mut guard = FinishGuard {
                    channel,
                    sent: false,
                };
                // Held for the attempt, but while the step is paused (see `StepSlot`); an
                // aborted task drops it with the channel.
                if let Some(slot) = &slot {
                    slot.take().await;
                    guard.channel.started();
                }
                let result = runner.run(call, guard.channel.clone()).await;
                if let Some(slot) = &slot {
                    slot.give_back();
                }
                guard.channel.finish(result);
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
            Message::Started => scheduler.announce(step),
            Message::Paused => paused += 1,
            Message::Resumed => paused -= 1,
            Message::Step(StepMessage::Yielded(value), verdict) => {
                let recorded = scheduler.emitted(step, value);
                if let Some(verdict) = verdict {
                    let _ignored = verdict.send(recorded);
                }
                owed += 1;
            }
            Message::Step(StepMessage::Returned(value), _) => {
                // A divergence is kept in the step's replay record and fails it at its end.
                let _recorded = scheduler.emitted(step, value);
            }
            Message::Step(StepMessage::Log { level, message }, _) => {
                scheduler.log(step, level.as_str(), &message);
                log_queue.add_permits(queued_size(message.len()) as usize);
            }
            Message::Step(StepMessage::Event(event), _) => {
                log_queue.add_permits(queued_size(queued_event_len(&event)) as usize);
                scheduler.event(Some(step), event.into());
            }
            Message::Step(StepMessage::OutputMetadata { output, metadata }, _) => {
                scheduler
                    .output_metadata
                    .entry(step)
                    .or_default()
                    .insert(output, metadata);
            }
            Message::Step(StepMessage::Captured { stream, text }, _) => {
                scheduler.log(step, stream.as_str(), &text);
            }
            Message::Step(StepMessage::Finished(result), _) => {
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
    pub(super) fn event(&mut self, step: Option<usize>, kind: EventKind<'_>) {
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

    /// Marks `step` running and returns its call; its start is announced now, or with
    /// [`Scheduler::announce`] once it has a slot when `announce` is false.
    fn start(&mut self, step: usize, announce: bool) -> StepCall {
        let plan = &self.run.plan;
        let record = &mut self.run.steps[step];
        let node = &plan.nodes[record.key.node];
        record.status = Status::Running;
        record.attempts += 1;
        if let Some(replay) = &mut record.replay {
            replay.replayed.clear();
        }
        let attempt = record.attempts;
        // Keep the inputs only while another attempt may need them.
        let inputs = if attempt <= node.retry.max_retries {
            record.inputs.clone()
        } else {
            std::mem::take(&mut record.inputs)
        };
        let call = StepCall {
            component: plan.components[node.component].digest,
            op: node.op.name.clone(),
            context: StepContext {
                run_id: self.run.run_id.clone(),
                step_key: record.name.clone(),
                mapping_keys: record.key.keys.clone(),
                attempt,
                config: node.config.clone(),
                tags: Vec::new(),
            },
            inputs,
            limits: node.limits,
            grants: grants(node),
        };
        if announce {
            self.announce(step);
        }
        call
    }

    /// Records that `step`'s attempt starts executing now.
    fn announce(&mut self, step: usize) {
        let record = &mut self.run.steps[step];
        record.started = Some(Instant::now());
        let attempt = record.attempts;
        let kind = if attempt == 1 {
            EventKind::StepStart { attempt }
        } else {
            EventKind::StepRestarted { attempt }
        };
        self.event(Some(step), kind);
    }

    /// Records a yielded value and starts its clones; a retry's value is first matched against
    /// what earlier attempts yielded.
    fn emitted(&mut self, step: usize, value: DynamicValue) -> Result<(), StepError> {
        let DynamicValue {
            output,
            key,
            value,
            metadata,
        } = value;
        if !self.replay(step, &output, &key, &value)? {
            return Ok(());
        }
        self.event(
            Some(step),
            EventKind::StepOutput {
                output: (&output).into(),
                mapping_key: Some((&key).into()),
                value: (&value).into(),
                metadata: Cow::Owned(metadata),
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
    pub(super) fn adopt_emitted(&mut self, id: usize, output: String, values: KeyedValues) {
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
        let mut metadata = self.output_metadata.remove(&step).unwrap_or_default();
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
                            metadata: Cow::Owned(metadata.remove(output).unwrap_or_default()),
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

    /// Adds the record of step `key`.
    pub(super) fn create(&mut self, key: StepKey, status: Status, inputs: NamedValues) -> usize {
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
}

/// What `node` is granted, its environment variables read here (those unset are left out).
fn grants(node: &Node) -> Grants {
    let env = node
        .env
        .iter()
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    Grants {
        dirs: node.dirs.clone(),
        env,
    }
}
