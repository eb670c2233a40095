//! The PROXY protocol (HAProxy's; v1 is a text line, v2 a binary block) that a TCP load
//! balancer sends before the client's bytes, to say whom the connection is really from.
//! Only the parser lives here: which peers may send a header, and what happens to a
//! connection whose header is wrong, is the server's policy (`server/preface.rs`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The first 12 bytes of every v2 header.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line the specification allows, CRLF included.
const V1_MAX: usize = 107;
/// The most a v2 header may carry after its 16 fixed bytes (addresses and TLVs). The
/// length field allows 65,535; anything above this is refused before it is read.
pub const V2_MAX_PAYLOAD: usize = 2048;
/// PP2_TYPE_SSL, and its client flag PP2_CLIENT_SSL: the client spoke TLS to the proxy.
const TLV_SSL: u8 = 0x20;
const CLIENT_SSL: u8 = 0x01;

/// Which versions a listener accepts (`--proxy-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    V1,
    V2,
    Any,
}

/// What a header says. `source` is None for v2 LOCAL (the proxy's own health check),
/// v1 UNKNOWN and address families without IP addresses: the connection's own peer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    pub source: Option<SocketAddr>,
    pub destination: Option<SocketAddr>,
    /// The v2 SSL TLV says the client used TLS (sets `wsgi.url_scheme` to https).
    pub tls: bool,
}

/// Why a header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// Not a PROXY header, or one of a version this listener does not accept.
    Missing,
    Malformed(&'static str),
    /// A v2 header announcing more than `V2_MAX_PAYLOAD` bytes.
    TooLong,
}

/// Parses the header at the start of `input`. Ok(None): not complete yet (read more);
/// Ok(Some((header, n))): the header took the first `n` bytes.
pub fn parse(input: &[u8], versions: Versions) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if input.is_empty() {
        return Ok(None);
    }
    let v1 = versions != Versions::V2;
    let v2 = versions != Versions::V1;
    if v2 && begins(input, V2_SIGNATURE) {
        return parse_v2(input);
    }
    if v1 && begins(input, V1_PREFIX) {
        return parse_v1(input);
    }
    Err(ProxyError::Missing)
}

/// Whether `input` starts like a PROXY header of either version (None: too short to tell),
/// for connections from peers that may not send one.
pub fn looks_like_header(input: &[u8]) -> Option<bool> {
    let whole = |prefix: &[u8]| input.starts_with(prefix);
    let partial = |prefix: &[u8]| input.len() < prefix.len() && prefix.starts_with(input);
    if whole(V1_PREFIX) || whole(V2_SIGNATURE) {
        Some(true)
    } else if partial(V1_PREFIX) || partial(V2_SIGNATURE) {
        None
    } else {
        Some(false)
    }
}

/// `input` (not empty) starts with `prefix`, or with as much of it as it holds (so more may
/// complete it).
fn begins(input: &[u8], prefix: &[u8]) -> bool {
    input.iter().zip(prefix).all(|(a, b)| a == b)
}

fn parse_v1(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return match input.len() >= V1_MAX {
            true => Err(ProxyError::Malformed("v1 line longer than 107 bytes")),
            false => Ok(None),
        };
    };
    let line = std::str::from_utf8(&input[..end])
        .map_err(|_| ProxyError::Malformed("v1 line is not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let header = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => ProxyHeader {
            source: None,
            destination: None,
            tls: false,
        },
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            source,
            destination,
            source_port,
            destination_port,
        ] => {
            let v6 = *family == "TCP6";
            ProxyHeader {
                source: Some(SocketAddr::new(ip(source, v6)?, port(source_port)?)),
                destination: Some(SocketAddr::new(
                    ip(destination, v6)?,
                    port(destination_port)?,
                )),
                tls: false,
            }
        }
        _ => {
            return Err(ProxyError::Malformed(
                "v1 line is not PROXY TCP4|TCP6|UNKNOWN ...",
            ));
        }
    };
    Ok(Some((header, end + 2)))
}

fn ip(text: &str, v6: bool) -> Result<IpAddr, ProxyError> {
    let parsed = match v6 {
        true => text.parse::<Ipv6Addr>().map(IpAddr::V6),
        false => text.parse::<Ipv4Addr>().map(IpAddr::V4),
    };
    parsed.map_err(|_| ProxyError::Malformed("v1 address does not match its family"))
}

fn port(text: &str) -> Result<u16, ProxyError> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    match (digits && canonical).then(|| text.parse::<u16>()) {
        Some(Ok(port)) => Ok(port),
        _ => Err(ProxyError::Malformed("v1 port is not 0-65535")),
    }
}

