use crate::cancel::Cancel;
use crate::events::{Both, EventSink};
use crate::exec::{self, Prior, TenantShare};
use crate::nats::NatsRunner;
use crate::store::RecordingSink;

use super::{Prepared, Running, lock};

/// A recorded run, leased to this process, ready to execute.
pub struct RunHandle {
    pub(super) run_id: String,
    pub(super) parent: Option<String>,
    pub(super) prepared: Prepared,
    pub(super) prior: Prior,
    pub(super) share: Option<TenantShare>,
    /// Sends the steps to the workers of a cluster instead of running them here.
    pub(super) remote: Option<NatsRunner>,
    pub(super) recorded: Box<dyn RecordingSink>,
    pub(super) cancel: Cancel,
    pub(super) registered: Registered,
}

/// Keeps a run in [`super::App`]'s registry of running runs while its handle lives.
pub(super) struct Registered {
    pub running: Running,
    pub run_id: String,
    /// This execution's entry: once the run ended, a resume may have registered another.
    pub cancel: Cancel,
}

impl Registered {
    /// Marks the run ended: its final event is on its way to the store.
    fn ended(&self) {
        if let Some(live) = lock(&self.running).get_mut(&self.run_id)
            && live.cancel.is(&self.cancel)
        {
            live.ended = true;
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        if running
            .get(&self.run_id)
            .is_some_and(|live| live.cancel.is(&self.cancel))
        {
            running.remove(&self.run_id);
        }
    }
}

impl RunHandle {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run this one re-executes, if any.
    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    /// What was loaded: the plan, the components and how they were compiled, notices.
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    /// What stops the run early when requested (also [`super::App::cancel`]).
    pub fn cancel(&self) -> Cancel {
        self.cancel.clone()
    }

    /// Executes the run to its end, recording every event in the store and sending it to
    /// `observer` too. A run that could not be recorded in full has its `sink_error` set (and
    /// stopped early if the store failed while it ran).
    pub async fn execute(self, observer: &mut dyn EventSink) -> exec::Run {
        let RunHandle {
            run_id,
            prepared,
            prior,
            share,
            remote,
            recorded,
            cancel,
            registered,
            ..
        } = self;
        let mut sink = Both(observer, recorded);
        let mut run = prepared
            .run_placed(run_id.clone(), prior, cancel, share, remote, &mut sink)
            .await;
        // Before the store has the final event, so that nobody who read the run's end finds
        // it still counted against the tenant's runs.
        registered.ended();
        let Both(_, recorded) = sink;
        if let Err(err) = recorded.finish() {
            run.sink_error.get_or_insert(err);
        }
        // Only now: until its last event is written the run still holds its lease, and
        // `App::cancel` must not send the caller to another process.
        drop(registered);
        run
    }
}
