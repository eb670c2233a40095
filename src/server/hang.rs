//! What a worker reports when an app call (or a request hook) has made no progress for
//! --timeout, before the worker_abort hook and its replacement: the Python stack of every
//! thread serving a request, each with its request line, client and how long it has run.
//! gunicorn kills such a worker without a word about what it was doing.
//!
//! The stacks need the GIL, which the stuck call may hold for good (C code that never lets
//! go of it). So a helper thread takes it while the main thread waits a while; if it cannot,
//! Python's faulthandler (registered at start for `DUMP_SIGNAL`, and working without the
//! GIL) writes every thread's stack to the error log instead.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use pyo3::prelude::*;

use crate::instrument::activity::{self, Serving};

/// How long the main thread waits for the helper to get the GIL.
const GIL_WAIT: Duration = Duration::from_secs(2);

/// The signal faulthandler dumps every thread's stack on: a real-time one nothing else
/// uses (the first few are glibc's own).
fn dump_signal() -> i32 {
    libc::SIGRTMIN() + 5
}

/// At worker start, with --timeout: faulthandler dumps the stacks on `dump_signal`.
pub fn prepare() {
    let registered = Python::attach(|py| -> PyResult<()> {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("file", crate::logging::error_fd().unwrap_or(2))?;
        kwargs.set_item("all_threads", true)?;
        py.import("faulthandler")?
            .call_method("register", (dump_signal(),), Some(&kwargs))?;
        Ok(())
    });
    if let Err(err) = registered {
        crate::log_debug!("faulthandler is not available for --timeout reports: {err}");
    }
}

/// Reports the requests in progress (`limit`: --timeout), then calls worker_abort.
pub fn report(limit: Duration) {
    let pid = std::process::id();
    let serving = activity::serving();
    let (done, reported) = mpsc::channel();
    let abandoned = Arc::new(AtomicBool::new(false));
    let too_late = abandoned.clone();
    let helper = std::thread::Builder::new()
        .name("wsgihost-timeout".into())
        .spawn(move || {
            Python::attach(|py| {
                // Got the GIL only after the main thread gave up: the stacks are gone.
                if too_late.load(Ordering::Acquire) {
                    return;
                }
                for report in describe(py, pid, limit, &serving) {
                    crate::log_error!("{report}");
                }
                let _ = done.send(());
                let _ = super::hooks::worker_hook("worker_abort");
            })
        });
    if helper.is_err() || reported.recv_timeout(GIL_WAIT).is_err() {
        abandoned.store(true, Ordering::Release);
        crate::log_error!(
            "worker {pid}: an app call made no progress for over --timeout {limit:?} and holds the GIL; faulthandler's stacks of every thread follow (worker_abort cannot run)"
        );
        crate::logging::flush_errors();
        // SAFETY: sending ourselves a signal whose handler faulthandler installed.
        unsafe { libc::raise(dump_signal()) };
    }
}

/// One message per request in progress, the stalled ones first.
fn describe(py: Python<'_>, pid: u32, limit: Duration, serving: &[Serving]) -> Vec<String> {
    let frames = py
        .import("sys")
        .and_then(|sys| sys.call_method0("_current_frames"));
    let traceback = py.import("traceback");
    let mut ordered: Vec<&Serving> = serving.iter().collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.stalled.is_some_and(|stalled| stalled > limit)));
    ordered
        .into_iter()
        .map(|request| {
            let client = request
                .client
                .map_or("a unix socket".to_string(), |c| c.to_string());
            let state = match request.stalled {
                Some(stalled) if stalled > limit => format!(
                    "has made no progress for {:.1} s (over --timeout {limit:?})",
                    stalled.as_secs_f64()
                ),
                _ => "is being answered too".to_string(),
            };
            let stack = match (&frames, &traceback) {
                (Ok(frames), Ok(traceback)) => frames
                    .get_item(request.ident)
                    .and_then(|frame| traceback.call_method1("format_stack", (frame,)))
                    .and_then(|lines| lines.extract::<Vec<String>>())
                    .map(|lines| lines.concat())
                    .unwrap_or_else(|_| "  (no Python frame: the thread is in the server)\n".into()),
                _ => "  (the stacks cannot be read)\n".into(),
            };
            format!(
                "worker {pid}: \"{}\" from {client} {state}, running {:.1} s; its Python stack (most recent call last):\n{}",
                request.request,
                request.running.as_secs_f64(),
                stack.trim_end()
            )
        })
        .collect()
}
