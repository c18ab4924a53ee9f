//! One execution's line to its coordinator, on the worker: what the step says goes to the
//! run's stream in order, and the coordinator's answers come back. So that a producer does not
//! wait a round trip per value, yielded values and log lines are answered here at once, up to
//! [`AHEAD`] of the coordinator's answers; the step waits only when that many are unanswered
//! or the coordinator has paused it (backpressure, which then gives the step's slot back until
//! it resumes). A value the coordinator refuses fails the step (the coordinator also makes
//! sure of it).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::coordinator::KEEPALIVE;
use super::wire::{self, AttemptKey, Report, Says};
use super::worker::{Outgoing, Worker};
use crate::exec::{StepMessage, StepReply};
use crate::step_error::StepError;

/// How many yielded values and log lines may wait for the coordinator's answer while the step
/// goes on: enough to hide the round trip, few enough that a paused producer overshoots little.
const AHEAD: usize = 256;

/// How long a step that waits for answers goes on without hearing from its coordinator
/// before the worker gives it up (the coordinator died; resumed, it runs the step again).
const PATIENCE: Duration = Duration::from_secs(8 * KEEPALIVE.as_secs());

/// What the relay needs of its execution.
pub(super) struct Line {
    pub worker: Arc<Worker>,
    pub subject: String,
    pub attempt: AttemptKey,
    pub execution: u64,
    /// The step's slot; given back while the coordinator holds the step paused.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// A message the step waits on.
struct Blocked {
    seq: u64,
    /// What answering it here would say.
    answer: StepReply,
    /// The step was told it is paused.
    told_paused: bool,
    /// The coordinator has answered it already.
    answered: bool,
}

struct Relay {
    line: Line,
    next_seq: u64,
    /// Messages answered here whose coordinator answer has not come yet.
    ahead: VecDeque<u64>,
    blocked: Option<Blocked>,
    /// The coordinator paused the step and has not resumed it.
    paused: bool,
    /// A value the coordinator refused: the step fails with this.
    refused: Option<StepError>,
    heard: Instant,
    replies: mpsc::UnboundedSender<StepReply>,
}

/// Carries the step's `messages` to the coordinator and its `answers` back (as `replies`),
/// until the step's last message is stored, or the coordinator stops the execution or is lost
/// (its result is not wanted then: the step is dropped with the relay).
pub(super) async fn relay(
    line: Line,
    mut messages: mpsc::UnboundedReceiver<StepMessage>,
    mut answers: mpsc::UnboundedReceiver<Says>,
    replies: mpsc::UnboundedSender<StepReply>,
) {
    let mut relay = Relay {
        line,
        next_seq: 0,
        ahead: VecDeque::new(),
        blocked: None,
        paused: false,
        refused: None,
        heard: Instant::now(),
        replies,
    };
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { return };
                if let Some(stored) = relay.send(message).await {
                    // The step's last message: its slot is free for the next step now, and
                    // the execution is done once the server has stored the message.
                    relay.line.permit = None;
                    relay.line.worker.changed.notify_waiters();
                    let _stored = stored.await;
                    return;
                }
            }
            says = answers.recv() => {
                let Some(says) = says else { return };
                relay.heard = Instant::now();
                if !relay.hear(says).await {
                    tracing::info!(step = %relay.line.attempt.step_key, "the coordinator stopped the step");
                    return;
                }
            }
            _ = check.tick() => {
                // Silence while the server is away is not the coordinator's: once it is back,
                // keepalives come again.
                let client = &relay.line.worker.cluster.client;
                if client.connection_state() != async_nats::connection::State::Connected {
                    relay.heard = Instant::now();
                }
                let waiting = relay.blocked.is_some() || !relay.ahead.is_empty();
                if waiting && relay.heard.elapsed() > PATIENCE {
                    tracing::warn!(
                        step = %relay.line.attempt.step_key,
                        "no word from the coordinator for {} s: giving the step up",
                        PATIENCE.as_secs()
                    );
                    return;
                }
            }
        }
    }
}

