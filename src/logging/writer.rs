//! Writing log lines without slowing requests down. In a worker, each request thread
//! formats its access-log lines into a buffer of its own; a writer thread collects every
//! buffer ten times a second (sooner when one passes 64 KiB) and writes each with one
//! system call. Error-log lines share one buffer and wake the writer at once. A request
//! thread never waits for the disk or terminal: when a destination is slower than the
//! lines, a thread's buffer stops growing at 1 MiB and further lines are dropped and
//! counted. Drops and write errors are reported on the error log, at most once a minute
//! with their counts, and in the `wsgihost_log_lines_dropped_total` metric.
//!
//! Pipes (a redirected stdout, journald, a container runtime) get lines in pieces of at
//! most PIPE_BUF bytes that end at a line end, so lines of different processes never mix.
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// How often the writer collects the buffers: the most a line waits to be written, and
/// about what a killed worker loses.
const SWEEP: Duration = Duration::from_millis(100);
/// A thread's buffer wakes the writer once it holds this much.
const WAKE_AT: usize = 64 * 1024;
/// A thread's buffer takes no more lines past this size (the destination is too slow).
const MOST_PENDING: usize = 1024 * 1024;
/// How often drops and write errors are reported.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How long a stopping worker waits for its last lines to be written (a stalled
/// destination must not keep it alive).
const FINAL_WAIT: Duration = Duration::from_secs(2);
/// How long the writer waits for a pipe with no room before it drops what it holds: a
/// reader that stopped reading must not stop the writer (nor its reports).
const PIPE_WAIT: Duration = Duration::from_secs(1);

/// A destination: a file, or a standard stream (a duplicate of its descriptor: the same
/// open file, which writes go to; None when the stream was closed).
pub struct Sink {
    file: Option<File>,
    /// Not a regular file: writes are cut into atomic pieces.
    pipe_like: bool,
    /// The file's path (not for standard streams), to open it again on SIGUSR1.
    path: Option<std::path::PathBuf>,
}

impl Sink {
    pub fn stdout() -> Sink {
        Sink::duplicate(std::io::stdout().as_fd())
    }

    pub fn stderr() -> Sink {
        Sink::duplicate(std::io::stderr().as_fd())
    }

    fn duplicate(stream: BorrowedFd<'_>) -> Sink {
        match stream.try_clone_to_owned() {
            Ok(fd) => Sink::file(File::from(fd)),
            Err(_) => Sink {
                file: None,
                pipe_like: false,
                path: None,
            },
        }
    }

    /// Its descriptor, for writers that cannot go through it (faulthandler's dumps).
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.file.as_ref().map(AsRawFd::as_raw_fd)
    }

    pub fn file(file: File) -> Sink {
        let regular = file.metadata().is_ok_and(|meta| meta.is_file());
        Sink {
            file: Some(file),
            pipe_like: !regular,
            path: None,
        }
    }

    /// A log file opened (for appending) at `path`, which `reopen` opens again.
    pub fn open(path: &std::path::Path) -> io::Result<Sink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Sink {
            path: Some(path.to_path_buf()),
            ..Sink::file(file)
        })
    }

    /// Opens the file again at its path (logrotate moved the old one away) and puts it in
    /// place of the old under the same descriptor, so writers, and stdout and stderr when
    /// they were pointed at it (--capture-output), go to the new file from now on.
    pub fn reopen(&self) -> io::Result<()> {
        let (Some(path), Some(file)) = (&self.path, &self.file) else {
            return Ok(());
        };
        let fresh = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // SAFETY: dup2 onto a descriptor we own (held open by `file`): it then refers to
        // the new file; `fresh`'s own descriptor closes when it drops.
        if unsafe { libc::dup2(fresh.as_raw_fd(), file.as_raw_fd()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes whole lines, in pieces no larger than PIPE_BUF on pipes, each after waiting
    /// (at most `PIPE_WAIT`) for the room to take it whole. On failure, also says how
    /// many bytes had been written.
    pub fn write_lines(&self, lines: &[u8]) -> Result<(), (io::Error, usize)> {
        let Some(mut file) = self.file.as_ref() else {
            return Err((io::ErrorKind::BrokenPipe.into(), 0));
        };
        let mut data = lines;
        let failed = |err, data: &[u8]| Err((err, lines.len() - data.len()));
        while !data.is_empty() {
            if self.pipe_like
                && let Err(err) = wait_for_room(file)
            {
                return failed(err, data);
            }
            let piece = match self.pipe_like && data.len() > libc::PIPE_BUF {
                true => match data[..libc::PIPE_BUF].iter().rposition(|&b| b == b'\n') {
                    Some(end) => &data[..=end],
                    // One line longer than PIPE_BUF: it goes alone.
                    None => {
                        let end = data.iter().position(|&b| b == b'\n');
                        &data[..end.map_or(data.len(), |e| e + 1)]
                    }
                },
                false => data,
            };
            if let Err(err) = file.write_all(piece) {
                return failed(err, data);
            }
            data = &data[piece.len()..];
        }
        Ok(())
    }
}

/// Waits until the pipe `file` has room, at most `PIPE_WAIT`.
fn wait_for_room(file: &File) -> io::Result<()> {
    let mut pollfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, ours, for the duration of the call.
        match unsafe { libc::poll(&mut pollfd, 1, PIPE_WAIT.as_millis() as i32) } {
            0 => return Err(io::ErrorKind::TimedOut.into()),
            n if n > 0 => return Ok(()),
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return Err(io::Error::last_os_error()),
        }
    }
}

type Buffer = Arc<Mutex<Vec<u8>>>;

/// What the writer thread shares with the request threads.
struct Writer {
    access: Option<Arc<Sink>>,
    errors: Arc<Sink>,
    format: super::Format,
    buffers: Mutex<Vec<Buffer>>,
    error_lines: Mutex<Vec<u8>>,
    /// Log marks, written after the lines collected with them.
    marks: Mutex<Vec<u8>>,
    wanted: Mutex<bool>,
    wake: Condvar,
    stopping: AtomicBool,
    finished: Mutex<bool>,
    done: Condvar,
}

static WRITER: OnceLock<Writer> = OnceLock::new();
/// Lines lost since the last report: dropped (buffers full) or failed (write errors).
static DROPPED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);

