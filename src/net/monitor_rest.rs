//! Lets the hand-off monitor stop ticking while a worker has nothing to do. It checks every
//! millisecond while requests come (a thousand wake-ups a second: 2-3% of a core for an
//! idle worker); after `QUIET_CHECKS` checks in which no request began and none was in
//! progress, it parks until the next request begins (or a second passes).
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::Duration;

/// Quiet checks in a row before the monitor rests.
const QUIET_CHECKS: u32 = 100;
/// Longest rest (stopping wakes it too).
const LONGEST_REST: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct MonitorRest {
    /// Requests begun so far.
    began: AtomicU64,
    resting: AtomicBool,
    monitor: OnceLock<Thread>,
}

/// The monitor's own count of quiet checks.
#[derive(Default)]
pub struct Quiet {
    seen: u64,
    checks: u32,
}

impl MonitorRest {
    /// A request begins: a resting monitor must watch again.
    pub fn request_began(&self) {
        // SeqCst here and in `rest_if_quiet`: either the monitor sees this request, or
        // this sees the monitor resting.
        self.began.fetch_add(1, Ordering::SeqCst);
        if self.resting.load(Ordering::SeqCst) && self.resting.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }

    pub fn wake(&self) {
        if let Some(monitor) = self.monitor.get() {
            monitor.unpark();
        }
    }

    /// The monitor calls this after each check: once the worker has been quiet long enough
    /// it blocks until a request begins. Returns whether it rested.
    pub fn rest_if_quiet(&self, quiet: &mut Quiet, in_progress: impl Fn() -> bool) -> bool {
        let began = self.began.load(Ordering::Acquire);
        if began != quiet.seen || in_progress() {
            *quiet = Quiet {
                seen: began,
                checks: 0,
            };
            return false;
        }
        quiet.checks += 1;
        if quiet.checks < QUIET_CHECKS {
            return false;
        }
        quiet.checks = 0;
        let _ = self.monitor.set(std::thread::current());
        self.resting.store(true, Ordering::SeqCst);
        // A request that began before `resting` was set did not wake us: look again.
        if self.began.load(Ordering::SeqCst) == began && !in_progress() {
            // Nobody ticks the coarse clock during the rest: reads go to the real clocks.
            crate::clock::stop();
            std::thread::park_timeout(LONGEST_REST);
        }
        self.resting.store(false, Ordering::Release);
        true
    }
}
