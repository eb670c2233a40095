//! Signals as flags: the handler only records which signal arrived (async-signal-safe);
//! the master's and worker's main loops act on them. No handler thread, nothing that
//! survives a fork in a surprising way (child processes reset to defaults first).
use std::sync::atomic::{AtomicU64, Ordering};

pub use libc::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2};

static PENDING: AtomicU64 = AtomicU64::new(0);

extern "C" fn record(signal: libc::c_int) {
    PENDING.fetch_or(1 << signal, Ordering::SeqCst);
}

fn set_handler(signal: i32, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask is well-formed.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// Routes `signals` to the pending set. Do this before Python starts, so Python never
/// installs its own SIGINT handler over ours.
pub fn catch(signals: &[i32]) {
    for &signal in signals {
        set_handler(
            signal,
            record as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// Back to the default disposition (a forked child, before it sets up its own).
pub fn reset(signals: &[i32]) {
    PENDING.store(0, Ordering::SeqCst);
    for &signal in signals {
        set_handler(signal, libc::SIG_DFL);
    }
}

/// The signals received since the last call, lowest number first.
pub fn take() -> Vec<i32> {
    let pending = PENDING.swap(0, Ordering::SeqCst);
    (1..64).filter(|s| pending & (1 << s) != 0).collect()
}

pub fn name(signal: i32) -> String {
    match signal {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGTTIN => "SIGTTIN".into(),
        libc::SIGTTOU => "SIGTTOU".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        other => format!("signal {other}"),
    }
}
