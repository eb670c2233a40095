//! Serving a connection to completion on the thread that took it: parse each request head,
//! route it, answer it, and loop for pipelined or keep-alive requests until the socket has
//! nothing more, then hand the connection back to the event loop.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::context::Context;
use super::health::Probe;
use super::preface::Settled;
use super::slow_routes::SlowRoutes;
use crate::http::HttpError;
use crate::http::body::Framing;
use crate::http::request::{Head, parse_head};
use crate::http::response::{Answered, error_page, error_response, simple_response, text_response};
use crate::instrument::activity;
use crate::instrument::{metrics, statsd};
use crate::logging;
use crate::net::connection::{Connection, Preface};
use crate::net::event_loop::Work;
use crate::net::phase::{HeadWait, Phase};
use crate::route::{Route, ServerWide, TargetForm, decode_path, split_target, target_form};
use crate::static_files;
use crate::wsgi::call;
use crate::wsgi::environ::RequestPlace;
use crate::wsgi::scripts::ScriptError;

enum Next {
    Request(Head),
    /// Nothing complete yet: back to the loop until more input arrives.
    Wait,
    /// The client closed (or the socket failed).
    Close,
    /// The request was refused (answered 4xx) while the client may still be sending.
    Refused,
}

pub fn serve(ctx: &Context, work: Work) {
    let Work { token, mut conn } = work;
    if let Phase::Lingering { .. } = conn.life().phase() {
        return linger(ctx, token, conn);
    }
    loop {
        match next_request(ctx, &mut conn) {
            Next::Wait => return ctx.event_loop.park(token, conn),
            Next::Close => return close(ctx, token, conn, false),
            Next::Refused => return close(ctx, token, conn, true),
            Next::Request(mut head) => {
                let raw_path = split_target(head.target()).0;
                let probe = ctx
                    .health
                    .as_ref()
                    .and_then(|health| health.probe(raw_path));
                let route = SlowRoutes::key(raw_path);
                let mut slow_place = None;
                if ctx.slow_routes.is_slow(route) {
                    slow_place = ctx.event_loop.try_begin_slow();
                    if slow_place.is_none() {
                        // Not now: the head goes back, to be read again by a thread that may.
                        conn.unread(head.into_bytes());
                        return ctx.event_loop.defer_slow(token, conn);
                    }
                }
                if ctx.event_loop.is_stopping() || !ctx.keep_alive {
                    head.keep_alive = false;
                }
                let started = Instant::now();
                metrics::request_started();
                note_queue_time(&head);
                activity::request_began(started, head.request_line_bytes(), conn.peer());
                ctx.event_loop.request_began();
                let (returned, answered) = match probe {
                    Some(probe) => answer_probe(ctx, conn, &head, probe),
                    None => handle(ctx, conn, &head),
                };
                ctx.event_loop.request_ended();
                activity::request_ended();
                conn = returned;
                let logged = probe.is_none() || ctx.health.as_ref().is_some_and(|h| h.logged);
                let took = record_answer(Some(&head), &conn, answered, started, logged);
                drop(slow_place);
                ctx.slow_routes.record(route, took);
                conn.life_mut().request_done();
                if ctx.requests.fetch_add(1, Ordering::Relaxed) + 1 == ctx.retire_after {
                    ctx.main_thread.unpark();
                }
                if !answered.reusable {
                    // The body may be unread, or more requests may have been sent.
                    let client_may_send =
                        head.framing != Framing::Empty || !conn.input().is_empty();
                    return close(ctx, token, conn, client_may_send);
                }
            }
        }
    }
}

/// Closes the connection once what it holds back has been sent. While the client may still
/// be sending (a refused request, an unread body), closing at once would reset the
/// connection, and a reset can destroy the answer before the client reads it: the
/// connection lingers instead.
fn close(ctx: &Context, token: usize, mut conn: Box<Connection>, client_may_send: bool) {
    let flushed = conn.flush(ctx.call.io_timeout).is_ok();
    if !(client_may_send && flushed && conn.start_lingering().is_ok()) {
        return ctx.event_loop.close(token);
    }
    linger(ctx, token, conn);
}

