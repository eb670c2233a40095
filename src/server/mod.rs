//! Putting a worker together: listeners, interpreter, threads, signals.
pub mod context;
pub mod listeners;
pub mod serve;
pub mod worker;

pub use worker::run;
