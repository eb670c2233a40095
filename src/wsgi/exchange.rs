//! One request/response exchange on a connection: the body reader behind `wsgi.input` and
//! the response writer behind `start_response`, `write()` and the returned iterable.
//! Socket waits go through a `Wait` closure, so Python callers release the GIL while blocked.
use std::io;
use std::sync::{Arc, Mutex, TryLockError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::http::HttpError;
use crate::http::body::{ChunkedDecoder, Framing};
use crate::http::response::{
    BodyFraming, CHUNK_END, LAST_CHUNK, chunk_header, encode_head, status_forbids_body,
};
use crate::instrument::activity;
use crate::net::connection::Connection;
use crate::net::io::Wait;

/// What `start_response` recorded: a validated status line and encoded header lines.
#[derive(Debug, Clone)]
pub struct ResponseStart {
    pub code: u16,
    pub status_line: Vec<u8>,
    pub header_lines: Vec<u8>,
    pub content_length: Option<u64>,
    pub close_requested: bool,
}

/// Why an exchange failed; decides what the client gets.
#[derive(Debug)]
pub enum ExchangeError {
    /// The client went away or timed out: nothing more can be sent.
    Client(io::Error),
    /// The request body was malformed or too large: answer with this status.
    Request(HttpError),
}

impl From<io::Error> for ExchangeError {
    fn from(err: io::Error) -> Self {
        ExchangeError::Client(err)
    }
}

pub struct Exchange {
    pub conn: Box<Connection>,
    // Request body.
    framing: Framing,
    body_left: u64,
    chunked: ChunkedDecoder,
    decoded: Vec<u8>,
    body_done: bool,
    body_received: u64,
    max_body: u64,
    continue_pending: bool,
    pub body_error: Option<HttpError>,
    // Response.
    pub start: Option<ResponseStart>,
    pub headers_sent: bool,
    framing_out: BodyFraming,
    sent: u64,
    pub keep_alive: bool,
    head_only: bool,
    http10: bool,
    /// The response can no longer be completed correctly: close the connection after it.
    pub broken: bool,
}

/// Settings of an exchange taken from the request head.
pub struct ExchangeSetup {
    pub framing: Framing,
    pub max_body: u64,
    pub expect_continue: bool,
    pub keep_alive: bool,
    pub head_only: bool,
    pub http10: bool,
}

/// Room for what the server adds to an app's header lines: status line, Server, Date,
/// Content-Length or Transfer-Encoding, Connection.
const HEAD_ROOM: usize = 160;

/// Decoded body bytes asked of the decoder at a time.
const BODY_STEP: usize = 64 * 1024;

impl Exchange {
    pub fn new(conn: Box<Connection>, setup: ExchangeSetup) -> Exchange {
        let body_left = match setup.framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Exchange {
            conn,
            framing: setup.framing,
            body_left,
            chunked: ChunkedDecoder::default(),
            decoded: Vec::new(),
            body_done: setup.framing == Framing::Empty,
            body_received: 0,
            max_body: setup.max_body,
            continue_pending: setup.expect_continue,
            body_error: None,
            start: None,
            headers_sent: false,
            framing_out: BodyFraming::None,
            sent: 0,
            keep_alive: setup.keep_alive,
            head_only: setup.head_only,
            http10: setup.http10,
            broken: false,
        }
    }

    // ---- request body -------------------------------------------------------------

    /// True when the whole body has been read (or there was none).
    pub fn body_finished(&self) -> bool {
        self.body_done && self.decoded.is_empty()
    }

    /// Appends up to `limit` body bytes to `out`; blocks until at least one is available.
    /// Returns how many were appended: 0 at the end of the body. The bytes are copied out
    /// of the connection's buffer, which stays with the connection for the next read.
    pub fn read_body_into(
        &mut self,
        out: &mut Vec<u8>,
        limit: usize,
        wait: Wait,
    ) -> Result<usize, ExchangeError> {
        activity::progress();
        if limit == 0 {
            return Ok(0);
        }
        loop {
            if !self.decoded.is_empty() {
                let take = limit.min(self.decoded.len());
                out.extend_from_slice(&self.decoded[..take]);
                self.decoded.drain(..take);
                return Ok(take);
            }
            if self.body_done {
                return Ok(0);
            }
            if let Some(err) = &self.body_error {
                return Err(ExchangeError::Request(err.clone()));
            }
            if self.conn.input().is_empty() {
                self.receive(wait)?;
            }
            match self.framing {
                Framing::Empty => self.body_done = true,
                Framing::Length(_) => {
                    let take =
                        (self.body_left.min(limit as u64) as usize).min(self.conn.input().len());
                    out.extend_from_slice(&self.conn.input()[..take]);
                    self.conn.input().drain(..take);
                    self.body_left -= take as u64;
                    self.body_done = self.body_left == 0;
                    return Ok(take);
                }
                Framing::Chunked => self.decode_chunked()?,
            }
        }
    }

    /// Runs the chunked decoder over the buffered input, enforcing `--max-body`.
    fn decode_chunked(&mut self) -> Result<(), ExchangeError> {
        let decoded = self
            .chunked
            .decode(self.conn.input(), &mut self.decoded, BODY_STEP)
            .map_err(|err| self.fail_body(err))?;
        self.conn.input().drain(..decoded);
        self.body_received += self.decoded.len() as u64;
        if self.max_body > 0 && self.body_received > self.max_body {
            self.decoded.clear();
            return Err(self.fail_body(HttpError::new(413, "Content Too Large")));
        }
        self.body_done = self.chunked.is_done();
        Ok(())
    }

    fn fail_body(&mut self, err: HttpError) -> ExchangeError {
        self.body_error = Some(err.clone());
        self.keep_alive = false;
        ExchangeError::Request(err)
    }

    /// Reads more bytes from the client, first sending `100 Continue` if it waits for one.
    fn receive(&mut self, wait: Wait) -> Result<(), ExchangeError> {
        if self.continue_pending {
            self.continue_pending = false;
            if !self.headers_sent {
                self.conn.write(&[b"HTTP/1.1 100 Continue\r\n\r\n"], wait)?;
            }
        }
        match self.conn.read_more(wait)? {
            0 => Err(self
                .fail_body(HttpError::new(400, "Bad Request"))
                .into_client()),
            _ => Ok(()),
        }
    }

    /// Puts bytes read too far (past a line end) back in front of the body.
    pub fn unread(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.decoded.splice(0..0, bytes);
        }
    }

    /// After the app: reads and drops what it left of the body (bounded), so the next
    /// request on the connection starts at the right byte. Otherwise the connection closes.
    pub fn discard_body(&mut self, budget: u64, wait: Wait) {
        if self.continue_pending || matches!(self.framing, Framing::Length(n) if n > budget) {
            self.keep_alive = self.keep_alive && self.body_finished();
            return;
        }
        let mut dropped = 0u64;
        let mut scratch = Vec::new();
        while !self.body_done && dropped <= budget {
            scratch.clear();
            match self.read_body_into(&mut scratch, BODY_STEP, wait) {
                Ok(0) | Err(_) => break,
                Ok(read) => dropped += read as u64,
            }
        }
        self.decoded.clear();
        if !self.body_done {
            self.keep_alive = false;
        }
    }

    // ---- response -----------------------------------------------------------------

    /// Sends body bytes, preceded by the head the first time. `total`, when known, is the
    /// whole body's length (lets the head carry Content-Length instead of chunking).
    pub fn send(
        &mut self,
        data: &[u8],
        total: Option<u64>,
        wait: Wait,
    ) -> Result<(), ExchangeError> {
        activity::progress();
        let mut head = Vec::new();
        if !self.headers_sent {
            let header_lines = self
                .start
                .as_ref()
                .map_or(0, |start| start.header_lines.len());
            head.reserve(HEAD_ROOM + header_lines);
            self.encode_head_into(&mut head, total);
        }
        let writes_body = !self.head_only && self.framing_out != BodyFraming::None;
        let data = if writes_body {
            self.clip_to_length(data)
        } else {
            &[][..]
        };
        let completes = match self.framing_out {
            _ if !writes_body => true,
            BodyFraming::Length(expected) => self.sent + data.len() as u64 == expected,
            _ => false,
        };
        let result = if data.is_empty() && head.is_empty() {
            return Ok(());
        } else if completes {
            self.conn.finish_response(&[&head, data], wait)
        } else if self.framing_out == BodyFraming::Chunked {
            let size = chunk_header(data.len());
            self.conn.write(&[&head, &size, data, CHUNK_END], wait)
        } else {
            self.conn.write(&[&head, data], wait)
        };
        self.sent += data.len() as u64;
        result.map_err(|err| {
            self.broken = true;
            ExchangeError::Client(err)
        })
    }

    /// Ends the response: the head if nothing was sent, the last chunk, length checks.
    pub fn finish(&mut self, wait: Wait) -> Result<(), ExchangeError> {
        if !self.headers_sent {
            return self.send(&[], Some(0), wait);
        }
        match self.framing_out {
            BodyFraming::Chunked if !self.head_only => {
                self.conn.write(&[LAST_CHUNK], wait).map_err(|err| {
                    self.broken = true;
                    ExchangeError::Client(err)
                })
            }
            BodyFraming::Length(expected) if !self.head_only && self.sent < expected => {
                crate::log_error!(
                    "app sent {} of the {expected} bytes its Content-Length promised; closing",
                    self.sent
                );
                self.broken = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// How many of `len` raw body bytes may be written now, for a body sent outside
    /// `send` (sendfile). None when this response has no body on the wire.
    pub fn body_room(&mut self, len: u64) -> Option<u64> {
        match self.framing_out {
            _ if self.head_only => None,
            BodyFraming::None | BodyFraming::Chunked => None,
            BodyFraming::Length(expected) => Some(len.min(expected.saturating_sub(self.sent))),
            BodyFraming::UntilClose => Some(len),
        }
    }

    /// Counts body bytes written outside `send`.
    pub fn record_sent(&mut self, len: u64) {
        self.sent += len;
    }

    /// The status sent (or about to be): 500 when the app never called start_response.
    pub fn status(&self) -> u16 {
        self.start.as_ref().map_or(500, |start| start.code)
    }

    /// Body bytes written so far.
    pub fn body_bytes(&self) -> u64 {
        self.sent
    }

    /// Whether the connection may carry another request after this one.
    pub fn reusable(&self) -> bool {
        self.keep_alive && !self.broken && self.framing_out != BodyFraming::UntilClose
    }

    /// The part of `data` that fits the declared Content-Length; logs and marks the
    /// connection for closing when the app sends more than it declared.
    fn clip_to_length<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        if let BodyFraming::Length(expected) = self.framing_out {
            let room = expected.saturating_sub(self.sent);
            if data.len() as u64 > room {
                crate::log_error!(
                    "app sent more than its Content-Length of {expected} bytes; extra dropped, closing"
                );
                self.broken = true;
                return &data[..room as usize];
            }
        }
        data
    }

    fn encode_head_into(&mut self, out: &mut Vec<u8>, total: Option<u64>) {
        let start = self
            .start
            .as_ref()
            .expect("start_response checked by caller");
        self.framing_out = if status_forbids_body(start.code) {
            BodyFraming::None
        } else if let Some(length) = start.content_length.or(total) {
            BodyFraming::Length(length)
        } else if self.head_only {
            BodyFraming::None
        } else if !self.http10 {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        };
        if start.close_requested || self.framing_out == BodyFraming::UntilClose {
            self.keep_alive = false;
        }
        // A HEAD response announces the length the GET would have, but sends no body.
        let framing = if self.head_only && self.framing_out == BodyFraming::Chunked {
            BodyFraming::None
        } else {
            self.framing_out
        };
        encode_head(
            out,
            &start.status_line,
            &start.header_lines,
            framing,
            self.keep_alive,
            self.http10,
        );
        self.headers_sent = true;
    }
}

impl ExchangeError {
    fn into_client(self) -> ExchangeError {
        match self {
            ExchangeError::Request(_) => ExchangeError::Client(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed the connection during the request body",
            )),
            other => other,
        }
    }
}

/// The exchange as shared by the Python-visible objects of one request. It is emptied when
/// the request ends, so an object an app keeps afterwards cannot touch the next request.
pub type SharedExchange = Arc<Mutex<Option<Exchange>>>;

/// Runs `f` on the live exchange, or raises RuntimeError when the request is over or the
/// exchange is in use by another thread (an app passing wsgi.input between threads).
pub fn with_exchange<T>(
    shared: &SharedExchange,
    f: impl FnOnce(&mut Exchange) -> PyResult<T>,
) -> PyResult<T> {
    let mut guard = match shared.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            return Err(PyRuntimeError::new_err(
                "this request's stream is in use by another thread",
            ));
        }
    };
    match guard.as_mut() {
        Some(exchange) => f(exchange),
        None => Err(PyRuntimeError::new_err(
            "the request this object belonged to has ended",
        )),
    }
}

/// A `Wait` that releases the GIL while the socket is not ready. The time waited is the
/// client's (its --io-timeout), never counted against the app's --timeout.
pub fn gil_free_wait(
    py: Python<'_>,
    fd: std::os::fd::RawFd,
    timeout: std::time::Duration,
) -> impl FnMut(crate::net::io::Readiness) -> io::Result<()> + '_ {
    move |readiness| {
        activity::waiting_for_client();
        let waited = py.detach(move || crate::net::io::wait_ready(fd, readiness, timeout));
        activity::progress();
        waited
    }
}