/// A lingering connection (see `close`): its answer is sent and its write side shut, so
/// the client reads the answer and then EOF; what it still sends is read and dropped until
/// it closes, or for as long and as much as `Phase::Lingering` allows.
fn linger(ctx: &Context, token: usize, mut conn: Box<Connection>) {
    loop {
        match conn.read_available() {
            Ok(Some(0)) | Err(_) => return ctx.event_loop.close(token),
            Ok(Some(read)) => {
                conn.input().clear();
                conn.life_mut().dropped(read as u64);
                if conn.life().phase() == Phase::Closed {
                    return ctx.event_loop.close(token);
                }
            }
            Ok(None) => return ctx.event_loop.park(token, conn),
        }
    }
}

fn next_request(ctx: &Context, conn: &mut Connection) -> Next {
    if let (Some(policy), Preface::Unread, true) =
        (&ctx.proxy_policy, conn.preface(), conn.is_tls())
    {
        // Before the handshake: the header is not TLS.
        match policy.settle(conn) {
            Settled::Yes => {}
            Settled::NotYet => return Next::Wait,
            Settled::Refused => return Next::Close,
        }
    }
    loop {
        if !conn.input().is_empty() {
            let settled = match (&ctx.proxy_policy, conn.preface()) {
                (Some(policy), Preface::Unread) => policy.settle(conn),
                _ => Settled::Yes,
            };
            let parsed = match settled {
                Settled::Refused => return Next::Close,
                // The header's bytes count against the header timeout too.
                Settled::NotYet => Ok(None),
                Settled::Yes if conn.input().is_empty() => Ok(None),
                Settled::Yes => parse_head(conn.input(), ctx.limits),
            };
            match parsed {
                Ok(Some(head)) => {
                    conn.life_mut().head_complete();
                    return Next::Request(head);
                }
                Ok(None) => {
                    let wait = conn
                        .life_mut()
                        .head_incomplete(Instant::now(), ctx.header_timeout);
                    if wait == HeadWait::TooSlow {
                        // Too slow (a slowloris): closed at once, no lingering for it.
                        refuse(ctx, conn, HttpError::new(408, "Request Timeout"));
                        return Next::Close;
                    }
                }
                Err(err) => {
                    refuse(ctx, conn, err);
                    return Next::Refused;
                }
            }
        }
        match conn.read_available() {
            Ok(Some(0)) => return Next::Close,
            Err(err) => {
                if err.kind() == std::io::ErrorKind::InvalidData {
                    // A failed TLS handshake (or plain HTTP on an HTTPS port): closed.
                    let peer = conn
                        .peer()
                        .map_or("a unix socket".into(), |p| p.to_string());
                    crate::log_debug!("closing the connection from {peer}: {err}");
                }
                return Next::Close;
            }
            Ok(Some(_)) => {}
            Ok(None) => return Next::Wait,
        }
    }
}

/// Answers a request that could not be parsed, then the connection closes.
fn refuse(ctx: &Context, conn: &mut Connection, err: HttpError) {
    let started = Instant::now();
    metrics::request_started();
    let reply = error_response(err.status, err.reason);
    let _ = conn.write_blocking(&[&reply], ctx.call.io_timeout);
    record_answer(
        None,
        conn,
        Answered::new(err.status, body_length(&reply), false),
        started,
        true,
    );
}

/// The body size of a complete response the server generated itself.
fn body_length(response: &[u8]) -> u64 {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    (response.len() - head_end) as u64
}

/// How long the request waited before this worker read it, from its X-Request-Start, for
/// the metrics (only read when something counts it).
fn note_queue_time(head: &Head) {
    if !metrics::counting() && !statsd::enabled() {
        return;
    }
    let Some(value) = head.header("x-request-start") else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    if let Some(waited) = crate::http::request_start::waited(value, now) {
        metrics::request_queued(waited.as_micros() as u64);
        statsd::queue_time(waited);
    }
}

