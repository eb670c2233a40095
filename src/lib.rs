//! wsgihost as a library: the protocol pieces are public so integration and property tests
//! (tests/) can drive them directly. Two ways to start it: the binary (src/main.rs), which
//! embeds CPython, and the extension module of the pip package (src/pymodule.rs); both run
//! `cli::run`.
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod instrument;
pub mod logging;
pub mod net;
mod pymodule;
pub mod route;
pub mod server;
#[path = "static/mod.rs"]
pub mod static_files;
pub mod wsgi;
