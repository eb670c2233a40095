//! The error log (stderr) and the access log (a file, stdout or off), as text or JSON
//! lines. `format` makes the lines; `writer` gets them out of the way of requests: in a
//! worker a background thread writes what request threads buffer, so a slow terminal,
//! disk or pipe never blocks a request. The master has no threads and writes directly.
mod format;
pub mod mark;
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
    Critical,
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
    /// What app calls keep for the access format; None when it shows nothing of theirs.
    answer_needs: Option<AnswerNeeds>,
    errors: Arc<Sink>,
    capture_output: bool,
}

/// Where the logs go and how they look (`--log-*`, `--access-log*`, `--error-log`).
pub struct Settings<'a> {
    pub level: Level,
    pub format: Format,
    pub access_log: &'a str,
    pub access_format: &'a str,
    pub error_log: &'a str,
    /// --capture-output: stdout and stderr go to the error log file.
    pub capture_output: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging once, in the master, before any worker is forked.
pub fn init(settings: &Settings) -> anyhow::Result<()> {
    let open = |path: &str, option: &str| {
        Sink::open(std::path::Path::new(path))
            .map_err(|err| anyhow::anyhow!("{option} {path}: {err}"))
    };
    let access = match settings.access_log {
        "off" => None,
        "-" => Some(Sink::stdout()),
        path => Some(open(path, "--access-log")?),
    };
    let (access, answer_needs) = match access {
        Some(sink) => {
            let atoms = format::parse_format(settings.access_format)?;
            let needs = AnswerNeeds {
                response_headers: atoms
                    .iter()
                    .any(|a| matches!(a, format::Atom::ResponseHeader(_))),
                environ: atoms
                    .iter()
                    .filter_map(|a| match a {
                        format::Atom::Environ(name) => Some(name.clone()),
                        _ => None,
                    })
                    .collect(),
            };
            let shows_answer = needs.response_headers || !needs.environ.is_empty();
            (Some((atoms, Arc::new(sink))), shows_answer.then_some(needs))
        }
        None => (None, None),
    };
    let errors = match settings.error_log {
        "-" => Sink::stderr(),
        path => {
            let sink = open(path, "--error-log")?;
            if settings.capture_output {
                capture_output(&sink)?;
            }
            sink
        }
    };
    let _ = LOGGER.set(Logger {
        level: settings.level,
        format: settings.format,
        access,
        answer_needs,
        errors: Arc::new(errors),
        capture_output: settings.capture_output && settings.error_log != "-",
    });
    Ok(())
}

/// Points stdout and stderr at the error log file: what the app prints lands there.
fn capture_output(sink: &Sink) -> anyhow::Result<()> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let Some(fd) = sink.raw_fd() else {
        return Ok(());
    };
    // SAFETY: the sink keeps `fd` open for the process's life.
    let file = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::unistd::dup2_stdout(file)
        .and_then(|_| nix::unistd::dup2_stderr(file))
        .map_err(|err| anyhow::anyhow!("--capture-output: {err}"))
}

/// SIGUSR1 (gunicorn's meaning, what logrotate sends): the log files are opened again at
/// their paths; with --capture-output, stdout and stderr follow the error log.
pub fn reopen() {
    let Some(logger) = LOGGER.get() else {
        return;
    };
    let sinks = logger
        .access
        .iter()
        .map(|(_, sink)| sink)
        .chain([&logger.errors]);
    for sink in sinks {
        if let Err(err) = sink.reopen() {
            crate::log_error!("SIGUSR1: cannot open the log file again: {err}");
        }
    }
    if logger.capture_output
        && let Err(err) = capture_output(&logger.errors)
    {
        crate::log_error!("SIGUSR1: {err}");
    }
}

/// The error log's descriptor (stderr's until `init`), for Python's faulthandler, which
/// writes its stack dumps straight to a descriptor.
pub fn error_fd() -> Option<std::os::fd::RawFd> {
    match LOGGER.get() {
        Some(logger) => logger.errors.raw_fd(),
        None => Some(2),
    }
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

/// Writes the error lines still buffered, now (see writer::flush_errors).
pub fn flush_errors() {
    writer::flush_errors();
}

/// Logs a message at `level` (tracebacks and multi-line text are kept whole).
pub fn log(level: Level, message: &str) {
    let (threshold, format) = LOGGER
        .get()
        .map_or((Level::Info, Format::Text), |l| (l.level, l.format));
    if level < threshold {
        return;
    }
    match level {
        Level::Warning => crate::instrument::statsd::log_line("warning"),
        Level::Error => crate::instrument::statsd::log_line("error"),
        Level::Critical => crate::instrument::statsd::log_line("critical"),
        _ => {}
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

/// A log mark (see mark.rs): after every line logged so far, whatever the level.
fn write_mark(line: &[u8]) {
    if !writer::append_mark(line)
        && let Some(logger) = LOGGER.get()
    {
        writer::write_counted(&logger.errors, line);
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
    /// The app's response header lines, when the format shows one (`%({Name}o)s`).
    pub response_headers: Option<&'a [u8]>,
    /// The environ variables the format shows (`%({NAME}e)s`).
    pub environ: &'a [(String, Vec<u8>)],
}

/// What an app's answer must keep for the access-log line: only what the format shows.
#[derive(Debug, Default)]
pub struct AnswerNeeds {
    pub response_headers: bool,
    pub environ: Vec<String>,
}

/// What the app answered on this thread, for the line of the same request.
#[derive(Default)]
struct AppAnswer {
    response_headers: Vec<u8>,
    environ: Vec<(String, Vec<u8>)>,
    noted: bool,
}

thread_local! {
    static APP_ANSWER: std::cell::RefCell<AppAnswer> = std::cell::RefCell::default();
}

/// What an app call should note for its access-log line (None: nothing, the usual case).
pub fn answer_needs() -> Option<&'static AnswerNeeds> {
    LOGGER.get().and_then(|l| l.answer_needs.as_ref())
}

/// Keeps an app's response headers and environ variables for this request's line.
pub fn note_answer(response_headers: &[u8], environ: Vec<(String, Vec<u8>)>) {
    APP_ANSWER.with(|answer| {
        let mut answer = answer.borrow_mut();
        answer.response_headers.clear();
        answer.response_headers.extend_from_slice(response_headers);
        answer.environ = environ;
        answer.noted = true;
    });
}

pub fn access_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.access.is_some())
}

pub fn access(record: Access) {
    let Some(logger) = LOGGER.get() else { return };
    let Some((atoms, sink)) = &logger.access else {
        return;
    };
    let write = |record: &Access| {
        let line = |out: &mut Vec<u8>| match logger.format {
            Format::Text => format::access_text(atoms, record, out),
            Format::Json => format::access_json(record, out),
        };
        if !writer::append_access(line) {
            let mut out = Vec::with_capacity(200);
            line(&mut out);
            writer::write_counted(sink, &out);
        }
    };
    if logger.answer_needs.is_none() {
        return write(&record);
    }
    APP_ANSWER.with(|answer| {
        let mut answer = answer.borrow_mut();
        let noted = std::mem::take(&mut answer.noted);
        let record = Access {
            response_headers: noted.then_some(answer.response_headers.as_slice()),
            environ: if noted { &answer.environ } else { &[] },
            ..record
        };
        write(&record);
    });
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
