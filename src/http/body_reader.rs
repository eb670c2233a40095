//! Reading one request's body over a transport: Content-Length or chunked (trailers read
//! and dropped), `100 Continue` sent before the first read when the client waits for it,
//! `--max-body` enforced on chunked bodies, and what the app left unread drained (bounded)
//! so that the next request on the connection starts at the right byte.
use super::body::{ChunkedDecoder, Framing};
use super::transport::Transport;
use super::{ExchangeError, HttpError};
use crate::net::io::Wait;

/// Decoded body bytes asked of the chunked decoder at a time.
const BODY_STEP: usize = 64 * 1024;

pub struct BodyReader {
    framing: Framing,
    /// Content-Length bytes not read yet.
    left: u64,
    chunked: ChunkedDecoder,
    /// Decoded (or pushed back) bytes not handed out yet.
    decoded: Vec<u8>,
    done: bool,
    /// Decoded chunked bytes so far, against `max_body`.
    received: u64,
    /// 0: no limit.
    max_body: u64,
    /// The client sent `Expect: 100-continue` and has not been answered yet.
    continue_pending: bool,
    error: Option<HttpError>,
}

impl BodyReader {
    pub fn new(framing: Framing, max_body: u64, expect_continue: bool) -> BodyReader {
        BodyReader {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunked: ChunkedDecoder::default(),
            decoded: Vec::new(),
            done: framing == Framing::Empty,
            received: 0,
            max_body,
            continue_pending: expect_continue,
            error: None,
        }
    }

    /// True when the whole body has been read (or there was none).
    pub fn finished(&self) -> bool {
        self.done && self.decoded.is_empty()
    }

    /// Why the body was refused (malformed, too large, cut short), once it was.
    pub fn error(&self) -> Option<&HttpError> {
        self.error.as_ref()
    }

    /// Appends up to `limit` body bytes to `out`; blocks until at least one is available.
    /// Returns how many were appended: 0 at the end of the body. `head_sent`: a response
    /// head is already out, so no `100 Continue` may go before it.
    pub fn read_into(
        &mut self,
        io: &mut impl Transport,
        out: &mut Vec<u8>,
        limit: usize,
        head_sent: bool,
        wait: Wait,
    ) -> Result<usize, ExchangeError> {
        if limit == 0 {
            return Ok(0);
        }
        loop {
            if !self.decoded.is_empty() {
                let take = limit.min(self.decoded.len());
                out.extend_from_slice(&self.decoded[..take]);
                self.decoded.drain(..take);
                return Ok(take);
            }
            if self.done {
                return Ok(0);
            }
            if let Some(err) = &self.error {
                return Err(ExchangeError::Request(err.clone()));
            }
            if io.input().is_empty() {
                self.receive(io, head_sent, wait)?;
            }
            match self.framing {
                Framing::Empty => self.done = true,
                Framing::Length(_) => {
                    let input = io.input();
                    let take = (self.left.min(limit as u64) as usize).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input.drain(..take);
                    self.left -= take as u64;
                    self.done = self.left == 0;
                    return Ok(take);
                }
                Framing::Chunked => self.decode_chunked(io.input())?,
            }
        }
    }

