//! One mio event loop shared by all threads of a worker. One thread at a time polls it;
//! connections with input are moved to a ready queue and served to completion by whichever
//! thread takes them (usually the poller itself: no hand-off on the fast path). When the
//! loop has had no poller for longer than the hand-off threshold, a monitor wakes one idle
//! thread to take it over, so an app that blocks does not stall the other connections.
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token, Waker};
use slab::Slab;

use super::connection::Connection;
use super::monitor_rest::MonitorRest;
use super::phase::Timeouts;
use super::stream::Listener;
use super::tls::TlsSession;
use crate::instrument::activity;
use crate::logging::Throttle;

const WAKER: Token = Token(usize::MAX);
/// Most connections held with unwritten responses before they are written.
const MAX_HELD: usize = 64;
/// Listener i has token LISTENER_BASE - i.
const LISTENER_BASE: usize = usize::MAX - 1;
/// How often idle connections are checked against their deadlines.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

pub struct LoopSettings {
    pub keep_alive: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Other worker processes accept from the same listeners.
    pub share_accepts: bool,
    /// How long the loop may go without a poller before an idle thread takes it.
    pub handoff: Duration,
    /// Threads that take work from this loop.
    pub threads: usize,
    /// How long writing held-back responses may wait for a slow client.
    pub write_timeout: Duration,
    /// What HTTPS listeners serve (their connections get a TLS session).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

enum Slot {
    /// Waiting in the loop for input.
    Parked(Box<Connection>),
    /// Being served by a thread (or queued for one). `input_arrived`: the loop reported
    /// new input meanwhile; epoll is edge-triggered, so that report is the only one and the
    /// connection goes straight back to the ready queue when the thread parks it.
    Busy { input_arrived: bool },
}

struct Shared {
    listeners: Vec<Listener>,
    slots: Slab<Slot>,
    ready: VecDeque<(usize, Box<Connection>)>,
    /// Served connections whose finished responses wait to be written (see `park`).
    held: Vec<(usize, Box<Connection>)>,
    /// Connections whose next request is for a slow path, waiting for a thread that may
    /// start it (see `try_begin_slow`); the request head is back in their input.
    slow: VecDeque<(usize, Box<Connection>)>,
    sleeping: usize,
    /// Threads answering a request for a slow path.
    slow_running: usize,
    accept_paused: bool,
    last_sweep: Instant,
}

pub struct EventLoop {
    poll: Mutex<Poll>,
    registry: Registry,
    shared: Mutex<Shared>,
    wake_idle: Condvar,
    polling: AtomicBool,
    /// Set by the monitor while requests in progress are stuck (waiting, or computing for
    /// long): extra threads are then wanted; otherwise one awake thread is enough.
    helpers_wanted: AtomicBool,
    /// Threads inside a request right now.
    in_request: AtomicUsize,
    /// Nanoseconds since `epoch` when a poller last left the poll call.
    last_poll: AtomicU64,
    epoch: Instant,
    waker: Waker,
    stopping: AtomicBool,
    rest: MonitorRest,
    settings: LoopSettings,
}

/// A thread's place among those answering slow requests (see `try_begin_slow`).
pub struct SlowPlace<'a>(&'a EventLoop);

impl Drop for SlowPlace<'_> {
    fn drop(&mut self) {
        self.0.lock().slow_running -= 1;
    }
}

/// A connection a thread now owns and must serve, then `park` or `close`.
pub struct Work {
    pub token: usize,
    pub conn: Box<Connection>,
}

