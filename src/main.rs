//! wsgihost: HTTP/1.1 server for Python WSGI applications, with CPython embedded.
fn main() {
    wsgihost::cli::run(std::env::args_os().collect()).end_process();
}
