//! What an HTTP exchange needs from the connection under it: the bytes received and not
//! yet used, a way to receive more, and two ways to send. The body reader and the response
//! writer work over this trait alone, so they are tested without a socket, and an HTTP/2
//! stream can carry the same exchange by implementing it.
use std::io;

use crate::net::connection::Connection;
use crate::net::io::Wait;

pub trait Transport {
    /// Bytes received and not consumed yet; the reader drains what it uses.
    fn input(&mut self) -> &mut Vec<u8>;

    /// Receives at least one more byte into `input`, blocking through `wait`. Returns 0
    /// when the peer has closed its side.
    fn read_more(&mut self, wait: Wait) -> io::Result<usize>;

    /// Sends all of `parts` now, blocking through `wait`.
    fn write(&mut self, parts: &[&[u8]], wait: Wait) -> io::Result<()>;

    /// Sends the last parts of a response. The transport may hold small ones back to go
    /// out with the next response of a batch.
    fn finish_response(&mut self, parts: &[&[u8]], wait: Wait) -> io::Result<()>;
}

impl Transport for Connection {
    fn input(&mut self) -> &mut Vec<u8> {
        Connection::input(self)
    }

    fn read_more(&mut self, wait: Wait) -> io::Result<usize> {
        Connection::read_more(self, wait)
    }

    fn write(&mut self, parts: &[&[u8]], wait: Wait) -> io::Result<()> {
        Connection::write(self, parts, wait)
    }

    fn finish_response(&mut self, parts: &[&[u8]], wait: Wait) -> io::Result<()> {
        Connection::finish_response(self, parts, wait)
    }
}

/// A transport in memory for unit tests: the peer's bytes arrive one given piece per read,
/// and what is sent is kept, held-back parts apart until the next write.
#[cfg(test)]
pub mod memory {
    use std::collections::VecDeque;
    use std::io;

    use super::Transport;
    use crate::net::io::{Readiness, Wait};

    #[derive(Default)]
    pub struct MemoryTransport {
        arriving: VecDeque<Vec<u8>>,
        input: Vec<u8>,
        /// Bytes on the wire, in order.
        pub written: Vec<u8>,
        /// Bytes `finish_response` held back.
        pub held: Vec<u8>,
        /// How many reads reached the peer (each returned data or end of input).
        pub reads: usize,
        /// A write fails with this once set (the peer went away).
        pub fail_writes: bool,
    }

    impl MemoryTransport {
        /// A peer that sends `pieces`, one per read, then closes.
        pub fn sending(pieces: &[&[u8]]) -> MemoryTransport {
            MemoryTransport {
                arriving: pieces.iter().map(|piece| piece.to_vec()).collect(),
                ..MemoryTransport::default()
            }
        }

        /// Everything sent, held-back bytes included.
        pub fn sent(&self) -> Vec<u8> {
            [&self.written[..], &self.held[..]].concat()
        }

        pub fn sent_text(&self) -> String {
            String::from_utf8_lossy(&self.sent()).into_owned()
        }
    }

    /// A wait for transports that never block: calling it is a test failure.
    pub fn never(_: Readiness) -> io::Result<()> {
        panic!("a memory transport never waits")
    }

    impl Transport for MemoryTransport {
        fn input(&mut self) -> &mut Vec<u8> {
            &mut self.input
        }

        fn read_more(&mut self, _: Wait) -> io::Result<usize> {
            self.reads += 1;
            let piece = self.arriving.pop_front().unwrap_or_default();
            self.input.extend_from_slice(&piece);
            Ok(piece.len())
        }

        fn write(&mut self, parts: &[&[u8]], _: Wait) -> io::Result<()> {
            if self.fail_writes {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let held = std::mem::take(&mut self.held);
            self.written.extend_from_slice(&held);
            for part in parts {
                self.written.extend_from_slice(part);
            }
            Ok(())
        }

        fn finish_response(&mut self, parts: &[&[u8]], _: Wait) -> io::Result<()> {
            if self.fail_writes {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            for part in parts {
                self.held.extend_from_slice(part);
            }
            Ok(())
        }
    }
}
