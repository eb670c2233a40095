//! One request/response exchange as the Python objects of a WSGI call share it: the
//! connection, the request body behind `wsgi.input` and the response behind
//! `start_response`, `write()` and the returned iterable. The HTTP work is http/'s
//! `BodyReader` and `ResponseWriter`; this file ties them to one connection, to each other
//! (a refused body ends keep-alive, a sent head forgoes `100 Continue`) and to the hang
//! watchdog, and keeps them from outliving their request.
use std::io;
use std::sync::{Arc, Mutex, TryLockError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::http::ExchangeError;
use crate::http::body::Framing;
use crate::http::body_reader::BodyReader;
use crate::http::response_writer::ResponseWriter;
use crate::instrument::activity;
use crate::net::connection::Connection;
use crate::net::io::Wait;

pub struct Exchange {
    pub conn: Box<Connection>,
    pub body: BodyReader,
    pub response: ResponseWriter,
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

impl Exchange {
    pub fn new(conn: Box<Connection>, setup: ExchangeSetup) -> Exchange {
        Exchange {
            conn,
            body: BodyReader::new(setup.framing, setup.max_body, setup.expect_continue),
            response: ResponseWriter::new(setup.keep_alive, setup.head_only, setup.http10),
        }
    }

    /// Appends up to `limit` body bytes to `out` (see `BodyReader::read_into`). A body the
    /// server refuses ends keep-alive, so a response the app still sends says close.
    pub fn read_body_into(
        &mut self,
        out: &mut Vec<u8>,
        limit: usize,
        wait: Wait,
    ) -> Result<usize, ExchangeError> {
        activity::progress();
        let head_sent = self.response.head_sent();
        let read = self
            .body
            .read_into(&mut *self.conn, out, limit, head_sent, wait);
        if self.body.error().is_some() {
            self.response.refuse_keep_alive();
        }
        read
    }

    /// Puts bytes read too far (past a line end) back in front of the body.
    pub fn unread(&mut self, bytes: Vec<u8>) {
        self.body.unread(bytes);
    }

    /// Sends body bytes, the head first the first time (see `ResponseWriter::send`).
    pub fn send(
        &mut self,
        data: &[u8],
        total: Option<u64>,
        wait: Wait,
    ) -> Result<(), ExchangeError> {
        activity::progress();
        self.response.send(&mut *self.conn, data, total, wait)
    }

    /// Ends the response: the head if nothing was sent, the last chunk, length checks.
    pub fn finish(&mut self, wait: Wait) -> Result<(), ExchangeError> {
        self.response.finish(&mut *self.conn, wait)
    }

    /// After the app: drops what it left of the body (up to `budget` bytes) so the next
    /// request starts at the right byte; if it cannot, the connection closes.
    pub fn discard_body(&mut self, budget: u64, wait: Wait) {
        if !self.body.discard(&mut *self.conn, budget, wait) {
            self.response.refuse_keep_alive();
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
