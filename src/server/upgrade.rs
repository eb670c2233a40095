//! Binary upgrade on SIGUSR2, as nginx and gunicorn do it. The master starts the command it
//! was started with again (so the binary or package on disk now), handing it the listening
//! sockets by descriptor; the new master starts its workers and says READY=1 on a datagram
//! socket of the old one (the sd_notify protocol); only then does the old master stop its
//! workers and exit. Until then the old master serves on: a new master that dies, or that
//! is sent SIGQUIT before it is ready, leaves everything as it was.
//!
//! With `--pid FILE` the new master writes `FILE.2` (gunicorn's name) and renames it to
//! `FILE` once the old master has exited.
use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::net::stream::Listener;

/// The listeners a new master inherits: descriptor numbers, each with `:tls` when it is an
/// HTTPS listener and `:passed` when the old master did not bind it itself (systemd's, or
/// `fd://`: their owner keeps them, and stopping must leave them usable).
pub const FDS_VARIABLE: &str = "WSGIHOST_UPGRADE_FDS";
/// The old master's pid, in the new master's environment.
pub const FROM_VARIABLE: &str = "WSGIHOST_UPGRADE_FROM";
/// The old master's own $NOTIFY_SOCKET (systemd's): the new master reports there once the
/// old one has gone.
pub const NOTIFY_VARIABLE: &str = "WSGIHOST_UPGRADE_NOTIFY_SOCKET";
/// A new master not ready after this long is stopped, and the old one serves on.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// In a new master: the old master's pid (taken from the environment at start).
static OLD_MASTER: OnceLock<i32> = OnceLock::new();

/// The command line as the process was started (argv[0] made absolute while the working
/// directory is still the one it was started in).
static COMMAND: OnceLock<Vec<OsString>> = OnceLock::new();

/// Remembers the command line; call first thing, before --chdir.
pub fn remember_command() {
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    let mut args: Vec<OsString> = cmdline
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| std::ffi::OsStr::from_bytes(arg).to_os_string())
        .collect();
    if let Some(program) = args.first_mut() {
        let path = PathBuf::from(&*program);
        if path.components().count() > 1
            && let Ok(absolute) = std::path::absolute(&path)
        {
            *program = absolute.into_os_string();
        }
    }
    let _ = COMMAND.set(args);
}

/// An upgrade under way: the new master, and where it reports.
pub struct Upgrade {
    pub child: i32,
    channel: UnixDatagram,
    started: Instant,
}

/// What became of an upgrade this tick.
pub enum Progress {
    Waiting,
    /// The new master serves: this one stops.
    Ready,
    /// Not ready in time: it was sent SIGQUIT.
    TimedOut,
}

impl Upgrade {
    /// Starts the new master with `listeners` (and whether each is ours to own);
    /// `notify_socket`: where this master reports its own state (systemd), if anywhere.
    pub fn start<'l>(
        listeners: impl Iterator<Item = (&'l Listener, bool)>,
        notify_socket: Option<&str>,
    ) -> std::io::Result<Upgrade> {
        let Some((program, args)) = COMMAND.get().and_then(|c| c.split_first()) else {
            return Err(std::io::Error::other("the command line is unknown"));
        };
        let name = format!("wsgihost-upgrade-{}", std::process::id());
        let channel = {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            UnixDatagram::bind_addr(&address)?
        };
        channel.set_nonblocking(true)?;
        let mut fds: Vec<RawFd> = Vec::new();
        let mut described: Vec<String> = Vec::new();
        for (listener, owned) in listeners {
            fds.push(listener.as_raw_fd());
            let tls = matches!(listener, Listener::Tcp(_, true));
            described.push(format!(
                "{}{}{}",
                listener.as_raw_fd(),
                if tls { ":tls" } else { "" },
                if owned { "" } else { ":passed" }
            ));
        }
        let mut command = Command::new(program);
        command
            .args(args)
            .env(FDS_VARIABLE, described.join(","))
            .env(FROM_VARIABLE, std::process::id().to_string())
            .env("NOTIFY_SOCKET", format!("@{name}"));
        if let Some(target) = notify_socket {
            command.env(NOTIFY_VARIABLE, target);
        }
        // SAFETY: between fork and exec only fcntl runs, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                for &fd in &fds {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        Ok(Upgrade {
            child: child.id() as i32,
            channel,
            started: Instant::now(),
        })
    }

    /// Reads what the new master reported (READY=1), and gives up on it after
    /// `READY_WITHIN`.
    pub fn progress(&self) -> Progress {
        let mut message = [0u8; 512];
        while let Ok(read) = self.channel.recv(&mut message) {
            let text = String::from_utf8_lossy(&message[..read]);
            if text.lines().any(|line| line == "READY=1") {
                return Progress::Ready;
            }
        }
        if self.started.elapsed() > READY_WITHIN {
            // SAFETY: signalling the child we started.
            unsafe { libc::kill(self.child, libc::SIGQUIT) };
            return Progress::TimedOut;
        }
        Progress::Waiting
    }
}