thread_local! {
    static MINE: std::cell::OnceCell<Buffer> = const { std::cell::OnceCell::new() };
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// In a worker: lines go through buffers and a writer thread from now on.
pub fn start(access: Option<Arc<Sink>>, errors: Arc<Sink>, format: super::Format) {
    let writer = Writer {
        access,
        errors,
        format,
        buffers: Mutex::new(Vec::new()),
        error_lines: Mutex::new(Vec::new()),
        marks: Mutex::new(Vec::new()),
        wanted: Mutex::new(false),
        wake: Condvar::new(),
        stopping: AtomicBool::new(false),
        finished: Mutex::new(false),
        done: Condvar::new(),
    };
    if WRITER.set(writer).is_ok() {
        let spawned = std::thread::Builder::new()
            .name("wsgihost-log".into())
            .spawn(|| WRITER.get().expect("set above").run());
        if spawned.is_err() {
            *lock(&WRITER.get().expect("set above").finished) = true;
        }
    }
}

/// The writer thread, unless it has stopped (or never started: the master).
fn running() -> Option<&'static Writer> {
    WRITER
        .get()
        .filter(|writer| !writer.stopping.load(Ordering::Acquire))
}

/// Appends an access-log line made by `format` to this thread's buffer. False when no
/// writer thread runs (the caller writes the line itself).
pub fn append_access(format: impl FnOnce(&mut Vec<u8>)) -> bool {
    let Some(writer) = running() else {
        return false;
    };
    let buffer = MINE.with(|mine| {
        mine.get_or_init(|| {
            let buffer = Buffer::default();
            lock(&writer.buffers).push(buffer.clone());
            buffer
        })
        .clone()
    });
    let mut lines = lock(&buffer);
    let before = lines.len();
    if before >= MOST_PENDING {
        drop(lines);
        lost(&DROPPED, 1);
        return true;
    }
    format(&mut lines);
    if before < WAKE_AT && lines.len() >= WAKE_AT {
        drop(lines);
        writer.nudge();
    }
    true
}

/// Appends an error-log line and wakes the writer. False when no writer thread runs.
pub fn append_error(line: &[u8]) -> bool {
    let Some(writer) = running() else {
        return false;
    };
    {
        let mut lines = lock(&writer.error_lines);
        if lines.len() >= MOST_PENDING {
            lost(&DROPPED, 1);
            return true;
        }
        lines.extend_from_slice(line);
    }
    writer.nudge();
    true
}

/// Appends a log mark, to be written after every line appended before it, and wakes the
/// writer. False when no writer thread runs.
pub fn append_mark(line: &[u8]) -> bool {
    let Some(writer) = running() else {
        return false;
    };
    lock(&writer.marks).extend_from_slice(line);
    writer.nudge();
    true
}

/// Writes the pending error lines now, from the calling thread: before something writes to
/// the error log's descriptor directly (faulthandler), so the lines keep their order.
pub fn flush_errors() {
    if let Some(writer) = WRITER.get() {
        let errors = std::mem::take(&mut *lock(&writer.error_lines));
        write_counted(&writer.errors, &errors);
    }
}

/// Stops the writer after it has written everything appended so far (waiting at most
/// `FINAL_WAIT` for a stalled destination); later lines are written directly.
pub fn stop() {
    let Some(writer) = WRITER.get() else { return };
    writer.stopping.store(true, Ordering::Release);
    writer.nudge();
    let finished = lock(&writer.finished);
    let _ = writer
        .done
        .wait_timeout_while(finished, FINAL_WAIT, |finished| !*finished);
}

