//! The Prometheus exporter (`--metrics ADDR`): the master serves the text format on its own
//! listener, per worker and summed (`worker="all"`), from the counters workers keep in the
//! shared region (crate::instrument::metrics), folding the slots of exited workers into the
//! sums so counters never go backwards.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::instrument::metrics::{BUCKETS, WorkerStats, create_region, slots};
use crate::net::stream::Listener;

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
        if let Some(stats) = slots().get(slot) {
            self.retired.absorb(stats);
            stats.clear();
        }
    }

    /// Answers every waiting scrape (called from the master's loop).
    pub fn serve_pending(&self, workers: usize, listeners: &[Listener]) {
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
            let body = self.render(workers, listeners);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|_| stream.write_all(body.as_bytes()));
        }
    }

    fn render(&self, workers: usize, listeners: &[Listener]) -> String {
        let live: Vec<&WorkerStats> = slots()
            .iter()
            .filter(|s| s.pid.load(Relaxed) != 0)
            .collect();
        let total = WorkerStats::default();
        total.absorb(&self.retired);
        for stats in &live {
            total.absorb(stats);
        }
        // In-flight is started minus finished, per live worker only.
        let in_flight: Vec<(String, u64)> = live
            .iter()
            .map(|s| (s.pid.load(Relaxed).to_string(), s.in_flight()))
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
        section(
            "wsgihost_log_lines_dropped_total",
            "counter",
            "Log lines dropped because the destination was too slow, or lost to write errors.",
            &|s| s.log_dropped.load(Relaxed),
        );
        section(
            "wsgihost_proxy_protocol_refused_total",
            "counter",
            "Connections closed for their PROXY protocol header: from a peer not allowed to send one, malformed, or missing.",
            &|s| s.proxy_refused.load(Relaxed),
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
        histogram(
            &mut out,
            "wsgihost_request_duration_seconds",
            "Time to answer a request.",
            &series,
            durations,
        );
        histogram(
            &mut out,
            "wsgihost_request_queue_seconds",
            "Time from a request's X-Request-Start (the front proxy received it) until a worker read it.",
            &series,
            queue_times,
        );
        out.push_str("# HELP wsgihost_busy_threads Request threads answering a request now.\n# TYPE wsgihost_busy_threads gauge\n");
        for (worker, count) in &in_flight {
            out.push_str(&format!(
                "wsgihost_busy_threads{{worker=\"{worker}\"}} {count}\n"
            ));
        }
        out.push_str(&format!("wsgihost_busy_threads{{worker=\"all\"}} {all}\n"));
        out.push_str(
            "# HELP wsgihost_threads Request threads per worker.\n# TYPE wsgihost_threads gauge\n",
        );
        let mut threads = 0;
        for stats in &live {
            let count = stats.threads.load(Relaxed);
            threads += count;
            out.push_str(&format!(
                "wsgihost_threads{{worker=\"{}\"}} {count}\n",
                stats.pid.load(Relaxed)
            ));
        }
        out.push_str(&format!("wsgihost_threads{{worker=\"all\"}} {threads}\n"));
        out.push_str("# HELP wsgihost_listen_queue_length Connections waiting in a listener's accept queue.\n# TYPE wsgihost_listen_queue_length gauge\n");
        let mut limits = String::from(
            "# HELP wsgihost_listen_queue_limit Connections a listener's accept queue holds (--backlog, capped by the kernel).\n# TYPE wsgihost_listen_queue_limit gauge\n",
        );
        for listener in listeners {
            if let Some((waiting, limit)) = super::listeners::accept_queue(listener) {
                let name = listener.describe();
                out.push_str(&format!(
                    "wsgihost_listen_queue_length{{listener=\"{name}\"}} {waiting}\n"
                ));
                limits.push_str(&format!(
                    "wsgihost_listen_queue_limit{{listener=\"{name}\"}} {limit}\n"
                ));
            }
        }
        out.push_str(&limits);
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

/// A histogram's bucket counts, its number of samples and their sum in µs.
type HistogramOf = fn(&WorkerStats) -> (&[std::sync::atomic::AtomicU64; BUCKETS.len()], u64, u64);

fn durations(s: &WorkerStats) -> (&[std::sync::atomic::AtomicU64; BUCKETS.len()], u64, u64) {
    (&s.buckets, s.finished(), s.duration_micros.load(Relaxed))
}

fn queue_times(s: &WorkerStats) -> (&[std::sync::atomic::AtomicU64; BUCKETS.len()], u64, u64) {
    (
        &s.queue_buckets,
        s.queued.load(Relaxed),
        s.queue_micros.load(Relaxed),
    )
}

/// A histogram family, one series per worker and the sum.
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    series: &[(String, &WorkerStats)],
    of: HistogramOf,
) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
    for (worker, stats) in series {
        let (buckets, count, micros) = of(stats);
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(buckets) {
            cumulative += bucket.load(Relaxed);
            out.push_str(&format!(
                "{name}_bucket{{worker=\"{worker}\",le=\"{bound}\"}} {cumulative}\n"
            ));
        }
        out.push_str(&format!(
            "{name}_bucket{{worker=\"{worker}\",le=\"+Inf\"}} {count}\n"
        ));
        out.push_str(&format!(
            "{name}_sum{{worker=\"{worker}\"}} {}\n",
            micros as f64 / 1e6
        ));
        out.push_str(&format!("{name}_count{{worker=\"{worker}\"}} {count}\n"));
    }
}
