//! wsgihost: HTTP/1.1 server for Python WSGI applications, with CPython embedded.
fn main() {
    std::process::exit(wsgihost::cli::run(std::env::args_os().collect()));
}