impl EventLoop {
    pub fn new(mut listeners: Vec<Listener>, settings: LoopSettings) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        for (i, listener) in listeners.iter_mut().enumerate() {
            registry.register(listener, Token(LISTENER_BASE - i), Interest::READABLE)?;
        }
        let waker = Waker::new(&registry, WAKER)?;
        Ok(EventLoop {
            poll: Mutex::new(poll),
            registry,
            shared: Mutex::new(Shared {
                listeners,
                slots: Slab::with_capacity(1024),
                ready: VecDeque::new(),
                held: Vec::new(),
                slow: VecDeque::new(),
                sleeping: 0,
                slow_running: 0,
                accept_paused: false,
                last_sweep: Instant::now(),
            }),
            wake_idle: Condvar::new(),
            polling: AtomicBool::new(false),
            helpers_wanted: AtomicBool::new(false),
            in_request: AtomicUsize::new(0),
            last_poll: AtomicU64::new(0),
            epoch: Instant::now(),
            waker,
            stopping: AtomicBool::new(false),
            rest: MonitorRest::default(),
            settings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops accepting: takes what the listen queues already hold (those clients finished
    /// their handshake with us and get their first request answered) and closes this
    /// worker's copies of the listeners. Open connections stay until they have been idle for
    /// `phase::DRAIN_IDLE`; requests arriving meanwhile are answered with `Connection: close`.
    /// Threads end once nothing is left.
    pub fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.waker.wake();
        self.rest.wake();
        let mut shared = self.lock();
        let Shared {
            listeners, slots, ..
        } = &mut *shared;
        for listener in listeners.iter_mut() {
            while slots.len() < self.settings.max_connections {
                match self.accept_one(slots, listener) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = self.registry.deregister(listener);
        }
        listeners.clear();
        for (_, slot) in slots.iter_mut() {
            if let Slot::Parked(conn) = slot {
                conn.life_mut().drain();
            }
        }
        // Holding the lock orders this after any thread's check-then-sleep: no lost wake-up.
        self.wake_idle.notify_all();
    }

    /// Blocks until a connection has input to serve. None: the loop is stopping.
    pub fn next_work(&self, events: &mut Events) -> Option<Work> {
        loop {
            let batch = {
                let mut shared = self.lock();
                if !self.surplus(&shared)
                    && let Some((token, mut conn)) = self.take_ready(&mut shared)
                {
                    // It is handed out because the loop saw new input: read again.
                    conn.input_arrived();
                    return Some(Work { token, conn });
                }
                std::mem::take(&mut shared.held)
            };
            // No more work for this thread now: the batch is over.
            self.release(batch);
            let mut shared = self.lock();
            if self.surplus(&shared) {
                // More threads are up than the work needs (the one that was stuck is
                // back): this one sleeps again rather than queue for the GIL.
                self.sleep(shared);
                continue;
            }
            if self.is_stopping() && !self.has_waiting_connections(&mut shared) {
                // The others (asleep, or about to be) find the same and end too.
                self.wake_idle.notify_all();
                return None;
            }
            drop(shared);
            let poll = self.poll.try_lock();
            if let Ok(mut poll) = poll {
                self.poll_once(&mut poll, events);
                continue;
            }
            let shared = self.lock();
            if shared.ready.is_empty() {
                self.sleep(shared);
            }
        }
    }

    /// The next connection to serve: one waiting to start a slow request if that may
    /// start now, else the next ready one.
    fn take_ready(&self, shared: &mut Shared) -> Option<(usize, Box<Connection>)> {
        if self.slow_may_start(shared)
            && let Some(work) = shared.slow.pop_front()
        {
            return Some(work);
        }
        shared.ready.pop_front()
    }

    /// A request for a slow path starts only while another thread stays outside slow
    /// requests, so requests that wait on sleeps or databases never occupy every thread
    /// while quick requests queue behind them.
    fn slow_may_start(&self, shared: &Shared) -> bool {
        shared.slow_running + 1 < self.settings.threads
            || (shared.slow_running == 0 && self.in_request.load(Ordering::Acquire) == 0)
            || self.is_stopping()
    }

    /// The calling thread is about to answer a request for a slow path: Some if it may
    /// (the place is given back when the guard drops). Counted under the lock, so two
    /// threads cannot both take the last place. What this thread holds is written first,
    /// and a sleeping thread is woken to watch the loop (the monitor would take a hand-off
    /// threshold or two to notice the wait).
    pub fn try_begin_slow(&self) -> Option<SlowPlace<'_>> {
        let batch = {
            let mut shared = self.lock();
            if !self.slow_may_start(&shared) {
                return None;
            }
            shared.slow_running += 1;
            if shared.sleeping > 0 && !self.polling.load(Ordering::Acquire) {
                self.wake_idle.notify_one();
            }
            std::mem::take(&mut shared.held)
        };
        self.release(batch);
        Some(SlowPlace(self))
    }

    /// A connection whose next request (its head put back into its input) is for a slow
    /// path that may not start now: it waits for a thread that may start it.
    pub fn defer_slow(&self, token: usize, conn: Box<Connection>) {
        self.lock().slow.push_back((token, conn));
    }

    /// The calling thread starts answering a request.
    pub fn request_began(&self) {
        self.in_request.fetch_add(1, Ordering::SeqCst);
        self.rest.request_began();
    }

    /// The calling thread finished answering a request. With other requests in progress
    /// it yields the CPU once: their threads, woken from a sleep or a socket wait, queue
    /// for the GIL this thread has just let go, and would otherwise wait CPython's 5 ms
    /// switch interval while it takes the GIL again for the next quick request (10 ms
    /// sleep app c64 beside hello c64: ~650 -> ~775 req/s).
    pub fn request_ended(&self) {
        if self.in_request.fetch_sub(1, Ordering::AcqRel) > 1 {
            std::thread::yield_now();
        }
    }

    /// Whether the calling thread is one more than the work needs: one thread besides
    /// those in slow requests, unless the monitor saw requests get stuck.
    fn surplus(&self, shared: &Shared) -> bool {
        let awake = self.settings.threads.saturating_sub(shared.sleeping);
        awake > 1 + shared.slow_running
            && !self.helpers_wanted.load(Ordering::Acquire)
            && !self.is_stopping()
    }

    /// Waits to be woken (by the monitor, or `stop`), at most a second.
    fn sleep(&self, mut shared: MutexGuard<'_, Shared>) {
        shared.sleeping += 1;
        let (mut shared, _) = self
            .wake_idle
            .wait_timeout(shared, Duration::from_secs(1))
            .unwrap_or_else(|p| p.into_inner());
        shared.sleeping -= 1;
    }

    fn poll_once(&self, poll: &mut Poll, events: &mut Events) {
        let paused = self.lock().accept_paused;
        let timeout = if paused {
            Duration::from_millis(10)
        } else {
            SWEEP_EVERY
        };
        self.polling.store(true, Ordering::Release);
        let result = poll.poll(events, Some(timeout));
        self.polling.store(false, Ordering::Release);
        self.last_poll.store(self.now_nanos(), Ordering::Release);
        if let Err(err) = result
            && err.kind() != io::ErrorKind::Interrupted
        {
            crate::log_error!("poll failed: {err}");
        }
        let mut shared = self.lock();
        let mut listeners_ready = Vec::new();
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                Token(t) if t > LISTENER_BASE - shared.listeners.len() && t <= LISTENER_BASE => {
                    listeners_ready.push(LISTENER_BASE - t);
                }
                Token(t) => match shared.slots.get_mut(t) {
                    Some(Slot::Busy { input_arrived }) => *input_arrived = true,
                    Some(slot) => {
                        let busy = Slot::Busy {
                            input_arrived: false,
                        };
                        if let Slot::Parked(conn) = std::mem::replace(slot, busy) {
                            shared.ready.push_back((t, conn));
                        }
                    }
                    None => {}
                },
            }
        }
        if shared.accept_paused && shared.slots.len() < self.settings.max_connections {
            shared.accept_paused = false;
            listeners_ready = (0..shared.listeners.len()).collect();
        }
        for i in listeners_ready {
            self.accept(&mut shared, i);
        }
        if shared.last_sweep.elapsed() >= SWEEP_EVERY {
            shared.last_sweep = Instant::now();
            let now = Instant::now();
            shared
                .slots
                .retain(|_, slot| !matches!(slot, Slot::Parked(c) if c.life().expired(now)));
        }
    }