fn parse_v2(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if input.len() < 16 {
        return Ok(None);
    }
    let (version, command) = (input[12] >> 4, input[12] & 0x0f);
    if version != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    let (family, transport) = (input[13] >> 4, input[13] & 0x0f);
    let length = u16::from_be_bytes([input[14], input[15]]) as usize;
    if length > V2_MAX_PAYLOAD {
        return Err(ProxyError::TooLong);
    }
    if input.len() < 16 + length {
        return Ok(None);
    }
    let payload = &input[16..16 + length];
    let local = match command {
        0 => true,
        1 => false,
        _ => {
            return Err(ProxyError::Malformed(
                "v2 command is neither LOCAL nor PROXY",
            ));
        }
    };
    if family > 3 || transport > 2 {
        return Err(ProxyError::Malformed(
            "v2 address family or transport unknown",
        ));
    }
    if !local && family != 0 && transport != 1 {
        return Err(ProxyError::Malformed("v2 transport is not a stream"));
    }
    let address_length = match family {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    if payload.len() < address_length {
        return Err(ProxyError::Malformed("v2 addresses are cut short"));
    }
    let (addresses, tlvs) = payload.split_at(address_length);
    let (source, destination) = match (local, family) {
        (false, 1) => endpoints(addresses, 4),
        (false, 2) => endpoints(addresses, 16),
        _ => (None, None),
    };
    Ok(Some((
        ProxyHeader {
            source,
            destination,
            tls: client_used_tls(tlvs)?,
        },
        16 + length,
    )))
}

/// The source and destination of a v2 address block: two addresses of `width` bytes (4
/// for IPv4, 16 for IPv6), then two ports.
fn endpoints(block: &[u8], width: usize) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let ip = |at: usize| match width {
        4 => IpAddr::from(<[u8; 4]>::try_from(&block[at..at + 4]).unwrap_or_default()),
        _ => IpAddr::from(<[u8; 16]>::try_from(&block[at..at + 16]).unwrap_or_default()),
    };
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let ports = 2 * width;
    (
        Some(SocketAddr::new(ip(0), port(ports))),
        Some(SocketAddr::new(ip(width), port(ports + 2))),
    )
}

