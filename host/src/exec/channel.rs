//! A running step's line back to the scheduler, and the backpressure on it: emit credits for
//! yielded values, a byte budget for queued log lines, the clock of time spent paused, and the
//! step's slot of a server's share, given back while paused. The line is local (in the
//! scheduler's process: messages in memory, credits from shared semaphores) or remote
//! (messages and replies carried by a transport to a scheduler elsewhere, whose
//! [`StepChannel::serve`] does the waiting).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::message::{LogLevel, StepMessage, StepReply, Stream};
use super::share::{Slot, TenantShare};
use crate::outputs::DynamicValue;
use crate::step_error::StepError;
use crate::user_event::{Metadata, UserEvent};
use crate::value::NamedValues;

/// How many yielded values may be in flight, and how many steps may wait to start, before
/// producers pause: enough to keep every slot busy, small enough that queued clones stay a few
/// MiB.
pub const DEFAULT_EMIT_WINDOW: usize = 1024;

/// How many bytes of log messages may wait for the scheduler, all steps together.
pub(super) const LOG_QUEUE_BYTES: u32 = 4 << 20;

/// What the scheduler's task receives, tagged with the step it concerns.
pub(super) enum Message {
    /// A retry's delay is over.
    Retry,
    /// What the step sent; for a value yielded by an attempt that must replay what an earlier
    /// one yielded, where the verdict goes.
    Step(StepMessage, Option<oneshot::Sender<Result<(), StepError>>>),
    /// The step got its slot of a share and starts executing.
    Started,
    /// The step waits for an emit credit (it gives up its slot meanwhile).
    Paused,
    Resumed,
}

/// A running step's line back to the scheduler.
#[derive(Clone)]
pub struct StepChannel {
    link: Link,
    paused: Arc<PauseClock>,
}

#[derive(Clone)]
enum Link {
    Local(Local),
    Remote(Remote),
}

/// A step in the scheduler's process.
#[derive(Clone)]
pub(super) struct Local {
    pub(super) step: usize,
    pub(super) tx: mpsc::UnboundedSender<(usize, Message)>,
    pub(super) credits: Arc<Semaphore>,
    /// Set for a retried or resumed producer: each value waits for the scheduler's comparison
    /// with what an earlier attempt yielded, so that a divergent value is refused at once.
    pub(super) replaying: bool,
    /// Bytes of log messages sent but not yet taken by the scheduler, run-wide.
    pub(super) log_queue: Arc<Semaphore>,
    /// The step's slot of its tenant's share, when the run has one.
    pub(super) slot: Option<StepSlot>,
}

/// The slot a step holds of its tenant's share while it runs. A step paused for emit credits
/// gives it back: the clones it waits for may need it (at a cap of one, they would wait for
/// each other forever).
#[derive(Clone)]
pub(super) struct StepSlot {
    share: TenantShare,
    held: Arc<Mutex<Option<Slot>>>,
}

impl StepSlot {
    pub(super) fn new(share: TenantShare) -> StepSlot {
        StepSlot {
            share,
            held: Arc::default(),
        }
    }

    /// Waits for a slot, in turn with the other steps of the share.
    pub(super) async fn take(&self) {
        let slot = self.share.acquire().await;
        *self.held.lock().expect("step slot") = Some(slot);
    }

    pub(super) fn give_back(&self) {
        let slot = self.held.lock().expect("step slot").take();
        drop(slot);
    }
}

/// A step away from its scheduler.
#[derive(Clone)]
struct Remote {
    messages: mpsc::UnboundedSender<StepMessage>,
    /// Held for one exchange at a time (a step's calls come one after another), so that each
    /// reply reaches the call it answers.
    replies: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<StepReply>>>,
}

/// The transport's end of a remote step's channel: carry every message to the scheduler's
/// [`StepChannel::serve`], and every reply it gives back here.
pub struct RemoteEnd {
    pub messages: mpsc::UnboundedReceiver<StepMessage>,
    pub replies: mpsc::UnboundedSender<StepReply>,
}

/// What a log message (or user event) of `len` bytes holds of the log queue: its bytes and a
/// fixed cost per message, at most the whole queue (a message larger than the queue waits until
/// the queue is empty).
pub(super) fn queued_size(len: usize) -> u32 {
    let size = len.saturating_add(crate::limits::LOG_CALL_OVERHEAD as usize);
    u32::try_from(size).unwrap_or(u32::MAX).min(LOG_QUEUE_BYTES)
}

