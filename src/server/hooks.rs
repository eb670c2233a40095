//! gunicorn's server hooks, defined as functions in a Python configuration file, called
//! with gunicorn's arguments at gunicorn's call points: in the master (which then runs an
//! interpreter of its own, see docs/ARCHITECTURE.md), in each worker after its fork, and
//! around each request. The objects they get (server, worker, req, resp) come from
//! hooks.py. Without hooks nothing here runs: every call returns at its first check.
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::config::gunicorn::{self, GunicornDefault, Takes, Treatment};
use crate::config::{Config, WorkerClass, python_file};
use crate::http::request::Head;
use crate::logging::Level;
use crate::wsgi::call::AroundRequest;

/// A hook raised (its traceback is logged).
#[derive(Debug)]
pub struct HookFailed;

pub type HookResult = Result<(), HookFailed>;

struct Hooks {
    /// The Server object (gunicorn's Arbiter) every hook of the master and workers gets.
    server: Py<PyAny>,
    /// The Worker class.
    worker_class: Py<PyAny>,
    /// The hooks the file defines, by name.
    defined: Vec<(&'static str, Py<PyAny>)>,
    requests: RequestHooks,
    /// --timeout: a hook the worker's main thread runs longer than this is dumped and killed.
    timeout: Option<Duration>,
}

/// pre_request and post_request, for request threads.
pub struct RequestHooks {
    pre: Option<Py<PyAny>>,
    /// With the number of arguments it takes: 2, 3 or 4 (gunicorn's forms).
    post: Option<(Py<PyAny>, usize)>,
    request_class: Py<PyAny>,
    response_class: Py<PyAny>,
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();
/// In a worker process: its Worker object.
static THIS_WORKER: OnceLock<Py<PyAny>> = OnceLock::new();

/// The embedded module with the hook objects (src/server/hooks.py).
fn objects(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    static MODULE: pyo3::sync::PyOnceLock<Py<PyModule>> = pyo3::sync::PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || {
        PyModule::from_code(
            py,
            &std::ffi::CString::new(include_str!("hooks.py")).expect("no NUL in hooks.py"),
            c"wsgihost_hooks.py",
            c"wsgihost_hooks",
        )
        .map(Bound::unbind)
    })?;
    Ok(module.bind(py).clone())
}

/// Log messages from hooks (`server.log.info(...)`), at Python's logging levels.
#[pyfunction]
fn emit(level: u32, message: &str) {
    let level = match level {
        0..=10 => Level::Debug,
        11..=20 => Level::Info,
        21..=30 => Level::Warning,
        31..=40 => Level::Error,
        _ => Level::Critical,
    };
    crate::logging::log(level, message);
}

/// In the master, once the configuration is read: takes the hooks a Python configuration
/// file defines and makes the server object they get. Nothing without such a file.
pub fn install(config: &Config) -> anyhow::Result<()> {
    if !config.origin.python_file {
        return Ok(());
    }
    let hooks = Python::attach(|py| -> PyResult<Hooks> {
        let module = objects(py)?;
        let log = module
            .getattr("Log")?
            .call1((wrap_pyfunction!(emit, py)?,))?;
        let cfg = module
            .getattr("Config")?
            .call1((cfg_values(py, config)?,))?;
        let name = config.name.clone().unwrap_or_else(|| "wsgihost".into());
        let server = module
            .getattr("Server")?
            .call1((cfg, log, std::process::id(), name))?;
        let runner = python_file::module(py)?;
        let mut defined = Vec::new();
        for name in &config.origin.hooks {
            let Some(setting) = gunicorn::find(name) else {
                continue;
            };
            let hook = runner.call_method1("hook", (name,))?;
            if !hook.is_none() {
                defined.push((setting.name, hook.unbind()));
            }
        }
        let find = |name: &str| {
            defined
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, hook)| hook.clone_ref(py))
        };
        let post = match find("post_request") {
            Some(hook) => {
                let arity: usize = runner.call_method1("arity", (&hook,))?.extract()?;
                Some((hook, arity))
            }
            None => None,
        };
        Ok(Hooks {
            requests: RequestHooks {
                pre: find("pre_request"),
                post,
                request_class: module.getattr("Request")?.unbind(),
                response_class: module.getattr("Response")?.unbind(),
            },
            server: server.unbind(),
            worker_class: module.getattr("Worker")?.unbind(),
            defined,
            timeout: config.app_timeout(),
        })
    })
    .map_err(|err| {
        let traceback = Python::attach(|py| crate::wsgi::errors::format_traceback(py, &err));
        anyhow::anyhow!("setting up the server hooks:\n{traceback}")
    })?;
    let _ = HOOKS.set(hooks);
    Ok(())
}