fn lost(counter: &AtomicU64, lines: u64) {
    counter.fetch_add(lines, Ordering::Relaxed);
    crate::instrument::metrics::log_lines_dropped(lines);
}

impl Writer {
    fn nudge(&self) {
        *lock(&self.wanted) = true;
        self.wake.notify_one();
    }

    fn run(&self) {
        let mut spares = Vec::new();
        let mut last_report = None;
        loop {
            {
                let wanted = lock(&self.wanted);
                let (mut wanted, _) = self
                    .wake
                    .wait_timeout_while(wanted, SWEEP, |wanted| !*wanted)
                    .unwrap_or_else(|p| p.into_inner());
                *wanted = false;
            }
            // Read before collecting: lines appended before `stop` are in this sweep.
            let stopping = self.stopping.load(Ordering::Acquire);
            // Taken before collecting: the lines logged before a mark are in this sweep.
            let marks = std::mem::take(&mut *lock(&self.marks));
            self.collect(&mut spares);
            write_counted(&self.errors, &marks);
            report_losses(&mut last_report, self.format);
            if stopping {
                self.collect(&mut spares);
                break;
            }
        }
        *lock(&self.finished) = true;
        self.done.notify_all();
    }

    /// Writes the error lines, then each thread's access lines.
    fn collect(&self, spares: &mut Vec<Vec<u8>>) {
        let errors = std::mem::take(&mut *lock(&self.error_lines));
        write_counted(&self.errors, &errors);
        let buffers = lock(&self.buffers).clone();
        for buffer in buffers {
            let mut lines = {
                let mut lines = lock(&buffer);
                if lines.is_empty() {
                    continue;
                }
                std::mem::replace(&mut *lines, spares.pop().unwrap_or_default())
            };
            match &self.access {
                Some(sink) => write_counted(sink, &lines),
                None => write_counted(&self.errors, &lines),
            }
            lines.clear();
            if lines.capacity() <= 2 * WAKE_AT {
                spares.push(lines);
            }
        }
    }
}

/// Writes `lines` to `sink`, counting them as lost if that fails.
pub fn write_counted(sink: &Sink, lines: &[u8]) {
    if lines.is_empty() {
        return;
    }
    match sink.write_lines(lines) {
        Ok(()) => {}
        Err((err, written)) => {
            let unwritten = &lines[written..];
            let count = (unwritten.iter().filter(|&&b| b == b'\n').count() as u64).max(1);
            if err.kind() == io::ErrorKind::TimedOut {
                lost(&DROPPED, count);
            } else {
                lost(&FAILED, count);
                // "No space left on device (os error 28)": the words are enough.
                let text = err.to_string();
                let words = text.split(" (os error").next().unwrap_or(&text);
                *lock(&LAST_ERROR) = Some(words.to_string());
            }
        }
    }
}

/// Says on the error log how many lines were lost since the last report: at once the
/// first time, then at most once every `REPORT_EVERY`.
fn report_losses(last_report: &mut Option<std::time::Instant>, format: super::Format) {
    if last_report.is_some_and(|at| at.elapsed() < REPORT_EVERY) {
        return;
    }
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    let failed = FAILED.swap(0, Ordering::Relaxed);
    if dropped + failed == 0 {
        return;
    }
    *last_report = Some(std::time::Instant::now());
    let mut parts = Vec::new();
    if dropped > 0 {
        parts.push(format!(
            "{dropped} dropped (the destination was slower than the requests)"
        ));
    }
    if failed > 0 {
        let error = lock(&LAST_ERROR).take().unwrap_or_default();
        parts.push(format!("{failed} lost to write errors ({error})"));
    }
    let message = format!(
        "worker {}: log lines {} since the last report (at most one report a minute)",
        std::process::id(),
        parts.join(" and ")
    );
    let mut line = Vec::new();
    super::format::error_line(format, super::Level::Error, &message, &mut line);
    if let Some(writer) = WRITER.get() {
        write_counted(&writer.errors, &line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_get_line_aligned_pieces() {
        let (read, write) = std::io::pipe().unwrap();
        let sink = Sink::file(File::from(std::os::fd::OwnedFd::from(write)));
        assert!(sink.pipe_like);
        let line = format!("{}\n", "x".repeat(999));
        let lines = line.repeat(10);
        let reader = std::thread::spawn(move || {
            let mut read = read;
            let mut pieces = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match std::io::Read::read(&mut read, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => pieces.push(buf[..n].to_vec()),
                }
            }
            pieces
        });
        sink.write_lines(lines.as_bytes()).unwrap();
        drop(sink);
        let pieces = reader.join().unwrap();
        assert_eq!(pieces.concat(), lines.as_bytes());
        assert!(pieces.iter().all(|p| p.ends_with(b"\n")));
    }
}
