//! The counters behind `--metrics`: workers count into their own slot of a memory region
//! the master maps (shared, anonymous) before forking, so counting costs a few atomic adds
//! and no messages. The master reads the slots (server::exporter).
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Request-duration histogram bounds, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Worker slots in the region; more workers than this share no metrics.
pub const SLOTS: usize = 256;

/// One worker's counters. Gauges are kept as counters of ups and downs.
#[repr(C)]
#[derive(Default)]
pub struct WorkerStats {
    pub pid: AtomicU64,
    /// By status class: 1xx..5xx.
    pub(crate) requests: [AtomicU64; 5],
    pub(crate) started: AtomicU64,
    pub(crate) buckets: [AtomicU64; BUCKETS.len()],
    pub(crate) duration_micros: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) opened: AtomicU64,
    pub(crate) closed: AtomicU64,
    /// Log lines dropped (the destination was too slow) or lost to write errors.
    pub(crate) log_dropped: AtomicU64,
    /// Connections closed for their PROXY protocol header (refused, malformed or missing).
    pub(crate) proxy_refused: AtomicU64,
    /// Requests with X-Request-Start: how long they waited before the worker read them.
    pub(crate) queue_buckets: [AtomicU64; BUCKETS.len()],
    pub(crate) queued: AtomicU64,
    pub(crate) queue_micros: AtomicU64,
    /// The worker's request threads (a gauge, set at start).
    pub threads: AtomicU64,
}

impl WorkerStats {
    pub(crate) fn finished(&self) -> u64 {
        self.requests.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Requests being answered now: one per busy thread, as each runs to completion.
    pub fn in_flight(&self) -> u64 {
        self.started.load(Relaxed).saturating_sub(self.finished())
    }

    /// Adds `other`'s counters to these (for the totals of exited workers).
    pub(crate) fn absorb(&self, other: &WorkerStats) {
        let add = |a: &AtomicU64, b: &AtomicU64| {
            a.fetch_add(b.load(Relaxed), Relaxed);
        };
        for (a, b) in self.requests.iter().zip(&other.requests) {
            add(a, b);
        }
        for (a, b) in self.buckets.iter().zip(&other.buckets) {
            add(a, b);
        }
        add(&self.duration_micros, &other.duration_micros);
        add(&self.bytes_in, &other.bytes_in);
        add(&self.bytes_out, &other.bytes_out);
        add(&self.opened, &other.opened);
        add(&self.closed, &other.closed);
        add(&self.log_dropped, &other.log_dropped);
        add(&self.proxy_refused, &other.proxy_refused);
        for (a, b) in self.queue_buckets.iter().zip(&other.queue_buckets) {
            add(a, b);
        }
        add(&self.queued, &other.queued);
        add(&self.queue_micros, &other.queue_micros);
    }

    /// Zeroes the slot for the next worker.
    pub(crate) fn clear(&self) {
        let zero = |a: &AtomicU64| a.store(0, Relaxed);
        zero(&self.pid);
        self.requests.iter().for_each(zero);
        self.buckets.iter().for_each(zero);
        self.queue_buckets.iter().for_each(zero);
        for field in [
            &self.queued,
            &self.queue_micros,
            &self.threads,
            &self.started,
            &self.duration_micros,
            &self.bytes_in,
            &self.bytes_out,
            &self.opened,
            &self.closed,
            &self.log_dropped,
            &self.proxy_refused,
        ] {
            zero(field);
        }
    }
}

struct Region {
    slots: &'static [WorkerStats],
}

static REGION: OnceLock<Region> = OnceLock::new();

/// Every worker slot of the region (empty before `create_region`).
pub fn slots() -> &'static [WorkerStats] {
    REGION.get().map_or(&[], |region| region.slots)
}
/// This worker's slot (set after fork).
static MINE: OnceLock<&'static WorkerStats> = OnceLock::new();

/// Maps the shared region; call in the master before forking, only with --metrics or
/// --statsd-host. It is never unmapped: it lives as long as the process.
pub fn create_region() -> std::io::Result<()> {
    if REGION.get().is_some() {
        return Ok(());
    }
    // SAFETY: WorkerStats is AtomicU64s only, valid as all-zero bytes.
    let slots = unsafe { super::shared_zeroed(SLOTS)? };
    let _ = REGION.set(Region { slots });
    Ok(())
}

/// Zeroes `slot` for its next worker (the master, when there are no totals to keep).
pub fn clear_slot(slot: usize) {
    if let Some(stats) = slots().get(slot) {
        stats.clear();
    }
}

/// Whether the region exists (the master made it before forking).
pub fn region_exists() -> bool {
    REGION.get().is_some()
}

/// In a worker after fork: count into `slot`; it runs `threads` request threads.
pub fn use_slot(slot: usize, threads: usize) {
    if let Some(stats) = REGION.get().and_then(|r| r.slots.get(slot)) {
        stats.pid.store(std::process::id() as u64, Relaxed);
        stats.threads.store(threads as u64, Relaxed);
        let _ = MINE.set(stats);
    }
}

/// Whether this worker counts (so a request's X-Request-Start is worth reading).
pub fn counting() -> bool {
    MINE.get().is_some()
}

/// A request that waited `micros` (X-Request-Start) before the worker read it.
pub fn request_queued(micros: u64) {
    if let Some(stats) = mine() {
        stats.queued.fetch_add(1, Relaxed);
        stats.queue_micros.fetch_add(micros, Relaxed);
        let seconds = micros as f64 / 1e6;
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            stats.queue_buckets[bucket].fetch_add(1, Relaxed);
        }
    }
}

fn mine() -> Option<&'static WorkerStats> {
    MINE.get().copied()
}

pub fn request_started() {
    if let Some(stats) = mine() {
        stats.started.fetch_add(1, Relaxed);
    }
}

pub fn request_finished(status: u16, micros: u64) {
    if let Some(stats) = mine() {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        stats.requests[class].fetch_add(1, Relaxed);
        stats.duration_micros.fetch_add(micros, Relaxed);
        let seconds = micros as f64 / 1e6;
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            stats.buckets[bucket].fetch_add(1, Relaxed);
        }
    }
}

pub fn bytes_in(n: usize) {
    if let Some(stats) = mine() {
        stats.bytes_in.fetch_add(n as u64, Relaxed);
    }
}

pub fn bytes_out(n: usize) {
    if let Some(stats) = mine() {
        stats.bytes_out.fetch_add(n as u64, Relaxed);
    }
}

pub fn connection_opened() {
    if let Some(stats) = mine() {
        stats.opened.fetch_add(1, Relaxed);
    }
}

pub fn connection_closed() {
    if let Some(stats) = mine() {
        stats.closed.fetch_add(1, Relaxed);
    }
}

pub fn proxy_header_refused() {
    if let Some(stats) = mine() {
        stats.proxy_refused.fetch_add(1, Relaxed);
    }
}

pub fn log_lines_dropped(lines: u64) {
    if let Some(stats) = mine() {
        stats.log_dropped.fetch_add(lines, Relaxed);
    }
}