fn hooks() -> Option<&'static Hooks> {
    HOOKS.get()
}

impl Hooks {
    fn hook(&self, name: &str) -> Option<&Py<PyAny>> {
        self.defined
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h)
    }
}

/// Calls hook `name` with `args` if the file defines it; its traceback is logged when it
/// raises. `guarded`: in a worker's main thread, where a hook that hangs past --timeout
/// has its stack dumped and the worker killed (Python's faulthandler, which needs no GIL).
fn call<'py, A>(
    py: Python<'py>,
    name: &str,
    args: impl FnOnce(&Hooks) -> PyResult<A>,
    guarded: bool,
) -> HookResult
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let Some(hooks) = hooks() else {
        return Ok(());
    };
    let Some(hook) = hooks.hook(name) else {
        return Ok(());
    };
    let guard = match (guarded, hooks.timeout) {
        (true, Some(timeout)) => Some(watch(py, name, timeout)),
        _ => None,
    };
    let result = args(hooks).and_then(|args| hook.bind(py).call1(args));
    if let Some(Ok(faulthandler)) = guard {
        let _ = faulthandler.call_method0("cancel_dump_traceback_later");
    }
    result.map(drop).map_err(|err| {
        let traceback = crate::wsgi::errors::format_traceback(py, &err);
        crate::log_error!("the {name} hook raised:\n{traceback}");
        HookFailed
    })
}

/// Arms faulthandler to dump every thread's stack to the error log and end the process
/// if the hook runs past `timeout`.
fn watch<'py>(py: Python<'py>, name: &str, timeout: Duration) -> PyResult<Bound<'py, PyModule>> {
    let faulthandler = py.import("faulthandler")?;
    let fd = crate::logging::error_fd().unwrap_or(2);
    let kwargs = PyDict::new(py);
    kwargs.set_item("exit", true)?;
    kwargs.set_item("file", fd)?;
    crate::log_debug!("the {name} hook runs under --timeout {timeout:?}");
    faulthandler.call_method(
        "dump_traceback_later",
        (timeout.as_secs_f64(),),
        Some(&kwargs),
    )?;
    Ok(faulthandler)
}

// ---- the master ------------------------------------------------------------------

/// A master-side hook that takes only the server: on_starting, when_ready, on_reload,
/// pre_exec, on_exit.
pub fn server_hook(name: &str) -> HookResult {
    if hooks().is_none() {
        return Ok(());
    }
    Python::attach(|py| call(py, name, |h| Ok((h.server.clone_ref(py),)), false))
}

/// nworkers_changed(server, new_value, old_value); None: the first time (at start).
pub fn workers_changed(new: usize, old: Option<usize>) -> HookResult {
    let Some(hooks) = hooks() else {
        return Ok(());
    };
    Python::attach(|py| {
        let _ = hooks.server.bind(py).setattr("num_workers", new);
        call(
            py,
            "nworkers_changed",
            |h| Ok((h.server.clone_ref(py), new, old)),
            false,
        )
    })
}

/// The object a new worker is known by to the hooks: `age` counts the workers started,
/// `slot` is its place (0..workers-1). None without hooks.
pub fn new_worker(age: u64, slot: usize) -> Option<Py<PyAny>> {
    let hooks = hooks()?;
    Python::attach(|py| {
        let server = hooks.server.bind(py);
        let _ = server.setattr("worker_age", age);
        hooks
            .worker_class
            .bind(py)
            .call1((server, age, slot))
            .map(Bound::unbind)
            .ok()
    })
}

