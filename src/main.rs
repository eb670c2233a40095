//! wsgihost: HTTP/1.1 server for Python WSGI applications, with CPython embedded.
use wsgihost::{config, server};

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
    if let Err(err) = server::run(&config) {
        eprintln!("wsgihost: {err:#}");
        std::process::exit(1);
    }
}
