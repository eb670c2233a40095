//! Lets the hand-off monitor stop ticking while a worker has nothing to do. It checks every
//! millisecond while requests come (a thousand wake-ups a second: 2-3% of a core for an
//! idle worker); after `QUIET_CHECKS` checks in a row that found no request in progress,
//! it parks until the next request begins (or a second passes). Under load a thousand
//! checks a second never all miss the requests, so it only rests when the worker is idle
//! or nearly so.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::Duration;

/// Quiet checks in a row before the monitor rests.
const QUIET_CHECKS: u32 = 100;
/// Longest rest (stopping wakes it too).
const LONGEST_REST: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct MonitorRest {
    resting: AtomicBool,
    monitor: OnceLock<Thread>,
}

impl MonitorRest {
    /// A request begins; the caller has already counted it as in progress (SeqCst: either
    /// the monitor sees it before resting, or this sees the monitor resting).
    pub fn request_began(&self) {
        if self.resting.load(Ordering::SeqCst) && self.resting.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }

    pub fn wake(&self) {
        if let Some(monitor) = self.monitor.get() {
            monitor.unpark();
        }
    }

    /// The monitor calls this after each check, with its count of quiet checks: once the
    /// worker has been quiet long enough it blocks until a request begins. `in_progress`
    /// must read the count of requests in progress with SeqCst. Returns whether it rested.
    pub fn rest_if_quiet(&self, quiet_checks: &mut u32, in_progress: impl Fn() -> bool) -> bool {
        if in_progress() {
            *quiet_checks = 0;
            return false;
        }
        *quiet_checks += 1;
        if *quiet_checks < QUIET_CHECKS {
            return false;
        }
        *quiet_checks = 0;
        let _ = self.monitor.set(std::thread::current());
        self.resting.store(true, Ordering::SeqCst);
        // A request that began before `resting` was set did not wake us: look again.
        if !in_progress() {
            // Nobody ticks the coarse clock during the rest: reads go to the real clocks.
            crate::clock::stop();
            std::thread::park_timeout(LONGEST_REST);
        }
        self.resting.store(false, Ordering::Release);
        true
    }
}
