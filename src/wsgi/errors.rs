//! Reporting application errors: full tracebacks to stderr, with the request they broke.
use std::collections::HashSet;
use std::sync::Mutex;

use pyo3::prelude::*;

/// The traceback of `err` as Python prints it.
pub fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py
        .import("traceback")
        .and_then(|tb| {
            tb.call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<String>>());
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => format!("{err}\n"),
    }
}

/// Logs an application error with the request it happened in.
pub fn log_app_error(py: Python<'_>, request_line: &str, app: &str, err: &PyErr) -> String {
    let traceback = format_traceback(py, err);
    crate::instrument::statsd::log_line("exception");
    crate::log_error!("error in {app} handling \"{request_line}\":\n{traceback}");
    traceback
}

static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Logs `message` about `app` once per process.
pub fn warn_once(app: &str, message: &str) {
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(format!("{app}\0{message}"))
    {
        crate::log_warn!("{app}: {message}");
    }
}
