//! The error log (stderr) and the access log (a file, stdout or off), as text or JSON
//! lines. `format` makes the lines; `writer` gets them out of the way of requests: in a
//! worker a background thread writes what request threads buffer, so a slow terminal,
//! disk or pipe never blocks a request. The master has no threads and writes directly.
mod format;
mod throttle;
mod writer;

use std::sync::{Arc, OnceLock};

pub use format::{ACCESS_FORMAT_ATOMS, DEFAULT_ACCESS_FORMAT};
pub use throttle::Throttle;
use writer::Sink;

use crate::http::request::Head;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    level: Level,
    format: Format,
    /// The access log's line format (text) and destination; None when off.
    access: Option<(Vec<format::Atom>, Arc<Sink>)>,
    errors: Arc<Sink>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging once, in the master, before any worker is forked.
pub fn init(
    level: Level,
    format: Format,
    access_log: &str,
    access_format: &str,
) -> anyhow::Result<()> {
    let access = match access_log {
        "off" => None,
        "-" => Some(Sink::stdout()),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|err| anyhow::anyhow!("--access-log {path}: {err}"))?;
            Some(Sink::file(file))
        }
    };
    let access = match access {
        Some(sink) => Some((format::parse_format(access_format)?, Arc::new(sink))),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        level,
        format,
        access,
        errors: Arc::new(Sink::stderr()),
    });
    Ok(())
}

/// In a worker: from now on lines are written by a background thread.
pub fn start_writer_thread() {
    if let Some(logger) = LOGGER.get() {
        let access = logger.access.as_ref().map(|(_, sink)| sink.clone());
        writer::start(access, logger.errors.clone(), logger.format);
    }
}

/// Writes out every buffered line (before a worker exits); later lines are written directly.
pub fn flush() {
    writer::stop();
}

/// Logs a message at `level` (tracebacks and multi-line text are kept whole).
pub fn log(level: Level, message: &str) {
    let (threshold, format) = LOGGER
        .get()
        .map_or((Level::Info, Format::Text), |l| (l.level, l.format));
    if level < threshold {
        return;
    }
    let mut line = Vec::with_capacity(message.len() + 32);
    format::error_line(format, level, message, &mut line);
    if !writer::append_error(&line) {
        match LOGGER.get() {
            Some(logger) => writer::write_counted(&logger.errors, &line),
            None => writer::write_counted(&Sink::stderr(), &line),
        }
    }
}

pub fn error(message: &str) {
    log(Level::Error, message);
}
pub fn warn(message: &str) {
    log(Level::Warning, message);
}
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// What the access log knows about one answered request.
pub struct Access<'a> {
    pub head: Option<&'a Head>,
    pub peer: Option<std::net::SocketAddr>,
    pub status: u16,
    pub bytes: u64,
    pub micros: u64,
}

pub fn access_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.access.is_some())
}

pub fn access(record: &Access) {
    let Some(logger) = LOGGER.get() else { return };
    let Some((atoms, sink)) = &logger.access else {
        return;
    };
    let line = |out: &mut Vec<u8>| match logger.format {
        Format::Text => format::access_text(atoms, record, out),
        Format::Json => format::access_json(record, out),
    };
    if !writer::append_access(line) {
        let mut out = Vec::with_capacity(200);
        line(&mut out);
        writer::write_counted(sink, &out);
    }
}

/// `log_error!("...", args)`: formats and logs at error level.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Error, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Warning, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Debug, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Info, &format!($($arg)*)) };
}
