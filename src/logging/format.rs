//! Formatting log lines straight into a byte buffer: the access-log atoms, the time (made
//! once per second per thread), and escaping, so what a client sent can never forge a line
//! or put terminal escapes into a log (Apache's and nginx's rule: `"`, `\`, control bytes
//! and non-ASCII bytes are written as escapes).
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use super::Access;
use crate::http::request::Head;

/// One piece of `--access-log-format`.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    Text(String),
    RemoteAddr,
    /// The user of HTTP Basic authentication, `-` without.
    User,
    Time,
    RequestLine,
    Method,
    Path,
    /// The path percent-decoded (gunicorn's PATH_INFO).
    DecodedPath,
    /// With its `?` (Apache's %q) or without (gunicorn's q).
    Query {
        mark: bool,
    },
    Protocol,
    Status,
    /// %b: bytes, "-" for none (Apache's convention); %B: always a number.
    Bytes {
        dash_for_zero: bool,
    },
    Micros,
    Millis,
    /// Seconds with six decimals.
    Seconds,
    WholeSeconds,
    Pid,
    Header(String),
    /// A header of the app's response (`-` for answers the server made itself).
    ResponseHeader(String),
    /// A WSGI environ variable of the request (`-` outside app requests).
    Environ(String),
}

/// The format atoms, documented in the README: Apache-style, then gunicorn's.
pub const ACCESS_FORMAT_ATOMS: &[(&str, &str)] = &[
    ("%h", "client address (- on unix sockets)"),
    ("%l", "always -"),
    ("%u", "always - (no authentication at this layer)"),
    ("%t", "time the request ended, [23/Nov/2026:21:00:00 +0000]"),
    ("%r", "request line"),
    ("%m", "method"),
    ("%U", "path, as sent"),
    ("%q", "query string (with ?), or empty"),
    ("%H", "protocol (HTTP/1.1)"),
    ("%s", "status code"),
    ("%b", "response body bytes, - when none"),
    ("%B", "response body bytes"),
    ("%D", "request time in microseconds"),
    ("%T", "request time in seconds"),
    ("%p", "worker process id"),
    ("%{Name}i", "request header Name"),
    ("%%", "a literal %"),
];

pub const DEFAULT_ACCESS_FORMAT: &str =
    "%h %l %u %t \"%r\" %s %b \"%{Referer}i\" \"%{User-Agent}i\" %D";

