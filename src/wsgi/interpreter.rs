//! Starting and stopping the interpreter. Two ways: the wsgihost binary embeds the build's
//! own CPython and starts it (sys.executable pointing at the real interpreter, or a venv's,
//! Python's signal handlers left out: the server owns signals); the pip-installed command
//! is an extension module in a `python` that is already running (`Host::Python`), and
//! adopts that interpreter. Either way the scripts folder and working directory go on
//! sys.path, and forks go through CPython's fork hooks.
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyModule;

/// The interpreter this binary was built and linked against.
pub const BUILD_PYTHON: &str = env!("WSGIHOST_PYTHON_EXECUTABLE");
pub const BUILD_VERSION: &str = env!("WSGIHOST_PYTHON_VERSION");

/// The interpreter that imported the extension module (the pip-installed command).
pub struct Host {
    /// `sys.version`'s first word, e.g. 3.12.1.
    pub version: String,
    pub executable: String,
    pub prefix: PathBuf,
    /// sys.prefix differs from sys.base_prefix.
    pub in_venv: bool,
}

static HOST: OnceLock<Host> = OnceLock::new();

/// Called by the extension module before anything else: Python is already running.
pub fn set_host(host: Host) {
    let _ = HOST.set(host);
}

/// The running interpreter this process was started from, if any (None: the binary).
pub fn host() -> Option<&'static Host> {
    HOST.get()
}

/// The Python in use, for the start-up banner.
pub fn describe(venv: Option<&Path>) -> String {
    match host() {
        Some(host) if host.in_venv => {
            format!("Python {} of venv {}", host.version, host.prefix.display())
        }
        Some(host) => format!("Python {} ({})", host.version, host.executable),
        None => {
            let version = BUILD_VERSION
                .split_whitespace()
                .next()
                .unwrap_or(BUILD_VERSION);
            let venv = venv.map_or("no venv".to_string(), |v| format!("venv {}", v.display()));
            format!("Python {version}, {venv}")
        }
    }
}

/// The state the main thread saved when it let go of the GIL after starting Python, in a
/// process whose interpreter wsgihost started (the binary's; a forked worker inherits its
/// master's). None: not started here (the host's, or none yet).
struct MainThreadState(*mut ffi::PyThreadState);

// SAFETY: only the main thread uses the pointer (to take the GIL back for a fork or for
// finalizing); the mutex just keeps it in a static.
unsafe impl Send for MainThreadState {}

static STARTED: Mutex<Option<MainThreadState>> = Mutex::new(None);

