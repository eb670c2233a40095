//! Request heads: httparse plus the limits and framing rules of RFC 9112 that keep request
//! smuggling out (one Content-Length, chunked only as the final coding, Host required).
use std::mem::MaybeUninit;
use std::ops::Range;

use super::HttpError;
use super::body::Framing;

/// Header slots parsed on the stack; a larger --limit-request-fields parses into the heap.
const STACK_FIELDS: usize = 100;

/// Limits on the size of a request head (gunicorn's names and meanings where it has them).
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Longest request line, in bytes (414 past it).
    pub request_line: usize,
    /// Largest block of header lines, in bytes (431 past it).
    pub header_block: usize,
    /// Longest single header line, name and value, in bytes (431 past it).
    pub field_size: usize,
    /// Most header fields (431 past it).
    pub fields: usize,
}

impl HeadLimits {
    pub const DEFAULT: HeadLimits = HeadLimits {
        request_line: 8192,
        header_block: 65536,
        field_size: 8190,
        fields: 100,
    };
}

/// A parsed request head. It owns a copy of the head bytes; fields are ranges into them.
#[derive(Debug)]
pub struct Head {
    raw: Vec<u8>,
    method: Range<usize>,
    target: Range<usize>,
    pub minor_version: u8,
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

impl Head {
    pub fn method(&self) -> &[u8] {
        &self.raw[self.method.clone()]
    }
    pub fn target(&self) -> &[u8] {
        &self.raw[self.target.clone()]
    }
    /// The head as received (to put back and parse again later).
    pub fn into_bytes(self) -> Vec<u8> {
        self.raw
    }
    pub fn is_head(&self) -> bool {
        self.method() == b"HEAD"
    }
    /// Header fields in arrival order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }
    /// The first value of the named header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
    /// The request line as sent (without its line end).
    pub fn request_line_bytes(&self) -> &[u8] {
        let end = self.raw.iter().position(|&b| b == b'\r' || b == b'\n');
        &self.raw[..end.unwrap_or(self.raw.len())]
    }
    /// The request line as sent, for logs.
    pub fn request_line(&self) -> String {
        String::from_utf8_lossy(self.request_line_bytes()).into_owned()
    }
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read more.
/// On success the head bytes are removed from `buf` (what follows, a body or the next
/// pipelined request, stays).
pub fn parse_head(buf: &mut Vec<u8>, limits: HeadLimits) -> Result<Option<Head>, HttpError> {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    let leading = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if leading > 0 {
        buf.drain(..leading);
    }
    let line_len = check_request_line_length(buf, limits.request_line)?;
    let too_large = || HttpError::new(431, "Request Header Fields Too Large");
    let masked = mask_non_ascii_target(buf, line_len);
    let parsed: &[u8] = masked.as_deref().unwrap_or(buf);
    // Left uninitialised: filling 100 slots for every request cost more than parsing.
    let mut stack = [const { MaybeUninit::<httparse::Header>::uninit() }; STACK_FIELDS];
    let mut heap = Vec::new();
    let slots = match limits.fields <= STACK_FIELDS {
        true => &mut stack[..limits.fields],
        false => {
            heap.resize_with(limits.fields, MaybeUninit::uninit);
            &mut heap[..]
        }
    };
    let mut request = httparse::Request::new(&mut []);
    let head_len = match request.parse_with_uninit_headers(parsed, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            let header_bytes = buf.len().saturating_sub(line_len);
            let too_long = header_bytes > limits.field_size
                && longest_line(&buf[line_len.min(buf.len())..]) > limits.field_size;
            return match header_bytes > limits.header_block || too_long {
                true => Err(too_large()),
                false => Ok(None),
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
        Err(_) => return Err(HttpError::new(400, "Bad Request")),
    };
    if head_len - line_len.min(head_len) > limits.header_block
        || request
            .headers
            .iter()
            .any(|h| h.name.len() + 2 + h.value.len() > limits.field_size)
    {
        return Err(too_large());
    }
    let base = parsed.as_ptr() as usize;
    let range_of = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let method = range_of(request.method.unwrap_or_default().as_bytes());
    let target = range_of(request.path.unwrap_or_default().as_bytes());
    let minor_version = request.version.unwrap_or(1);
    let headers: Vec<_> = request
        .headers
        .iter()
        .map(|h| (range_of(h.name.as_bytes()), range_of(h.value)))
        .collect();
    let raw = buf[..head_len].to_vec();
    buf.drain(..head_len);
    let mut head = Head {
        raw,
        method,
        target,
        minor_version,
        headers,
        framing: Framing::Empty,
        keep_alive: minor_version == 1,
        expect_continue: false,
    };
    interpret_headers(&mut head)?;
    Ok(Some(head))
}

/// The longest line in `bytes` without its line end (the last one may be unfinished).
fn longest_line(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).len())
        .max()
        .unwrap_or(0)
}

/// The request line's length (with its line end, or what has arrived of it); 414 when it
/// is longer than `limit`.
fn check_request_line_length(buf: &[u8], limit: usize) -> Result<usize, HttpError> {
    match buf.iter().take(limit + 2).position(|&b| b == b'\n') {
        Some(end) => Ok(end + 1),
        None if buf.len() > limit => Err(HttpError::new(414, "URI Too Long")),
        None => Ok(buf.len()),
    }
}

/// httparse wants the target to be UTF-8, but raw non-ASCII bytes are legal obs-text that
/// PEP 3333 maps to latin-1. Parse a copy with them masked as 'x' (same positions); the
/// fields are then taken from the original bytes.
fn mask_non_ascii_target(buf: &[u8], line_len: usize) -> Option<Vec<u8>> {
    let line = &buf[..line_len.min(buf.len())];
    if line.is_ascii() {
        return None;
    }
    let first_space = line.iter().position(|&b| b == b' ')?;
    let mut copy = buf.to_vec();
    for byte in &mut copy[first_space..line.len()] {
        if !byte.is_ascii() {
            *byte = b'x';
        }
    }
    Some(copy)
}

/// Applies the headers that change how the server treats the connection.
fn interpret_headers(head: &mut Head) -> Result<(), HttpError> {
    let bad = || HttpError::new(400, "Bad Request");
    let mut content_length: Option<u64> = None;
    let mut transfer_codings: Vec<Vec<u8>> = Vec::new();
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect: Option<Vec<u8>> = None;
    for (name, value) in head.headers() {
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err(bad());
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_content_length(value).ok_or_else(bad)?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(bad());
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_codings.extend(list_items(value).map(|c| c.to_ascii_lowercase()));
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in list_items(value) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect = Some(value.to_ascii_lowercase());
        }
    }
    if hosts > 1 || (hosts == 0 && head.minor_version == 1) {
        return Err(bad());
    }
    head.framing = match (content_length, transfer_codings.is_empty()) {
        (Some(_), false) => return Err(bad()),
        (Some(0), true) | (None, true) => Framing::Empty,
        (Some(length), true) => Framing::Length(length),
        (None, false) => {
            if head.minor_version == 0 {
                return Err(bad());
            }
            let (last, others) = transfer_codings.split_last().ok_or_else(bad)?;
            if others.iter().any(|c| c == b"chunked") || last != b"chunked" {
                return Err(if transfer_codings.iter().all(|c| c == b"chunked") {
                    bad()
                } else {
                    HttpError::new(501, "Not Implemented")
                });
            }
            if !others.is_empty() {
                return Err(HttpError::new(501, "Not Implemented"));
            }
            Framing::Chunked
        }
    };
    head.keep_alive = if head.minor_version == 1 {
        !close
    } else {
        keep_alive && !close
    };
    match expect.as_deref() {
        None => {}
        Some(b"100-continue") => head.expect_continue = head.minor_version == 1,
        Some(_) => return Err(HttpError::new(417, "Expectation Failed")),
    }
    Ok(())
}

