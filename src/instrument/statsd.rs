//! `--statsd-host`: gunicorn's statsd metrics, with gunicorn's names, over UDP (or a unix
//! datagram socket): per request `gunicorn.requests`, `gunicorn.request.status.CODE` and the
//! `gunicorn.request.duration` timer (ms), from the master `gunicorn.workers` and (with
//! `--enable-backlog-metric`) `gunicorn.backlog`, and per error-log line
//! `gunicorn.log.{critical,error,warning,exception}`. wsgihost adds the saturation figures:
//! `wsgihost.request.queue_time` (from X-Request-Start), `wsgihost.busy_threads`,
//! `wsgihost.threads` and `wsgihost.listen_queue`. `--statsd-prefix` goes in front of every
//! name, `--dogstatsd-tags` after every line.
//!
//! Lines are buffered and sent many to a datagram (newline-separated, at most
//! `PACKET` bytes), by a sender thread in each worker ten times a second, so a request
//! costs a few appends to a buffer, not a system call per metric as in gunicorn.
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::config::StatsdAddr;

/// Bytes per datagram: what fits in one Ethernet frame with IP and UDP headers.
const PACKET: usize = 1432;
/// How often a worker's sender sends what its threads buffered.
const SEND_EVERY: Duration = Duration::from_millis(100);
/// Buffered bytes past which new lines are dropped (the receiver is gone or slow).
const MOST_BUFFERED: usize = 1 << 20;

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Socket {
    fn send(&self, packet: &[u8]) {
        // A lost datagram is a lost sample; statsd is best effort, as in gunicorn.
        let _ = match self {
            Socket::Udp(socket) => socket.send(packet),
            Socket::Unix(socket) => socket.send(packet),
        };
    }
}

struct Statsd {
    socket: Socket,
    prefix: String,
    /// `|#tags`, or empty.
    tags: String,
    buffer: Mutex<Vec<u8>>,
}

static STATSD: OnceLock<Statsd> = OnceLock::new();

/// Makes the socket, in the master before the workers fork (they inherit it).
pub fn init(addr: &StatsdAddr, prefix: &str, tags: &str) -> anyhow::Result<()> {
    let socket = match addr {
        StatsdAddr::Udp(host, port) => {
            let target = (host.as_str(), *port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut found| found.next())
                .ok_or_else(|| anyhow::anyhow!("--statsd-host {host}:{port}: no such host"))?;
            let local = if target.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let socket = UdpSocket::bind(local)?;
            socket.connect(target)?;
            socket.set_nonblocking(true)?;
            Socket::Udp(socket)
        }
        StatsdAddr::Unix(path) => {
            let socket = UnixDatagram::unbound()?;
            socket
                .connect(path)
                .map_err(|err| anyhow::anyhow!("--statsd-host unix:{}: {err}", path.display()))?;
            socket.set_nonblocking(true)?;
            Socket::Unix(socket)
        }
    };
    let prefix = match prefix.trim_end_matches('.') {
        "" => String::new(),
        trimmed => format!("{trimmed}."),
    };
    let tags = match tags.trim() {
        "" => String::new(),
        tags => format!("|#{tags}"),
    };
    let _ = STATSD.set(Statsd {
        socket,
        prefix,
        tags,
        buffer: Mutex::new(Vec::with_capacity(PACKET)),
    });
    Ok(())
}

pub fn enabled() -> bool {
    STATSD.get().is_some()
}

impl Statsd {
    /// Appends `name:value|kind` (with prefix and tags) to the buffer.
    fn line(&self, name: &str, value: std::fmt::Arguments<'_>, kind: &str) {
        use std::io::Write;
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        if buffer.len() > MOST_BUFFERED {
            return;
        }
        let _ = writeln!(buffer, "{}{name}:{value}|{kind}{}", self.prefix, self.tags);
    }

    /// Sends the buffered lines, as few datagrams as fit them.
    fn send_buffered(&self) {
        let lines = {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(PACKET))
        };
        for packet in packets(&lines) {
            self.socket.send(packet);
        }
    }
}

/// Cuts newline-terminated lines into datagrams of at most PACKET bytes, at line ends,
/// without the last newline of each.
fn packets(lines: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = lines;
    while !rest.is_empty() {
        let end = match rest.len() <= PACKET {
            true => rest.len(),
            false => rest[..PACKET]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(rest.len().min(PACKET), |at| at + 1),
        };
        let packet = &rest[..end];
        out.push(packet.strip_suffix(b"\n").unwrap_or(packet));
        rest = &rest[end..];
    }
    out
}

/// One answered request: the count, its status and its duration.
pub fn request(status: u16, micros: u64) {
    if let Some(statsd) = STATSD.get() {
        statsd.line("gunicorn.requests", format_args!("1"), "c|@1.0");
        statsd.line(
            &format!("gunicorn.request.status.{status}"),
            format_args!("1"),
            "c|@1.0",
        );
        let millis = micros as f64 / 1000.0;
        statsd.line(
            "gunicorn.request.duration",
            format_args!("{millis:.3}"),
            "ms",
        );
    }
}

/// How long a request waited before wsgihost read it (X-Request-Start).
pub fn queue_time(waited: Duration) {
    if let Some(statsd) = STATSD.get() {
        let millis = waited.as_secs_f64() * 1000.0;
        statsd.line(
            "wsgihost.request.queue_time",
            format_args!("{millis}"),
            "ms",
        );
    }
}

/// An error-log line at `level` (critical, error, warning, exception).
pub fn log_line(level: &str) {
    if let Some(statsd) = STATSD.get() {
        statsd.line(
            &format!("gunicorn.log.{level}"),
            format_args!("1"),
            "c|@1.0",
        );
    }
}

/// A gauge (the master's; it sends them with `flush`, having no sender thread).
pub fn gauge(name: &str, value: u64) {
    if let Some(statsd) = STATSD.get() {
        statsd.line(name, format_args!("{value}"), "g");
    }
}

/// A histogram sample (gunicorn.backlog, from the master).
pub fn histogram(name: &str, value: u64) {
    if let Some(statsd) = STATSD.get() {
        statsd.line(name, format_args!("{value}"), "h");
    }
}

/// In a worker: a thread that sends what the request threads buffered.
pub fn start_sender() {
    if STATSD.get().is_none() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("wsgihost-statsd".into())
        .spawn(|| {
            loop {
                std::thread::sleep(SEND_EVERY);
                if let Some(statsd) = STATSD.get() {
                    statsd.send_buffered();
                }
            }
        });
}

/// Sends what is buffered (the master's gauges; a worker's last lines before it exits).
pub fn flush() {
    if let Some(statsd) = STATSD.get() {
        statsd.send_buffered();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_end_at_line_ends() {
        let line = b"gunicorn.request.duration:1.25|ms\n";
        let many: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 100)
            .collect();
        let cut = packets(&many);
        assert!(cut.len() > 1);
        for packet in &cut {
            assert!(packet.len() <= PACKET);
            assert!(!packet.ends_with(b"\n"));
            assert!(
                packet
                    .split(|&b| b == b'\n')
                    .all(|l| l == &line[..line.len() - 1])
            );
        }
        let total: usize = cut.iter().map(|p| p.len() + 1).sum();
        assert_eq!(total, many.len());
    }
}
