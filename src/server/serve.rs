//! Serving a connection to completion on the thread that took it: parse each request head,
//! route it, answer it, and loop for pipelined or keep-alive requests until the socket has
//! nothing more, then hand the connection back to the event loop.
use std::sync::atomic::Ordering;
use std::time::Instant;

use pyo3::prelude::*;

use super::activity;
use super::context::Context;
use crate::http::body::Framing;
use crate::http::request::{Head, parse_head};
use crate::http::response::{error_page, error_response, simple_response};
use crate::net::connection::Connection;
use crate::net::event_loop::Work;
use crate::route::{Route, decode_path, split_target};
use crate::static_files;
use crate::wsgi::call;
use crate::wsgi::environ::RequestPlace;
use crate::wsgi::scripts::ScriptError;

enum Next {
    Request(Head),
    /// Nothing complete yet: back to the loop until more input arrives.
    Wait,
    Close,
}

pub fn serve(ctx: &Context, work: Work) {
    let Work { token, mut conn } = work;
    loop {
        match next_request(ctx, &mut conn) {
            Next::Wait => return ctx.event_loop.park(token, conn),
            Next::Close => return ctx.event_loop.close(token),
            Next::Request(mut head) => {
                if ctx.event_loop.is_stopping() {
                    head.keep_alive = false;
                }
                let (returned, reusable) = handle(ctx, conn, &head);
                conn = returned;
                conn.served += 1;
                let served = ctx.requests.fetch_add(1, Ordering::Relaxed) + 1;
                if served == ctx.retire_after {
                    // --max-requests: stop accepting now; the worker's main thread retires it.
                    ctx.event_loop.stop();
                }
                if !reusable {
                    return ctx.event_loop.close(token);
                }
            }
        }
    }
}

fn next_request(ctx: &Context, conn: &mut Connection) -> Next {
    loop {
        if !conn.input.is_empty() {
            match parse_head(&mut conn.input, ctx.limits) {
                Ok(Some(head)) => {
                    conn.head_started = None;
                    return Next::Request(head);
                }
                Ok(None) => {
                    let started = *conn.head_started.get_or_insert_with(Instant::now);
                    if started.elapsed() > ctx.header_timeout {
                        let _ =
                            conn.write_blocking(&[&error_response(408, "")], ctx.call.io_timeout);
                        return Next::Close;
                    }
                }
                Err(err) => {
                    let reply = error_response(err.status, err.reason);
                    let _ = conn.write_blocking(&[&reply], ctx.call.io_timeout);
                    return Next::Close;
                }
            }
        }
        match conn.read_available() {
            Ok(Some(0)) | Err(_) => return Next::Close,
            Ok(Some(_)) => {}
            Ok(None) => return Next::Wait,
        }
    }
}

/// Answers one request. Returns the connection and whether it may be reused.
fn handle(ctx: &Context, mut conn: Connection, head: &Head) -> (Connection, bool) {
    if let Framing::Length(length) = head.framing
        && ctx.call.max_body > 0
        && length > ctx.call.max_body
    {
        let detail = format!(
            "The request body is larger than the limit of {} bytes.",
            ctx.call.max_body
        );
        let _ = conn.write_blocking(&[&error_response(413, &detail)], ctx.call.io_timeout);
        return (conn, false);
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
            let reusable = served.unwrap_or(false);
            (conn, reusable)
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
                    eprintln!(
                        "wsgihost: cannot load script {name} for \"{}\":\n{traceback}",
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
            let place = place(&conn, &script_name, &path_info, query);
            let template = ctx.environ_template.bind(py);
            activity::app_call_started(conn.fd());
            let answered = call::run(
                py,
                application.bind(py),
                &name,
                template,
                head,
                conn,
                &place,
                &ctx.call,
            );
            activity::app_call_ended();
            answered
        }),
        Route::App {
            index,
            script_name,
            path_info,
        } => Python::attach(|py| {
            let app = &ctx.apps[index];
            let place = place(&conn, &script_name, &path_info, query);
            let template = ctx.environ_template.bind(py);
            activity::app_call_started(conn.fd());
            let answered = call::run(
                py,
                app.callable.bind(py),
                &app.name,
                template,
                head,
                conn,
                &place,
                &ctx.call,
            );
            activity::app_call_ended();
            answered
        }),
        Route::NotFound => answer(ctx, conn, head, 404, ""),
    }
}

fn place<'a>(
    conn: &Connection,
    script_name: &'a [u8],
    path_info: &'a [u8],
    query: &'a [u8],
) -> RequestPlace<'a> {
    RequestPlace {
        script_name,
        path_info,
        query,
        peer: conn.peer,
        local: conn.local,
    }
}

/// A small error page from the server itself; the connection stays open when the request
/// had no body to skip.
fn answer(
    ctx: &Context,
    mut conn: Connection,
    head: &Head,
    status: u16,
    detail: &str,
) -> (Connection, bool) {
    let keep_alive = head.keep_alive && head.framing == Framing::Empty;
    let page = error_page(status, detail);
    let reply = simple_response(status, b"", &page, keep_alive, head.is_head());
    let written = conn.write_blocking(&[&reply], ctx.call.io_timeout).is_ok();
    (conn, keep_alive && written)
}