/// An Apache-style atom: `%h`, `%{Name}i`.
fn apache_atom(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> anyhow::Result<Atom> {
    Ok(match chars.next() {
        Some('h') => Atom::RemoteAddr,
        Some('l') | Some('u') => Atom::Text("-".into()),
        Some('t') => Atom::Time,
        Some('r') => Atom::RequestLine,
        Some('m') => Atom::Method,
        Some('U') => Atom::Path,
        Some('q') => Atom::Query { mark: true },
        Some('H') => Atom::Protocol,
        Some('s') => Atom::Status,
        Some('b') => Atom::Bytes {
            dash_for_zero: true,
        },
        Some('B') => Atom::Bytes {
            dash_for_zero: false,
        },
        Some('D') => Atom::Micros,
        Some('T') => Atom::Seconds,
        Some('p') => Atom::Pid,
        Some('{') => {
            let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
            match chars.next() {
                Some('i') if !name.is_empty() => Atom::Header(name),
                _ => anyhow::bail!(
                    "--access-log-format: %{{{name}}} must be followed by i (a request header)"
                ),
            }
        }
        other => anyhow::bail!(
            "--access-log-format: unknown atom %{}; see the README for the list",
            other.map(String::from).unwrap_or_default()
        ),
    })
}

/// A gunicorn atom, the name inside `%(...)s`: `h`, `{x-forwarded-for}i`.
fn gunicorn_atom(name: &str) -> anyhow::Result<Vec<Atom>> {
    let atom = match name {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Text("-".into()),
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "m" => Atom::Method,
        "U" => Atom::DecodedPath,
        "q" => Atom::Query { mark: false },
        "H" => Atom::Protocol,
        "s" => Atom::Status,
        "B" | "b" => Atom::Bytes {
            dash_for_zero: false,
        },
        "f" => Atom::Header("Referer".into()),
        "a" => Atom::Header("User-Agent".into()),
        "T" => Atom::WholeSeconds,
        "M" => Atom::Millis,
        "D" => Atom::Micros,
        "L" => Atom::Seconds,
        "p" => {
            return Ok(vec![
                Atom::Text("<".into()),
                Atom::Pid,
                Atom::Text(">".into()),
            ]);
        }
        _ => {
            let braced = name
                .strip_prefix('{')
                .and_then(|rest| rest.rsplit_once('}'))
                .filter(|(inner, _)| !inner.is_empty());
            match braced {
                Some((inner, "i")) => Atom::Header(inner.into()),
                Some((inner, "o")) => Atom::ResponseHeader(inner.into()),
                Some((inner, "e")) => Atom::Environ(inner.into()),
                _ => anyhow::bail!(
                    "--access-log-format: unknown gunicorn atom %({name})s; see the README for the list"
                ),
            }
        }
    };
    Ok(vec![atom])
}

/// Parses a format in either syntax: Apache's `%h %r` or gunicorn's `%(h)s %(r)s` (they may
/// be mixed).
pub fn parse_format(format: &str) -> anyhow::Result<Vec<Atom>> {
    let mut atoms = Vec::new();
    let mut text = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let parsed = match chars.peek() {
            Some('%') => {
                chars.next();
                text.push('%');
                continue;
            }
            Some('(') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|&c| c != ')').collect();
                match chars.next() {
                    Some('s') => gunicorn_atom(&name)?,
                    other => anyhow::bail!(
                        "--access-log-format: %({name}){} is not supported: write %({name})s",
                        other.map(String::from).unwrap_or_default()
                    ),
                }
            }
            _ => vec![apache_atom(&mut chars)?],
        };
        if !text.is_empty() {
            atoms.push(Atom::Text(std::mem::take(&mut text)));
        }
        atoms.extend(parsed);
    }
    if !text.is_empty() {
        atoms.push(Atom::Text(text));
    }
    Ok(atoms)
}

/// Appends one access-log line in the text format.
pub fn access_text(atoms: &[Atom], record: &Access, out: &mut Vec<u8>) {
    let head = record.head;
    let target = head.map(Head::target).unwrap_or(b"-");
    let split = target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len());
    for atom in atoms {
        match atom {
            Atom::Text(text) => out.extend_from_slice(text.as_bytes()),
            Atom::RemoteAddr => match record.peer {
                Some(peer) => push_ip(out, peer),
                None => out.push(b'-'),
            },
            Atom::User => match head.and_then(basic_auth_user) {
                Some(user) => escaped(out, &user),
                None => out.push(b'-'),
            },
            Atom::Time => with_times(|times| out.extend_from_slice(&times.clf)),
            Atom::RequestLine => escaped(out, head.map_or(b"-", Head::request_line_bytes)),
            Atom::Method => escaped(out, head.map_or(b"-", Head::method)),
            Atom::Path => escaped(out, &target[..split]),
            Atom::DecodedPath => escaped(out, &crate::route::decode_path(&target[..split])),
            Atom::Query { mark: true } => escaped(out, &target[split..]),
            Atom::Query { mark: false } => escaped(out, target.get(split + 1..).unwrap_or(b"")),
            Atom::Protocol => out.extend_from_slice(protocol(head).as_bytes()),
            Atom::Status => push_number(out, u64::from(record.status)),
            Atom::Bytes {
                dash_for_zero: true,
            } if record.bytes == 0 => out.push(b'-'),
            Atom::Bytes { .. } => push_number(out, record.bytes),
            Atom::Micros => push_number(out, record.micros),
            Atom::Millis => push_number(out, record.micros / 1000),
            Atom::WholeSeconds => push_number(out, record.micros / 1_000_000),
            Atom::Seconds => {
                push_number(out, record.micros / 1_000_000);
                let fraction = record.micros % 1_000_000 + 1_000_000;
                let mut digits = itoa::Buffer::new();
                out.push(b'.');
                out.extend_from_slice(&digits.format(fraction).as_bytes()[1..]);
            }
            Atom::Pid => push_number(out, u64::from(std::process::id())),
            Atom::Header(name) => match head.and_then(|h| h.header(name)) {
                Some(value) => escaped(out, value),
                None => out.push(b'-'),
            },
            Atom::ResponseHeader(name) => {
                match record
                    .response_headers
                    .and_then(|h| response_header(h, name))
                {
                    Some(value) => escaped(out, value),
                    None => out.push(b'-'),
                }
            }
            Atom::Environ(name) => match record
                .environ
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
            {
                Some((_, value)) => escaped(out, value),
                None => out.push(b'-'),
            },
        }
    }
    out.push(b'\n');
}

