//! wsgihost as a library: the protocol pieces are public so integration and property tests
//! (tests/) can drive them directly. The binary is src/main.rs.
pub mod clock;
pub mod config;
pub mod http;
pub mod instrument;
pub mod logging;
pub mod net;
pub mod route;
pub mod server;
#[path = "static/mod.rs"]
pub mod static_files;
pub mod wsgi;