/// Counts the answer in the metrics and writes its access-log line.
/// Returns how long the request took.
fn record_answer(
    head: Option<&Head>,
    conn: &Connection,
    answered: Answered,
    started: Instant,
    logged: bool,
) -> Duration {
    let took = started.elapsed();
    metrics::request_finished(answered.status, took.as_micros() as u64);
    statsd::request(answered.status, took.as_micros() as u64);
    if logged && logging::access_enabled() {
        logging::access(logging::Access {
            head,
            peer: conn.peer(),
            status: answered.status,
            bytes: answered.body_bytes,
            micros: took.as_micros() as u64,
            response_headers: None,
            environ: &[],
        });
    }
    took
}

/// Answers one request. Returns the connection and what was sent.
fn handle(ctx: &Context, mut conn: Box<Connection>, head: &Head) -> (Box<Connection>, Answered) {
    if let Framing::Length(length) = head.framing
        && ctx.call.max_body > 0
        && length > ctx.call.max_body
    {
        let detail = format!(
            "The request body is larger than the limit of {} bytes.",
            ctx.call.max_body
        );
        let reply = error_response(413, &detail);
        let _ = conn.write_blocking(&[&reply], ctx.call.io_timeout);
        return (conn, Answered::new(413, body_length(&reply), false));
    }
    match target_form(head.method(), head.target()) {
        TargetForm::Path => {}
        TargetForm::ServerWide(kind) => return answer_server_wide(ctx, conn, head, kind),
        TargetForm::Invalid => {
            let detail = "This method takes a path as its target.";
            return answer(ctx, conn, head, 400, detail);
        }
    }
    let (raw_path, query) = split_target(head.target());
    let path = decode_path(raw_path);
    match ctx
        .router
        .route(&path, |root, rest| static_files::exists(root, rest))
    {
        Route::Static { root, rest } => {
            let served =
                static_files::serve(&mut conn, head, root, &rest, raw_path, ctx.call.io_timeout);
            (conn, served.unwrap_or(Answered::new(500, 0, false)))
        }
        Route::Script {
            name,
            script_name,
            path_info,
        } => Python::attach(|py| {
            let application = match ctx.scripts.application(py, &name) {
                Ok(application) => application,
                Err(ScriptError::Missing) => return answer(ctx, conn, head, 404, ""),
                Err(ScriptError::Broken { traceback }) => {
                    crate::log_error!(
                        "cannot load script {name} for \"{}\":\n{traceback}",
                        head.request_line()
                    );
                    let detail = if ctx.call.debug {
                        traceback.as_str()
                    } else {
                        ""
                    };
                    return answer(ctx, conn, head, 500, detail);
                }
            };
            let target = AppTarget {
                callable: application.bind(py),
                name: &name,
            };
            run_app(
                ctx,
                py,
                target,
                conn,
                head,
                (&script_name, &path_info, query),
            )
        }),
        Route::App {
            index,
            script_name,
            path_info,
        } => run_mounted_app(ctx, index, conn, head, (&script_name, &path_info, query)),
        Route::NotFound => answer(ctx, conn, head, 404, ""),
    }
}

/// `OPTIONS *` and `CONNECT host:port` go to the app mounted at `/` (PATH_INFO `*` for the
/// one, empty for the other; REQUEST_URI is the target as sent), as gunicorn does. Without
/// one the server answers: OPTIONS with 200 and the methods it serves, CONNECT (a proxy's
/// method) with 405.
fn answer_server_wide(
    ctx: &Context,
    mut conn: Box<Connection>,
    head: &Head,
    kind: ServerWide,
) -> (Box<Connection>, Answered) {
    if let Some(index) = ctx.router.root_app() {
        let path_info: &[u8] = match kind {
            ServerWide::Options => b"*",
            ServerWide::Connect => b"",
        };
        return run_mounted_app(ctx, index, conn, head, (b"", path_info, b""));
    }
    let allow = b"Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n";
    let keep_alive = head.keep_alive && head.framing == Framing::Empty;
    let (status, page) = match kind {
        ServerWide::Options => (200, String::new()),
        ServerWide::Connect => (405, error_page(405, "This server is not a proxy.")),
    };
    let reply = simple_response(status, allow, &page, keep_alive, head.is_head());
    let written = conn.write_blocking(&[&reply], ctx.call.io_timeout).is_ok();
    (
        conn,
        Answered::new(status, page.len() as u64, keep_alive && written),
    )
}

