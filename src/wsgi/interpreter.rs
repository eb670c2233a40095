//! Starting and stopping the embedded interpreter: the build's own CPython, with
//! sys.executable pointing at the real interpreter, Python's signal handlers left out (the
//! server owns signals) and the scripts folder and working directory on sys.path.
use std::ffi::CString;
use std::path::Path;

use anyhow::{Context, Result, bail};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyModule;

/// The interpreter this binary was built and linked against.
pub const BUILD_PYTHON: &str = env!("WSGIHOST_PYTHON_EXECUTABLE");
pub const BUILD_VERSION: &str = env!("WSGIHOST_PYTHON_VERSION");

/// A running interpreter; `finalize` shuts it down so atexit handlers run.
pub struct Interpreter {
    main_thread_state: *mut ffi::PyThreadState,
}

/// Initialises CPython in this process. Call once, before starting Python threads.
/// With a virtualenv, sys.executable is the venv's python, so CPython's own start-up finds
/// its pyvenv.cfg and sets sys.prefix and site-packages (and .pth files) exactly as running
/// that python would.
pub fn start(sys_path_front: &[&Path], venv: Option<&Path>) -> Result<Interpreter> {
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
        let path = sys.getattr("path")?;
        for (index, dir) in sys_path_front.iter().enumerate() {
            let dir = std::path::absolute(dir)?;
            path.call_method1("insert", (index, dir.to_string_lossy().as_ref()))?;
        }
        Ok(())
    });
    // SAFETY: this thread holds the GIL after initialisation; release it for worker threads.
    let main_thread_state = unsafe { ffi::PyEval_SaveThread() };
    setup?;
    Ok(Interpreter { main_thread_state })
}

impl Interpreter {
    /// fork(2) with CPython's hooks around it (--preload): the child continues with a
    /// working interpreter. Returns the child's pid in the parent and 0 in the child.
    pub fn fork(&mut self) -> std::io::Result<i32> {
        // SAFETY: the GIL is taken for the hooks and released again on both sides; the
        // caller has no other threads.
        unsafe {
            ffi::PyEval_RestoreThread(self.main_thread_state);
            ffi::PyOS_BeforeFork();
            let pid = libc::fork();
            if pid == 0 {
                ffi::PyOS_AfterFork_Child();
            } else {
                ffi::PyOS_AfterFork_Parent();
            }
            self.main_thread_state = ffi::PyEval_SaveThread();
            if pid < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(pid)
        }
    }

    /// Runs atexit handlers and frees the interpreter. All Python threads must have ended.
    pub fn finalize(self) {
        // SAFETY: the state saved at start belongs to this (the main) thread.
        unsafe {
            ffi::PyEval_RestoreThread(self.main_thread_state);
            ffi::Py_FinalizeEx();
        }
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

unsafe fn check(status: ffi::PyStatus, what: &str) -> Result<()> {
    // SAFETY: status comes straight from a CPython config call.
    if unsafe { ffi::PyStatus_Exception(status) } != 0 {
        let message = if status.err_msg.is_null() {
            "unknown error".to_string()
        } else {
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
