//! The process model: a master that binds and supervises, workers that serve.
pub mod check;
pub mod context;
pub mod control;
pub mod exporter;
pub mod hang;
pub mod health;
pub mod hooks;
pub mod listeners;
pub mod master;
pub mod notify;
pub mod pidfile;
pub mod preface;
pub mod privileges;
pub mod proctitle;
pub mod python_logging;
pub mod reload;
pub mod serve;
pub mod signals;
pub mod slow_routes;
pub mod upgrade;
pub mod worker;

pub use master::run;
