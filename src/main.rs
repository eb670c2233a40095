//! wsgihost: HTTP/1.1 server for Python WSGI applications, with CPython embedded.
use wsgihost::{config, logging, server};

fn main() {
    let config = config::Config::from_args();
    if let Some(dir) = &config.chdir
        && let Err(err) = std::env::set_current_dir(dir)
    {
        config::usage_error(&format!("--chdir {}: {err}", dir.display()));
    }
    for (key, value) in &config.env_vars {
        // SAFETY: still single-threaded; workers and Python inherit the variables.
        unsafe { std::env::set_var(key, value) };
    }
    if let Err(err) = logging::init(
        config.log_level,
        config.log_format,
        &config.access_log,
        &config.access_log_format,
    ) {
        config::usage_error(&format!("{err:#}"));
    }
    if let Err(err) = server::run(&config) {
        eprintln!("wsgihost: {err:#}");
        std::process::exit(1);
    }
}