/// Runs the app mounted as number `index`; `split` is (SCRIPT_NAME, PATH_INFO, QUERY_STRING).
fn run_mounted_app(
    ctx: &Context,
    index: usize,
    conn: Box<Connection>,
    head: &Head,
    split: (&[u8], &[u8], &[u8]),
) -> (Box<Connection>, Answered) {
    Python::attach(|py| {
        let app = &ctx.apps[index];
        let target = AppTarget {
            callable: app.callable.bind(py),
            name: &app.name,
        };
        run_app(ctx, py, target, conn, head, split)
    })
}

/// The application answering a request, and its name for logs.
struct AppTarget<'a, 'py> {
    callable: &'a Bound<'py, PyAny>,
    name: &'a str,
}

/// Runs a WSGI call for the request; `split` is (SCRIPT_NAME, PATH_INFO, QUERY_STRING).
fn run_app(
    ctx: &Context,
    py: Python<'_>,
    app: AppTarget<'_, '_>,
    mut conn: Box<Connection>,
    head: &Head,
    split: (&[u8], &[u8], &[u8]),
) -> (Box<Connection>, Answered) {
    let (script_name, path_info, query) = split;
    let place = place(&mut conn, script_name, path_info, query);
    let template = ctx.environ_template.bind(py);
    activity::app_call_started(conn.fd());
    let answered = call::run(
        py,
        app.callable,
        app.name,
        template,
        head,
        conn,
        &place,
        &ctx.call,
    );
    activity::app_call_ended();
    answered
}

fn place<'a>(
    conn: &mut Connection,
    script_name: &'a [u8],
    path_info: &'a [u8],
    query: &'a [u8],
) -> RequestPlace<'a> {
    RequestPlace {
        script_name,
        path_info,
        query,
        peer: conn.peer(),
        addresses: conn.address_text(),
        https: conn.client_used_tls(),
        client_cert: conn.client_cert(),
    }
}

/// A health probe (--health-path), answered without the app; never cached.
fn answer_probe(
    ctx: &Context,
    conn: Box<Connection>,
    head: &Head,
    probe: Probe,
) -> (Box<Connection>, Answered) {
    let (status, body) = ctx.health.as_ref().map_or((404, ""), |h| h.answer(probe));
    let no_store = b"Cache-Control: no-store\r\n";
    send_small(ctx, conn, head, (status, b"text/plain", no_store), body)
}

/// A small error page from the server itself.
fn answer(
    ctx: &Context,
    conn: Box<Connection>,
    head: &Head,
    status: u16,
    detail: &str,
) -> (Box<Connection>, Answered) {
    let page = error_page(status, detail);
    send_small(ctx, conn, head, (status, b"text/html", b""), &page)
}

/// Sends a small answer the server makes itself: `(status, media type, extra header lines)`
/// and the body. The connection stays open when the request had no body to skip.
fn send_small(
    ctx: &Context,
    mut conn: Box<Connection>,
    head: &Head,
    (status, media_type, extra_headers): (u16, &[u8], &[u8]),
    body: &str,
) -> (Box<Connection>, Answered) {
    let keep_alive = head.keep_alive && head.framing == Framing::Empty;
    let reply = text_response(
        status,
        extra_headers,
        media_type,
        body,
        keep_alive,
        head.is_head(),
    );
    let written = conn.write_blocking(&[&reply], ctx.call.io_timeout).is_ok();
    let bytes = if head.is_head() { 0 } else { body.len() as u64 };
    (conn, Answered::new(status, bytes, keep_alive && written))
}
