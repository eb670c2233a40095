//! Listening sockets and client streams over TCP or a unix socket, behind one type each,
//! so the rest of the server does not care which it is.
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

pub enum Listener {
    /// With `true`: connections speak TLS (an HTTPS listener).
    Tcp(TcpListener, bool),
    /// The socket file is removed when the master exits.
    Unix(UnixListener, PathBuf),
}

/// A client's and our own address; None for unix sockets.
pub struct Peers {
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

impl Listener {
    pub fn accept(&self) -> io::Result<(Stream, Peers)> {
        match self {
            Listener::Tcp(listener, _) => {
                let (stream, peer) = listener.accept()?;
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok();
                Ok((
                    Stream::Tcp(stream),
                    Peers {
                        peer: Some(peer),
                        local,
                    },
                ))
            }
            Listener::Unix(listener, _) => {
                let (stream, _) = listener.accept()?;
                Ok((
                    Stream::Unix(stream),
                    Peers {
                        peer: None,
                        local: None,
                    },
                ))
            }
        }
    }

    /// Whether its connections speak TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Listener::Tcp(_, true))
    }

    /// How the listener is shown to people: `http://127.0.0.1:8000` or `unix:/path`.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(listener, tls) => {
                let scheme = if *tls { "https" } else { "http" };
                match listener.local_addr() {
                    Ok(addr) => format!("{scheme}://{addr}"),
                    Err(_) => scheme.into(),
                }
            }
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }
}

macro_rules! delegate_source {
    ($type:ty, $($variant:ident),+) => {
        impl Source for $type {
            fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self { $(Self::$variant(s, ..) => s.register(r, t, i)),+ }
            }
            fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self { $(Self::$variant(s, ..) => s.reregister(r, t, i)),+ }
            }
            fn deregister(&mut self, r: &Registry) -> io::Result<()> {
                match self { $(Self::$variant(s, ..) => s.deregister(r)),+ }
            }
        }
    };
}
delegate_source!(Stream, Tcp, Unix);
delegate_source!(Listener, Tcp, Unix);

impl Stream {
    /// Ends our side of the connection (FIN): the peer reads what was sent, then EOF.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l, _) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