/// pre_fork(server, worker), in the master before the fork.
pub fn pre_fork(worker: &Py<PyAny>) -> HookResult {
    if hooks().is_none() {
        return Ok(());
    }
    Python::attach(|py| {
        call(
            py,
            "pre_fork",
            |h| Ok((h.server.clone_ref(py), worker.clone_ref(py))),
            false,
        )
    })
}

/// In the master after the fork: the worker's pid, in server.WORKERS.
pub fn forked(worker: &Py<PyAny>, pid: i32) {
    let Some(hooks) = hooks() else {
        return;
    };
    Python::attach(|py| {
        let worker = worker.bind(py);
        let _ = worker.setattr("pid", pid);
        if let Ok(workers) = hooks.server.bind(py).getattr("WORKERS") {
            let _ = workers.set_item(pid, worker);
        }
    });
}

/// child_exit(server, worker), in the master once a worker has exited.
pub fn child_exit(worker: &Py<PyAny>, pid: i32) -> HookResult {
    let Some(hooks) = hooks() else {
        return Ok(());
    };
    Python::attach(|py| {
        if let Ok(workers) = hooks.server.bind(py).getattr("WORKERS") {
            let _ = workers.del_item(pid);
        }
        call(
            py,
            "child_exit",
            |h| Ok((h.server.clone_ref(py), worker.clone_ref(py))),
            false,
        )
    })
}

// ---- a worker --------------------------------------------------------------------

/// In a worker just forked: this process is `worker` (its pid set).
pub fn become_worker(worker: Py<PyAny>) {
    Python::attach(|py| {
        let _ = worker.bind(py).call_method0("became");
    });
    let _ = THIS_WORKER.set(worker);
}

fn this_worker(py: Python<'_>) -> PyResult<Py<PyAny>> {
    THIS_WORKER
        .get()
        .map(|worker| worker.clone_ref(py))
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("not a worker"))
}

/// A hook of the worker's main thread: post_fork and worker_exit get (server, worker),
/// post_worker_init, worker_int and worker_abort (worker). Guarded by --timeout.
pub fn worker_hook(name: &str) -> HookResult {
    if hooks().is_none() || THIS_WORKER.get().is_none() {
        return Ok(());
    }
    Python::attach(|py| {
        let with_server = matches!(name, "post_fork" | "worker_exit");
        call(
            py,
            name,
            |h| {
                let worker = this_worker(py)?;
                Ok(match with_server {
                    true => PyTuple::new(py, [h.server.clone_ref(py), worker])?,
                    false => PyTuple::new(py, [worker])?,
                })
            },
            true,
        )
    })
}

/// Marks the worker booted (worker.booted), after post_worker_init.
pub fn booted() {
    if let Some(worker) = THIS_WORKER.get() {
        Python::attach(|py| {
            let _ = worker.bind(py).setattr("booted", true);
        });
    }
}

/// pre_request and post_request, when the file defines either.
pub fn request_hooks() -> Option<&'static dyn AroundRequest> {
    let hooks = hooks()?;
    let requests = &hooks.requests;
    (requests.pre.is_some() || requests.post.is_some()).then_some(requests as &dyn AroundRequest)
}

