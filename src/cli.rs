//! The command line, shared by the wsgihost binary (src/main.rs) and the pip-installed
//! command (src/pymodule.rs): parse the flags, prepare the process, run the server.
use std::ffi::OsString;

use crate::wsgi::interpreter;
use crate::{config, logging, server};

/// Runs wsgihost with these arguments (the first is the program name); returns the exit
/// code for this process (the master's, or a forked worker's).
pub fn run(args: Vec<OsString>) -> i32 {
    crate::server::upgrade::remember_command();
    let config = config::Config::parse_from_iter(args);
    if let Some(dir) = &config.chdir
        && let Err(err) = std::env::set_current_dir(dir)
    {
        config::usage_error(&format!("--chdir {}: {err}", dir.display()));
    }
    set_environment(&config.env_vars);
    if let Some(mask) = config.umask {
        // SAFETY: umask only swaps the process's file mode creation mask; before the log,
        // pid and socket files are made, and inherited by the workers.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    let settings = logging::Settings {
        level: config.log_level,
        format: config.log_format,
        access_log: &config.access_log,
        access_format: &config.access_log_format,
        error_log: &config.error_log,
        capture_output: config.capture_output,
    };
    if let Err(err) = logging::init(&settings) {
        config::usage_error(&format!("{err:#}"));
    }
    for warning in &config.origin.warnings {
        crate::log_warn!("{warning}");
    }
    if config.print_config {
        print!("{}", config::sources::effective_toml(&config));
    }
    if config.check_config || config.print_config {
        return server::check::run(&config);
    }
    match server::run(&config) {
        Ok(code) => code,
        Err(err) => {
            crate::log_error!("{err:#}");
            if config.error_log != "-" {
                eprintln!("wsgihost: {err:#}");
            }
            1
        }
    }
}

/// --env: before the app is imported (a running interpreter's os.environ too).
fn set_environment(vars: &[(String, String)]) {
    for (key, value) in vars {
        if let Err(err) = interpreter::set_env(key, value) {
            config::usage_error(&format!("--env {key}: {err}"));
        }
    }
}
