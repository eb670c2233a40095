//! The error log (stderr) and the access log (a file, stdout or off), as text or JSON
//! lines. In workers, lines go through a bounded queue to a writer thread, so a slow
//! terminal or disk never blocks a request thread or the event loop (a full queue drops the
//! line and counts it). The master has no threads and writes directly.
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SendError, Sender, channel};
use std::sync::{Mutex, OnceLock};

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

/// Where a line goes.
#[derive(Clone, Copy)]
enum Stream {
    Error,
    Access,
}

struct Logger {
    level: Level,
    format: Format,
    access: Option<AccessLog>,
    queue: Mutex<Option<Sender<(Stream, String)>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    access_file: Mutex<Option<std::fs::File>>,
}

struct AccessLog {
    atoms: Vec<Atom>,
    to_stdout: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines that may wait for the writer thread before new ones are dropped.
const QUEUE: usize = 16 * 1024;
/// Lines waiting now. The channel itself is unbounded, so its memory follows the backlog
/// (std's bounded channel preallocates every slot: 640 KiB per worker for this bound).
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Sets up logging once, in the master, before any worker is forked.
pub fn init(
    level: Level,
    format: Format,
    access_log: &str,
    access_format: &str,
) -> anyhow::Result<()> {
    let (access, file) = match access_log {
        "off" => (None, None),
        "-" => (
            Some(AccessLog {
                atoms: parse_format(access_format)?,
                to_stdout: true,
            }),
            None,
        ),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|err| anyhow::anyhow!("--access-log {path}: {err}"))?;
            (
                Some(AccessLog {
                    atoms: parse_format(access_format)?,
                    to_stdout: false,
                }),
                Some(file),
            )
        }
    };
    let _ = LOGGER.set(Logger {
        level,
        format,
        access,
        queue: Mutex::new(None),
        writer: Mutex::new(None),
        access_file: Mutex::new(file),
    });
    Ok(())
}

/// In a worker: from now on lines are written by a background thread.
pub fn start_writer_thread() {
    let Some(logger) = LOGGER.get() else { return };
    let (sender, receiver) = channel::<(Stream, String)>();
    let spawned = std::thread::Builder::new()
        .name("wsgihost-log".into())
        .spawn(move || {
            for (stream, line) in receiver {
                QUEUED.fetch_sub(1, Ordering::Relaxed);
                write_line(stream, &line);
            }
        });
    if let Ok(handle) = spawned {
        *logger.queue.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
        *logger.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }
}

/// Writes out every queued line (before a worker exits); later lines are written directly.
pub fn flush() {
    let Some(logger) = LOGGER.get() else { return };
    drop(
        logger
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(),
    );
    if let Some(handle) = logger
        .writer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        let _ = handle.join();
    }
}

/// Lines dropped because the writer could not keep up.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn write_line(stream: Stream, line: &str) {
    match stream {
        Stream::Error => {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        Stream::Access => {
            let Some(logger) = LOGGER.get() else { return };
            let mut file = logger.access_file.lock().unwrap_or_else(|p| p.into_inner());
            match file.as_mut() {
                Some(file) => {
                    let _ = file.write_all(line.as_bytes());
                }
                None => {
                    let _ = std::io::stdout().lock().write_all(line.as_bytes());
                }
            }
        }
    }
}

