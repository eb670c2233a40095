//! Running one WSGI request: build environ, call the application, stream what it returns
//! (lazily, chunk by chunk) and always call the iterable's `close()`.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::environ::{self, RequestPlace};
use super::errors::{log_app_error, warn_once};
use super::exchange::{Exchange, ExchangeSetup, SharedExchange, gil_free_wait};
use super::file_wrapper::FileWrapper;
use super::input::InputStream;
use super::start_response::StartResponse;
use crate::http::ExchangeError;
use crate::http::forwarded::Proxies;
use crate::http::request::Head;
use crate::http::response::{Answered, error_page, reason_phrase};
use crate::http::response_writer::ResponseStart;
use crate::net::connection::Connection;
use crate::net::io::send_file;

/// Request-independent settings of a WSGI call.
pub struct CallSettings {
    pub io_timeout: Duration,
    pub max_body: u64,
    pub debug: bool,
    pub proxies: Proxies,
    /// Code to run around each call (gunicorn's pre_request and post_request hooks).
    pub around: Option<&'static dyn AroundRequest>,
}

/// What runs before and after each WSGI call when it is asked for.
pub trait AroundRequest: Sync {
    /// Before the app: makes the request object the hooks share. Err: the call does not
    /// happen and the request gets a 500.
    fn before<'py>(
        &self,
        py: Python<'py>,
        head: &Head,
        https: bool,
        peer: Option<std::net::SocketAddr>,
    ) -> PyResult<Bound<'py, PyAny>>;

    /// After the response is sent.
    fn after(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        environ: &Bound<'_, PyDict>,
        status_line: &[u8],
        header_lines: &[u8],
        sent: u64,
    );
}

/// Most unread request body drained after the app so the connection can be reused.
const DRAIN_BUDGET: u64 = 256 * 1024;

/// Runs `app` for one request on `conn` (between the pre_request and post_request hooks,
/// when a configuration file defines them). Returns the connection and whether it may be
/// reused for another request.
#[allow(clippy::too_many_arguments)]
pub fn run(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    app_name: &str,
    template: &Bound<'_, PyDict>,
    head: &Head,
    conn: Box<Connection>,
    place: &RequestPlace,
    settings: &CallSettings,
) -> (Box<Connection>, Answered) {
    let fd = conn.fd();
    let setup = ExchangeSetup {
        framing: head.framing,
        max_body: settings.max_body,
        expect_continue: head.expect_continue,
        keep_alive: head.keep_alive,
        head_only: head.is_head(),
        http10: head.minor_version == 0,
    };
    let shared: SharedExchange = Arc::new(Mutex::new(Some(Exchange::new(conn, setup))));
    let around = settings.around;
    let req = around.map(|hooks| hooks.before(py, head, place.https, place.peer));
    let environ = environ::build(py, template, head, place, &settings.proxies);
    let (who, outcome) = match (&req, &environ) {
        (Some(Err(err)), _) => ("the pre_request hook", Err(err.clone_ref(py))),
        (_, Err(err)) => (app_name, Err(err.clone_ref(py))),
        (_, Ok(environ)) => (
            app_name,
            call_and_stream(py, app, app_name, environ, &shared, settings),
        ),
    };
    let mut exchange = shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .expect("exchange is only taken here");
    let mut wait = gil_free_wait(py, fd, settings.io_timeout);
    if let Err(err) = outcome {
        let traceback = log_app_error(py, &head.request_line(), who, &err);
        respond_to_failure(&mut exchange, &traceback, settings.debug, &mut wait);
    } else if exchange.finish(&mut wait).is_err() {
        exchange.response.mark_broken();
    }
    if exchange.response.reusable() {
        exchange.discard_body(DRAIN_BUDGET, &mut wait);
    }
    let response = &exchange.response;
    let answered = Answered::new(
        response.status(),
        response.body_bytes(),
        response.reusable(),
    );
    let environ = environ.unwrap_or_else(|_| PyDict::new(py));
    let (status_line, header_lines) = response.start().map_or((&b""[..], &b""[..]), |s| {
        (&s.status_line[..], &s.header_lines[..])
    });
    if let (Some(hooks), Some(Ok(req))) = (around, &req) {
        hooks.after(
            py,
            req,
            &environ,
            status_line,
            header_lines,
            answered.body_bytes,
        );
    }
    if let Some(needs) = crate::logging::answer_needs() {
        note_for_access_log(needs, &environ, header_lines);
    }
    (exchange.conn, answered)
}

