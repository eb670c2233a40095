//! Prometheus metrics (`--metrics ADDR`). Workers count into their own slot of a memory
//! region the master maps (shared, anonymous) before forking; the master serves the text
//! format on its own listener, per worker and summed (`worker="all"`), folding the slots
//! of exited workers into the sums so counters never go backwards.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Request-duration histogram bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Worker slots in the region; more workers than this share no metrics.
pub const SLOTS: usize = 256;

/// One worker's counters. Gauges are kept as counters of ups and downs.
#[repr(C)]
#[derive(Default)]
pub struct WorkerStats {
    pid: AtomicU64,
    /// By status class: 1xx..5xx.
    requests: [AtomicU64; 5],
    started: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    duration_micros: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
}

impl WorkerStats {
    fn finished(&self) -> u64 {
        self.requests.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Adds `other`'s counters to these (for the totals of exited workers).
    fn absorb(&self, other: &WorkerStats) {
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
    }

    /// Zeroes the slot for the next worker.
    fn clear(&self) {
        let zero = |a: &AtomicU64| a.store(0, Relaxed);
        zero(&self.pid);
        self.requests.iter().for_each(zero);
        self.buckets.iter().for_each(zero);
        for field in [
            &self.started,
            &self.duration_micros,
            &self.bytes_in,
            &self.bytes_out,
            &self.opened,
            &self.closed,
        ] {
            zero(field);
        }
    }
}

struct Region {
    slots: &'static [WorkerStats],
}

static REGION: OnceLock<Region> = OnceLock::new();
/// This worker's slot (set after fork).
static MINE: OnceLock<&'static WorkerStats> = OnceLock::new();

/// Maps the shared region; call in the master before forking, only with --metrics.
pub fn create_region() -> std::io::Result<()> {
    let size = std::mem::size_of::<WorkerStats>() * SLOTS;
    // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel; all-zero bytes
    // are valid AtomicU64s. It is never unmapped (it lives as long as the process).
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let slots = unsafe { std::slice::from_raw_parts(ptr as *const WorkerStats, SLOTS) };
    let _ = REGION.set(Region { slots });
    Ok(())
}

/// In a worker after fork: count into `slot`.
pub fn use_slot(slot: usize) {
    if let Some(stats) = REGION.get().and_then(|r| r.slots.get(slot)) {
        stats.pid.store(std::process::id() as u64, Relaxed);
        let _ = MINE.set(stats);
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

/// The master's side: the listener, totals of exited workers, restart counts.
pub struct Exporter {
    listener: TcpListener,
    retired: WorkerStats,
    pub restarts: u64,
}

impl Exporter {
    pub fn bind(addr: SocketAddr) -> anyhow::Result<Exporter> {
        let listener =
            TcpListener::bind(addr).map_err(|err| anyhow::anyhow!("--metrics {addr}: {err}"))?;
        listener.set_nonblocking(true)?;
        create_region()?;
        Ok(Exporter {
            listener,
            retired: WorkerStats::default(),
            restarts: 0,
        })
    }

    /// A worker in `slot` exited: keep its counts in the totals, free the slot.
    pub fn retire_slot(&self, slot: usize) {
        if let Some(stats) = REGION.get().and_then(|r| r.slots.get(slot)) {
            self.retired.absorb(stats);
            stats.clear();
        }
    }

    /// Answers every waiting scrape (called from the master's loop).
    pub fn serve_pending(&self, workers: usize) {
        while let Ok((mut stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
            let mut request = Vec::new();
            let mut buf = [0u8; 2048];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = self.render(workers);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|_| stream.write_all(body.as_bytes()));
        }
    }

    fn render(&self, workers: usize) -> String {
        let live: Vec<&WorkerStats> = REGION
            .get()
            .map(|r| {
                r.slots
                    .iter()
                    .filter(|s| s.pid.load(Relaxed) != 0)
                    .collect()
            })
            .unwrap_or_default();
        let total = WorkerStats::default();
        total.absorb(&self.retired);
        for stats in &live {
            total.absorb(stats);
        }
        // In-flight is started minus finished, per live worker only.
        let in_flight: Vec<(String, u64)> = live
            .iter()
            .map(|s| {
                (
                    s.pid.load(Relaxed).to_string(),
                    s.started.load(Relaxed).saturating_sub(s.finished()),
                )
            })
            .collect();
        let mut out = String::with_capacity(8192);
        let mut family = |name: &str, kind: &str, help: &str| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        };
        family(
            "wsgihost_requests_total",
            "counter",
            "Requests answered, by status class.",
        );
        let mut lines = String::new();
        let series: Vec<(String, &WorkerStats)> = live
            .iter()
            .map(|s| (s.pid.load(Relaxed).to_string(), *s))
            .chain(std::iter::once(("all".to_string(), &total)))
            .collect();
        for (worker, stats) in &series {
            for (class, count) in stats.requests.iter().enumerate() {
                lines.push_str(&format!(
                    "wsgihost_requests_total{{worker=\"{worker}\",status=\"{}xx\"}} {}\n",
                    class + 1,
                    count.load(Relaxed)
                ));
            }
        }
        out.push_str(&lines);
        let mut section =
            |name: &str, kind: &str, help: &str, value: &dyn Fn(&WorkerStats) -> u64| {
                out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
                for (worker, stats) in &series {
                    out.push_str(&format!("{name}{{worker=\"{worker}\"}} {}\n", value(stats)));
                }
            };
        section(
            "wsgihost_received_bytes_total",
            "counter",
            "Bytes read from clients.",
            &|s| s.bytes_in.load(Relaxed),
        );
        section(
            "wsgihost_sent_bytes_total",
            "counter",
            "Bytes written to clients.",
            &|s| s.bytes_out.load(Relaxed),
        );
        section(
            "wsgihost_connections_accepted_total",
            "counter",
            "Connections accepted.",
            &|s| s.opened.load(Relaxed),
        );
        section(
            "wsgihost_connections_open",
            "gauge",
            "Connections open now.",
            &|s| {
                s.opened
                    .load(Relaxed)
                    .saturating_sub(s.closed.load(Relaxed))
            },
        );
        out.push_str("# HELP wsgihost_requests_in_flight Requests being answered now.\n# TYPE wsgihost_requests_in_flight gauge\n");
        for (worker, count) in &in_flight {
            out.push_str(&format!(
                "wsgihost_requests_in_flight{{worker=\"{worker}\"}} {count}\n"
            ));
        }
        let all: u64 = in_flight.iter().map(|(_, c)| c).sum();
        out.push_str(&format!(
            "wsgihost_requests_in_flight{{worker=\"all\"}} {all}\n"
        ));
        out.push_str("# HELP wsgihost_request_duration_seconds Time to answer a request.\n# TYPE wsgihost_request_duration_seconds histogram\n");
        for (worker, stats) in &series {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(&stats.buckets) {
                cumulative += count.load(Relaxed);
                out.push_str(&format!(
                    "wsgihost_request_duration_seconds_bucket{{worker=\"{worker}\",le=\"{bound}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "wsgihost_request_duration_seconds_bucket{{worker=\"{worker}\",le=\"+Inf\"}} {}\n",
                stats.finished()
            ));
            out.push_str(&format!(
                "wsgihost_request_duration_seconds_sum{{worker=\"{worker}\"}} {}\n",
                stats.duration_micros.load(Relaxed) as f64 / 1e6
            ));
            out.push_str(&format!(
                "wsgihost_request_duration_seconds_count{{worker=\"{worker}\"}} {}\n",
                stats.finished()
            ));
        }
        out.push_str(&format!(
            "# HELP wsgihost_worker_restarts_total Workers started to replace others (crashes, recycling, reloads).\n# TYPE wsgihost_worker_restarts_total counter\nwsgihost_worker_restarts_total {}\n",
            self.restarts
        ));
        out.push_str(&format!(
            "# HELP wsgihost_workers Worker processes running.\n# TYPE wsgihost_workers gauge\nwsgihost_workers {workers}\n"
        ));
        out
    }
}
