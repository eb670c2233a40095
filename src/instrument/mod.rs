//! Instrumentation the serving layers (net, wsgi, server) report into: Prometheus counters
//! in a region shared with the master, and what each request thread is doing (for
//! `--timeout` and the hand-off monitor).
pub mod activity;
pub mod metrics;