impl AroundRequest for RequestHooks {
    /// Makes `req` and calls pre_request(worker, req). Err: it raised (the request gets a
    /// 500 and the app is not called, as in gunicorn).
    fn before<'py>(
        &self,
        py: Python<'py>,
        head: &Head,
        https: bool,
        peer: Option<std::net::SocketAddr>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let headers = PyList::empty(py);
        for (name, value) in head.headers() {
            let name = String::from_utf8_lossy(name).to_ascii_uppercase();
            headers.append((name, crate::wsgi::environ::latin1(py, value)?))?;
        }
        let version = (1, head.minor_version);
        let peer = peer.map(|p| (p.ip().to_string(), p.port()));
        let req = self.request_class.bind(py).call1((
            crate::wsgi::environ::latin1(py, head.method())?,
            crate::wsgi::environ::latin1(py, head.target())?,
            version,
            headers,
            if https { "https" } else { "http" },
            peer,
        ))?;
        if let Some(pre) = &self.pre {
            pre.bind(py).call1((this_worker(py)?, &req))?;
        }
        Ok(req)
    }

    /// post_request(worker, req, environ, resp) with the arguments it takes; a raise is
    /// logged (the response is already sent).
    fn after(
        &self,
        py: Python<'_>,
        req: &Bound<'_, PyAny>,
        environ: &Bound<'_, PyDict>,
        status_line: &[u8],
        header_lines: &[u8],
        sent: u64,
    ) {
        let Some((post, arity)) = &self.post else {
            return;
        };
        let called = (|| -> PyResult<()> {
            let headers = PyList::empty(py);
            for line in header_lines.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Some(colon) = line.iter().position(|&b| b == b':') {
                    headers.append((
                        crate::wsgi::environ::latin1(py, &line[..colon])?,
                        crate::wsgi::environ::latin1(py, line[colon + 1..].trim_ascii())?,
                    ))?;
                }
            }
            let status = crate::wsgi::environ::latin1(py, status_line)?;
            let resp = self
                .response_class
                .bind(py)
                .call1((status, headers, sent))?;
            let worker = this_worker(py)?;
            match arity {
                2 => post.bind(py).call1((worker, req))?,
                3 => post.bind(py).call1((worker, req, environ))?,
                _ => post.bind(py).call1((worker, req, environ, resp))?,
            };
            Ok(())
        })();
        if let Err(err) = called {
            let traceback = crate::wsgi::errors::format_traceback(py, &err);
            crate::log_error!("the post_request hook raised:\n{traceback}");
        }
    }
}

// ---- server.cfg ------------------------------------------------------------------

/// Every gunicorn setting's effective value, by gunicorn's name: an option's value as the
/// setting's type, a hook or an unsupported setting as the file gave it (else None).
fn cfg_values<'py>(py: Python<'py>, config: &Config) -> PyResult<Bound<'py, PyDict>> {
    let values = PyDict::new(py);
    let runner = python_file::module(py)?;
    for setting in gunicorn::SETTINGS {
        let value = match setting.treatment {
            Treatment::Option(long) => option_value(py, setting, long, config)?,
            _ => runner.call_method1("setting", (setting.name,))?,
        };
        values.set_item(setting.name, value)?;
    }
    Ok(values)
}

fn option_value<'py>(
    py: Python<'py>,
    setting: &gunicorn::Setting,
    long: &str,
    config: &Config,
) -> PyResult<Bound<'py, PyAny>> {
    let effective = config.origin.effective.iter().find(|e| e.key == long);
    let values: Vec<String> = effective.map(|e| e.values.clone()).unwrap_or_default();
    let first = values.first().cloned();
    let number = |text: &str| -> PyResult<Bound<'py, PyAny>> {
        match text.parse::<f64>() {
            Ok(n) if n.fract() == 0.0 => Ok((n as i64).into_pyobject(py)?.into_any()),
            Ok(n) => Ok(n.into_pyobject(py)?.into_any()),
            Err(_) => Ok(text.into_pyobject(py)?.into_any()),
        }
    };
    Ok(match setting.name {
        "workers" => config.workers.into_pyobject(py)?.into_any(),
        "threads" => config.threads.into_pyobject(py)?.into_any(),
        "worker_class" => match (config.worker_class, config.threads) {
            (Some(WorkerClass::Sync), 1) | (None, 1) => "sync",
            _ => "gthread",
        }
        .into_pyobject(py)?
        .into_any(),
        "accesslog" if first.as_deref() == Some("off") => py.None().into_bound(py),
        "cert_reqs" => (config.cert_reqs as u8).into_pyobject(py)?.into_any(),
        _ if setting.takes == Takes::Nothing => (first.as_deref() == Some("true"))
            .into_pyobject(py)?
            .to_owned()
            .into_any(),
        _ if setting.takes == Takes::Values => PyList::new(py, &values)?.into_any(),
        _ => match first {
            None => py.None().into_bound(py),
            Some(text) if matches!(setting.default, GunicornDefault::Int(_)) => number(&text)?,
            Some(text)
                if matches!(
                    setting.name,
                    "timeout"
                        | "graceful_timeout"
                        | "keepalive"
                        | "max_requests"
                        | "max_requests_jitter"
                        | "umask"
                ) =>
            {
                number(&text)?
            }
            Some(text) => text.into_pyobject(py)?.into_any(),
        },
    })
}