/// Digits only: no sign, no spaces, no list; at most 19 digits so it fits a u64.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The items of a comma-separated header list, trimmed, empties dropped.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|item| item.trim_ascii())
        .filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits::DEFAULT;

    fn parse(text: &str) -> Result<Option<Head>, HttpError> {
        parse_head(&mut text.as_bytes().to_vec(), LIMITS)
    }

    fn status_of(text: &str) -> u16 {
        parse(text).expect_err("should be refused").status
    }

    #[test]
    fn simple_get_keeps_alive() {
        let head = parse("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.method(), b"GET");
        assert_eq!(head.target(), b"/a?b=1");
        assert_eq!(head.header("x-a"), Some(&b"1"[..]));
        assert!(head.keep_alive);
        assert_eq!(head.framing, Framing::Empty);
    }

    #[test]
    fn leaves_following_bytes_in_buffer() {
        let mut buf = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET".to_vec();
        let head = parse_head(&mut buf, LIMITS).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Length(3));
        assert_eq!(buf, b"abcGET");
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    }

    #[test]
    fn http10_closes_unless_asked() {
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().keep_alive);
        let head = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert!(head.unwrap().keep_alive);
        let head = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!head.unwrap().keep_alive);
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let cl_te =
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status_of(cl_te), 400);
        let two_cl = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(status_of(two_cl), 400);
        let signed = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n";
        assert_eq!(status_of(signed), 400);
        let not_last = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
        assert_eq!(status_of(not_last), 400);
        let unknown = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(status_of(unknown), 501);
        let space = "GET / HTTP/1.1\r\nHost : x\r\n\r\n";
        assert_eq!(status_of(space), 400);
        let fold = "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n";
        assert_eq!(status_of(fold), 400);
        assert_eq!(status_of("GET / HTTP/1.1\r\n\r\n"), 400);
    }

    #[test]
    fn same_duplicate_content_length_is_fine() {
        let text = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parse(text).unwrap().unwrap().framing, Framing::Length(3));
    }

    #[test]
    fn limits_give_414_and_431() {
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
        assert_eq!(status_of(&long_line), 414);
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            status_of(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")),
            431
        );
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\n{}X: v\r\n\r\n",
            format!("X-A: {}\r\n", "v".repeat(8000)).repeat(9)
        );
        assert_eq!(status_of(&big), 431);
        let partial = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}", "v".repeat(70000));
        assert_eq!(status_of(&partial), 431);
    }

    #[test]
    fn field_limits_give_431() {
        let field = |size: usize| format!("X: {}\r\n", "v".repeat(size - 3));
        let request = |fields: &str| format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
        assert!(parse(&request(&field(8190))).unwrap().is_some());
        assert_eq!(status_of(&request(&field(8191))), 431);
        // A long field is refused before the head is complete.
        let partial = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}", "v".repeat(9000));
        assert_eq!(status_of(&partial), 431);
        let many = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
        assert!(parse(&request(&many(99))).unwrap().is_some()); // and Host: 100
        assert_eq!(status_of(&request(&many(100))), 431);
        let roomy = HeadLimits {
            fields: 300,
            ..HeadLimits::DEFAULT
        };
        let mut buf = request(&many(250)).into_bytes();
        assert!(parse_head(&mut buf, roomy).unwrap().is_some());
    }

    #[test]
    fn non_ascii_target_bytes_survive() {
        let mut buf = b"GET /caf\xe9?q=\xff HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        let head = parse_head(&mut buf, LIMITS).unwrap().unwrap();
        assert_eq!(head.target(), b"/caf\xe9?q=\xff");
        let mut bad_method = b"G\xe9T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert!(parse_head(&mut bad_method, LIMITS).is_err());
    }

    #[test]
    fn expectations() {
        let text =
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
        assert!(parse(text).unwrap().unwrap().expect_continue);
        let odd = "POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n";
        assert_eq!(status_of(odd), 417);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "\0\0\0",
            "GET",
            "GET / HTTP/9.9\r\n\r\n",
            "\r\n\r\n\r\n",
            "GET /\x7f HTTP/1.1\r\n\r\n",
        ] {
            let _ = parse(text);
        }
    }
}
