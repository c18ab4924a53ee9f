//! Who executes a run. One process at a time holds a run's lease: a row in `leases` with its
//! pid, host name and a heartbeat that its store writer refreshes. Two processes then never
//! write the same run, and a run whose process died, even by SIGKILL, can be resumed.

use std::sync::OnceLock;
use std::time::Duration;

/// How often a writer with nothing to write refreshes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// Seconds after which a heartbeat is stale and its owner counts as dead whatever its pid: this
/// covers owners on other hosts (whose pid cannot be checked), reused pids and hung processes.
/// Far above [`HEARTBEAT_EVERY`], so that a loaded machine or some clock skew does not make a
/// live owner look dead.
pub const STALE_AFTER: f64 = 30.0;

/// The process holding a run's lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    /// When its writer last proved it alive (Unix seconds).
    pub heartbeat: f64,
}

impl Owner {
    /// This process, now.
    pub fn this_process() -> Owner {
        Owner {
            pid: std::process::id(),
            host: this_host().to_string(),
            heartbeat: crate::events::unix_now(),
        }
    }

    /// Whether the owner may still be running at `now`: its heartbeat is fresh and, when it
    /// runs on this host, its pid exists. A SIGKILLed owner on this host is dead at once.
    pub fn is_alive(&self, now: f64) -> bool {
        now - self.heartbeat <= STALE_AFTER && (self.host != this_host() || pid_exists(self.pid))
    }
}

/// This machine's host name.
pub fn this_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        #[cfg(unix)]
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        #[cfg(not(unix))]
        let host = std::env::var("COMPUTERNAME").unwrap_or_default();
        host
    })
}

/// Whether process `pid` exists (`kill(pid, 0)`; a process of another user exists too).
#[cfg(unix)]
fn pid_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Without a way to ask, every pid may exist: the heartbeat alone decides.
#[cfg(not(unix))]
fn pid_exists(_pid: u32) -> bool {
    true
}
