//! Where a connection is in its life, and the deadline that each phase sets. This is the
//! one place that decides when an idle, slow or closing connection is dropped. Times are
//! passed in, so every transition is unit-tested without a socket. docs/ARCHITECTURE.md has
//! the transition table.
use std::time::{Duration, Instant};

/// How long a stopping worker keeps an idle connection open. A client still using it sends
/// its next request within this and has it answered (with `Connection: close`); closing at
/// once lost the requests already on their way (the keep-alive race).
pub const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// How long, and how many bytes, a connection closing after an error still reads and drops
/// what its client sends (a lingering close, as nginx does).
pub const LINGER_TIME: Duration = Duration::from_secs(5);
pub const LINGER_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, waiting for its first request head (and, with TLS, the handshake): the
    /// deadline set at accept stands.
    Fresh,
    /// Part of a request head has arrived, since `started`: the header timeout runs.
    ReadingHead { started: Instant },
    /// A thread answers a request: routing, the app, its body (100-continue included).
    Running,
    /// The answer's first bytes have been written (streaming, sendfile, held for a batch).
    Responding,
    /// Between requests: the keep-alive timeout runs.
    Idle,
    /// Idle while the worker stops: closed after `DRAIN_IDLE` unless a request comes.
    Draining,
    /// Closing after an error: the write side is shut and what still arrives is dropped
    /// (`dropped` bytes so far), for at most `LINGER_TIME` and `LINGER_BYTES`.
    Lingering { dropped: u64 },
    /// Nothing more to do: the connection is dropped (the loop frees its slot; lingering
    /// past `LINGER_BYTES` ends here).
    Closed,
}

/// How a partly received request head stands against the header timeout.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadWait {
    /// More may come.
    InTime,
    /// Too slow (a slowloris): the connection closes at once.
    TooSlow,
}

/// A connection's phase with the times that go with it.
#[derive(Debug)]
pub struct Lifecycle {
    phase: Phase,
    /// When the connection is closed if it is still waiting for input.
    deadline: Instant,
    /// Since when it has waited with nothing in progress (accepted, or last parked).
    waiting_since: Instant,
    /// Requests answered on this connection so far.
    answered: u64,
}

