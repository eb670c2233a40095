//! wsgihost as a library: the protocol pieces are public so integration and property tests
//! (tests/) can drive them directly. The binary is src/main.rs.
pub mod clock;
pub mod config;
pub mod config_file;
pub mod http;
pub mod logging;
pub mod net;
pub mod route;
pub mod server;
pub mod static_cache;
pub mod static_files;
pub mod wsgi;
