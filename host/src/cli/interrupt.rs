//! SIGINT (Ctrl-C) and SIGTERM while a run executes. The first stops the run gracefully: no new
//! step starts, running ones get a grace period, the run is recorded `CANCELED`. The second
//! exits at once, like SIGKILL would, leaving the run interrupted. Either way the run stays
//! resumable and the command that resumes it is printed.

use std::sync::{Arc, OnceLock};

use crate::cancel::Cancel;

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub(super) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The shell's convention for a process ended by a signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// Listens for the signals that stop a run, from creation to the end of the process.
pub struct Interrupts {
    first: Arc<OnceLock<Signal>>,
}

impl Interrupts {
    /// Starts listening while run `run_id` executes: the first signal requests `cancel`;
    /// `resume` is the command that resumes the run. What happens is told to `say` (stderr, or
    /// above the progress bars).
    pub fn listen(
        run_id: &str,
        resume: String,
        cancel: Cancel,
        say: impl Fn(&str) + Send + 'static,
    ) -> std::io::Result<Interrupts> {
        let mut signals = Signals::new()?;
        let first = Arc::new(OnceLock::new());
        let (stop, seen, run_id) = (cancel, first.clone(), run_id.to_string());
        tokio::spawn(async move {
            let signal = signals.next().await;
            let _ignored = seen.set(signal);
            stop.request();
            say(&format!(
                "{}: stopping run {run_id}: no new step starts, running steps get {} s to \
                 finish; a second SIGINT or SIGTERM exits at once",
                signal.name(),
                stop.grace().as_secs()
            ));
            let signal = signals.next().await;
            say(&format!(
                "{}: exiting at once; run {run_id} is left interrupted, resume it with: {resume}",
                signal.name()
            ));
            std::process::exit(signal.exit_code().into());
        });
        Ok(Interrupts { first })
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<Signal> {
        self.first.get().copied()
    }
}

/// The signal streams. Once a signal is listened for, it no longer ends the process by itself.
pub(super) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    pub(super) fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(unix)]
    pub(super) async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
        }
    }

    #[cfg(not(unix))]
    pub(super) fn new() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    /// Ctrl-C only; if it cannot be listened for, never.
    #[cfg(not(unix))]
    pub(super) async fn next(&mut self) -> Signal {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        Signal::Interrupt
    }
}
