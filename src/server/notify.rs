//! systemd's readiness protocol (sd_notify): when $NOTIFY_SOCKET names a unix datagram
//! socket (systemd with Type=notify, or the pytest plugin waiting for a server), the master
//! says READY=1 once its workers serve, RELOADING=1 and READY=1 around a rolling reload,
//! and STOPPING=1 when it stops. Without the variable nothing is sent.
use std::os::unix::net::{SocketAddr, UnixDatagram};

pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    /// $NOTIFY_SOCKET as it was given (passed on to a new master by a binary upgrade).
    pub target: String,
}

impl Notifier {
    /// The socket from $NOTIFY_SOCKET (a path, or `@name` in the abstract namespace). The
    /// variable is removed so that workers and the app do not inherit it.
    pub fn from_environment() -> Option<Notifier> {
        let target = std::env::var_os("NOTIFY_SOCKET")?;
        // SAFETY: still single-threaded at start-up.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        Notifier::to(&target.to_string_lossy())
    }

    /// A notifier that sends to `target` (a path, or `@name`).
    pub fn to(target: &str) -> Option<Notifier> {
        let target = target.to_string();
        let address = match target.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None => SocketAddr::from_pathname(&target),
        };
        let notifier = address.and_then(|address| {
            Ok(Notifier {
                socket: UnixDatagram::unbound()?,
                address,
                target: target.clone(),
            })
        });
        match notifier {
            Ok(notifier) => Some(notifier),
            Err(err) => {
                crate::log_warn!("NOTIFY_SOCKET={target}: {err}; readiness is not reported");
                None
            }
        }
    }

    fn send(&self, state: &str) {
        let _ = self.socket.send_to_addr(state.as_bytes(), &self.address);
    }

    pub fn ready(&self) {
        self.send(&format!("READY=1\nMAINPID={}", std::process::id()));
    }

    pub fn reloading(&self) {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into memory we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let micros = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000;
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={micros}"));
    }

    /// A binary upgrade handed over: the service's main process is now `pid`.
    pub fn main_pid(&self, pid: i32) {
        self.send(&format!("MAINPID={pid}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}