impl Lifecycle {
    /// A connection accepted at `now`: its first request head must come within `within`.
    pub fn accepted(now: Instant, within: Duration) -> Lifecycle {
        Lifecycle {
            phase: Phase::Fresh,
            deadline: now + within,
            waiting_since: now,
            answered: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// Whether a connection waiting for input has run out of time.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline <= now
    }

    /// Some bytes of a request head are in, not all: `header_timeout` counts from the
    /// first of them.
    pub fn head_incomplete(&mut self, now: Instant, header_timeout: Duration) -> HeadWait {
        let started = match self.phase {
            Phase::ReadingHead { started } => started,
            _ => now,
        };
        self.phase = Phase::ReadingHead { started };
        match now.saturating_duration_since(started) > header_timeout {
            true => HeadWait::TooSlow,
            false => HeadWait::InTime,
        }
    }

    /// A whole request head arrived: it is being answered.
    pub fn head_complete(&mut self) {
        self.phase = Phase::Running;
    }

    /// The answer's first bytes leave.
    pub fn response_started(&mut self) {
        if self.phase == Phase::Running {
            self.phase = Phase::Responding;
        }
    }

    /// The request is answered; the connection may take the next one.
    pub fn request_done(&mut self) {
        self.answered += 1;
        self.phase = Phase::Idle;
    }

    /// Closing after an error, at `now`: the answer is out and the write side shut.
    pub fn start_lingering(&mut self, now: Instant) {
        self.phase = Phase::Lingering { dropped: 0 };
        self.deadline = now + LINGER_TIME;
    }

    /// A lingering connection dropped `bytes` more; past `LINGER_BYTES` it is closed.
    pub fn dropped(&mut self, bytes: u64) {
        if let Phase::Lingering { dropped } = self.phase {
            let dropped = dropped + bytes;
            self.phase = match dropped > LINGER_BYTES {
                true => Phase::Closed,
                false => Phase::Lingering { dropped },
            };
        }
    }

    /// The connection goes back to the loop at `now` to wait for input, and gets the
    /// deadline of what it waits for. `stopping`: the worker drains.
    pub fn park(&mut self, now: Instant, timeouts: Timeouts, stopping: bool) {
        self.waiting_since = now;
        match self.phase {
            Phase::ReadingHead { started } => self.deadline = started + timeouts.header,
            Phase::Running | Phase::Responding | Phase::Idle | Phase::Draining => {
                self.phase = Phase::Idle;
                self.deadline = now + timeouts.keep_alive;
            }
            Phase::Fresh | Phase::Lingering { .. } | Phase::Closed => {}
        }
        if stopping {
            self.drain();
        }
    }

    /// The worker stops: a connection with no request head in progress has `DRAIN_IDLE`
    /// more to bring one, from when it began to wait.
    pub fn drain(&mut self) {
        match self.phase {
            Phase::Fresh | Phase::Idle => self.phase = Phase::Draining,
            Phase::Draining | Phase::Lingering { .. } => {}
            _ => return,
        }
        self.deadline = self.deadline.min(self.waiting_since + DRAIN_IDLE);
    }
}

/// The timeouts a waiting connection's deadline comes from.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For a request head once it has begun (and for the first one, from accept).
    pub header: Duration,
    /// Between requests.
    pub keep_alive: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        keep_alive: Duration::from_secs(2),
    };

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    fn fresh(start: Instant) -> Lifecycle {
        Lifecycle::accepted(start, TIMEOUTS.header)
    }

    #[test]
    fn a_fresh_connection_keeps_its_accept_deadline_while_it_waits() {
        let start = Instant::now();
        let mut life = fresh(start);
        assert_eq!(life.phase(), Phase::Fresh);
        life.park(at(start, 3_000), TIMEOUTS, false);
        assert_eq!(life.phase(), Phase::Fresh);
        assert_eq!(life.deadline(), at(start, 10_000));
        assert!(!life.expired(at(start, 9_999)));
        assert!(life.expired(at(start, 10_000)));
    }

    #[test]
    fn a_partial_head_is_timed_from_its_first_bytes() {
        let start = Instant::now();
        let mut life = fresh(start);
        assert_eq!(
            life.head_incomplete(at(start, 500), TIMEOUTS.header),
            HeadWait::InTime
        );
        let reading = Phase::ReadingHead {
            started: at(start, 500),
        };
        assert_eq!(life.phase(), reading);
        life.park(at(start, 600), TIMEOUTS, false);
        assert_eq!(life.phase(), reading);
        assert_eq!(life.deadline(), at(start, 10_500));
        // More bytes later still count from the first ones.
        assert_eq!(
            life.head_incomplete(at(start, 10_400), TIMEOUTS.header),
            HeadWait::InTime
        );
        assert_eq!(
            life.head_incomplete(at(start, 10_501), TIMEOUTS.header),
            HeadWait::TooSlow
        );
    }

    #[test]
    fn a_request_runs_responds_and_leaves_the_connection_idle_for_keep_alive() {
        let start = Instant::now();
        let mut life = fresh(start);
        life.head_incomplete(at(start, 1), TIMEOUTS.header);
        life.head_complete();
        assert_eq!(life.phase(), Phase::Running);
        life.response_started();
        assert_eq!(life.phase(), Phase::Responding);
        life.request_done();
        assert_eq!((life.phase(), life.answered()), (Phase::Idle, 1));
        life.park(at(start, 50), TIMEOUTS, false);
        assert_eq!(life.phase(), Phase::Idle);
        assert_eq!(life.deadline(), at(start, 2_050));
    }

    #[test]
    fn response_started_only_moves_a_running_request() {
        let start = Instant::now();
        let mut life = fresh(start);
        life.response_started();
        assert_eq!(life.phase(), Phase::Fresh);
        life.head_complete();
        life.response_started();
        life.response_started();
        assert_eq!(life.phase(), Phase::Responding);
    }

    #[test]
    fn pipelined_requests_count_and_a_spurious_wake_renews_keep_alive() {
        let start = Instant::now();
        let mut life = fresh(start);
        for _ in 0..3 {
            life.head_complete();
            life.request_done();
        }
        assert_eq!(life.answered(), 3);
        life.park(at(start, 100), TIMEOUTS, false);
        life.park(at(start, 1_000), TIMEOUTS, false);
        assert_eq!(life.deadline(), at(start, 3_000));
    }

    #[test]
    fn a_parked_answer_without_request_done_still_waits_as_idle() {
        // A connection parked while its answer is held for a batch.
        let start = Instant::now();
        let mut life = fresh(start);
        life.head_complete();
        life.response_started();
        life.park(at(start, 10), TIMEOUTS, false);
        assert_eq!(life.phase(), Phase::Idle);
        assert_eq!(life.deadline(), at(start, 2_010));
    }

    #[test]
    fn draining_gives_idle_connections_one_second_from_when_they_began_to_wait() {
        let start = Instant::now();
        let mut idle = fresh(start);
        idle.head_complete();
        idle.request_done();
        idle.park(at(start, 100), TIMEOUTS, false);
        idle.drain();
        assert_eq!(idle.phase(), Phase::Draining);
        assert_eq!(idle.deadline(), at(start, 1_100));

        let mut new = fresh(start);
        new.drain();
        assert_eq!(new.phase(), Phase::Draining);
        assert_eq!(new.deadline(), at(start, 1_000));

        // A deadline already sooner stays.
        let short = Timeouts {
            keep_alive: Duration::from_millis(300),
            ..TIMEOUTS
        };
        let mut soon = fresh(start);
        soon.head_complete();
        soon.request_done();
        soon.park(at(start, 100), short, false);
        soon.drain();
        assert_eq!(soon.deadline(), at(start, 400));
    }

    #[test]
    fn a_connection_parked_while_stopping_drains() {
        let start = Instant::now();
        let mut life = fresh(start);
        life.head_complete();
        life.request_done();
        life.park(at(start, 200), TIMEOUTS, true);
        assert_eq!(life.phase(), Phase::Draining);
        assert_eq!(life.deadline(), at(start, 1_200));
    }

    #[test]
    fn a_request_on_a_draining_connection_runs_and_drains_again() {
        let start = Instant::now();
        let mut life = fresh(start);
        life.drain();
        life.head_incomplete(at(start, 10), TIMEOUTS.header);
        life.head_complete();
        assert_eq!(life.phase(), Phase::Running);
        life.request_done();
        life.park(at(start, 20), TIMEOUTS, true);
        assert_eq!(life.phase(), Phase::Draining);
        assert_eq!(life.deadline(), at(start, 1_020));
    }

    #[test]
    fn draining_leaves_a_head_in_progress_and_a_running_request_alone() {
        let start = Instant::now();
        let mut reading = fresh(start);
        reading.head_incomplete(at(start, 10), TIMEOUTS.header);
        reading.park(at(start, 10), TIMEOUTS, false);
        reading.drain();
        assert!(matches!(reading.phase(), Phase::ReadingHead { .. }));
        assert_eq!(reading.deadline(), at(start, 10_010));

        let mut running = fresh(start);
        running.head_complete();
        running.drain();
        assert_eq!(running.phase(), Phase::Running);
    }

    #[test]
    fn lingering_lasts_five_seconds_and_at_most_four_mebibytes() {
        let start = Instant::now();
        let mut life = fresh(start);
        life.head_complete();
        life.start_lingering(at(start, 100));
        assert_eq!(life.phase(), Phase::Lingering { dropped: 0 });
        life.park(at(start, 200), TIMEOUTS, false);
        assert_eq!(life.deadline(), at(start, 5_100));
        life.dropped(LINGER_BYTES);
        assert_eq!(
            life.phase(),
            Phase::Lingering {
                dropped: LINGER_BYTES
            }
        );
        life.dropped(1);
        assert_eq!(life.phase(), Phase::Closed);
    }

    #[test]
    fn a_lingering_connection_of_a_stopping_worker_is_cut_to_the_drain_time() {
        let start = Instant::now();
        let mut life = fresh(start);
        life.start_lingering(start);
        life.park(at(start, 100), TIMEOUTS, true);
        assert_eq!(life.phase(), Phase::Lingering { dropped: 0 });
        assert_eq!(life.deadline(), at(start, 1_100));
    }

    #[test]
    fn closed_is_final() {
        let start = Instant::now();
        let mut life = fresh(start);
        life.start_lingering(start);
        life.dropped(LINGER_BYTES + 1);
        life.park(at(start, 1), TIMEOUTS, true);
        life.dropped(10);
        life.drain();
        assert_eq!(life.phase(), Phase::Closed);
    }
}
