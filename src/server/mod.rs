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

/// How this process ends: decided below, carried out by the entry point (`main`, or the
/// extension module's `run` in a `python` host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Return with this code as usual: destructors run, and a `python` host finalizes.
    Code(i32),
    /// Leave with this code at once, without finalizing Python: in a worker stopping now,
    /// or with calls stuck past --timeout, a request thread may still hold the GIL, so
    /// finalizing could hang.
    AtOnce(i32),
}

impl Exit {
    /// Ends the process as decided.
    pub fn end_process(self) -> ! {
        match self {
            Exit::Code(code) => std::process::exit(code),
            Exit::AtOnce(code) => {
                crate::logging::flush();
                // SAFETY: _exit ends the process without running destructors or atexit
                // handlers, which is the point (see `AtOnce`).
                unsafe { libc::_exit(code) }
            }
        }
    }
}
