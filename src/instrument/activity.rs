//! What each thread of a worker is doing, for `--timeout`: when its current app call last
//! gave control back to the server, and on which socket. Only atomics: the worker's main
//! thread reads them without locks or the GIL, even while an app spins holding the GIL.
use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Slot {
    /// `clock::millis()` at the last sign of progress; 0 = not in an app call.
    progress: AtomicU64,
    fd: AtomicI32,
    /// `clock::micros_at` the start of the thread's current request; 0 = none.
    request_since: AtomicU64,
}

static SLOTS: OnceLock<Box<[Slot]>> = OnceLock::new();

thread_local! {
    static MINE: Cell<Option<usize>> = const { Cell::new(None) };
}

fn now_ms() -> u64 {
    crate::clock::millis()
}

/// Creates one slot per thread; call once per worker before its threads start.
pub fn init(threads: usize) {
    let slots = (0..threads)
        .map(|_| Slot {
            progress: AtomicU64::new(0),
            fd: AtomicI32::new(-1),
            request_since: AtomicU64::new(0),
        })
        .collect();
    let _ = SLOTS.set(slots);
}

/// Binds the calling thread to slot `index`.
pub fn register_thread(index: usize) {
    MINE.with(|mine| mine.set(Some(index)));
}

fn with_slot(f: impl FnOnce(&Slot)) {
    if let (Some(index), Some(slots)) = (MINE.with(Cell::get), SLOTS.get())
        && let Some(slot) = slots.get(index)
    {
        f(slot);
    }
}

/// The calling thread started answering a request at `since`, or (None) finished.
pub fn request_in_progress(since: Option<Instant>) {
    with_slot(|slot| {
        let micros = since.map_or(0, crate::clock::micros_at);
        slot.request_since.store(micros, Ordering::Release)
    });
}

/// How long the oldest request in progress on any thread has been running.
pub fn longest_request() -> Duration {
    let Some(slots) = SLOTS.get() else {
        return Duration::ZERO;
    };
    let now = crate::clock::micros_at(Instant::now());
    let oldest = slots
        .iter()
        .map(|slot| slot.request_since.load(Ordering::Acquire))
        .filter(|&since| since != 0)
        .min();
    oldest.map_or(Duration::ZERO, |since| {
        Duration::from_micros(now.saturating_sub(since))
    })
}

/// An app call on `fd` starts.
pub fn app_call_started(fd: RawFd) {
    with_slot(|slot| {
        slot.fd.store(fd, Ordering::Relaxed);
        slot.progress.store(now_ms(), Ordering::Release);
    });
}

/// The app gave control back (a chunk, a read, a write): it is not stuck.
pub fn progress() {
    with_slot(|slot| {
        if slot.progress.load(Ordering::Relaxed) != 0 {
            slot.progress.store(now_ms(), Ordering::Release);
        }
    });
}

pub fn app_call_ended() {
    with_slot(|slot| slot.progress.store(0, Ordering::Release));
}

/// Sockets of app calls that have made no progress for longer than `limit`.
pub fn stuck(limit: Duration) -> Vec<RawFd> {
    let Some(slots) = SLOTS.get() else {
        return Vec::new();
    };
    let now = now_ms();
    slots
        .iter()
        .filter(|slot| {
            let since = slot.progress.load(Ordering::Acquire);
            since != 0 && now.saturating_sub(since) > limit.as_millis() as u64
        })
        .map(|slot| slot.fd.load(Ordering::Relaxed))
        .collect()
}