    /// Accepts pending connections on listener `i`: with sibling workers, no more than this
    /// worker has idle threads for (so a busy worker leaves new clients to the others), and
    /// never past the connection limit. When it stops early the listener is re-armed, so the
    /// edge-triggered loop reports the rest again.
    fn accept(&self, shared: &mut Shared, i: usize) {
        if self.is_stopping() {
            return;
        }
        // Sharing the listeners with sibling workers: take what idle threads can serve now
        // (at least one, so nothing starves). Alone: take everything waiting.
        let mut budget = match self.settings.share_accepts {
            true => (shared.sleeping + 1)
                .saturating_sub(shared.ready.len())
                .max(1),
            false => usize::MAX,
        };
        loop {
            if shared.slots.len() >= self.settings.max_connections {
                shared.accept_paused = true;
                return;
            }
            if budget == 0 {
                let token = Token(LISTENER_BASE - i);
                let _ =
                    self.registry
                        .reregister(&mut shared.listeners[i], token, Interest::READABLE);
                return;
            }
            budget -= 1;
            let Shared {
                listeners, slots, ..
            } = &mut *shared;
            match self.accept_one(slots, &listeners[i]) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a readable listener,
                    // and say so once a second, not for every retry.
                    static ACCEPT_FAILURES: Throttle = Throttle::new(1000);
                    if let Some(held_back) = ACCEPT_FAILURES.allow() {
                        crate::log_error!(
                            "accept failed: {e} ({held_back} more failures in the last second not logged)"
                        );
                    }
                    shared.accept_paused = true;
                    return;
                }
            }
        }
    }

    /// Accepts one waiting connection from `listener` and parks it in `slots`.
    fn accept_one(&self, slots: &mut Slab<Slot>, listener: &Listener) -> io::Result<()> {
        let (mut stream, peers) = listener.accept()?;
        let tls = match (&self.settings.tls, listener.is_tls()) {
            (Some(config), true) => match TlsSession::new(config) {
                Ok(session) => Some(Box::new(session)),
                // Never in practice (the configuration was checked at start): this client
                // is closed, accepting goes on.
                Err(_) => return Ok(()),
            },
            _ => None,
        };
        let entry = slots.vacant_entry();
        if self
            .registry
            .register(&mut stream, Token(entry.key()), Interest::READABLE)
            .is_ok()
        {
            let conn = Box::new(Connection::new(
                stream,
                peers,
                self.settings.header_timeout,
                tls,
            ));
            entry.insert(Slot::Parked(conn));
        }
        Ok(())
    }

    /// Returns a served connection to the loop to wait for its next request. One holding
    /// back finished responses waits, unparked, while threads still have ready connections
    /// to serve (at most `MAX_HELD` of them): then they are all written and parked. Writing
    /// each at once would wake the client per response; in a batch, one wake-up collects
    /// several (Flask c64: ~10k -> ~14k req/s).
    pub fn park(&self, token: usize, mut conn: Box<Connection>) {
        // A held connection gives its read buffer back now: the thread's next read reuses
        // it, so one buffer serves a whole batch.
        conn.release_buffer();
        if !conn.holds_responses() {
            return self.settle(token, conn);
        }
        let batch = {
            let mut shared = self.lock();
            shared.held.push((token, conn));
            if shared.ready.is_empty() || shared.held.len() >= MAX_HELD {
                std::mem::take(&mut shared.held)
            } else {
                Vec::new()
            }
        };
        self.release(batch);
    }

    /// The monitor writes what the connections held so far can take without waiting; the
    /// rest go back to be written by a request thread (the monitor must never block).
    fn release_held(&self) {
        let batch = std::mem::take(&mut self.lock().held);
        let unwritten = self.write_without_waiting(batch);
        self.lock().held.extend(unwritten);
    }

    /// Writes held responses and parks their connections. All are written without waiting
    /// first, so a client that does not read holds back no one else's responses; then the
    /// slow readers are waited for (up to the write timeout), announced as a request so the
    /// monitor hands the loop to another thread meanwhile.
    fn release(&self, batch: Vec<(usize, Box<Connection>)>) {
        for (token, mut conn) in self.write_without_waiting(batch) {
            self.request_began();
            activity::request_began(Instant::now(), b"(writing to a slow reader)", conn.peer());
            let flushed = conn.flush(self.settings.write_timeout);
            activity::request_ended();
            self.request_ended();
            match flushed {
                Ok(()) => self.settle(token, conn),
                Err(_) => self.close(token),
            }
        }
    }

    /// Parks the connections whose held responses were written whole; returns the others.
    fn write_without_waiting(
        &self,
        batch: Vec<(usize, Box<Connection>)>,
    ) -> Vec<(usize, Box<Connection>)> {
        let mut unwritten = Vec::new();
        for (token, mut conn) in batch {
            match conn.try_flush() {
                Ok(true) => self.settle(token, conn),
                Ok(false) => unwritten.push((token, conn)),
                Err(_) => self.close(token),
            }
        }
        unwritten
    }

    /// Puts a connection with nothing held back (and its read buffer given back, see
    /// `park`) into its slot to wait for input.
    fn settle(&self, token: usize, mut conn: Box<Connection>) {
        let timeouts = Timeouts {
            header: self.settings.header_timeout,
            keep_alive: self.settings.keep_alive,
        };
        conn.life_mut()
            .park(crate::clock::now(), timeouts, self.is_stopping());
        let mut shared = self.lock();
        match shared.slots.get_mut(token) {
            // Input came after the thread's last read: serve it again (no event will come).
            Some(Slot::Busy {
                input_arrived: true,
            }) => {
                *shared.slots.get_mut(token).expect("checked") = Slot::Busy {
                    input_arrived: false,
                };
                shared.ready.push_back((token, conn));
            }
            Some(slot) => *slot = Slot::Parked(conn),
            None => {}
        }
    }

    /// Frees a connection's slot; dropping it closes the socket.
    pub fn close(&self, token: usize) {
        let mut shared = self.lock();
        if shared.slots.contains(token) {
            shared.slots.remove(token);
        }
    }

    /// While stopping: drops expired connections and tells whether any still wait for a
    /// first request (then a thread keeps polling for them).
    fn has_waiting_connections(&self, shared: &mut Shared) -> bool {
        let now = Instant::now();
        shared
            .slots
            .retain(|_, slot| !matches!(slot, Slot::Parked(c) if c.life().expired(now)));
        shared
            .slots
            .iter()
            .any(|(_, slot)| matches!(slot, Slot::Parked(_)))
    }

    fn now_nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The hand-off monitor (its own thread): wakes an idle thread when nobody has polled
    /// for longer than the threshold, e.g. because the poller is running a slow request.
    ///
    /// `longest_request` tells how long the oldest request still in progress has run. A
    /// poller that is merely busy with a batch of quick requests is left alone, and so is a
    /// worker that computes flat out (its CPU time kept pace with the clock): a second
    /// Python thread would only queue for the GIL, and its wait would make the next check
    /// see a "slow" request and wake a third (measured with Flask: the threads took turns
    /// some 1,600 times a second). A helper comes in when the requests in progress are
    /// waiting (on a socket, a database, a sleep), or when one has computed for so long
    /// that the connections behind it must not wait any more.
    pub fn monitor(&self, longest_request: impl Fn() -> Duration) {
        let threshold = self.settings.handoff;
        let mut window_start = (Instant::now(), process_cpu_time());
        let mut quiet_checks = 0;
        let in_progress = || self.in_request.load(Ordering::SeqCst) > 0;
        while !self.is_stopping() {
            std::thread::sleep(threshold);
            crate::clock::tick();
            if self.rest.rest_if_quiet(&mut quiet_checks, in_progress) {
                crate::clock::tick();
                window_start = (Instant::now(), process_cpu_time());
                continue;
            }
            let now = (Instant::now(), process_cpu_time());
            let wall = now.0 - window_start.0;
            let computing = now.1.saturating_sub(window_start.1) * 2 >= wall;
            window_start = now;
            let longest = longest_request();
            let stuck = longest >= threshold && (!computing || longest >= threshold * LONG_COMPUTE);
            self.helpers_wanted.store(stuck, Ordering::Release);
            if longest >= threshold {
                // Held responses must not wait for a slow request the batch ran into.
                self.release_held();
            }
            if self.polling.load(Ordering::Acquire) {
                continue;
            }
            let idle_for = self
                .now_nanos()
                .saturating_sub(self.last_poll.load(Ordering::Acquire));
            if idle_for >= threshold.as_nanos() as u64 && stuck && self.lock().sleeping > 0 {
                self.wake_idle.notify_one();
            }
        }
        // Requests still finishing while the worker stops must not read a frozen clock.
        crate::clock::stop();
    }
}

/// How many hand-off thresholds a request may compute, holding the loop, before a helper
/// takes the loop anyway.
const LONG_COMPUTE: u32 = 20;

/// CPU time used so far by all threads of this process.
fn process_cpu_time() -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into memory we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}
