//! What each thread of a worker is doing: the request it answers (since when, which request
//! line, for which client) and when its current app call last gave control back to the
//! server, on which socket. The worker's main thread reads it for `--timeout`, the
//! hand-off monitor for how long requests have run, and the master, which maps this
//! scoreboard before forking the worker, reads it when the worker dies by a signal to say
//! which requests died with it. Only atomics: readers need no lock and no GIL, even while
//! an app spins holding the GIL.
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Request-line bytes kept per thread (longer lines are cut).
const TEXT_WORDS: usize = 26;
/// `progress` while the app waits for the client to read or send: that is the client's
/// slowness, bounded by --io-timeout for its connection alone, not an app without progress.
const WAITING_FOR_CLIENT: u64 = u64::MAX;

/// One thread's entry. `repr(C)` and atomics only: it lives in memory shared with the master.
#[repr(C)]
pub struct Slot {
    /// `clock::millis()` at the last sign of progress; 0 = not in an app call.
    progress: AtomicU64,
    /// `clock::micros_at` the start of the thread's current request; 0 = none.
    request_since: AtomicU64,
    fd: AtomicI32,
    /// The thread's pthread_t: what Python's threading.get_ident() returns for it.
    ident: AtomicU64,
    text_len: AtomicU32,
    /// The client's address: IP as 16 bytes (v4 mapped), then port, and 0 for none.
    peer_ip: [AtomicU64; 2],
    peer_port: AtomicU32,
    text: [AtomicU64; TEXT_WORDS],
}

/// The slots of one worker, in an anonymous shared mapping made by the master before the
/// fork, so they survive the worker's death for the master to read.
pub struct Scoreboard {
    slots: &'static [Slot],
}

impl Scoreboard {
    /// Maps zeroed slots for `threads` threads (all-zero bytes are valid atomics).
    pub fn map(threads: usize) -> std::io::Result<Scoreboard> {
        // SAFETY: a Slot is atomics only, valid as all-zero bytes.
        let slots = unsafe { super::shared_zeroed(threads)? };
        Ok(Scoreboard { slots })
    }

    /// The requests in progress, as `"GET / HTTP/1.1" from 127.0.0.1:5000 (for 2.5 s)`.
    pub fn requests_in_progress(&self) -> Vec<String> {
        let now = crate::clock::micros_at(Instant::now());
        self.slots
            .iter()
            .filter(|slot| slot.request_since.load(Ordering::Acquire) != 0)
            .map(|slot| {
                let since = slot.request_since.load(Ordering::Acquire);
                let took = Duration::from_micros(now.saturating_sub(since));
                let client = slot
                    .peer()
                    .map_or("a unix socket".into(), |p| p.to_string());
                format!("\"{}\" from {client} (for {took:.1?})", slot.text())
            })
            .collect()
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // SAFETY: mapped in `map`; no slot is referenced after this (a worker never drops
        // its scoreboard: it is kept in `BOARD` until exit).
        unsafe { super::unmap_shared(self.slots) };
    }
}