fn emit(stream: Stream, line: String) {
    let queue = LOGGER
        .get()
        .and_then(|l| l.queue.lock().ok().and_then(|q| q.clone()));
    match queue {
        Some(_) if QUEUED.fetch_add(1, Ordering::Relaxed) >= QUEUE => {
            QUEUED.fetch_sub(1, Ordering::Relaxed);
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Some(sender) => {
            if let Err(SendError((stream, line))) = sender.send((stream, line)) {
                QUEUED.fetch_sub(1, Ordering::Relaxed);
                write_line(stream, &line);
            }
        }
        None => write_line(stream, &line),
    }
}

/// Logs a message at `level` (tracebacks and multi-line text are kept whole).
pub fn log(level: Level, message: &str) {
    let (threshold, format) = LOGGER
        .get()
        .map_or((Level::Info, Format::Text), |l| (l.level, l.format));
    if level < threshold {
        return;
    }
    let line = match format {
        Format::Text => match level {
            Level::Warning => format!("wsgihost: warning: {message}\n"),
            Level::Debug => format!("wsgihost: debug: {message}\n"),
            _ => format!("wsgihost: {message}\n"),
        },
        Format::Json => {
            let record = serde_json::json!({
                "time": httpdate::fmt_http_date(std::time::SystemTime::now()),
                "level": format!("{level:?}").to_lowercase(),
                "pid": std::process::id(),
                "message": message,
            });
            format!("{record}\n")
        }
    };
    emit(Stream::Error, line);
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
    let Some(access) = &logger.access else { return };
    let line = match logger.format {
        Format::Text => {
            let mut line = String::with_capacity(160);
            for atom in &access.atoms {
                atom.render(record, &mut line);
            }
            line.push('\n');
            line
        }
        Format::Json => format!("{}\n", access_json(record)),
    };
    let _ = access.to_stdout;
    emit(Stream::Access, line);
}

fn access_json(record: &Access) -> serde_json::Value {
    let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
    let head = record.head;
    serde_json::json!({
        "time": httpdate::fmt_http_date(std::time::SystemTime::now()),
        "remote": record.peer.map(|p| p.ip().to_string()),
        "request": head.map(Head::request_line),
        "method": text(head.map(Head::method)),
        "target": text(head.map(Head::target)),
        "status": record.status,
        "bytes": record.bytes,
        "duration_us": record.micros,
        "referer": text(head.and_then(|h| h.header("referer"))),
        "user_agent": text(head.and_then(|h| h.header("user-agent"))),
        "pid": std::process::id(),
    })
}

/// One piece of `--access-log-format`.
#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Text(String),
    RemoteAddr,
    Time,
    RequestLine,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    /// %b: bytes, "-" for none (Apache's convention); %B: always a number.
    Bytes {
        dash_for_zero: bool,
    },
    Micros,
    Seconds,
    Pid,
    Header(String),
}

/// The format atoms, documented in the README.
pub const ACCESS_FORMAT_ATOMS: &[(&str, &str)] = &[
    ("%h", "client address (- on unix sockets)"),
    ("%l", "always -"),
    ("%u", "always - (no authentication at this layer)"),
    ("%t", "time the request ended, [23/Nov/2026:21:00:00 +0000]"),
    ("%r", "request line"),
    ("%m", "method"),
    ("%U", "path, as sent"),
    ("%q", "query string (with ?), or empty"),
    ("%H", "protocol (HTTP/1.1)"),
    ("%s", "status code"),
    ("%b", "response body bytes, - when none"),
    ("%B", "response body bytes"),
    ("%D", "request time in microseconds"),
    ("%T", "request time in seconds"),
    ("%p", "worker process id"),
    ("%{Name}i", "request header Name"),
    ("%%", "a literal %"),
];

pub const DEFAULT_ACCESS_FORMAT: &str =
    "%h %l %u %t \"%r\" %s %b \"%{Referer}i\" \"%{User-Agent}i\" %D";

fn parse_format(format: &str) -> anyhow::Result<Vec<Atom>> {
    let mut atoms = Vec::new();
    let mut text = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let atom = match chars.next() {
            Some('%') => {
                text.push('%');
                continue;
            }
            Some('h') => Atom::RemoteAddr,
            Some('l') | Some('u') => Atom::Text("-".into()),
            Some('t') => Atom::Time,
            Some('r') => Atom::RequestLine,
            Some('m') => Atom::Method,
            Some('U') => Atom::Path,
            Some('q') => Atom::Query,
            Some('H') => Atom::Protocol,
            Some('s') => Atom::Status,
            Some('b') => Atom::Bytes {
                dash_for_zero: true,
            },
            Some('B') => Atom::Bytes {
                dash_for_zero: false,
            },
            Some('D') => Atom::Micros,
            Some('T') => Atom::Seconds,
            Some('p') => Atom::Pid,
            Some('{') => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                match chars.next() {
                    Some('i') if !name.is_empty() => Atom::Header(name),
                    _ => anyhow::bail!(
                        "--access-log-format: %{{{name}}} must be followed by i (a request header)"
                    ),
                }
            }
            other => anyhow::bail!(
                "--access-log-format: unknown atom %{}; see the README for the list",
                other.map(String::from).unwrap_or_default()
            ),
        };
        if !text.is_empty() {
            atoms.push(Atom::Text(std::mem::take(&mut text)));
        }
        atoms.push(atom);
    }
    if !text.is_empty() {
        atoms.push(Atom::Text(text));
    }
    Ok(atoms)
}