/// Keeps what the access-log format shows of the app's answer (%({Name}o)s, %({NAME}e)s).
fn note_for_access_log(
    needs: &crate::logging::AnswerNeeds,
    environ: &Bound<'_, PyDict>,
    header_lines: &[u8],
) {
    let mut variables = Vec::new();
    for wanted in &needs.environ {
        let found = environ.iter().find(|(key, _)| {
            key.extract::<&str>()
                .is_ok_and(|key| key.eq_ignore_ascii_case(wanted))
        });
        if let Some((key, value)) = found
            && let Ok(text) = value.str()
        {
            variables.push((key.to_string(), text.to_string_lossy().as_bytes().to_vec()));
        }
    }
    let headers = if needs.response_headers {
        header_lines
    } else {
        b""
    };
    crate::logging::note_answer(headers, variables);
}

/// After an app error: a 500 page if nothing was sent yet (413/400 when the request body
/// was at fault), else the connection is closed to show the response is incomplete.
fn respond_to_failure(
    exchange: &mut Exchange,
    traceback: &str,
    debug: bool,
    wait: crate::net::io::Wait,
) {
    exchange.response.refuse_keep_alive();
    if exchange.response.head_sent() {
        exchange.response.mark_broken();
        return;
    }
    let status = exchange.body.error().map_or(500, |e| e.status);
    let detail = if debug && status == 500 {
        traceback
    } else {
        ""
    };
    let page = if debug && status == 500 {
        format!(
            "<!doctype html><title>500 Internal Server Error</title><h1>500 Internal Server Error</h1><pre>{}</pre>\n",
            crate::http::response::html_escape(detail)
        )
    } else {
        error_page(status, "")
    };
    exchange.response.set_start(ResponseStart {
        code: status,
        status_line: format!("{status} {}", reason_phrase(status)).into_bytes(),
        header_lines: b"Content-Type: text/html; charset=utf-8\r\n".to_vec(),
        content_length: Some(page.len() as u64),
        close_requested: true,
    });
    let _ = exchange.send(page.as_bytes(), None, wait);
}

/// Calls the app and streams its result; `Err` is an application error (already nothing
/// has been decided about the connection). Client I/O errors end the call quietly.
fn call_and_stream(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    app_name: &str,
    environ: &Bound<'_, PyDict>,
    shared: &SharedExchange,
    settings: &CallSettings,
) -> PyResult<()> {
    let input = InputStream::new(shared.clone(), settings.io_timeout);
    environ.set_item(pyo3::intern!(py, "wsgi.input"), Bound::new(py, input)?)?;
    let start_response = Bound::new(py, StartResponse::new(shared.clone(), settings.io_timeout))?;
    let result = app.call1((environ, start_response))?;
    let streamed = stream(py, &result, app_name, shared, settings.io_timeout);
    // PEP 3333: close() is called however the iteration ended. Plain lists and tuples have
    // none: skipping the lookup spares building and discarding an AttributeError per request.
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        return streamed;
    }
    let closed = match result.getattr_opt(pyo3::intern!(py, "close")) {
        Ok(Some(close)) => close.call0().map(drop),
        Ok(None) => Ok(()),
        Err(err) => Err(err),
    };
    streamed.and(closed)
}

