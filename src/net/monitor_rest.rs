//! Lets the hand-off monitor stop ticking while a worker has nothing to do. It checks every
//! millisecond while requests come (a thousand wake-ups a second: 2-3% of a core for an
//! idle worker); after `QUIET_CHECKS` checks in a row that found no request in progress,
//! it parks until the next request begins, or a second passes. A rest that no request
//! ended leaves the worker idle, so one more quiet check sends it back to rest: an idle
//! worker's monitor wakes about once a second. Under load a thousand checks a second never
//! all miss the requests, so it only rests when the worker is idle or nearly so.
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
        // No request woke us (the rest ran out, or a stop): the worker is still idle, so
        // one quiet check is enough to rest again, not another hundred.
        if self.resting.swap(false, Ordering::AcqRel) {
            *quiet_checks = QUIET_CHECKS - 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Wakes the resting monitor (this test's thread) from another thread, the way a stop
    /// does, or as a request does when `by_request`.
    fn wake_soon(rest: &Arc<MonitorRest>, by_request: bool) -> std::thread::JoinHandle<()> {
        let rest = Arc::clone(rest);
        std::thread::spawn(move || {
            while !rest.resting.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            if by_request {
                rest.request_began();
            } else {
                rest.wake();
            }
        })
    }

    #[test]
    fn rests_after_a_hundred_quiet_checks() {
        let rest = Arc::new(MonitorRest::default());
        let mut quiet = 0;
        for _ in 1..QUIET_CHECKS {
            assert!(!rest.rest_if_quiet(&mut quiet, || false));
        }
        let waker = wake_soon(&rest, false);
        assert!(rest.rest_if_quiet(&mut quiet, || false));
        waker.join().unwrap();
    }

    #[test]
    fn a_check_that_finds_a_request_starts_the_count_again() {
        let rest = MonitorRest::default();
        let mut quiet = QUIET_CHECKS - 1;
        assert!(!rest.rest_if_quiet(&mut quiet, || true));
        assert_eq!(quiet, 0);
    }

    #[test]
    fn an_idle_wake_rests_again_at_the_next_quiet_check() {
        let rest = Arc::new(MonitorRest::default());
        let mut quiet = QUIET_CHECKS - 1;
        let waker = wake_soon(&rest, false);
        assert!(rest.rest_if_quiet(&mut quiet, || false));
        waker.join().unwrap();
        assert_eq!(quiet, QUIET_CHECKS - 1);
        let waker = wake_soon(&rest, false);
        assert!(
            rest.rest_if_quiet(&mut quiet, || false),
            "one quiet check is enough"
        );
        waker.join().unwrap();
    }

    #[test]
    fn a_request_wake_goes_back_to_checking_every_tick() {
        let rest = Arc::new(MonitorRest::default());
        let mut quiet = QUIET_CHECKS - 1;
        let waker = wake_soon(&rest, true);
        assert!(rest.rest_if_quiet(&mut quiet, || false));
        waker.join().unwrap();
        assert_eq!(quiet, 0);
        assert!(!rest.rest_if_quiet(&mut quiet, || false));
    }
}