impl Slot {
    fn set_request(&self, line: &[u8], peer: Option<SocketAddr>) {
        let line = &line[..line.len().min(TEXT_WORDS * 8)];
        for (word, chunk) in self.text.iter().zip(line.chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
        }
        self.text_len.store(line.len() as u32, Ordering::Relaxed);
        let (ip, port) = match peer {
            Some(peer) => {
                let ip = match peer.ip() {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                (u128::from(ip), u32::from(peer.port()) | 1 << 16)
            }
            None => (0, 0),
        };
        self.peer_ip[0].store((ip >> 64) as u64, Ordering::Relaxed);
        self.peer_ip[1].store(ip as u64, Ordering::Relaxed);
        self.peer_port.store(port, Ordering::Relaxed);
    }

    fn text(&self) -> String {
        let len = (self.text_len.load(Ordering::Relaxed) as usize).min(TEXT_WORDS * 8);
        let bytes: Vec<u8> = self
            .text
            .iter()
            .flat_map(|word| word.load(Ordering::Relaxed).to_ne_bytes())
            .take(len)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn peer(&self) -> Option<SocketAddr> {
        let port = self.peer_port.load(Ordering::Relaxed);
        if port == 0 {
            return None;
        }
        let ip = (u128::from(self.peer_ip[0].load(Ordering::Relaxed)) << 64)
            | u128::from(self.peer_ip[1].load(Ordering::Relaxed));
        let ip = std::net::Ipv6Addr::from(ip);
        let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
        Some(SocketAddr::new(ip, port as u16))
    }
}

static BOARD: OnceLock<Scoreboard> = OnceLock::new();

thread_local! {
    static MINE: Cell<Option<usize>> = const { Cell::new(None) };
}

fn now_ms() -> u64 {
    crate::clock::millis()
}

/// In a worker: record into `board` (mapped by the master) from now on.
pub fn use_scoreboard(board: Scoreboard) {
    let _ = BOARD.set(board);
}

fn slots() -> &'static [Slot] {
    BOARD.get().map_or(&[], |board| board.slots)
}

/// Binds the calling thread to slot `index`.
pub fn register_thread(index: usize) {
    MINE.with(|mine| mine.set(Some(index)));
    // SAFETY: pthread_self has no preconditions.
    let ident = unsafe { libc::pthread_self() } as u64;
    with_slot(|slot| slot.ident.store(ident, Ordering::Relaxed));
}

/// A request a thread of this worker is answering, as --timeout's report shows it.
pub struct Serving {
    /// The thread, as Python's threading.get_ident() knows it.
    pub ident: u64,
    pub request: String,
    /// The client's address, or None on a unix socket.
    pub client: Option<SocketAddr>,
    pub running: Duration,
    /// How long its app call has made no progress (None: not in an app call, or waiting
    /// for its client).
    pub stalled: Option<Duration>,
}

/// Every request this worker's threads are answering now.
pub fn serving() -> Vec<Serving> {
    let now_us = crate::clock::micros_at(Instant::now());
    let now_ms = now_ms();
    slots()
        .iter()
        .filter_map(|slot| {
            let since = slot.request_since.load(Ordering::Acquire);
            if since == 0 {
                return None;
            }
            let progress = slot.progress.load(Ordering::Acquire);
            Some(Serving {
                ident: slot.ident.load(Ordering::Relaxed),
                request: slot.text(),
                client: slot.peer(),
                running: Duration::from_micros(now_us.saturating_sub(since)),
                stalled: (progress != 0 && progress != WAITING_FOR_CLIENT)
                    .then(|| Duration::from_millis(now_ms.saturating_sub(progress))),
            })
        })
        .collect()
}

fn with_slot(f: impl FnOnce(&Slot)) {
    if let Some(index) = MINE.with(Cell::get)
        && let Some(slot) = slots().get(index)
    {
        f(slot);
    }
}

/// The calling thread starts answering the request `line` from `peer` at `since`.
pub fn request_began(since: Instant, line: &[u8], peer: Option<SocketAddr>) {
    with_slot(|slot| {
        slot.set_request(line, peer);
        let micros = crate::clock::micros_at(since);
        slot.request_since.store(micros, Ordering::Release)
    });
}

/// The calling thread finished its request.
pub fn request_ended() {
    with_slot(|slot| slot.request_since.store(0, Ordering::Release));
}

/// How long the oldest request in progress on any thread has been running.
pub fn longest_request() -> Duration {
    let now = crate::clock::micros_at(Instant::now());
    let oldest = slots()
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

/// The app's call waits for its client (to read what was written, or to send more):
/// until `progress`, this counts against --io-timeout, not --timeout.
pub fn waiting_for_client() {
    with_slot(|slot| {
        if slot.progress.load(Ordering::Relaxed) != 0 {
            slot.progress.store(WAITING_FOR_CLIENT, Ordering::Release);
        }
    });
}

pub fn app_call_ended() {
    with_slot(|slot| slot.progress.store(0, Ordering::Release));
}

/// Sockets of app calls that have made no progress for longer than `limit`.
pub fn stuck(limit: Duration) -> Vec<RawFd> {
    let now = now_ms();
    slots()
        .iter()
        .filter(|slot| {
            let since = slot.progress.load(Ordering::Acquire);
            since != 0
                && since != WAITING_FOR_CLIENT
                && now.saturating_sub(since) > limit.as_millis() as u64
        })
        .map(|slot| slot.fd.load(Ordering::Relaxed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoreboard_keeps_request_lines_and_clients() {
        let board = Scoreboard::map(2).unwrap();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        board.slots[1].set_request(b"GET /a-rather-long-path?with=query HTTP/1.1", Some(peer));
        board.slots[1]
            .request_since
            .store(crate::clock::micros_at(Instant::now()), Ordering::Release);
        let shown = board.requests_in_progress();
        assert_eq!(shown.len(), 1);
        assert!(
            shown[0].starts_with(
                "\"GET /a-rather-long-path?with=query HTTP/1.1\" from 127.0.0.1:5000 (for "
            ),
            "{shown:?}"
        );
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        board.slots[0].set_request(&[b'x'; 500], Some(v6));
        assert_eq!(board.slots[0].peer(), Some(v6));
        assert_eq!(board.slots[0].text().len(), TEXT_WORDS * 8);
        board.slots[0].set_request(b"GET / HTTP/1.1", None);
        assert_eq!(board.slots[0].peer(), None);
    }
}
