//! Blocking I/O with a timeout on non-blocking sockets. A request's thread uses these to
//! read its body and write its response; the caller decides what to release while waiting
//! (the GIL, for Python requests) through the `wait` closure.
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, RawFd};
use std::time::Duration;

/// Which readiness a blocked operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Readable,
    Writable,
}

/// Waits until `fd` is ready or `timeout` passes (`ErrorKind::TimedOut`).
pub fn wait_ready(fd: RawFd, readiness: Readiness, timeout: Duration) -> io::Result<()> {
    let events = match readiness {
        Readiness::Readable => libc::POLLIN,
        Readiness::Writable => libc::POLLOUT,
    };
    let mut pollfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        match ready {
            0 => return Err(io::Error::new(io::ErrorKind::TimedOut, "client timed out")),
            n if n > 0 => return Ok(()),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}

/// A way to wait for readiness; lets callers release locks (the GIL) while blocked.
pub type Wait<'a> = &'a mut dyn FnMut(Readiness) -> io::Result<()>;

/// After a failed non-blocking system call: waits when the socket was not ready, returns
/// to retry when interrupted, and fails on anything else.
fn wait_or_fail(readiness: Readiness, wait: Wait) -> io::Result<()> {
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock => wait(readiness),
        io::ErrorKind::Interrupted => Ok(()),
        _ => Err(err),
    }
}

/// Reads at least one byte (or EOF → 0) from socket `fd` into the spare capacity of
/// `buf`, up to `chunk` bytes. The kernel writes straight into the spare room: nothing is
/// zero-filled first (that memset cost more than the read for small requests).
pub fn read_some(fd: RawFd, buf: &mut Vec<u8>, chunk: usize, wait: Wait) -> io::Result<usize> {
    buf.reserve(chunk);
    loop {
        let spare = buf.spare_capacity_mut();
        // SAFETY: recv writes at most `spare.len()` bytes into memory we own and reserved.
        let read = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), 0) };
        if read >= 0 {
            let read = read as usize;
            // SAFETY: the kernel initialised exactly `read` bytes after the current length.
            unsafe { buf.set_len(buf.len() + read) };
            crate::instrument::metrics::bytes_in(read);
            return Ok(read);
        }
        wait_or_fail(Readiness::Readable, wait)?;
    }
}

/// Most parts handed to the kernel in one writev; further parts go in the next call.
const MAX_PARTS: usize = 8;

/// Writes every byte of `parts`, in order, with as few system calls as the socket allows.
pub fn write_all<S: Write>(stream: &mut S, parts: &[&[u8]], wait: Wait) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < parts.len() {
        if parts[index].len() == offset {
            index += 1;
            offset = 0;
            continue;
        }
        // Responses have at most a handful of parts: gather them on the stack.
        let mut slices = [IoSlice::new(&[]); MAX_PARTS];
        let pending =
            std::iter::once(&parts[index][offset..]).chain(parts[index + 1..].iter().copied());
        let mut count = 0;
        for (slot, part) in slices.iter_mut().zip(pending) {
            *slot = IoSlice::new(part);
            count += 1;
        }
        match stream.write_vectored(&slices[..count]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut written) => {
                crate::instrument::metrics::bytes_out(written);
                while written > 0 {
                    let left = parts[index].len() - offset;
                    if written < left {
                        offset += written;
                        written = 0;
                    } else {
                        written -= left;
                        index += 1;
                        offset = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(Readiness::Writable)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends all of `data` flagged MSG_MORE: the kernel holds it to go out in one segment with
/// what follows (a response head before its sendfile body).
pub fn send_more(socket: &impl AsFd, mut data: &[u8], wait: Wait) -> io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    while !data.is_empty() {
        match socket.send_with_flags(data, libc::MSG_MORE) {
            Ok(sent) => {
                crate::instrument::metrics::bytes_out(sent);
                data = &data[sent..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(Readiness::Writable)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset` with sendfile(2): the kernel copies, we don't.
pub fn send_file(
    socket: RawFd,
    file: RawFd,
    mut offset: i64,
    mut len: u64,
    wait: Wait,
) -> io::Result<()> {
    while len > 0 {
        let count = len.min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call; offset is ours.
        let sent = unsafe { libc::sendfile(socket, file, &mut offset, count) };
        if sent > 0 {
            crate::instrument::metrics::bytes_out(sent as usize);
            len -= sent as u64;
            continue;
        }
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than expected",
            ));
        }
        wait_or_fail(Readiness::Writable, wait)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most 3 bytes per call, to exercise partial writes.
    struct Trickle(Vec<u8>);
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_all_survives_partial_writes() {
        let mut sink = Trickle(Vec::new());
        let mut never = |_| -> io::Result<()> { unreachable!() };
        write_all(&mut sink, &[b"hello ", b"", b"wide ", b"world"], &mut never).unwrap();
        assert_eq!(sink.0, b"hello wide world");
    }
}
