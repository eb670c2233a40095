//! Sockets: the per-connection state, blocking-with-timeout I/O for running requests,
//! and the shared mio event loop.
pub mod connection;
pub mod event_loop;
pub mod io;
mod monitor_rest;
pub mod stream;
pub mod tls;