/// A listener handed over by the old master.
#[derive(Debug, PartialEq, Eq)]
pub struct Inherited {
    pub fd: RawFd,
    pub tls: bool,
    pub owned: bool,
}

/// In a new master: the listeners the old one handed over. The variables are removed so
/// that workers and the app do not see them; the old master's pid is kept for
/// `old_master`.
pub fn take_inherited() -> Option<Vec<Inherited>> {
    let text = std::env::var(FDS_VARIABLE).ok()?;
    let from = std::env::var(FROM_VARIABLE)
        .ok()
        .and_then(|p| p.parse().ok());
    // SAFETY: single-threaded at start-up.
    unsafe {
        std::env::remove_var(FDS_VARIABLE);
        std::env::remove_var(FROM_VARIABLE);
    }
    if let Some(pid) = from {
        let _ = OLD_MASTER.set(pid);
    }
    parse_inherited(&text)
}

/// `7,8:tls,9:passed` (see `FDS_VARIABLE`).
fn parse_inherited(text: &str) -> Option<Vec<Inherited>> {
    text.split(',')
        .map(|item| {
            let mut parts = item.split(':');
            let fd = parts.next()?.parse::<RawFd>().ok()?;
            let flags: Vec<&str> = parts.collect();
            Some(Inherited {
                fd,
                tls: flags.contains(&"tls"),
                owned: !flags.contains(&"passed"),
            })
        })
        .collect()
}

/// Where a master started by an upgrade writes its pid until the old one exits.
pub fn pending_pid_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".2");
    PathBuf::from(name)
}

/// In a new master: the old master's $NOTIFY_SOCKET, to report to once it has gone.
pub fn take_later_notify_socket() -> Option<String> {
    let target = std::env::var(NOTIFY_VARIABLE).ok()?;
    // SAFETY: single-threaded at start-up.
    unsafe { std::env::remove_var(NOTIFY_VARIABLE) };
    Some(target)
}

/// In a new master: whether it was started by an upgrade.
pub fn is_upgrade() -> bool {
    OLD_MASTER.get().is_some()
}

/// In a new master: whether the old master is still running (we are its child until it
/// exits).
pub fn old_master_running() -> bool {
    // SAFETY: getppid cannot fail.
    OLD_MASTER
        .get()
        .is_some_and(|&pid| unsafe { libc::getppid() } == pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handed_over_listeners_keep_their_kind_and_owner() {
        let parsed = parse_inherited("7,8:tls,9:passed,10:tls:passed").unwrap();
        let flags: Vec<(RawFd, bool, bool)> =
            parsed.iter().map(|i| (i.fd, i.tls, i.owned)).collect();
        assert_eq!(
            flags,
            [
                (7, false, true),
                (8, true, true),
                (9, false, false),
                (10, true, false)
            ]
        );
        assert_eq!(parse_inherited("7,x"), None);
        assert_eq!(
            pending_pid_path(std::path::Path::new("/run/app.pid")),
            PathBuf::from("/run/app.pid.2")
        );
    }
}
