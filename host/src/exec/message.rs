//! What a running step and its scheduler say to each other. Both directions serialize, so that
//! a step may run in another process or on another machine; in the scheduler's process they are
//! passed in memory.

use serde::{Deserialize, Serialize};

use crate::outputs::DynamicValue;
use crate::step_error::StepError;
use crate::user_event::{Metadata, UserEvent};
use crate::value::NamedValues;

/// What a running step sends its scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StepMessage {
    /// A value yielded while the step runs. The step waits for [`StepReply::Verdict`]: the
    /// value may first wait for an emit credit ([`StepReply::Paused`]).
    Yielded(DynamicValue),
    /// A dynamic value the step returned from `run`: in memory already, it does not wait.
    Returned(DynamicValue),
    /// A log line of the guest's. The step waits for [`StepReply::Logged`], sent once the run's
    /// log queue has room.
    Log { level: LogLevel, message: String },
    /// An event the op logged (an asset materialization, ...). It waits for
    /// [`StepReply::Logged`] as a log line does.
    Event(UserEvent),
    /// Metadata of a non-dynamic output, sent just before the values it describes
    /// ([`StepMessage::Finished`]); the scheduler drops it if the attempt fails.
    OutputMetadata { output: String, metadata: Metadata },
    /// Captured stdout or stderr, once the attempt is over; bounded, so it does not wait.
    Captured { stream: Stream, text: String },
    /// How the attempt ended: its non-dynamic outputs, or why it failed. The last message.
    Finished(#[serde(with = "crate::value::named_bytes::result")] Result<NamedValues, StepError>),
}

/// What the scheduler answers a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StepReply {
    /// The yielded value waits for an emit credit: the step is paused, which its timeout does
    /// not count.
    Paused,
    /// The credit came: the step runs again.
    Resumed,
    /// The yielded value was taken; an error when it diverges from what an earlier attempt
    /// yielded, which fails the step.
    Verdict(Result<(), StepError>),
    /// The log line (or event) was taken.
    Logged,
}

/// The level of a guest's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The name events give it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// A captured output stream of the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name events give it, in place of a log level.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}
