//! Requests through a trusted proxy: `Forwarded` (RFC 7239) or `X-Forwarded-For` /
//! `X-Forwarded-Proto` give the client's address and scheme. Headers from peers that are
//! not trusted are ignored, so a client cannot fake its address.
use std::net::{IpAddr, SocketAddr};

use super::request::Head;

/// `--forwarded-allow-ips`: addresses whose forwarding headers are believed (`*`: all).
/// Unix-socket peers are always trusted: only a local proxy can reach them.
#[derive(Debug, Clone)]
pub struct TrustedProxies {
    any: bool,
    addrs: Vec<IpAddr>,
}

impl std::str::FromStr for TrustedProxies {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut trusted = TrustedProxies {
            any: false,
            addrs: Vec::new(),
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "*" {
                trusted.any = true;
            } else {
                let addr = item
                    .parse()
                    .map_err(|_| format!("'{item}' is not an IP address or *"))?;
                trusted.addrs.push(addr);
            }
        }
        Ok(trusted)
    }
}

impl TrustedProxies {
    fn trusts_ip(&self, ip: IpAddr) -> bool {
        self.any || self.addrs.contains(&ip) || self.addrs.contains(&ip.to_canonical())
    }

    pub fn trusts(&self, peer: Option<SocketAddr>) -> bool {
        peer.is_none_or(|peer| self.trusts_ip(peer.ip()))
    }
}

/// What a trusted proxy says about the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientView {
    pub addr: Option<String>,
    pub scheme: Option<&'static str>,
}

/// The client's address and scheme from a trusted peer's headers (`Forwarded` wins).
/// Of a chain of addresses, the right-most one not itself a trusted proxy is the client.
pub fn client_view(head: &Head, peer: Option<SocketAddr>, trusted: &TrustedProxies) -> ClientView {
    if !trusted.trusts(peer) {
        return ClientView::default();
    }
    if let Some(forwarded) = head
        .header("forwarded")
        .and_then(|v| std::str::from_utf8(v).ok())
    {
        let elements: Vec<(Option<&str>, Option<&str>)> = forwarded
            .split(',')
            .map(|element| {
                let mut found = (None, None);
                for pair in element.split(';') {
                    if let Some((key, value)) = pair.split_once('=') {
                        let value = value.trim().trim_matches('"');
                        match key.trim().to_ascii_lowercase().as_str() {
                            "for" => found.0 = Some(value),
                            "proto" => found.1 = Some(value),
                            _ => {}
                        }
                    }
                }
                found
            })
            .collect();
        let addrs = elements
            .iter()
            .filter_map(|(addr, _)| addr.map(node_address));
        return ClientView {
            addr: pick_client(addrs.collect(), trusted),
            scheme: elements.last().and_then(|(_, proto)| scheme(*proto)),
        };
    }
    let addrs = head
        .header("x-forwarded-for")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| {
            v.split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let proto = head
        .header("x-forwarded-proto")
        .and_then(|v| std::str::from_utf8(v).ok());
    ClientView {
        addr: pick_client(addrs, trusted),
        scheme: scheme(proto.and_then(|p| p.split(',').next())),
    }
}

/// The client of a chain: the right-most address that is not a trusted proxy (else the
/// left-most). A client the chain hides (`unknown`, an obfuscated `_name`, anything that is
/// not an IP address) gives None: REMOTE_ADDR stays the peer's, as apps expect an address.
fn pick_client(addrs: Vec<String>, trusted: &TrustedProxies) -> Option<String> {
    let is_proxy = |a: &String| {
        a.parse::<IpAddr>()
            .is_ok_and(|ip| !trusted.any && trusted.trusts_ip(ip))
    };
    let client = addrs
        .iter()
        .rev()
        .find(|a| !is_proxy(a))
        .or(addrs.first())?;
    client.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// A `for=` node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80` → the address alone.
fn node_address(node: &str) -> String {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match node.split_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
        _ => node.to_string(),
    }
}

fn scheme(proto: Option<&str>) -> Option<&'static str> {
    match proto.map(|p| p.trim().to_ascii_lowercase()).as_deref() {
        Some("https") => Some("https"),
        Some("http") => Some("http"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{HeadLimits, parse_head};

    fn view(headers: &str, peer: &str, trusted: &str) -> ClientView {
        let text = format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let limits = HeadLimits::DEFAULT;
        let head = parse_head(&mut text.into_bytes(), limits).unwrap().unwrap();
        client_view(
            &head,
            Some(peer.parse().unwrap()),
            &trusted.parse().unwrap(),
        )
    }

    #[test]
    fn trusted_proxy_headers_are_used() {
        let seen = view(
            "X-Forwarded-For: 1.2.3.4, 10.0.0.1\r\nX-Forwarded-Proto: https\r\n",
            "127.0.0.1:5",
            "127.0.0.1,10.0.0.1",
        );
        assert_eq!(
            seen,
            ClientView {
                addr: Some("1.2.3.4".into()),
                scheme: Some("https")
            }
        );
        let spoofed = view(
            "X-Forwarded-For: 6.6.6.6, 1.2.3.4\r\n",
            "127.0.0.1:5",
            "127.0.0.1",
        );
        assert_eq!(spoofed.addr.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn hidden_clients_leave_the_peer_address() {
        for headers in [
            "X-Forwarded-For: unknown, 127.0.0.1\r\n",
            "Forwarded: for=_hidden\r\n",
            "Forwarded: for=unknown;proto=https\r\n",
            "X-Forwarded-For: <script>\r\n",
        ] {
            let seen = view(headers, "127.0.0.1:5", "127.0.0.1");
            assert_eq!(seen.addr, None, "{headers}");
        }
    }

    #[test]
    fn untrusted_peers_are_ignored() {
        let seen = view(
            "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n",
            "192.0.2.9:5",
            "127.0.0.1",
        );
        assert_eq!(seen, ClientView::default());
    }

    #[test]
    fn forwarded_header() {
        let seen = view(
            "Forwarded: for=\"[2001:db8::1]:4711\";proto=https\r\n",
            "127.0.0.1:5",
            "127.0.0.1",
        );
        assert_eq!(
            seen,
            ClientView {
                addr: Some("2001:db8::1".into()),
                scheme: Some("https")
            }
        );
        let seen = view(
            "Forwarded: for=1.2.3.4:80, for=5.6.7.8;proto=http\r\n",
            "127.0.0.1:5",
            "*",
        );
        assert_eq!(
            seen,
            ClientView {
                addr: Some("5.6.7.8".into()),
                scheme: Some("http")
            }
        );
    }
}
