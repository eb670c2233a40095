//! One client connection: its socket, unread input and the deadline that ends it if idle.
use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io::{Readiness, Wait, read_some, send_file, send_more, wait_ready, write_all};
use super::phase::Lifecycle;
use super::stream::{Peers, Stream};
use super::tls::{ClientCert, TlsSession};

/// Bytes asked of the kernel per read.
pub const READ_CHUNK: usize = 16 * 1024;

/// Largest finished response held back to leave with the rest of its batch (see
/// `Connection::finish_response`).
pub const HOLD_LIMIT: usize = 16 * 1024;

/// Read buffers kept per thread for reuse (see `Connection::release_buffer`).
const MAX_SPARE_BUFFERS: usize = 8;

thread_local! {
    static SPARE_BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A TCP connection's addresses as the environ shows them, formatted on its first request
/// and reused by the requests that follow on it.
pub struct AddressText {
    pub remote_addr: String,
    pub remote_port: String,
    pub local_addr: String,
    pub local_port: String,
}

pub struct Connection {
    stream: Stream,
    /// On an HTTPS listener: the TLS session every byte goes through.
    tls: Option<Box<TlsSession>>,
    /// The client's address and ours (None on unix sockets).
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    /// Bytes received and not yet consumed (a partial head, body bytes, pipelined requests).
    input: Vec<u8>,
    /// Its phase and deadline (see `net::phase`).
    life: Lifecycle,
    /// The last read took less than it asked for: the socket was empty then, and any later
    /// input raises a new (edge-triggered) event, so reading again now would only return
    /// EAGAIN. Cleared whenever the event loop hands the connection out.
    drained: bool,
    /// Finished responses not written yet: they leave together with the other responses
    /// this thread finishes in the same batch of ready connections (see `EventLoop::park`).
    /// Every write on the connection sends them first, so order is kept.
    held: Vec<u8>,
    /// With --proxy-protocol: whether the header a balancer sends first has been read.
    preface: Preface,
    address_text: Option<Arc<AddressText>>,
}

/// The PROXY protocol header of a connection (see `net::proxy_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// Not read yet (or not expected: without --proxy-protocol nothing looks at it).
    Unread,
    /// Read, or settled that none comes; `client_tls`: the header says the client spoke
    /// TLS to the balancer.
    Read { client_tls: bool },
}

impl Connection {
    /// `first_request_within`: how long the client has to send its first request head (and,
    /// with TLS, to finish the handshake).
    pub fn new(
        stream: Stream,
        peers: Peers,
        first_request_within: Duration,
        tls: Option<Box<TlsSession>>,
    ) -> Self {
        crate::instrument::metrics::connection_opened();
        Connection {
            stream,
            tls,
            peer: peers.peer,
            local: peers.local,
            input: Vec::new(),
            life: Lifecycle::accepted(Instant::now(), first_request_within),
            drained: false,
            held: Vec::new(),
            preface: Preface::Unread,
            address_text: None,
        }
    }

    /// Where the connection is in its life (see `net::phase`); only its transitions,
    /// below and in `net::phase`, change it.
    pub fn life(&self) -> &Lifecycle {
        &self.life
    }

    pub fn life_mut(&mut self) -> &mut Lifecycle {
        &mut self.life
    }

