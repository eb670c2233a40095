//! `wsgihost._wsgihost`, the extension module behind the pip-installed `wsgihost` command
//! and `python -m wsgihost`: the same server as the binary, run in the interpreter that
//! imported it (so the app sees that venv's sys.executable and sys.prefix).
use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;

use crate::server::Exit;
use crate::wsgi::interpreter::{self, Host};

#[pymodule]
fn _wsgihost(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(run, module)?)
}

/// Runs the server with these command-line arguments (the first is the program name) and
/// returns the exit code: the master's, or in each forked worker that worker's. The GIL
/// is let go for the whole run: the master holds none while it supervises.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<OsString>) -> PyResult<i32> {
    let sys = py.import("sys")?;
    let version: String = sys.getattr("version")?.extract()?;
    let prefix: PathBuf = sys.getattr("prefix")?.extract()?;
    let base_prefix: PathBuf = sys.getattr("base_prefix")?.extract()?;
    interpreter::set_host(Host {
        version: version.split_whitespace().next().unwrap_or("").to_string(),
        executable: sys.getattr("executable")?.extract()?,
        in_venv: prefix != base_prefix,
        prefix,
    });
    match py.detach(|| crate::cli::run(argv)) {
        Exit::Code(code) => Ok(code),
        at_once => at_once.end_process(),
    }
}
