//! The process model: a master that binds and supervises, workers that serve.
pub mod context;
pub mod control;
pub mod exporter;
pub mod listeners;
pub mod master;
pub mod notify;
pub mod reload;
pub mod serve;
pub mod signals;
pub mod slow_routes;
pub mod worker;

pub use master::run;
