//! Sockets: the per-connection state, blocking-with-timeout I/O for running requests,
//! the shared mio event loop, and the PROXY protocol header a balancer may send first.
pub mod connection;
pub mod event_loop;
pub mod io;
mod monitor_rest;
pub mod phase;
pub mod proxy_protocol;
pub mod stream;
pub mod tls;
