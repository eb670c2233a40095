//! Binding the listening sockets, with errors a user can act on.
use std::net::SocketAddr;

use anyhow::{Result, anyhow};
use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel may queue per listener.
const BACKLOG: i32 = 1024;

/// Binds every address, in order; the first failure names its address.
pub fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<mio::net::TcpListener>> {
    addrs.iter().map(|addr| bind(*addr)).collect()
}

fn bind(addr: SocketAddr) -> Result<mio::net::TcpListener> {
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
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(describe)?;
    }
    socket.bind(&addr.into()).map_err(describe)?;
    socket.listen(BACKLOG).map_err(describe)?;
    socket.set_nonblocking(true).map_err(describe)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}
