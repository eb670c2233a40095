//! Writing one response over a transport: the head (with the framing the server chooses:
//! Content-Length, chunked, or until close for HTTP/1.0), the body clipped to what the head
//! promised, the last chunk, and whether the connection may carry another request. A body
//! sent outside (sendfile) asks `body_room` first and reports with `record_sent`.
//!
//! An app that sends more than its Content-Length gets its response cut at that length:
//! the surplus is dropped and logged once, and the connection stays usable, since the
//! client received exactly what the head promised. One that sends less breaks the
//! response: the connection closes so the client sees it is incomplete.
use super::ExchangeError;
use super::response::{
    BodyFraming, CHUNK_END, LAST_CHUNK, chunk_header, encode_head, status_forbids_body,
};
use super::transport::Transport;
use crate::net::io::Wait;

/// What the application's `start_response` (or the server) chose: a validated status line
/// and encoded header lines.
#[derive(Debug, Clone)]
pub struct ResponseStart {
    pub code: u16,
    pub status_line: Vec<u8>,
    pub header_lines: Vec<u8>,
    pub content_length: Option<u64>,
    pub close_requested: bool,
}

/// Room for what the server adds to an app's header lines: status line, Server, Date,
/// Content-Length or Transfer-Encoding, Connection.
const HEAD_ROOM: usize = 160;

pub struct ResponseWriter {
    start: Option<ResponseStart>,
    head_sent: bool,
    framing: BodyFraming,
    sent: u64,
    keep_alive: bool,
    head_only: bool,
    http10: bool,
    /// The response can no longer be completed correctly: close the connection after it.
    broken: bool,
    /// The app sent more body than its Content-Length; the rest was dropped (and logged).
    surplus: bool,
}

impl ResponseWriter {
    /// `keep_alive`: what the request asked for; `head_only`: a HEAD request; `http10`: an
    /// HTTP/1.0 client (no chunking).
    pub fn new(keep_alive: bool, head_only: bool, http10: bool) -> ResponseWriter {
        ResponseWriter {
            start: None,
            head_sent: false,
            framing: BodyFraming::None,
            sent: 0,
            keep_alive,
            head_only,
            http10,
            broken: false,
            surplus: false,
        }
    }

    pub fn start(&self) -> Option<&ResponseStart> {
        self.start.as_ref()
    }

    /// Sets (or, before the head is out, replaces) the status and headers.
    pub fn set_start(&mut self, start: ResponseStart) {
        self.start = Some(start);
    }

    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// This response ends the connection (an error, a refused body): the head says so.
    pub fn refuse_keep_alive(&mut self) {
        self.keep_alive = false;
    }

    /// The response cannot be completed correctly: close the connection after it.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether the app sent more than its Content-Length: whatever it sends now is dropped.
    pub fn surplus_dropped(&self) -> bool {
        self.surplus
    }

    /// The status sent (or about to be): 500 when no status was ever set.
    pub fn status(&self) -> u16 {
        self.start.as_ref().map_or(500, |start| start.code)
    }

    /// Body bytes written so far.
    pub fn body_bytes(&self) -> u64 {
        self.sent
    }

    /// Whether the connection may carry another request after this one.
    pub fn reusable(&self) -> bool {
        self.keep_alive && !self.broken && self.framing != BodyFraming::UntilClose
    }

    /// Sends body bytes, preceded by the head the first time. `total`, when known, is the
    /// whole body's length (lets the head carry Content-Length instead of chunking).
    /// Needs a start (the caller checks).
    pub fn send(
        &mut self,
        io: &mut impl Transport,
        data: &[u8],
        total: Option<u64>,
        wait: Wait,
    ) -> Result<(), ExchangeError> {
        let mut head = Vec::new();
        if !self.head_sent {
            let header_lines = self
                .start
                .as_ref()
                .map_or(0, |start| start.header_lines.len());
            head.reserve(HEAD_ROOM + header_lines);
            self.encode_head_into(&mut head, total);
        }
        let writes_body = !self.head_only && self.framing != BodyFraming::None;
        let data = if writes_body {
            self.clip_to_length(data)
        } else {
            &[][..]
        };
        let completes = match self.framing {
            _ if !writes_body => true,
            BodyFraming::Length(expected) => self.sent + data.len() as u64 == expected,
            _ => false,
        };
        let result = if data.is_empty() && head.is_empty() {
            return Ok(());
        } else if completes {
            io.finish_response(&[&head, data], wait)
        } else if self.framing == BodyFraming::Chunked {
            let size = chunk_header(data.len());
            io.write(&[&head, &size, data, CHUNK_END], wait)
        } else {
            io.write(&[&head, data], wait)
        };
        self.sent += data.len() as u64;
        result.map_err(|err| {
            self.broken = true;
            ExchangeError::Client(err)
        })
    }

