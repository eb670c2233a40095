//! Binding the listening sockets (TCP, unix, or inherited from systemd or a parent process),
//! with errors a user can act on. The master binds them once; every worker shares them.
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use socket2::{Domain, Protocol, SockFilter, SockRef, Socket, Type};

use crate::net::stream::Listener;

pub use crate::config::bind::{BindAddr, Scheme};

/// The listeners, which of them this process bound itself (the others came from systemd
/// or `fd://`: whoever passed them keeps them open across our restarts, so stopping must
/// leave them usable), and the socket files it created (removed when it stops).
pub struct Bound {
    pub listeners: Vec<Listener>,
    owned: Vec<bool>,
    socket_files: Vec<PathBuf>,
}

/// Listeners passed by systemd socket activation, when this process is their target.
fn inherited_from_systemd(tls: bool, backlog: i32) -> Result<Option<Vec<Listener>>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok());
    let (true, Some(count)) = (for_us, count) else {
        return Ok(None);
    };
    // SAFETY: single-threaded at start-up; the variables are ours to consume.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    const FIRST_FD: RawFd = 3;
    let listeners = (FIRST_FD..FIRST_FD + count)
        .map(|fd| adopt(fd, tls, backlog))
        .collect::<Result<Vec<_>>>()
        .context("using the sockets passed by systemd")?;
    Ok(Some(listeners))
}

/// The listeners of the master this one upgrades (SIGUSR2): the same sockets, owned as it
/// owned them (its unix socket files become ours to remove).
fn from_old_master(inherited: &[super::upgrade::Inherited], backlog: i32) -> Result<Bound> {
    let mut bound = Bound {
        listeners: Vec::new(),
        owned: Vec::new(),
        socket_files: Vec::new(),
    };
    for socket in inherited {
        let mut listener = adopt(socket.fd, socket.tls, backlog)
            .with_context(|| format!("the socket (descriptor {}) of the old master", socket.fd))?;
        if let (Listener::Unix(unix, path), true) = (&mut listener, socket.owned)
            && let Some(file) = unix
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        {
            bound.socket_files.push(file.clone());
            *path = file;
        }
        bound.listeners.push(listener);
        bound.owned.push(socket.owned);
    }
    Ok(bound)
}

/// Takes over a listening socket this process inherited as descriptor `fd` (a TCP one
/// speaks TLS when `tls`); its queue is made `backlog` long, as gunicorn does.
fn adopt(fd: RawFd, tls: bool, backlog: i32) -> Result<Listener> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only writes the descriptor's type into a buffer we own; any fd number is
    // allowed (a closed one gives EBADF).
    let fstat = unsafe { libc::fstat(fd, &mut stat) };
    if fstat != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        bail!("descriptor {fd} is not an open socket");
    }
    // SAFETY: the descriptor is an open socket passed to us to own.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    if !socket.is_listener()? {
        bail!("descriptor {fd} is not a listening socket");
    }
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    let local = socket.local_addr()?;
    Ok(if local.as_socket().is_some() {
        Listener::Tcp(mio::net::TcpListener::from_std(socket.into()), tls)
    } else {
        // Not ours to remove on exit: whoever passed it owns the file.
        Listener::Unix(
            mio::net::UnixListener::from_std(socket.into()),
            PathBuf::new(),
        )
    })
}

/// How TCP listeners are made: `backlog` (--backlog), SO_REUSEPORT (--reuse-port), and
/// whether a listener not marked http:// or https:// speaks TLS (--certfile was given).
#[derive(Debug, Clone, Copy)]
pub struct TcpOptions {
    pub backlog: i32,
    pub reuse_port: bool,
    pub tls: bool,
}

impl Bound {
    /// Each listener, and whether this process owns it (bound it, not passed it).
    pub fn owned_listeners(&self) -> impl Iterator<Item = (&Listener, bool)> {
        self.listeners.iter().zip(self.owned.iter().copied())
    }

    /// The unix socket files this process created.
    pub fn socket_files(&self) -> &[PathBuf] {
        &self.socket_files
    }
}

