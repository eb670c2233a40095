//! Everything the threads of a worker share while serving.
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::health::HealthProbes;
use super::preface::ProxyPolicy;
use super::slow_routes::SlowRoutes;
use crate::http::request::HeadLimits;
use crate::net::event_loop::EventLoop;
use crate::route::Router;
use crate::wsgi::call::CallSettings;
use crate::wsgi::scripts::ScriptCache;

/// A WSGI application mounted with `APP` (`module:callable`).
pub struct MountedApp {
    pub name: String,
    pub callable: Py<PyAny>,
}

pub struct Context {
    pub event_loop: EventLoop,
    pub router: Router,
    pub scripts: ScriptCache,
    pub apps: Vec<MountedApp>,
    pub environ_template: Py<PyDict>,
    pub limits: HeadLimits,
    pub call: CallSettings,
    pub header_timeout: Duration,
    /// False with --keep-alive 0: every response closes its connection.
    pub keep_alive: bool,
    pub slow_routes: SlowRoutes,
    /// --health-path: the probes this worker answers itself.
    pub health: Option<HealthProbes>,
    /// --proxy-protocol: which PROXY headers are read, and from whom.
    pub proxy_policy: Option<ProxyPolicy>,
    /// Requests answered by this worker (for --max-requests).
    pub requests: AtomicU64,
    /// --max-requests plus this worker's jitter (0 = never): reaching it wakes the main
    /// thread (`main_thread`), which asks the master for a replacement.
    pub retire_after: u64,
    pub main_thread: std::thread::Thread,
}