/// The bytes a user event counts for in the log queue.
pub(super) fn queued_event_len(event: &UserEvent) -> usize {
    usize::try_from(event.size()).unwrap_or(usize::MAX)
}

impl StepChannel {
    pub(super) fn local(local: Local) -> StepChannel {
        StepChannel {
            link: Link::Local(local),
            paused: Arc::default(),
        }
    }

    /// A channel for a step that runs away from its scheduler, and the end a transport carries
    /// its messages and replies through.
    pub fn remote() -> (StepChannel, RemoteEnd) {
        let (messages, outgoing) = mpsc::unbounded_channel();
        let (replies, incoming) = mpsc::unbounded_channel();
        let remote = Remote {
            messages,
            replies: Arc::new(tokio::sync::Mutex::new(incoming)),
        };
        let channel = StepChannel {
            link: Link::Remote(remote),
            paused: Arc::default(),
        };
        let end = RemoteEnd {
            messages: outgoing,
            replies,
        };
        (channel, end)
    }

    /// Hands over one value yielded while the step runs, first waiting for an emit credit when
    /// the run has too much queued work. An error means the value diverges from what an earlier
    /// attempt yielded: it was not recorded, and the step fails with that error.
    pub async fn emit(&self, value: DynamicValue) -> Result<(), StepError> {
        self.emit_reporting(value, &mut |_| {}).await
    }

    /// [`StepChannel::emit`], telling `report` when the step pauses and resumes.
    async fn emit_reporting(
        &self,
        value: DynamicValue,
        report: &mut impl FnMut(StepReply),
    ) -> Result<(), StepError> {
        match &self.link {
            Link::Local(local) => local.emit(value, &self.paused, report).await,
            Link::Remote(remote) => {
                match remote
                    .exchange(StepMessage::Yielded(value), &self.paused, report)
                    .await
                {
                    Some(StepReply::Verdict(verdict)) => verdict,
                    // No answer means the scheduler has stopped.
                    _ => Ok(()),
                }
            }
        }
    }

    /// Hands over a dynamic value the step returned from `run`: it is in memory already, so
    /// it does not wait for a credit.
    pub fn emit_returned(&self, value: DynamicValue) {
        self.send(StepMessage::Returned(value));
    }

    /// How long this attempt has been paused by backpressure, which its timeout does not count.
    pub fn paused_for(&self) -> Duration {
        self.paused.total()
    }

    /// Records a log line the guest sent, first waiting for room in the log queue: a guest
    /// that logs faster than the run store writes is slowed down rather than queued in memory.
    pub async fn log(&self, level: LogLevel, message: String) {
        match &self.link {
            Link::Local(local) => local.log(level, message).await,
            Link::Remote(remote) => {
                let log = StepMessage::Log { level, message };
                remote.exchange(log, &self.paused, &mut |_| {}).await;
            }
        }
    }

    /// Records an event the guest logged, waiting for room in the log queue as a log line does.
    pub async fn log_event(&self, event: UserEvent) {
        match &self.link {
            Link::Local(local) => local.log_event(event).await,
            Link::Remote(remote) => {
                remote
                    .exchange(StepMessage::Event(event), &self.paused, &mut |_| {})
                    .await;
            }
        }
    }

    /// Hands over the metadata of a non-dynamic output, just before the attempt's result; it
    /// is bounded by the log limit, so it does not wait.
    pub fn output_metadata(&self, output: String, metadata: Metadata) {
        self.send(StepMessage::OutputMetadata { output, metadata });
    }

    /// Records captured output once the attempt is over; it is bounded by the log limit and
    /// held in memory already, so it does not wait.
    pub fn log_captured(&self, stream: Stream, text: String) {
        self.send(StepMessage::Captured { stream, text });
    }

    /// Reports that the attempt got its slot and starts executing (steps of a share only,
    /// which run in the scheduler's process).
    pub(super) fn started(&self) {
        if let Link::Local(local) = &self.link {
            let _ignored = local.send(Message::Started);
        }
    }

