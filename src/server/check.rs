//! `--check-config` (and `--print-config`, after it prints): what would go wrong at start,
//! found without serving. Each app is imported in a child process (the master stays
//! clean; a failure shows its traceback), static and script folders and certificate files
//! are looked at, and settings without effect were already warned about. Exit code 0, or
//! 1 when something would keep the server from starting.
use crate::config::Config;
use crate::net::tls::ClientCerts;
use crate::wsgi::interpreter;

use super::worker::Preloaded;

pub fn run(config: &Config) -> i32 {
    let mut problems = 0;
    for (prefix, dir) in config.static_rows() {
        if !dir.is_dir() {
            let prefix = if prefix.is_empty() { "/" } else { &prefix };
            crate::log_warn!(
                "static folder {} (for {prefix}) does not exist",
                dir.display()
            );
        }
    }
    if config.serves_scripts() && !config.scripts.is_dir() {
        crate::log_warn!("scripts folder {} does not exist", config.scripts.display());
    }
    if let Some(files) = config.tls_files()
        && let Err(message) = crate::net::tls::load(&files)
    {
        crate::log_error!("{message}");
        problems += 1;
    }
    if config.ca_certs.is_some() && config.cert_reqs == ClientCerts::None {
        crate::log_warn!("--ca-certs has no effect without --cert-reqs optional or required");
    }
    let apps = config.app_mounts();
    if !apps.is_empty() && !imports_in_a_child(config) {
        problems += 1;
    }
    match problems {
        0 => {
            crate::log_info!(
                "configuration OK{}",
                match apps.len() {
                    0 => String::new(),
                    n => format!(" ({n} application(s) imported)"),
                }
            );
            0
        }
        n => {
            crate::log_error!("configuration check failed: {n} problem(s) above");
            1
        }
    }
}

/// Imports every app in a forked child; true when all of them load and are callable.
fn imports_in_a_child(config: &Config) -> bool {
    let pid = match interpreter::fork() {
        Ok(pid) => pid,
        Err(err) => {
            crate::log_error!("cannot fork to import the application: {err}");
            return false;
        }
    };
    if pid == 0 {
        let code = match Preloaded::start(config) {
            Ok(_) => 0,
            Err(err) => {
                crate::log_error!("{err:#}");
                1
            }
        };
        // SAFETY: the child ends here without running the master's destructors or Python's
        // finalization (it only imported the app).
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked, into a local.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}