    /// Ends the response: the head if nothing was sent, the last chunk, length checks.
    pub fn finish(&mut self, io: &mut impl Transport, wait: Wait) -> Result<(), ExchangeError> {
        if !self.head_sent {
            return self.send(io, &[], Some(0), wait);
        }
        match self.framing {
            BodyFraming::Chunked if !self.head_only => {
                io.write(&[LAST_CHUNK], wait).map_err(|err| {
                    self.broken = true;
                    ExchangeError::Client(err)
                })
            }
            BodyFraming::Length(expected) if !self.head_only && self.sent < expected => {
                crate::log_error!(
                    "app sent {} of the {expected} bytes its Content-Length promised; closing",
                    self.sent
                );
                self.broken = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// How many of `len` raw body bytes may be written now, for a body sent outside
    /// `send` (sendfile). None when this response has no body on the wire.
    pub fn body_room(&mut self, len: u64) -> Option<u64> {
        match self.framing {
            _ if self.head_only => None,
            BodyFraming::None | BodyFraming::Chunked => None,
            BodyFraming::Length(expected) => {
                let room = expected.saturating_sub(self.sent);
                if len > room {
                    self.drop_surplus(expected);
                }
                Some(len.min(room))
            }
            BodyFraming::UntilClose => Some(len),
        }
    }

    /// Counts body bytes written outside `send`.
    pub fn record_sent(&mut self, len: u64) {
        self.sent += len;
    }

    /// The part of `data` that fits the declared Content-Length.
    fn clip_to_length<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        if let BodyFraming::Length(expected) = self.framing {
            let room = expected.saturating_sub(self.sent);
            if data.len() as u64 > room {
                self.drop_surplus(expected);
                return &data[..room as usize];
            }
        }
        data
    }

    /// Notes (and logs, the first time in this response) body past the Content-Length.
    fn drop_surplus(&mut self, expected: u64) {
        if !self.surplus {
            crate::log_error!(
                "app sent more than its Content-Length of {expected} bytes; the surplus is dropped"
            );
            self.surplus = true;
        }
    }

    fn encode_head_into(&mut self, out: &mut Vec<u8>, total: Option<u64>) {
        let start = self.start.as_ref().expect("a start is set before sending");
        self.framing = if status_forbids_body(start.code) {
            BodyFraming::None
        } else if let Some(length) = start.content_length.or(total) {
            BodyFraming::Length(length)
        } else if self.head_only {
            BodyFraming::None
        } else if !self.http10 {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        };
        if start.close_requested || self.framing == BodyFraming::UntilClose {
            self.keep_alive = false;
        }
        // A HEAD response announces the length the GET would have, but sends no body.
        let framing = if self.head_only && self.framing == BodyFraming::Chunked {
            BodyFraming::None
        } else {
            self.framing
        };
        encode_head(
            out,
            &start.status_line,
            &start.header_lines,
            framing,
            self.keep_alive,
            self.http10,
        );
        self.head_sent = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::transport::memory::{MemoryTransport, never};

    fn start(code: u16, headers: &str, content_length: Option<u64>) -> ResponseStart {
        ResponseStart {
            code,
            status_line: format!("{code} {}", crate::http::response::reason_phrase(code))
                .into_bytes(),
            header_lines: headers.as_bytes().to_vec(),
            content_length,
            close_requested: false,
        }
    }

    /// A writer for an HTTP/1.1 keep-alive GET with `start` set.
    fn writer(start: ResponseStart) -> ResponseWriter {
        let mut writer = ResponseWriter::new(true, false, false);
        writer.set_start(start);
        writer
    }

    /// The head's lines without Date (it changes) and the body after it.
    fn split(sent: &str) -> (Vec<&str>, &str) {
        let (head, body) = sent.split_once("\r\n\r\n").expect("a whole head");
        let lines = head
            .lines()
            .filter(|line| !line.starts_with("Date: "))
            .collect();
        (lines, body)
    }

    #[test]
    fn a_known_length_goes_in_the_head_and_the_end_is_held_for_the_batch() {
        let mut io = MemoryTransport::default();
        let mut writer = writer(start(200, "Content-Type: text/plain\r\n", None));
        writer.send(&mut io, b"hello", Some(5), &mut never).unwrap();
        writer.finish(&mut io, &mut never).unwrap();
        assert!(
            io.written.is_empty(),
            "a whole small response waits for the batch"
        );
        let sent = io.sent_text();
        let (head, body) = split(&sent);
        assert_eq!(
            head,
            [
                "HTTP/1.1 200 OK",
                "Server: wsgihost",
                "Content-Type: text/plain",
                "Content-Length: 5"
            ]
        );
        assert_eq!(body, "hello");
        assert!(writer.reusable());
        assert_eq!((writer.status(), writer.body_bytes()), (200, 5));
    }

    #[test]
    fn an_unknown_length_is_chunked_and_ends_with_the_last_chunk() {
        let mut io = MemoryTransport::default();
        let mut writer = writer(start(200, "", None));
        writer.send(&mut io, b"abc", None, &mut never).unwrap();
        writer.send(&mut io, b"defgh", None, &mut never).unwrap();
        writer.finish(&mut io, &mut never).unwrap();
        let sent = io.sent_text();
        let (head, body) = split(&sent);
        assert!(head.contains(&"Transfer-Encoding: chunked"));
        assert_eq!(body, "3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n");
        assert!(writer.reusable());
    }

    #[test]
    fn http10_without_a_length_ends_at_close() {
        let mut io = MemoryTransport::default();
        let mut writer = ResponseWriter::new(true, false, true);
        writer.set_start(start(200, "", None));
        writer.send(&mut io, b"abc", None, &mut never).unwrap();
        writer.finish(&mut io, &mut never).unwrap();
        let sent = io.sent_text();
        let (head, body) = split(&sent);
        assert!(head.contains(&"Connection: close"));
        assert!(
            !head
                .iter()
                .any(|line| line.starts_with("Transfer-Encoding"))
        );
        assert_eq!(body, "abc");
        assert!(!writer.reusable());
    }

    #[test]
    fn http10_with_a_length_stays_alive_in_its_spelling() {
        let mut io = MemoryTransport::default();
        let mut writer = ResponseWriter::new(true, false, true);
        writer.set_start(start(200, "", Some(2)));
        writer.send(&mut io, b"ok", None, &mut never).unwrap();
        let sent = io.sent_text();
        let (head, _) = split(&sent);
        assert!(head.contains(&"Connection: Keep-Alive"));
        assert!(writer.reusable());
    }

    #[test]
    fn head_requests_get_the_length_without_the_body() {
        let mut io = MemoryTransport::default();
        let mut writer = ResponseWriter::new(true, true, false);
        writer.set_start(start(200, "", None));
        writer.send(&mut io, b"hello", Some(5), &mut never).unwrap();
        writer.finish(&mut io, &mut never).unwrap();
        let sent = io.sent_text();
        let (head, body) = split(&sent);
        assert!(head.contains(&"Content-Length: 5"));
        assert_eq!(body, "");
        assert!(writer.reusable());
        assert_eq!(writer.body_room(5), None);
    }

    #[test]
    fn no_body_statuses_send_none() {
        for code in [204, 304] {
            let mut io = MemoryTransport::default();
            let mut writer = writer(start(code, "", None));
            writer.send(&mut io, b"ignored", None, &mut never).unwrap();
            writer.finish(&mut io, &mut never).unwrap();
            let sent = io.sent_text();
            let (head, body) = split(&sent);
            assert!(
                !head
                    .iter()
                    .any(|l| l.starts_with("Content-Length") || l.starts_with("Transfer"))
            );
            assert_eq!(body, "", "{code}");
            assert!(writer.reusable());
        }
    }

    #[test]
    fn finishing_without_a_body_sends_a_zero_length() {
        let mut io = MemoryTransport::default();
        let mut writer = writer(start(200, "", None));
        writer.finish(&mut io, &mut never).unwrap();
        let sent = io.sent_text();
        let (head, body) = split(&sent);
        assert!(head.contains(&"Content-Length: 0"));
        assert_eq!(body, "");
    }

    #[test]
    fn a_close_request_or_refusal_says_connection_close() {
        let mut io = MemoryTransport::default();
        let mut asked = start(200, "", Some(0));
        asked.close_requested = true;
        let mut closing = writer(asked);
        closing.finish(&mut io, &mut never).unwrap();
        assert!(io.sent_text().contains("\r\nConnection: close\r\n"));
        assert!(!closing.reusable());

        let mut io = MemoryTransport::default();
        let mut writer = writer(start(413, "", Some(0)));
        writer.refuse_keep_alive();
        writer.finish(&mut io, &mut never).unwrap();
        assert!(io.sent_text().contains("\r\nConnection: close\r\n"));
        assert!(!writer.reusable());
    }

    #[test]
    fn a_short_body_breaks_the_connection() {
        let mut io = MemoryTransport::default();
        let mut writer = writer(start(200, "", Some(10)));
        writer.send(&mut io, b"abc", None, &mut never).unwrap();
        writer.finish(&mut io, &mut never).unwrap();
        assert!(writer.is_broken());
        assert!(!writer.reusable());
    }

    #[test]
    fn body_room_bounds_a_file_to_the_promised_length() {
        let mut io = MemoryTransport::default();
        let mut file = writer(start(200, "", Some(100)));
        file.send(&mut io, &[], Some(500), &mut never).unwrap();
        assert_eq!(file.body_room(100), Some(100));
        file.record_sent(100);
        file.finish(&mut io, &mut never).unwrap();
        assert!(file.reusable());
        let mut chunked = writer(start(200, "", None));
        chunked.send(&mut io, b"x", None, &mut never).unwrap();
        assert_eq!(
            chunked.body_room(10),
            None,
            "a file is not sent raw into chunks"
        );
    }

    #[test]
    fn a_surplus_is_cut_at_the_length_and_the_connection_stays_usable() {
        let mut io = MemoryTransport::default();
        let mut writer = writer(start(200, "", Some(10)));
        for piece in [&b"aaaaaa"[..], b"bbbbbb", b"cccccc"] {
            writer.send(&mut io, piece, None, &mut never).unwrap();
        }
        writer.finish(&mut io, &mut never).unwrap();
        let sent = io.sent_text();
        assert_eq!(split(&sent).1, "aaaaaabbbb");
        assert!(writer.surplus_dropped());
        assert!(writer.reusable());
        assert_eq!(writer.body_bytes(), 10);
    }

    #[test]
    fn a_file_longer_than_the_length_is_a_surplus_too() {
        let mut io = MemoryTransport::default();
        let mut file = writer(start(200, "", Some(10)));
        file.send(&mut io, &[], Some(4096), &mut never).unwrap();
        assert_eq!(file.body_room(4096), Some(10));
        file.record_sent(10);
        file.finish(&mut io, &mut never).unwrap();
        assert!(file.surplus_dropped());
        assert!(file.reusable());
    }

    #[test]
    fn a_failed_write_breaks_the_response() {
        let mut io = MemoryTransport::default();
        io.fail_writes = true;
        let mut writer = writer(start(200, "", None));
        let err = writer.send(&mut io, b"abc", None, &mut never).unwrap_err();
        assert!(matches!(err, ExchangeError::Client(_)));
        assert!(writer.is_broken());
    }
}