impl Relay {
    /// Sends one message of the step's; for its last, returns what tells that it is stored.
    async fn send(&mut self, mut message: StepMessage) -> Option<oneshot::Receiver<()>> {
        if let (StepMessage::Finished(Ok(_)), Some(refused)) = (&message, &self.refused) {
            message = StepMessage::Finished(Err(refused.clone()));
        }
        if let StepMessage::Log { message: text, .. } | StepMessage::Captured { text, .. } =
            &mut message
        {
            wire::cut(text);
        }
        let values = wire::values_mut(&mut message);
        let stored = match self.line.worker.cluster.values.stow(values).await {
            Ok(stored) => stored,
            Err(err) => {
                let failed = StepError::Instantiate(format!("cannot store a value: {err}"));
                message = StepMessage::Finished(Err(failed));
                Vec::new()
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let answer = match &message {
            StepMessage::Yielded(_) => Some(StepReply::Verdict(match &self.refused {
                Some(refused) => Err(refused.clone()),
                None => Ok(()),
            })),
            StepMessage::Log { .. } | StepMessage::Event(_) => Some(StepReply::Logged),
            _ => None,
        };
        let last = matches!(message, StepMessage::Finished(_));
        let (tx, rx) = oneshot::channel();
        let report = Report {
            attempt: self.line.attempt.clone(),
            execution: self.line.execution,
            seq,
            inbox: self.line.worker.inbox.clone(),
            message,
            stored,
        };
        let outgoing = Outgoing {
            subject: self.line.subject.clone(),
            report,
            stored: last.then_some(tx),
        };
        let _sent = self.line.worker.outgoing.send(outgoing);
        if let Some(answer) = answer {
            self.blocked = Some(Blocked {
                seq,
                answer,
                told_paused: false,
                answered: false,
            });
            self.unblock();
        }
        last.then_some(rx)
    }

    /// Answers the message the step waits on here, if the window allows; else, when the
    /// coordinator holds the step paused, tells the step and gives its slot back.
    fn unblock(&mut self) {
        let Some(blocked) = &mut self.blocked else {
            return;
        };
        if self.paused {
            if !blocked.told_paused {
                blocked.told_paused = true;
                self.line.permit = None;
                self.line.worker.changed.notify_waiters();
                let _sent = self.replies.send(StepReply::Paused);
            }
            return;
        }
        if blocked.told_paused || (self.ahead.len() >= AHEAD && !blocked.answered) {
            return;
        }
        let blocked = self.blocked.take().expect("checked above");
        if !blocked.answered {
            self.ahead.push_back(blocked.seq);
        }
        let _sent = self.replies.send(blocked.answer);
    }

    /// Takes one thing the coordinator says; false when the execution must stop.
    async fn hear(&mut self, says: Says) -> bool {
        let (seq, reply) = match says {
            Says::Stop => return false,
            Says::Reply { seq, reply } => (seq, reply),
            // A lost answer comes again with the keepalive.
            Says::Keepalive {
                last: Some((seq, reply)),
            } => (seq, reply),
            Says::Keepalive { last: None } => return true,
        };
        let pending = self.ahead.front().is_some_and(|first| *first <= seq)
            || self.blocked.as_ref().is_some_and(|b| b.seq == seq);
        if !pending {
            return true;
        }
        match reply {
            StepReply::Paused => self.paused = true,
            StepReply::Resumed => self.paused = false,
            StepReply::Verdict(Err(err)) => {
                self.refused.get_or_insert(err);
                self.settle(seq);
            }
            StepReply::Verdict(Ok(())) | StepReply::Logged => self.settle(seq),
        }
        self.resume().await;
        self.unblock();
        true
    }

    /// The coordinator answered message `seq`, and so every one before it.
    fn settle(&mut self, seq: u64) {
        while self.ahead.front().is_some_and(|first| *first <= seq) {
            self.ahead.pop_front();
        }
        if let Some(blocked) = &mut self.blocked
            && blocked.seq == seq
        {
            blocked.answer = match (&blocked.answer, &self.refused) {
                (StepReply::Verdict(_), Some(refused)) => StepReply::Verdict(Err(refused.clone())),
                (answer, _) => answer.clone(),
            };
            // Answered by the coordinator: nothing to wait for but a slot.
            blocked.answered = true;
            self.paused = false;
        }
    }

    /// The step was told it is paused and no longer is: it gets a slot again first.
    async fn resume(&mut self) {
        let Some(blocked) = &mut self.blocked else {
            return;
        };
        if self.paused || !blocked.told_paused {
            return;
        }
        let slots = self.line.worker.slots.clone();
        self.line.permit = slots.acquire_owned().await.ok();
        blocked.told_paused = false;
        let _sent = self.replies.send(StepReply::Resumed);
    }
}
