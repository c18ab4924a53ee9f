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
//!
//! A server running many runs of many tenants gives each run a [`TenantShare`]: every step
//! attempt then also waits for a slot of the server's [`Share`], handed out fairly among
//! tenants, and a paused producer gives that slot back too.
//!
//! Concurrency pools (tag concurrency limits, an op's `max_concurrent`) hold a step back
//! until it has a place in each pool of its op, without holding back the steps behind it.

//! A step attempt is a [`StepCall`] that carries everything needed to run it (the component's
//! digest, the op, its context, inputs, limits and grants), and what the step sends back are
//! [`StepMessage`]s answered by [`StepReply`]s: all of it serializes, so a step may run on
//! another machine. In one process nothing is serialized.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::job::DirGrant;
use crate::limits::Limits;
use crate::step_error::StepError;
use crate::value::NamedValues;

pub use channel::{DEFAULT_EMIT_WINDOW, RemoteEnd, StepChannel};
pub use message::{LogLevel, StepMessage, StepReply, Stream};
pub use run::{Prior, Run, RunOptions, Status, Step};
pub use scheduler::{execute, execute_one};
pub use share::{Share, ShareStats, Slot, TenantShare, TenantStats};

/// One step attempt, as handed to a [`StepRunner`]: all a worker needs besides the component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepCall {
    /// The digest of the component's bytes.
    pub component: Digest,
    /// The op inside the component.
    pub op: String,
    pub context: StepContext,
    /// Input name -> CBOR value, in the op's declared order.
    #[serde(with = "crate::value::named_bytes")]
    pub inputs: NamedValues,
    pub limits: Limits,
    pub grants: Grants,
}

/// What the op learns about its step (the WIT `context`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepContext {
    pub run_id: String,
    /// Rendered, e.g. `compute_piece[3]`.
    pub step_key: String,
    /// Outermost first.
    pub mapping_keys: Vec<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The op's config table as CBOR.
    #[serde(with = "serde_bytes")]
    pub config: Vec<u8>,
    /// The step's tags (key, value), sorted by key.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// What the op may reach on the machine that runs it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Grants {
    pub dirs: Vec<DirGrant>,
    /// Environment variables as name and value, read where the call was built: a worker must
    /// not hand an op its own environment.
    pub env: Vec<(String, String)>,
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

mod channel;
mod gate;
mod message;
mod readiness;
mod replay;
mod run;
mod scheduler;
mod share;
mod step_index;
#[cfg(test)]
mod tests;
