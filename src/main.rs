//! wsgihost: HTTP/1.1 server for Python WSGI applications, with CPython embedded.
mod config;
mod http;
mod net;
mod route;
mod server;
mod static_files;
mod wsgi;

fn main() {
    let config = config::Config::from_args();
    if let Err(err) = server::run(config) {
        eprintln!("wsgihost: {err:#}");
        std::process::exit(1);
    }
}
