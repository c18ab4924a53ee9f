//! Asking a run to stop early (the CLI does on SIGINT or SIGTERM): the scheduler starts no new
//! step, gives running ones a grace period to finish, then aborts them, and ends the run
//! `RUN_CANCELED` with everything that completed recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How long running steps get to finish once a run is asked to stop, by default: a step of a
/// typical job finishes well within it, and a user who pressed Ctrl-C does not wait long.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A request to stop a run, shared by whoever may ask and the scheduler.
#[derive(Debug, Clone)]
pub struct Cancel {
    requested: Arc<watch::Sender<bool>>,
    grace: Duration,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::with_grace(DEFAULT_GRACE)
    }
}

impl Cancel {
    /// A request not made yet; once made, running steps get `grace` to finish.
    pub fn with_grace(grace: Duration) -> Self {
        Cancel {
            requested: Arc::new(watch::channel(false).0),
            grace,
        }
    }

    /// Asks the run to stop.
    pub fn request(&self) {
        self.requested.send_replace(true);
    }

    pub fn is_requested(&self) -> bool {
        *self.requested.borrow()
    }

    /// Completes once the run is asked to stop.
    pub async fn requested(&self) {
        let mut requested = self.requested.subscribe();
        // Cannot fail: `self` holds the sender.
        let _ignored = requested.wait_for(|&yes| yes).await;
    }

    /// True when `other` is this very request (a clone of it), not merely an equal one.
    pub fn is(&self, other: &Cancel) -> bool {
        Arc::ptr_eq(&self.requested, &other.requested)
    }

    /// How long running steps get to finish after the request.
    pub fn grace(&self) -> Duration {
        self.grace
    }
}