    /// Reports how the attempt ended: the step's last message.
    pub fn finish(&self, result: Result<NamedValues, StepError>) {
        self.send(StepMessage::Finished(result));
    }

    /// Does for a step running elsewhere what its `message` asks, as if the step ran here, and
    /// hands `reply` what to send back. Returns the attempt's result once the step reports it.
    pub async fn serve(
        &self,
        message: StepMessage,
        mut reply: impl FnMut(StepReply),
    ) -> Option<Result<NamedValues, StepError>> {
        match message {
            StepMessage::Yielded(value) => {
                let verdict = self.emit_reporting(value, &mut reply).await;
                reply(StepReply::Verdict(verdict));
            }
            StepMessage::Log { level, message } => {
                self.log(level, message).await;
                reply(StepReply::Logged);
            }
            StepMessage::Event(event) => {
                self.log_event(event).await;
                reply(StepReply::Logged);
            }
            StepMessage::Finished(result) => return Some(result),
            message @ (StepMessage::Returned(_)
            | StepMessage::Captured { .. }
            | StepMessage::OutputMetadata { .. }) => {
                self.send(message);
            }
        }
        None
    }

    fn send(&self, message: StepMessage) {
        // The receiver outlives every step; a send can only fail once it has stopped.
        let _sent = match &self.link {
            Link::Local(local) => local.send(Message::Step(message, None)).is_ok(),
            Link::Remote(remote) => remote.messages.send(message).is_ok(),
        };
    }
}

impl Local {
    async fn emit(
        &self,
        value: DynamicValue,
        paused: &PauseClock,
        report: &mut impl FnMut(StepReply),
    ) -> Result<(), StepError> {
        match self.credits.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => {
                paused.pause();
                let _ignored = self.send(Message::Paused);
                report(StepReply::Paused);
                if let Some(slot) = &self.slot {
                    slot.give_back();
                }
                // The scheduler never closes the semaphore.
                if let Ok(permit) = self.credits.acquire().await {
                    permit.forget();
                }
                if let Some(slot) = &self.slot {
                    slot.take().await;
                }
                paused.resume();
                let _ignored = self.send(Message::Resumed);
                report(StepReply::Resumed);
            }
        }
        let yielded = StepMessage::Yielded(value);
        if !self.replaying {
            let _ignored = self.send(Message::Step(yielded, None));
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let _ignored = self.send(Message::Step(yielded, Some(tx)));
        // The scheduler answers every verdict it receives; no answer means it has stopped.
        rx.await.unwrap_or(Ok(()))
    }

    async fn log(&self, level: LogLevel, message: String) {
        self.queue_log(message.len()).await;
        let _ignored = self.send(Message::Step(StepMessage::Log { level, message }, None));
    }

    async fn log_event(&self, event: UserEvent) {
        self.queue_log(queued_event_len(&event)).await;
        let _ignored = self.send(Message::Step(StepMessage::Event(event), None));
    }

    /// Waits for room for `len` bytes in the run's log queue.
    async fn queue_log(&self, len: usize) {
        // The scheduler never closes the semaphore.
        if let Ok(permits) = self.log_queue.acquire_many(queued_size(len)).await {
            permits.forget();
        }
    }

    /// Fails only once the scheduler has stopped.
    fn send(&self, message: Message) -> Result<(), mpsc::error::SendError<(usize, Message)>> {
        self.tx.send((self.step, message))
    }
}

impl Remote {
    /// Sends `message` and waits for its answer, keeping the pause clock (and `report`) up to
    /// date meanwhile; `None` when the scheduler has stopped.
    async fn exchange(
        &self,
        message: StepMessage,
        paused: &PauseClock,
        report: &mut impl FnMut(StepReply),
    ) -> Option<StepReply> {
        let mut replies = self.replies.lock().await;
        self.messages.send(message).ok()?;
        loop {
            let reply = replies.recv().await?;
            match reply {
                StepReply::Paused => paused.pause(),
                StepReply::Resumed => paused.resume(),
                answer => return Some(answer),
            }
            report(reply);
        }
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
pub(super) struct FinishGuard {
    pub(super) channel: StepChannel,
    pub(super) sent: bool,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if !self.sent {
            self.channel.finish(Err(StepError::Trap {
                message: "wasm trap: the host lost this step (internal error)".into(),
                backtrace: None,
            }));
        }
    }
}
