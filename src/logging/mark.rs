//! Log marks, for a reader that must cut the log at a point in time (the pytest plugin,
//! at each test's end): LOG_MARK_SIGNAL to a worker makes it write every line it has
//! buffered, then `wsgihost: log mark PID N` (N counts the signals it got). Once the mark
//! is in the log, so is everything the worker logged before the signal, without waiting
//! on the writer's sweep timer.
use std::io::Read;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// SIGRTMIN+6 (SIGRTMIN+5 is the --timeout stack report's).
pub fn signal() -> i32 {
    libc::SIGRTMIN() + 6
}

/// Where the handler writes a byte per signal; -1 until `listen` (the master).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
}

/// In the master, before any fork: the signal is caught (and ignored there) instead of
/// terminating, so a worker that gets it before `listen` loses nothing. Caught, not
/// ignored, so that processes the app starts get the default disposition back at exec.
pub fn catch() {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask is well-formed.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal(), &action, std::ptr::null_mut());
    }
}

/// In a worker: a thread answers each signal with a mark, written after everything the
/// worker logged before it.
pub fn listen() {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two descriptors, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    // SAFETY: fds[0] is a fresh descriptor owned by nothing else.
    let mut wakes = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    WAKE_FD.store(fds[1], Ordering::Relaxed);
    let pid = std::process::id();
    let _ = std::thread::Builder::new()
        .name("wsgihost-log-mark".into())
        .spawn(move || {
            let mut count = 0u64;
            let mut bytes = [0u8; 64];
            while let Ok(n @ 1..) = wakes.read(&mut bytes) {
                count += n as u64;
                super::write_mark(format!("wsgihost: log mark {pid} {count}\n").as_bytes());
            }
        });
}