    /// Bytes received and not consumed yet; consumers drain what they use.
    pub fn input(&mut self) -> &mut Vec<u8> {
        &mut self.input
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The certificate the client presented, with --cert-reqs.
    pub fn client_cert(&mut self) -> Option<Arc<ClientCert>> {
        self.tls.as_mut().and_then(|tls| tls.client_cert())
    }

    pub fn preface(&self) -> Preface {
        self.preface
    }

    pub fn set_preface(&mut self, preface: Preface) {
        self.preface = preface;
    }

    /// Whether finished responses wait to be written (see `held`).
    pub fn holds_responses(&self) -> bool {
        !self.held.is_empty()
    }

    /// The event loop hands the connection out because it saw new input: read again.
    pub fn input_arrived(&mut self) {
        self.drained = false;
    }

    /// Closing after an error: the answer is out, so the write side is shut and what the
    /// client still sends is read and dropped (see `Phase::Lingering`). Err: could not.
    pub fn start_lingering(&mut self) -> io::Result<()> {
        self.stream.shutdown_write()?;
        self.life.start_lingering(Instant::now());
        self.input.clear();
        Ok(())
    }

    /// Gives up an empty read buffer while the connection waits: 10,000 idle keep-alive
    /// clients then cost their socket and slot, not a buffer each. The buffer goes to this
    /// thread's spares for the next read; freeing and reallocating it per request made
    /// malloc return and re-fault the memory of a whole batch of buffers each time.
    pub fn release_buffer(&mut self) {
        if !self.input.is_empty() || self.input.capacity() == 0 {
            return;
        }
        let buffer = std::mem::take(&mut self.input);
        SPARE_BUFFERS.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < MAX_SPARE_BUFFERS {
                spare.push(buffer);
            }
        });
    }

    /// Puts bytes back in front of the unread input (a request head to parse again later).
    pub fn unread(&mut self, bytes: Vec<u8>) {
        self.input.splice(0..0, bytes);
    }

    /// The addresses as text; None on unix sockets.
    /// Copies what the socket holds, without taking it (a PROXY header before a TLS
    /// handshake). Ok(0): the client closed; WouldBlock: nothing yet.
    pub fn peek_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.stream {
            Stream::Tcp(tcp) => tcp.peek(buf),
            Stream::Unix(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Takes `n` bytes that `peek_raw` showed from the socket, bypassing TLS.
    pub fn consume_raw(&mut self, mut n: usize) -> io::Result<()> {
        let mut scrap = [0u8; 512];
        while n > 0 {
            let want = n.min(scrap.len());
            match io::Read::read(&mut self.stream, &mut scrap[..want]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => n -= read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// The client is `peer`, as a PROXY header says (REMOTE_ADDR, logs, trusted proxies).
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = Some(peer);
        self.address_text = None;
    }

    /// Whether the client reached us over TLS: our own, or a balancer's that says so.
    pub fn client_used_tls(&self) -> bool {
        self.tls.is_some() || self.preface == (Preface::Read { client_tls: true })
    }

    pub fn address_text(&mut self) -> Option<Arc<AddressText>> {
        let (peer, local) = (self.peer?, self.local?);
        let text = self.address_text.get_or_insert_with(|| {
            Arc::new(AddressText {
                remote_addr: peer.ip().to_string(),
                remote_port: peer.port().to_string(),
                local_addr: local.ip().to_string(),
                local_port: local.port().to_string(),
            })
        });
        Some(text.clone())
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Reads whatever is available without blocking. `Ok(None)`: nothing yet; `Ok(Some(0))`:
    /// the peer closed. Known-empty sockets are not asked again (see `drained`).
    pub fn read_available(&mut self) -> io::Result<Option<usize>> {
        if self.drained {
            return Ok(None);
        }
        let mut would_block = |_| Err(io::ErrorKind::WouldBlock.into());
        match self.read_more(&mut would_block) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads at least one more byte, blocking through `wait`. Returns 0 at EOF.
    pub fn read_more(&mut self, wait: Wait) -> io::Result<usize> {
        if self.input.capacity() == 0 {
            self.input = SPARE_BUFFERS.with(|spare| spare.borrow_mut().pop().unwrap_or_default());
        }
        if let Some(tls) = &mut self.tls {
            // The session may hold more than one read returns: never known to be drained.
            return tls.read(&mut self.stream, &mut self.input, wait);
        }
        let read = read_some(self.fd(), &mut self.input, READ_CHUNK, wait)?;
        self.drained = read < READ_CHUNK;
        Ok(read)
    }

    /// Writes all of `parts` after any held-back responses, blocking through `wait`.
    pub fn write(&mut self, parts: &[&[u8]], wait: Wait) -> io::Result<()> {
        self.life.response_started();
        if let Some(tls) = &mut self.tls {
            let held = std::mem::take(&mut self.held);
            let all = std::iter::once(&held[..]).chain(parts.iter().copied());
            return tls.write(&mut self.stream, all, wait);
        }
        if self.held.is_empty() {
            return write_all(&mut self.stream, parts, wait);
        }
        let held = std::mem::take(&mut self.held);
        let mut all = [&[][..]; 8];
        if parts.len() < all.len() {
            all[0] = &held;
            all[1..=parts.len()].copy_from_slice(parts);
            return write_all(&mut self.stream, &all[..=parts.len()], wait);
        }
        write_all(&mut self.stream, &[&held], wait)?;
        write_all(&mut self.stream, parts, wait)
    }

    /// Sends the end of a response: small ones are held back (`held`) to go out with the
    /// rest of the batch, which spares the client a wake-up per response.
    pub fn finish_response(&mut self, parts: &[&[u8]], wait: Wait) -> io::Result<()> {
        self.life.response_started();
        let size: usize = parts.iter().map(|part| part.len()).sum();
        if self.held.len() + size > HOLD_LIMIT {
            return self.write(parts, wait);
        }
        self.held.reserve(size);
        for part in parts {
            self.held.extend_from_slice(part);
        }
        Ok(())
    }

    /// Writes all of `parts`, blocking up to `timeout` per wait, without Python involved.
    pub fn write_blocking(&mut self, parts: &[&[u8]], timeout: Duration) -> io::Result<()> {
        let fd = self.fd();
        let mut wait = |readiness: Readiness| wait_ready(fd, readiness, timeout);
        self.write(parts, &mut wait)
    }

    /// Writes as much of the held-back responses as the socket takes now, keeping the rest.
    /// Ok(true): all written.
    pub fn try_flush(&mut self) -> io::Result<bool> {
        if let Some(tls) = &mut self.tls {
            let held = std::mem::take(&mut self.held);
            return tls.write_without_waiting(&mut self.stream, [&held[..]]);
        }
        while !self.held.is_empty() {
            match self.stream.write(&self.held) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    crate::instrument::metrics::bytes_out(written);
                    self.held.drain(..written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes the held-back responses, if any (and, with TLS, what the session queued).
    pub fn flush(&mut self, timeout: Duration) -> io::Result<()> {
        let tls_pending = self.tls.as_ref().is_some_and(|tls| tls.has_pending());
        match self.held.is_empty() && !tls_pending {
            true => Ok(()),
            false => self.write_blocking(&[], timeout),
        }
    }

    /// Sends a response head and then `len` bytes of `file` from `offset`: with sendfile(2)
    /// (the kernel copies, and the head leaves in the same segment), or, with TLS, read and
    /// encrypted in bounded pieces.
    pub fn send_file(
        &mut self,
        head: &[u8],
        file: &std::fs::File,
        offset: u64,
        len: u64,
        timeout: Duration,
    ) -> io::Result<()> {
        let fd = self.fd();
        let mut wait = |readiness: Readiness| wait_ready(fd, readiness, timeout);
        self.flush(timeout)?;
        self.life.response_started();
        if self.tls.is_none() {
            send_more(&self.stream, head, &mut wait)?;
            return send_file(fd, file.as_raw_fd(), offset as i64, len, &mut wait);
        }
        self.write(&[head], &mut wait)?;
        let mut piece = vec![0u8; READ_CHUNK.min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let want = piece.len().min((len - done) as usize);
            let read =
                std::os::unix::fs::FileExt::read_at(file, &mut piece[..want], offset + done)?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than expected",
                ));
            }
            self.write(&[&piece[..read]], &mut wait)?;
            done += read as u64;
        }
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        crate::instrument::metrics::connection_closed();
    }
}