fn started() -> std::sync::MutexGuard<'static, Option<MainThreadState>> {
    STARTED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether Python runs in this process (the host's, or one started here).
pub fn is_running() -> bool {
    host().is_some() || started().is_some()
}

/// Makes sure Python runs in this process, with `sys_path_front` first on sys.path: the
/// host's interpreter, one started before (in this process, or in the master this worker
/// was forked from), or a new one. With a virtualenv, sys.executable is the venv's python,
/// so CPython's own start-up finds its pyvenv.cfg and sets sys.prefix and site-packages
/// (and .pth files) exactly as running that python would. Call before starting Python
/// threads.
pub fn start(sys_path_front: &[&Path], venv: Option<&Path>) -> Result<()> {
    if is_running() {
        return Python::attach(|py| put_on_sys_path(py, sys_path_front));
    }
    let executable = match venv {
        Some(venv) => venv_python(venv)?,
        None => BUILD_PYTHON.to_string(),
    };
    // SAFETY: a fresh PyConfig is initialised, filled through the C API and cleared.
    unsafe {
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        let executable = CString::new(executable)?;
        let status =
            ffi::PyConfig_SetBytesString(&mut config, &mut config.executable, executable.as_ptr());
        check(status, "setting sys.executable")?;
        let argv0 = CString::new("wsgihost")?;
        let mut argv = [argv0.as_ptr()];
        check(
            ffi::PyConfig_SetBytesArgv(&mut config, 1, argv.as_mut_ptr()),
            "setting sys.argv",
        )?;
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        check(status, "initialising Python")?;
    }
    let setup = Python::attach(|py| -> Result<()> {
        let sys = py.import("sys")?;
        let version: String = sys.getattr("version")?.extract()?;
        if version != BUILD_VERSION {
            bail!(
                "embedded Python is {version}, but wsgihost was built for {BUILD_VERSION} ({BUILD_PYTHON}); rebuild it"
            );
        }
        put_on_sys_path(py, sys_path_front)
    });
    // SAFETY: this thread holds the GIL after initialisation; release it for worker threads.
    *started() = Some(MainThreadState(unsafe { ffi::PyEval_SaveThread() }));
    setup
}

/// Sets an environment variable for this process and the Python running in it (whose
/// os.environ is a copy taken at its start). Call while single-threaded.
pub fn set_env(key: &str, value: &str) -> PyResult<()> {
    if is_running() {
        return Python::attach(|py| py.import("os")?.getattr("environ")?.set_item(key, value));
    }
    // SAFETY: called while the process is single-threaded (start-up, or just forked), so no
    // other thread reads the environment meanwhile.
    unsafe { std::env::set_var(key, value) };
    Ok(())
}

fn put_on_sys_path(py: Python<'_>, dirs: &[&Path]) -> Result<()> {
    let path = py.import("sys")?.getattr("path")?;
    for (index, dir) in dirs.iter().enumerate() {
        let dir = std::path::absolute(dir)?;
        path.call_method1("insert", (index, dir.to_string_lossy().as_ref()))?;
    }
    Ok(())
}

/// fork(2) for a new worker (or a check): plain when no Python runs here (the binary's
/// master without a Python config file or --preload); otherwise with CPython's fork hooks
/// around it, so the child continues with a working interpreter. Returns the child's pid
/// in the parent and 0 in the child.
pub fn fork() -> std::io::Result<i32> {
    let mut state = started();
    let pid = match (host(), state.take()) {
        // SAFETY: the hooks run with the GIL held, as os.fork() runs them.
        (Some(_), None) => Python::attach(|_| unsafe { fork_with_hooks() }),
        // SAFETY: the GIL is taken back with the state the main thread saved, held for the
        // hooks and released again on both sides; the caller runs no other Python thread.
        (_, Some(saved)) => unsafe {
            ffi::PyEval_RestoreThread(saved.0);
            let pid = fork_with_hooks();
            *state = Some(MainThreadState(ffi::PyEval_SaveThread()));
            pid
        },
        // SAFETY: no Python and no other thread here: the child starts in a consistent state.
        (None, None) => unsafe { libc::fork() },
    };
    match pid {
        pid if pid < 0 => Err(std::io::Error::last_os_error()),
        pid => Ok(pid),
    }
}

/// fork(2) between PyOS_BeforeFork and PyOS_AfterFork_*.
///
/// # Safety
/// The interpreter is initialized, the calling thread holds the GIL, and no other thread
/// runs Python (the child would inherit it mid-call).
unsafe fn fork_with_hooks() -> i32 {
    // SAFETY: the caller's promise above.
    unsafe {
        ffi::PyOS_BeforeFork();
        let pid = libc::fork();
        if pid == 0 {
            ffi::PyOS_AfterFork_Child();
        } else {
            ffi::PyOS_AfterFork_Parent();
        }
        pid
    }
}

/// Runs atexit handlers and frees the interpreter, if this process started it (the host's
/// ends when the `python` that started us returns). All Python threads must have ended.
pub fn finalize() {
    let Some(saved) = started().take() else {
        return;
    };
    // SAFETY: the state saved at start belongs to this (the main) thread.
    unsafe {
        ffi::PyEval_RestoreThread(saved.0);
        ffi::Py_FinalizeEx();
    }
}

/// The venv's interpreter path, after checking the venv was made by the same Python
/// minor version as the embedded one (its compiled packages would not load otherwise).
pub fn venv_python(venv: &Path) -> Result<String> {
    let venv = std::path::absolute(venv)?;
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).with_context(|| {
        format!(
            "{} is not a virtualenv (no readable pyvenv.cfg)",
            venv.display()
        )
    })?;
    let version = cfg
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| matches!(key.trim(), "version" | "version_info"))
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default();
    let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    let embedded = BUILD_VERSION
        .split_whitespace()
        .next()
        .unwrap_or(BUILD_VERSION);
    if minor(&version) != minor(embedded) {
        bail!(
            "virtualenv {} uses Python {version}, but wsgihost embeds Python {embedded}; create the venv with {BUILD_PYTHON} -m venv, or rebuild wsgihost with PYO3_PYTHON pointing at that venv's Python",
            venv.display()
        );
    }
    Ok(venv
        .join("bin")
        .join("python")
        .to_string_lossy()
        .into_owned())
}

/// Turns a PyStatus into an error naming `what` failed.
///
/// # Safety
/// `status` is what a CPython configuration call just returned (its `err_msg`, if set,
/// points at a static NUL-terminated string).
unsafe fn check(status: ffi::PyStatus, what: &str) -> Result<()> {
    // SAFETY: the caller's promise above.
    if unsafe { ffi::PyStatus_Exception(status) } != 0 {
        let message = if status.err_msg.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: a non-null err_msg of a PyStatus is a static NUL-terminated string.
            unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
                .to_string_lossy()
                .into_owned()
        };
        bail!("{what}: {message}");
    }
    Ok(())
}

/// The embedded loader module (src/wsgi/loader.py), compiled once per interpreter.
pub fn loader(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    static LOADER: pyo3::sync::PyOnceLock<Py<PyModule>> = pyo3::sync::PyOnceLock::new();
    let module = LOADER.get_or_try_init(py, || {
        PyModule::from_code(
            py,
            &CString::new(include_str!("loader.py")).expect("no NUL in loader.py"),
            c"wsgihost_loader.py",
            c"wsgihost_loader",
        )
        .map(Bound::unbind)
    })?;
    Ok(module.bind(py).clone())
}

/// A thread the server started takes threading's trace and profile hooks (coverage's
/// tracer, a profiler), as a Python thread does when it starts; a failure is logged.
pub fn adopt_thread_hooks(py: Python<'_>) {
    if let Err(err) = loader(py).and_then(|loader| loader.call_method0("adopt_thread_hooks")) {
        crate::log_error!("taking threading.settrace's hook for a server thread: {err}");
    }
}

/// Imports the `module:callable` application, as the error message wants it at start-up.
pub fn load_app(py: Python<'_>, spec: &str) -> Result<Py<PyAny>> {
    loader(py)
        .and_then(|loader| loader.call_method1("load_app", (spec,)))
        .map(Bound::unbind)
        .map_err(|err| {
            let traceback = super::errors::format_traceback(py, &err);
            anyhow::anyhow!("cannot load application {spec}:\n{traceback}")
        })
        .context("loading the application")
}