/// The user name of `Authorization: Basic ...`, as gunicorn's %(u)s shows it.
fn basic_auth_user(head: &Head) -> Option<Vec<u8>> {
    use base64::Engine;
    let value = head.header("authorization")?;
    let (scheme, credentials) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim_ascii())
        .ok()?;
    let end = decoded
        .iter()
        .position(|&b| b == b':')
        .unwrap_or(decoded.len());
    Some(decoded[..end].to_vec())
}

/// The value of header `name` in an encoded header block (`Name: value\r\n` lines).
fn response_header<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    block.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| line[colon + 1..].trim_ascii())
    })
}

/// Appends one access-log line as a JSON object.
pub fn access_json(record: &Access, out: &mut Vec<u8>) {
    let head = record.head;
    out.extend_from_slice(b"{\"time\":");
    with_times(|times| out.extend_from_slice(&times.json));
    out.extend_from_slice(b",\"remote\":");
    match record.peer {
        Some(peer) => {
            out.push(b'"');
            push_ip(out, peer);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    let fields: [(&str, Option<&[u8]>); 3] = [
        ("request", head.map(Head::request_line_bytes)),
        ("method", head.map(Head::method)),
        ("target", head.map(Head::target)),
    ];
    for (name, value) in fields {
        json_field(out, name, value);
    }
    for (name, value) in [
        ("status", u64::from(record.status)),
        ("bytes", record.bytes),
        ("duration_us", record.micros),
    ] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        push_number(out, value);
    }
    json_field(out, "referer", head.and_then(|h| h.header("referer")));
    json_field(out, "user_agent", head.and_then(|h| h.header("user-agent")));
    out.extend_from_slice(b",\"pid\":");
    push_number(out, u64::from(std::process::id()));
    out.extend_from_slice(b"}\n");
}

/// Appends one error-log line (a message of any length, tracebacks included, kept whole).
pub fn error_line(format: super::Format, level: super::Level, message: &str, out: &mut Vec<u8>) {
    match format {
        super::Format::Text => {
            out.extend_from_slice(match level {
                super::Level::Warning => b"wsgihost: warning: ",
                super::Level::Critical => b"wsgihost: critical: ",
                super::Level::Debug => b"wsgihost: debug: ",
                _ => b"wsgihost: ",
            });
            out.extend_from_slice(message.as_bytes());
        }
        super::Format::Json => {
            out.extend_from_slice(b"{\"time\":");
            with_times(|times| out.extend_from_slice(&times.json));
            out.extend_from_slice(b",\"level\":\"");
            out.extend_from_slice(format!("{level:?}").to_lowercase().as_bytes());
            out.extend_from_slice(b"\",\"pid\":");
            push_number(out, u64::from(std::process::id()));
            json_field(out, "message", Some(message.as_bytes()));
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

fn protocol(head: Option<&Head>) -> &'static str {
    match head.map(|h| h.minor_version) {
        Some(0) => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

fn push_number(out: &mut Vec<u8>, number: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
}

fn push_ip(out: &mut Vec<u8>, peer: SocketAddr) {
    match peer.ip() {
        IpAddr::V4(ip) => {
            for (index, octet) in ip.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push(b'.');
                }
                push_number(out, u64::from(octet));
            }
        }
        IpAddr::V6(ip) => {
            use std::io::Write;
            let _ = write!(out, "{ip}");
        }
    }
}

/// Which bytes a text log line shows as escapes.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b >= 0x7f || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    table
};

/// Which bytes of UTF-8 text a JSON string shows as escapes (multi-byte characters are
/// all bytes of 0x80 and above, copied as they are).
const JSON_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == 0x7f || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    table
};

/// Appends `bytes`, runs of ordinary bytes copied whole and those `table` marks written
/// by `escape`.
fn copy_escaping(
    out: &mut Vec<u8>,
    bytes: &[u8],
    table: &[bool; 256],
    escape: fn(&mut Vec<u8>, u8),
) {
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if table[byte as usize] {
            out.extend_from_slice(&bytes[start..index]);
            escape(out, byte);
            start = index + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `bytes` with `"` and `\` backslashed and other unsafe bytes as `\xHH`.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    copy_escaping(out, bytes, &NEEDS_ESCAPE, |out, byte| match byte {
        b'"' | b'\\' => out.extend_from_slice(&[b'\\', byte]),
        _ => out.extend_from_slice(&[b'\\', b'x', hex(byte >> 4), hex(byte & 15)]),
    });
}

fn hex(nibble: u8) -> u8 {
    b"0123456789abcdef"[nibble as usize]
}

/// `,"name":"value"` (or null), the value a JSON string: UTF-8 kept, other bytes read as
/// latin-1 (as the WSGI environ does), quotes, backslashes and controls escaped.
fn json_field(out: &mut Vec<u8>, name: &str, value: Option<&[u8]>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    let Some(value) = value else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    match std::str::from_utf8(value) {
        Ok(_) => copy_escaping(out, value, &JSON_ESCAPE, |out, byte| {
            json_char(out, char::from(byte))
        }),
        Err(_) => value.iter().for_each(|&b| json_char(out, char::from(b))),
    }
    out.push(b'"');
}

fn json_char(out: &mut Vec<u8>, c: char) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\n' => out.extend_from_slice(b"\\n"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let b = c as u8;
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 15)]);
        }
        c => {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// The current second, formatted for the two log formats.
struct Times {
    second: u64,
    /// `[23/Nov/2026:21:00:00 +0000]`
    clf: Vec<u8>,
    /// `"Mon, 23 Nov 2026 21:00:00 GMT"` (with the quotes)
    json: Vec<u8>,
}

thread_local! {
    static TIMES: RefCell<Times> = const {
        RefCell::new(Times { second: u64::MAX, clf: Vec::new(), json: Vec::new() })
    };
}

/// Runs `f` with this second's formatted times (made at most once a second per thread).
fn with_times(f: impl FnOnce(&Times)) {
    TIMES.with(|times| {
        let mut times = times.borrow_mut();
        let now = crate::clock::unix_seconds();
        if times.second != now {
            let stamp = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now);
            let http = httpdate::fmt_http_date(stamp);
            // "Mon, 23 Nov 2026 21:00:00 GMT" → day, month, year, time.
            times.clf = match http.split_whitespace().collect::<Vec<_>>().as_slice() {
                [_, day, month, year, time, _] => {
                    format!("[{day}/{month}/{year}:{time} +0000]").into_bytes()
                }
                _ => format!("[{http}]").into_bytes(),
            };
            times.json = format!("\"{http}\"").into_bytes();
            times.second = now;
        }
        f(&times);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{HeadLimits, parse_head};

    fn head(text: &[u8]) -> Head {
        let limits = HeadLimits::DEFAULT;
        parse_head(&mut text.to_vec(), limits).unwrap().unwrap()
    }

    #[test]
    fn formats_parse() {
        let atoms = parse_format("%h \"%r\" %{X-Id}i 100%%").unwrap();
        assert_eq!(
            atoms,
            vec![
                Atom::RemoteAddr,
                Atom::Text(" \"".into()),
                Atom::RequestLine,
                Atom::Text("\" ".into()),
                Atom::Header("X-Id".into()),
                Atom::Text(" 100%".into()),
            ]
        );
        assert!(parse_format("%z").is_err());
        assert!(
            parse_format("%(zz)s")
                .unwrap_err()
                .to_string()
                .contains("%(zz)s")
        );
        assert!(parse_format("%(h)d").is_err());
        assert_eq!(
            parse_format("%(h)s %({X-Id}i)s %(p)s").unwrap(),
            vec![
                Atom::RemoteAddr,
                Atom::Text(" ".into()),
                Atom::Header("X-Id".into()),
                Atom::Text(" ".into()),
                Atom::Text("<".into()),
                Atom::Pid,
                Atom::Text(">".into()),
            ]
        );
        assert!(parse_format("%{X}o").is_err());
        assert!(parse_format(DEFAULT_ACCESS_FORMAT).is_ok());
    }

    #[test]
    fn text_lines_escape_what_clients_sent() {
        let head = head(b"GET /a?q=\xff HTTP/1.1\r\nHost: x\r\nUser-Agent: ev\"il\xe9\\\r\n\r\n");
        let record = Access {
            head: Some(&head),
            peer: Some("10.0.0.7:5000".parse().unwrap()),
            status: 200,
            bytes: 0,
            micros: 1_234_567,
            response_headers: Some(b"Content-Type: text/plain\r\nX-Cache:  hit \r\n"),
            environ: &[("REMOTE_USER".into(), b"ann".to_vec())],
        };
        let atoms = parse_format("%h %r|%U|%q|%{User-Agent}i|%b|%B|%T|%D|%t").unwrap();
        let mut out = Vec::new();
        access_text(&atoms, &record, &mut out);
        let line = String::from_utf8(out).unwrap();
        let (start, time) = line.rsplit_once('|').unwrap();
        assert_eq!(
            start,
            "10.0.0.7 GET /a?q=\\xff HTTP/1.1|/a|?q=\\xff|ev\\\"il\\xe9\\\\|-|0|1.234567|1234567"
        );
        assert!(
            time.starts_with('[') && time.ends_with(" +0000]\n"),
            "{time}"
        );
    }

    #[test]
    fn gunicorn_atoms() {
        let head = head(
            b"GET /a%20b?x=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YW5uOnNlY3JldA==\r\n\r\n",
        );
        let record = Access {
            head: Some(&head),
            peer: None,
            status: 201,
            bytes: 0,
            micros: 2_345_678,
            response_headers: Some(b"X-Cache: hit\r\n"),
            environ: &[("wsgi.url_scheme".into(), b"https".to_vec())],
        };
        let atoms = parse_format(
            "%(h)s|%(u)s|%(U)s|%(q)s|%(b)s|%(T)s|%(M)s|%(L)s|%(f)s|%({x-cache}o)s|%({WSGI.URL_SCHEME}e)s|%({nope}o)s",
        )
        .unwrap();
        let mut out = Vec::new();
        access_text(&atoms, &record, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-|ann|/a b|x=1|0|2|2345|2.345678|-|hit|https|-\n"
        );
    }

    #[test]
    fn json_lines_are_valid_json() {
        let head = head(b"GET /caf\xc3\xa9?\xff HTTP/1.1\r\nHost: x\r\nReferer: \"q\"\r\nUser-Agent: caf\xc3\xa9 \\ \t.\r\n\r\n");
        let record = Access {
            head: Some(&head),
            peer: Some("[::1]:80".parse().unwrap()),
            status: 404,
            bytes: 9,
            micros: 10,
            response_headers: None,
            environ: &[],
        };
        let mut out = Vec::new();
        access_json(&record, &mut out);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["remote"], "::1");
        assert_eq!(value["target"], "/caf\u{c3}\u{a9}?\u{ff}");
        assert_eq!(value["referer"], "\"q\"");
        assert_eq!(value["user_agent"], "caf\u{e9} \\ \t.");
        assert_eq!(value["status"], 404);
        let mut out = Vec::new();
        error_line(
            super::super::Format::Json,
            super::super::Level::Error,
            "two\nlines \u{1}",
            &mut out,
        );
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["message"], "two\nlines \u{1}");
        assert_eq!(value["level"], "error");
    }
}