impl Atom {
    fn render(&self, record: &Access, out: &mut String) {
        use std::fmt::Write as _;
        let head = record.head;
        let lossy = |bytes: &[u8], out: &mut String| out.push_str(&String::from_utf8_lossy(bytes));
        let target = head.map(Head::target).unwrap_or(b"-");
        let split = target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len());
        match self {
            Atom::Text(text) => out.push_str(text),
            Atom::RemoteAddr => match record.peer {
                Some(peer) => {
                    let _ = write!(out, "{}", peer.ip());
                }
                None => out.push('-'),
            },
            Atom::Time => {
                let now = chrono_like_clf_time();
                out.push_str(&now);
            }
            Atom::RequestLine => out.push_str(&head.map_or("-".into(), Head::request_line)),
            Atom::Method => lossy(head.map_or(b"-", Head::method), out),
            Atom::Path => lossy(&target[..split], out),
            Atom::Query => lossy(&target[split..], out),
            Atom::Protocol => out.push_str(match head.map(|h| h.minor_version) {
                Some(0) => "HTTP/1.0",
                _ => "HTTP/1.1",
            }),
            Atom::Status => {
                let _ = write!(out, "{}", record.status);
            }
            Atom::Bytes {
                dash_for_zero: true,
            } if record.bytes == 0 => out.push('-'),
            Atom::Bytes { .. } => {
                let _ = write!(out, "{}", record.bytes);
            }
            Atom::Micros => {
                let _ = write!(out, "{}", record.micros);
            }
            Atom::Seconds => {
                let _ = write!(out, "{:.6}", record.micros as f64 / 1e6);
            }
            Atom::Pid => {
                let _ = write!(out, "{}", std::process::id());
            }
            Atom::Header(name) => match head.and_then(|h| h.header(name)) {
                Some(value) => lossy(value, out),
                None => out.push('-'),
            },
        }
    }
}

/// `[23/Nov/2026:21:00:00 +0000]`, from the HTTP date (always UTC).
fn chrono_like_clf_time() -> String {
    // "Mon, 23 Nov 2026 21:00:00 GMT" → day, month, year, time.
    let http = httpdate::fmt_http_date(std::time::SystemTime::now());
    let parts: Vec<&str> = http.split_whitespace().collect();
    match parts.as_slice() {
        [_, day, month, year, time, _] => format!("[{day}/{month}/{year}:{time} +0000]"),
        _ => format!("[{http}]"),
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
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Info, &format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        let atoms = parse_format("%h \"%r\" %{X-Id}i 100%%").unwrap();
        assert_eq!(
            atoms,
            vec![
                Atom::RemoteAddr,
                Atom::Text(" \"".into()),
                Atom::RequestLine,
                Atom::Text("\" ".into()),
                Atom::Header("X-Id".into()),
                Atom::Text(" 100%".into()),
            ]
        );
        assert!(parse_format("%z").is_err());
        assert!(parse_format("%{X}o").is_err());
        assert!(parse_format(DEFAULT_ACCESS_FORMAT).is_ok());
    }

    #[test]
    fn clf_time_shape() {
        let time = chrono_like_clf_time();
        assert!(time.starts_with('[') && time.ends_with(" +0000]"), "{time}");
    }
}
