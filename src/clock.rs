//! A coarse clock for the per-request timestamps that need no precision (keep-alive
//! deadlines, the Date header, progress marks for `--timeout`). A worker's monitor thread
//! advances it every millisecond, so a request reads an atomic instead of the system
//! clock, which costs tens of nanoseconds per read in a virtual machine. Whenever nothing
//! advances it (before the monitor starts, after it stops, in tests) it reads the real
//! clocks.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Milliseconds since EPOCH at the last tick, plus one; 0 while nothing ticks.
static MILLIS: AtomicU64 = AtomicU64::new(0);
/// Seconds since the Unix epoch at the last tick.
static UNIX_SECONDS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Advances the clock (the monitor calls this every millisecond).
pub fn tick() {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    UNIX_SECONDS.store(unix, Ordering::Relaxed);
    MILLIS.store(epoch().elapsed().as_millis() as u64 + 1, Ordering::Release);
}

/// Nothing advances the clock any more: reads go to the real clocks again.
pub fn stop() {
    MILLIS.store(0, Ordering::Release);
}

/// Milliseconds since a fixed start, at least 1.
pub fn millis() -> u64 {
    match MILLIS.load(Ordering::Acquire) {
        0 => epoch().elapsed().as_millis() as u64 + 1,
        ticked => ticked,
    }
}

/// Now, to the millisecond.
pub fn now() -> Instant {
    epoch() + Duration::from_millis(millis() - 1)
}

/// Microseconds from the fixed start to `instant`, at least 1.
pub fn micros_at(instant: Instant) -> u64 {
    instant.saturating_duration_since(epoch()).as_micros() as u64 + 1
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    match MILLIS.load(Ordering::Acquire) {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        _ => UNIX_SECONDS.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticking_and_real_clocks_agree() {
        let real = now();
        tick();
        let ticked = now();
        assert!(
            ticked + Duration::from_millis(2) >= real && real + Duration::from_millis(2) >= ticked
        );
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(unix_seconds().abs_diff(unix) <= 1);
        stop();
        assert!(millis() >= 1);
    }
}