    /// Puts bytes read too far (past a line end) back in front of the body.
    pub fn unread(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.decoded.splice(0..0, bytes);
        }
    }

    /// After the app: reads and drops what it left of the body, up to `budget` bytes.
    /// Returns whether the body is now behind us, so the connection may carry another
    /// request. A client still waiting for `100 Continue` is not asked for its body.
    pub fn discard(&mut self, io: &mut impl Transport, budget: u64, wait: Wait) -> bool {
        if self.continue_pending || matches!(self.framing, Framing::Length(n) if n > budget) {
            return self.finished();
        }
        let mut dropped = 0u64;
        let mut scratch = Vec::new();
        while !self.done && dropped <= budget {
            scratch.clear();
            match self.read_into(io, &mut scratch, BODY_STEP, true, wait) {
                Ok(0) | Err(_) => break,
                Ok(read) => dropped += read as u64,
            }
        }
        self.decoded.clear();
        self.done
    }

    /// Runs the chunked decoder over the buffered input, enforcing `--max-body`.
    fn decode_chunked(&mut self, input: &mut Vec<u8>) -> Result<(), ExchangeError> {
        let used = match self.chunked.decode(input, &mut self.decoded, BODY_STEP) {
            Ok(used) => used,
            Err(err) => return Err(self.fail(err)),
        };
        input.drain(..used);
        self.received += self.decoded.len() as u64;
        if self.max_body > 0 && self.received > self.max_body {
            self.decoded.clear();
            return Err(self.fail(HttpError::new(413, "Content Too Large")));
        }
        self.done = self.chunked.is_done();
        Ok(())
    }

    fn fail(&mut self, err: HttpError) -> ExchangeError {
        self.error = Some(err.clone());
        ExchangeError::Request(err)
    }

    /// Receives more bytes, first sending `100 Continue` if the client waits for one.
    fn receive(
        &mut self,
        io: &mut impl Transport,
        head_sent: bool,
        wait: Wait,
    ) -> Result<(), ExchangeError> {
        if self.continue_pending {
            self.continue_pending = false;
            if !head_sent {
                io.write(&[b"HTTP/1.1 100 Continue\r\n\r\n"], wait)?;
            }
        }
        match io.read_more(wait)? {
            0 => {
                self.fail(HttpError::new(400, "Bad Request"));
                Err(ExchangeError::Client(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "client closed the connection during the request body",
                )))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::transport::memory::{MemoryTransport, never};

    /// Reads the whole body `limit` bytes at a time.
    fn read_all(
        reader: &mut BodyReader,
        io: &mut MemoryTransport,
        limit: usize,
    ) -> Result<Vec<u8>, ExchangeError> {
        let mut out = Vec::new();
        while reader.read_into(io, &mut out, limit, false, &mut never)? > 0 {}
        Ok(out)
    }

    #[test]
    fn content_length_stops_at_the_length_and_leaves_the_next_request() {
        let mut io = MemoryTransport::sending(&[b"hel", b"lo wGET / HTTP/1.1\r\n"]);
        let mut reader = BodyReader::new(Framing::Length(7), 0, false);
        assert_eq!(read_all(&mut reader, &mut io, 2).unwrap(), b"hello w");
        assert!(reader.finished());
        assert_eq!(io.input(), b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn no_body_reads_nothing_from_the_peer() {
        let mut io = MemoryTransport::sending(&[b"GET /next"]);
        let mut reader = BodyReader::new(Framing::Empty, 0, false);
        assert!(read_all(&mut reader, &mut io, 10).unwrap().is_empty());
        assert_eq!(io.reads, 0);
        assert!(reader.finished());
    }

    #[test]
    fn chunked_with_trailers_in_any_split() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Sum: 9\r\n\r\nNEXT";
        let end = body.len() - b"NEXT".len();
        // A split past the end would leave NEXT unread at the peer, as it should.
        for split in 1..=end {
            let mut io = MemoryTransport::sending(&[&body[..split], &body[split..]]);
            let mut reader = BodyReader::new(Framing::Chunked, 0, false);
            assert_eq!(read_all(&mut reader, &mut io, 3).unwrap(), b"Wikipedia");
            assert!(reader.finished());
            let next: &[u8] = if split == end { b"" } else { b"NEXT" };
            assert_eq!(io.input(), next, "split at {split}");
        }
    }

    #[test]
    fn malformed_chunks_are_a_400_kept_for_later_reads() {
        let mut io = MemoryTransport::sending(&[b"zz\r\n"]);
        let mut reader = BodyReader::new(Framing::Chunked, 0, false);
        let err = read_all(&mut reader, &mut io, 10).unwrap_err();
        assert!(matches!(err, ExchangeError::Request(ref e) if e.status == 400));
        assert_eq!(reader.error().map(|e| e.status), Some(400));
        let again = read_all(&mut reader, &mut io, 10).unwrap_err();
        assert!(matches!(again, ExchangeError::Request(_)));
    }

    #[test]
    fn chunked_past_max_body_is_a_413() {
        let mut io = MemoryTransport::sending(&[b"6\r\nabcdef\r\n0\r\n\r\n"]);
        let mut reader = BodyReader::new(Framing::Chunked, 5, false);
        let err = read_all(&mut reader, &mut io, 100).unwrap_err();
        assert!(matches!(err, ExchangeError::Request(ref e) if e.status == 413));
    }

    #[test]
    fn a_peer_closing_mid_body_is_a_client_error() {
        let mut io = MemoryTransport::sending(&[b"abc"]);
        let mut reader = BodyReader::new(Framing::Length(10), 0, false);
        let err = read_all(&mut reader, &mut io, 100).unwrap_err();
        assert!(
            matches!(err, ExchangeError::Client(ref e) if e.kind() == std::io::ErrorKind::UnexpectedEof)
        );
        assert!(!reader.finished());
        assert_eq!(reader.error().map(|e| e.status), Some(400));
    }

    #[test]
    fn continue_goes_out_before_the_first_read_only() {
        let mut io = MemoryTransport::sending(&[b"ab", b"cd"]);
        let mut reader = BodyReader::new(Framing::Length(4), 0, true);
        assert_eq!(read_all(&mut reader, &mut io, 1).unwrap(), b"abcd");
        assert_eq!(io.sent_text(), "HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn no_continue_after_a_response_head() {
        let mut io = MemoryTransport::sending(&[b"abcd"]);
        let mut reader = BodyReader::new(Framing::Length(4), 0, true);
        let mut out = Vec::new();
        reader
            .read_into(&mut io, &mut out, 10, true, &mut never)
            .unwrap();
        assert_eq!(out, b"abcd");
        assert!(io.sent().is_empty());
    }

    #[test]
    fn unread_bytes_come_back_first() {
        let mut io = MemoryTransport::sending(&[b"line\nrest"]);
        let mut reader = BodyReader::new(Framing::Length(9), 0, false);
        let mut out = Vec::new();
        reader
            .read_into(&mut io, &mut out, 100, false, &mut never)
            .unwrap();
        let rest = out.split_off(5);
        reader.unread(rest);
        assert!(!reader.finished());
        assert_eq!(read_all(&mut reader, &mut io, 100).unwrap(), b"rest");
    }

    #[test]
    fn discard_drains_a_small_body_for_the_next_request() {
        let mut io = MemoryTransport::sending(&[b"3\r\nabc\r\n", b"0\r\n\r\nGET"]);
        let mut reader = BodyReader::new(Framing::Chunked, 0, false);
        assert!(reader.discard(&mut io, 1024, &mut never));
        assert_eq!(io.input(), b"GET");
    }

    #[test]
    fn discard_gives_up_past_its_budget() {
        let mut io = MemoryTransport::sending(&[b"abc"]);
        let mut reader = BodyReader::new(Framing::Length(1000), 0, false);
        assert!(!reader.discard(&mut io, 100, &mut never));
        assert_eq!(
            io.reads, 0,
            "a body longer than the budget is not read at all"
        );
        // A chunked body has no length to judge by: it is read until the budget is spent.
        let x = [b'x'; 200];
        let mut io = MemoryTransport::sending(&[b"190\r\n", &x, &x, b"\r\n0\r\n\r\n"]);
        let mut reader = BodyReader::new(Framing::Chunked, 0, false);
        assert!(!reader.discard(&mut io, 100, &mut never));
        assert_eq!(io.reads, 2, "stopped once past the budget");
    }

    #[test]
    fn discard_does_not_ask_a_client_waiting_for_continue() {
        let mut io = MemoryTransport::sending(&[b"abcd"]);
        let mut reader = BodyReader::new(Framing::Length(4), 0, true);
        assert!(!reader.discard(&mut io, 1024, &mut never));
        assert_eq!(io.reads, 0);
        assert!(io.sent().is_empty());
    }
}
