//! The command line, shared by the wsgihost binary (src/main.rs) and the pip-installed
//! command (src/pymodule.rs): parse the flags, prepare the process, run the server.
use std::ffi::OsString;

use pyo3::prelude::*;

use crate::wsgi::interpreter;
use crate::{config, logging, server};

/// Runs wsgihost with these arguments (the first is the program name); returns the exit
/// code for this process (the master's, or a forked worker's).
pub fn run(args: Vec<OsString>) -> i32 {
    let config = config::Config::parse_from_iter(args);
    if let Some(dir) = &config.chdir
        && let Err(err) = std::env::set_current_dir(dir)
    {
        config::usage_error(&format!("--chdir {}: {err}", dir.display()));
    }
    set_environment(&config.env_vars);
    if let Err(err) = logging::init(
        config.log_level,
        config.log_format,
        &config.access_log,
        &config.access_log_format,
    ) {
        config::usage_error(&format!("{err:#}"));
    }
    match server::run(&config) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("wsgihost: {err:#}");
            1
        }
    }
}

/// --env: before the app is imported. A running host interpreter took its copy of the
/// environment at start, so its os.environ is updated too (which sets the process's).
fn set_environment(vars: &[(String, String)]) {
    if interpreter::host().is_none() {
        for (key, value) in vars {
            // SAFETY: still single-threaded; workers and Python inherit the variables.
            unsafe { std::env::set_var(key, value) };
        }
        return;
    }
    let updated = Python::attach(|py| -> PyResult<()> {
        let environ = py.import("os")?.getattr("environ")?;
        for (key, value) in vars {
            environ.set_item(key, value)?;
        }
        Ok(())
    });
    if let Err(err) = updated {
        config::usage_error(&format!("--env: {err}"));
    }
}
