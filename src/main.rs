//! wsgihost: HTTP/1.1 server for Python WSGI applications, with CPython embedded.
use wsgihost::{config, server};

fn main() {
    let config = config::Config::from_args();
    if let Err(err) = server::run(&config) {
        eprintln!("wsgihost: {err:#}");
        std::process::exit(1);
    }
}