/// Walks the TLVs (type, 2-byte length, value): true when an SSL TLV has PP2_CLIENT_SSL.
fn client_used_tls(mut tlvs: &[u8]) -> Result<bool, ProxyError> {
    let mut tls = false;
    while !tlvs.is_empty() {
        if tlvs.len() < 3 {
            return Err(ProxyError::Malformed("v2 TLV is cut short"));
        }
        let length = u16::from_be_bytes([tlvs[1], tlvs[2]]) as usize;
        let Some(value) = tlvs.get(3..3 + length) else {
            return Err(ProxyError::Malformed("v2 TLV is longer than the header"));
        };
        if tlvs[0] == TLV_SSL && value.first().is_some_and(|flags| flags & CLIENT_SSL != 0) {
            tls = true;
        }
        tlvs = &tlvs[3 + length..];
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    const TCP4_PAYLOAD: [u8; 12] = [192, 0, 2, 7, 10, 0, 0, 1, 0xc3, 0x50, 0x1f, 0x90];

    #[test]
    fn v1_tcp4_and_tcp6_give_the_client_and_what_follows_is_left() {
        let input = b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 8080\r\nGET / HTTP/1.1\r\n";
        let (header, used) = parse(input, Versions::Any).unwrap().unwrap();
        assert_eq!(header.source, Some("192.0.2.7:50000".parse().unwrap()));
        assert_eq!(header.destination, Some("10.0.0.1:8080".parse().unwrap()));
        assert_eq!(&input[used..], b"GET / HTTP/1.1\r\n");
        let input = b"PROXY TCP6 2001:db8::7 ::1 443 8443\r\n";
        let (header, _) = parse(input, Versions::V1).unwrap().unwrap();
        assert_eq!(header.source, Some("[2001:db8::7]:443".parse().unwrap()));
        let (header, _) = parse(b"PROXY UNKNOWN whatever\r\n", Versions::V1)
            .unwrap()
            .unwrap();
        assert_eq!(header.source, None);
    }

    #[test]
    fn v1_is_strict() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 10.0.0.1 50000\r\n"[..],
            b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
            b"PROXY TCP6 192.0.2.7 ::1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 80\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 080 80\r\n",
            b"PROXY TCP4  192.0.2.7 10.0.0.1 1 80\r\n",
            b"PROXY UDP4 192.0.2.7 10.0.0.1 1 80\r\n",
        ] {
            assert!(
                matches!(parse(bad, Versions::Any), Err(ProxyError::Malformed(_))),
                "{bad:?}"
            );
        }
        let endless = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
        assert!(matches!(
            parse(&endless, Versions::V1),
            Err(ProxyError::Malformed(_))
        ));
    }

    #[test]
    fn a_header_split_anywhere_waits_for_the_rest() {
        let v1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 8080\r\n".to_vec();
        let v2 = v2(1, 0x11, &TCP4_PAYLOAD);
        for whole in [v1, v2] {
            for cut in 1..whole.len() {
                assert_eq!(
                    parse(&whole[..cut], Versions::Any),
                    Ok(None),
                    "cut at {cut}"
                );
            }
            assert!(parse(&whole, Versions::Any).unwrap().is_some());
        }
    }

    #[test]
    fn v2_proxy_local_and_the_ssl_tlv() {
        let (header, used) = parse(&v2(1, 0x11, &TCP4_PAYLOAD), Versions::V2)
            .unwrap()
            .unwrap();
        assert_eq!(header.source, Some("192.0.2.7:50000".parse().unwrap()));
        assert_eq!(header.destination, Some("10.0.0.1:8080".parse().unwrap()));
        assert_eq!((used, header.tls), (28, false));
        let mut with_tls = TCP4_PAYLOAD.to_vec();
        // An ALPN TLV, then SSL with PP2_CLIENT_SSL and a verify field.
        with_tls.extend_from_slice(&[
            0x01, 0, 2, b'h', b'2', TLV_SSL, 0, 5, CLIENT_SSL, 0, 0, 0, 0,
        ]);
        assert!(
            parse(&v2(1, 0x11, &with_tls), Versions::V2)
                .unwrap()
                .unwrap()
                .0
                .tls
        );
        let mut six = vec![0u8; 36];
        six[15] = 1;
        six[32..34].copy_from_slice(&443u16.to_be_bytes());
        let (header, _) = parse(&v2(1, 0x21, &six), Versions::Any).unwrap().unwrap();
        assert_eq!(header.source, Some("[::1]:443".parse().unwrap()));
        let (local, _) = parse(&v2(0, 0x00, &[]), Versions::V2).unwrap().unwrap();
        assert_eq!(local.source, None);
    }

    #[test]
    fn v2_refuses_what_it_cannot_trust_without_reading_more_than_the_limit() {
        let mut huge = v2(1, 0x11, &TCP4_PAYLOAD);
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&huge[..16], Versions::V2), Err(ProxyError::TooLong));
        for (command, family, payload, why) in [
            (1, 0x51, &TCP4_PAYLOAD[..], "unknown family"),
            (1, 0x12, &TCP4_PAYLOAD[..], "datagram"),
            (2, 0x11, &TCP4_PAYLOAD[..], "unknown command"),
            (1, 0x11, &TCP4_PAYLOAD[..8], "addresses cut short"),
            (
                1,
                0x11,
                &[&TCP4_PAYLOAD[..], &[TLV_SSL, 0, 9, 1]].concat()[..],
                "TLV overruns",
            ),
        ] {
            let result = parse(&v2(command, family, payload), Versions::V2);
            assert!(
                matches!(result, Err(ProxyError::Malformed(_))),
                "{why}: {result:?}"
            );
        }
        let mut version_one = v2(1, 0x11, &TCP4_PAYLOAD);
        version_one[12] = 0x11;
        assert!(matches!(
            parse(&version_one, Versions::V2),
            Err(ProxyError::Malformed(_))
        ));
    }

    #[test]
    fn a_version_not_accepted_or_plain_http_is_missing() {
        let v1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 8080\r\n";
        assert_eq!(parse(v1, Versions::V2), Err(ProxyError::Missing));
        assert_eq!(
            parse(&v2(1, 0x11, &TCP4_PAYLOAD), Versions::V1),
            Err(ProxyError::Missing)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n", Versions::Any),
            Err(ProxyError::Missing)
        );
    }

    #[test]
    fn looks_like_header_tells_as_soon_as_it_can() {
        assert_eq!(looks_like_header(b"GET / HTTP/1.1\r\n"), Some(false));
        assert_eq!(looks_like_header(b"G"), Some(false));
        assert_eq!(looks_like_header(b"PRO"), None);
        assert_eq!(looks_like_header(b"PROXY TCP4"), Some(true));
        assert_eq!(looks_like_header(b"\r\n\r\n"), None);
        assert_eq!(looks_like_header(b"\r\n\r\n\0\r\nQ"), None);
        assert_eq!(looks_like_header(V2_SIGNATURE), Some(true));
        assert_eq!(looks_like_header(b"\r\n\r\nGET"), Some(false));
    }
}