/// Sends each chunk of the app's result as it is produced.
fn stream(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    app_name: &str,
    shared: &SharedExchange,
    timeout: Duration,
) -> PyResult<()> {
    let send = |data: &[u8], total: Option<u64>| -> PyResult<bool> {
        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
        let exchange = guard.as_mut().expect("exchange lives until the call ends");
        if exchange.response.start().is_none() {
            return Err(PyTypeError::new_err(
                "the application returned body data before calling start_response",
            ));
        }
        let mut wait = gil_free_wait(py, exchange.conn.fd(), timeout);
        match exchange.send(data, total, &mut wait) {
            // An app past its Content-Length is not iterated further: all it sends now
            // is dropped, and it may never end.
            Ok(()) => Ok(!exchange.response.is_broken() && !exchange.response.surplus_dropped()),
            Err(ExchangeError::Client(_)) | Err(ExchangeError::Request(_)) => Ok(false),
        }
    };
    if let Ok(text) = result.cast::<PyString>() {
        warn_once(
            app_name,
            "returned a str instead of an iterable of bytes; sending it as UTF-8",
        );
        let data = text.to_cow()?;
        send(data.as_bytes(), Some(data.len() as u64))?;
        return Ok(());
    }
    if let Ok(bytes) = result.cast::<PyBytes>() {
        warn_once(
            app_name,
            "returned bytes instead of an iterable of bytes; sending them as one chunk",
        );
        send(bytes.as_bytes(), Some(bytes.as_bytes().len() as u64))?;
        return Ok(());
    }
    if let Ok(wrapper) = result.cast::<FileWrapper>()
        && can_send_file(shared)
        && let Some(region) = wrapper.get().region(py)
    {
        return send_region(py, shared, region, timeout);
    }
    let total = known_length(result);
    for item in result.try_iter()? {
        let item = item?;
        let chunk = chunk_bytes(&item, app_name)?;
        if chunk.as_bytes().is_empty() {
            continue;
        }
        if !send(chunk.as_bytes(), total)? {
            break;
        }
    }
    Ok(())
}

/// The body's total length when the result is a list or tuple of bytes, so the response
/// can carry Content-Length (and stay keep-alive for HTTP/1.0) instead of being chunked.
fn known_length(result: &Bound<'_, PyAny>) -> Option<u64> {
    fn sum<'py>(mut items: impl Iterator<Item = Bound<'py, PyAny>>) -> Option<u64> {
        items.try_fold(0u64, |total, item| {
            item.cast::<PyBytes>()
                .ok()
                .map(|b| total + b.as_bytes().len() as u64)
        })
    }
    if let Ok(list) = result.cast::<PyList>() {
        sum(list.iter())
    } else if let Ok(tuple) = result.cast::<PyTuple>() {
        sum(tuple.iter())
    } else {
        None
    }
}

/// One chunk as bytes: bytes as they are, str as UTF-8 (with a one-time warning).
fn chunk_bytes<'py>(item: &Bound<'py, PyAny>, app_name: &str) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(bytes) = item.cast::<PyBytes>() {
        return Ok(bytes.clone());
    }
    if let Ok(text) = item.cast::<PyString>() {
        warn_once(
            app_name,
            "yielded str chunks instead of bytes; sending them as UTF-8",
        );
        return Ok(PyBytes::new(item.py(), text.to_cow()?.as_bytes()));
    }
    Err(PyTypeError::new_err(format!(
        "the application's iterable must yield bytes, not {}",
        item.get_type().name()?
    )))
}

/// Whether a file_wrapper's file can go out with sendfile(2): the head is still to be sent
/// (with it, in one segment), and the socket is plain (over TLS the file is read and
/// encrypted like any iterable).
fn can_send_file(shared: &SharedExchange) -> bool {
    let guard = shared.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .as_ref()
        .is_none_or(|exchange| !exchange.response.head_sent() && !exchange.conn.is_tls())
}

/// Sends a wrapped regular file with sendfile(2), GIL released, after the head.
fn send_region(
    py: Python<'_>,
    shared: &SharedExchange,
    region: super::file_wrapper::FileRegion,
    timeout: Duration,
) -> PyResult<()> {
    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
    let exchange = guard.as_mut().expect("exchange lives until the call ends");
    if exchange.response.start().is_none() {
        return Err(PyTypeError::new_err(
            "file_wrapper returned before start_response",
        ));
    }
    let fd = exchange.conn.fd();
    let mut wait = gil_free_wait(py, fd, timeout);
    if exchange.send(&[], Some(region.len), &mut wait).is_err() {
        return Ok(());
    }
    let Some(len) = exchange.response.body_room(region.len) else {
        return Ok(());
    };
    let sent = py.detach(|| {
        let mut wait = |r| crate::net::io::wait_ready(fd, r, timeout);
        send_file(fd, region.fd, region.offset, len, &mut wait)
    });
    match sent {
        Ok(()) => exchange.response.record_sent(len),
        Err(_) => exchange.response.mark_broken(),
    }
    Ok(())
}
