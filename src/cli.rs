//! The command line, shared by the wsgihost binary (src/main.rs) and the pip-installed
//! command (src/pymodule.rs): parse the flags, prepare the process, run the server.
use std::ffi::OsString;

use anyhow::Result;

use crate::config::{Config, Parsed, UsageError};
use crate::server::Exit;
use crate::wsgi::interpreter;
use crate::{config, logging, server};

/// Runs wsgihost with these arguments (the first is the program name); returns the exit
/// how this process ends (the master's, or a forked worker's): code 2 after a usage error.
pub fn run(args: Vec<OsString>) -> Exit {
    crate::server::upgrade::remember_command();
    let config = match config::Config::parse_args(args) {
        Ok(Parsed::Run(config)) => config,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return Exit::Code(0);
        }
        Err(err) => return Exit::Code(config::report_usage(&err)),
    };
    match start(&config) {
        Ok(exit) => exit,
        Err(err) => match err.downcast_ref::<UsageError>() {
            Some(usage) => Exit::Code(config::report_usage(usage)),
            None => {
                crate::log_error!("{err:#}");
                if config.error_log != "-" {
                    eprintln!("wsgihost: {err:#}");
                }
                Exit::Code(1)
            }
        },
    }
}

/// Prepares the process as the configuration says, then runs the server (or only checks
/// or prints the configuration).
fn start(config: &Config) -> Result<Exit> {
    if let Some(dir) = &config.chdir {
        std::env::set_current_dir(dir)
            .map_err(|err| UsageError(format!("--chdir {}: {err}", dir.display())))?;
    }
    set_environment(&config.env_vars)?;
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
    logging::init(&settings).map_err(|err| UsageError(format!("{err:#}")))?;
    for warning in &config.origin.warnings {
        crate::log_warn!("{warning}");
    }
    if config.print_config {
        print!("{}", config::sources::effective_toml(config));
    }
    if config.check_config || config.print_config {
        return Ok(Exit::Code(server::check::run(config)));
    }
    server::run(config)
}

/// --env: before the app is imported (a running interpreter's os.environ too).
fn set_environment(vars: &[(String, String)]) -> Result<(), UsageError> {
    for (key, value) in vars {
        interpreter::set_env(key, value)
            .map_err(|err| UsageError(format!("--env {key}: {err}")))?;
    }
    Ok(())
}
