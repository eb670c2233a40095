//! Health probes answered by the server itself (`--health-path`), never by the app:
//! PREFIX/livez and PREFIX/readyz, for load balancers and Kubernetes probes.
//!
//! Readiness is the master's decision (every worker has imported the app and serves, and
//! no stop has begun), written into one byte of memory shared with the workers before
//! they are forked; the worker that reads the probe answers from it.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// What the master says about the server as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Readiness {
    /// Fewer workers serve than --workers asks for (starting, or replacing one that died).
    Starting = 0,
    Ready = 1,
    /// A stop has begun (SIGTERM, with or without --shutdown-delay): balancers must take
    /// this server out.
    Draining = 2,
}

static BOARD: OnceLock<&'static AtomicU8> = OnceLock::new();

/// Maps the shared byte (in the master, before the first fork).
pub fn create_board() -> std::io::Result<()> {
    if BOARD.get().is_none() {
        // SAFETY: an AtomicU8 is valid as a zero byte.
        let byte = unsafe { crate::instrument::shared_zeroed::<AtomicU8>(1)? };
        let _ = BOARD.set(&byte[0]);
    }
    Ok(())
}

/// The master publishes its decision (a no-op without --health-path).
pub fn publish(readiness: Readiness) {
    if let Some(byte) = BOARD.get() {
        byte.store(readiness as u8, Ordering::Release);
    }
}

fn readiness() -> Readiness {
    match BOARD.get().map(|byte| byte.load(Ordering::Acquire)) {
        Some(1) => Readiness::Ready,
        Some(2) => Readiness::Draining,
        _ => Readiness::Starting,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Live,
    Ready,
}

/// The probe paths of a worker, and what it answers them.
pub struct HealthProbes {
    live: Vec<u8>,
    ready: Vec<u8>,
    /// The master this worker was forked by: liveness fails once it is gone.
    master: libc::pid_t,
    /// Whether probes go to the access log (--health-access-log).
    pub logged: bool,
}

impl HealthProbes {
    /// `prefix` as --health-path gives it: without a trailing slash (empty for `/`).
    pub fn new(prefix: &str, logged: bool) -> HealthProbes {
        HealthProbes {
            live: format!("{prefix}/livez").into_bytes(),
            ready: format!("{prefix}/readyz").into_bytes(),
            // SAFETY: getppid cannot fail.
            master: unsafe { libc::getppid() },
            logged,
        }
    }

    /// Which probe a request path (without its query) asks for, if any.
    pub fn probe(&self, path: &[u8]) -> Option<Probe> {
        if path == self.live {
            Some(Probe::Live)
        } else if path == self.ready {
            Some(Probe::Ready)
        } else {
            None
        }
    }

    /// The status and one-word body that answer `probe`.
    pub fn answer(&self, probe: Probe) -> (u16, &'static str) {
        // SAFETY: getppid cannot fail.
        let master_lives = unsafe { libc::getppid() } == self.master;
        match (probe, master_lives) {
            (_, false) => (503, "master gone\n"),
            (Probe::Live, true) => (200, "live\n"),
            (Probe::Ready, true) => status_of(readiness()),
        }
    }
}

fn status_of(readiness: Readiness) -> (u16, &'static str) {
    match readiness {
        Readiness::Ready => (200, "ready\n"),
        Readiness::Starting => (503, "starting\n"),
        Readiness::Draining => (503, "draining\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_paths_follow_the_prefix_exactly() {
        let root = HealthProbes::new("", false);
        assert_eq!(root.probe(b"/livez"), Some(Probe::Live));
        assert_eq!(root.probe(b"/readyz"), Some(Probe::Ready));
        assert_eq!(root.probe(b"/readyz/"), None);
        assert_eq!(root.probe(b"/livezz"), None);
        let nested = HealthProbes::new("/-/health", false);
        assert_eq!(nested.probe(b"/-/health/readyz"), Some(Probe::Ready));
        assert_eq!(nested.probe(b"/readyz"), None);
    }

    #[test]
    fn only_a_ready_server_is_ready() {
        assert_eq!(status_of(Readiness::Ready).0, 200);
        assert_eq!(status_of(Readiness::Starting), (503, "starting\n"));
        assert_eq!(status_of(Readiness::Draining), (503, "draining\n"));
    }
}