/// Binds every address in order (or takes systemd's sockets); the first failure names its
/// address. `unix_mode` is applied to socket files.
pub fn bind_all(addrs: &[BindAddr], unix_mode: u32, tcp: TcpOptions) -> Result<Bound> {
    if let Some(inherited) = super::upgrade::take_inherited() {
        return from_old_master(&inherited, tcp.backlog);
    }
    if let Some(listeners) = inherited_from_systemd(tcp.tls, tcp.backlog)? {
        return Ok(Bound {
            owned: vec![false; listeners.len()],
            listeners,
            socket_files: Vec::new(),
        });
    }
    let listeners = addrs
        .iter()
        .map(|addr| match addr {
            BindAddr::Tcp(..) | BindAddr::Named(..) => {
                let tls = match addr.scheme() {
                    Some(Scheme::Https) => true,
                    Some(Scheme::Default) => tcp.tls,
                    _ => false,
                };
                let socket_addr = addr
                    .socket_addr()
                    .map_err(|err| anyhow!("cannot listen on {addr}: {err}"))?
                    .expect("a TCP address");
                bind_tcp(socket_addr, TcpOptions { tls, ..tcp })
            }
            BindAddr::Unix(path) => bind_unix(path, unix_mode, tcp.backlog),
            BindAddr::Fd(fd) => {
                adopt(*fd, tcp.tls, tcp.backlog).with_context(|| format!("--bind fd://{fd}"))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let owned = addrs
        .iter()
        .map(|addr| !matches!(addr, BindAddr::Fd(_)))
        .collect();
    let socket_files = listeners
        .iter()
        .filter_map(|listener| match listener {
            Listener::Unix(_, path) if !path.as_os_str().is_empty() => Some(path.clone()),
            _ => None,
        })
        .collect();
    Ok(Bound {
        listeners,
        owned,
        socket_files,
    })
}

fn bind_tcp(addr: SocketAddr, options: TcpOptions) -> Result<Listener> {
    let describe = |err: std::io::Error| match err.kind() {
        std::io::ErrorKind::AddrInUse => anyhow!("cannot listen on {addr}: address already in use"),
        std::io::ErrorKind::AddrNotAvailable => {
            anyhow!("cannot listen on {addr}: no such address on this machine")
        }
        std::io::ErrorKind::PermissionDenied => {
            anyhow!("cannot listen on {addr}: permission denied (ports below 1024 need privileges)")
        }
        _ => anyhow!("cannot listen on {addr}: {err}"),
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(describe)?;
    socket.set_reuse_address(true).map_err(describe)?;
    if options.reuse_port {
        socket.set_reuse_port(true).map_err(describe)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(describe)?;
    }
    socket.bind(&addr.into()).map_err(describe)?;
    socket.listen(options.backlog).map_err(describe)?;
    socket.set_nonblocking(true).map_err(describe)?;
    Ok(Listener::Tcp(
        mio::net::TcpListener::from_std(socket.into()),
        options.tls,
    ))
}

/// Binds a unix socket, replacing a stale socket file left by a crashed server (but never a
/// live one, nor a file that is not a socket).
fn bind_unix(path: &Path, mode: u32, backlog: i32) -> Result<Listener> {
    let shown = path.display();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("cannot listen on unix:{shown}: the path exists and is not a socket");
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("cannot listen on unix:{shown}: another server is listening there");
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket unix:{shown}"))?;
    }
    let failed = |err: std::io::Error| anyhow!("cannot listen on unix:{shown}: {err}");
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(failed)?;
    let address = socket2::SockAddr::unix(path).map_err(failed)?;
    socket.bind(&address).map_err(failed)?;
    socket.listen(backlog).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode {mode:o} on unix:{shown}"))?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    Ok(Listener::Unix(
        mio::net::UnixListener::from_std(socket.into()),
        path.to_path_buf(),
    ))
}

/// How many connections wait in a TCP listener's accept queue, and how many it may hold:
/// Linux's TCP_INFO of a listening socket gives both (tcpi_unacked, tcpi_sacked). None for
/// unix sockets.
pub fn accept_queue(listener: &Listener) -> Option<(u32, u32)> {
    use std::os::fd::AsRawFd;
    let Listener::Tcp(listener, _) = listener else {
        return None;
    };
    // SAFETY: an all-zero tcp_info is a valid value of this plain C struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which we own, for a socket
    // descriptor that `listener` keeps open.
    let done = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (done == 0).then_some((info.tcpi_unacked, info.tcpi_sacked))
}

/// A stopping server refuses new connections before its workers take the last queued ones,
/// so no client completes a handshake only to be reset when the sockets close: TCP
/// listeners get a filter that drops every SYN (the client retries, and is refused once the
/// socket is closed), unix socket files are removed (connects fail at once). Sockets someone
/// passed us are left alone: they outlive us, and the next server takes the queue.
pub fn refuse_new_connections(bound: &Bound) {
    let drop_everything = [SockFilter::new(
        (libc::BPF_RET | libc::BPF_K) as u16,
        0,
        0,
        0,
    )];
    for (listener, owned) in bound.listeners.iter().zip(&bound.owned) {
        if let (Listener::Tcp(listener, _), true) = (listener, owned)
            && let Err(err) = SockRef::from(listener).attach_filter(&drop_everything)
        {
            crate::log_warn!("cannot stop new connections during the drain: {err}");
        }
    }
    remove_socket_files(bound);
}

/// Removes the socket files this process created.
pub fn remove_socket_files(bound: &Bound) {
    for path in &bound.socket_files {
        let _ = std::fs::remove_file(path);
    }
}
