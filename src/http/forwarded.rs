//! Requests through a trusted proxy: `Forwarded` (RFC 7239) or `X-Forwarded-For` /
//! `X-Forwarded-Proto` give the client's address and scheme. Headers from peers that are
//! not trusted are ignored, so a client cannot fake its address.
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::request::Head;

/// `--forwarded-allow-ips`: addresses or networks whose forwarding headers are believed
/// (`*`: all). Unix-socket peers are always trusted: only a local proxy can reach them.
#[derive(Debug, Clone)]
pub struct TrustedProxies {
    any: bool,
    networks: Vec<IpNet>,
}

impl std::str::FromStr for TrustedProxies {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut trusted = TrustedProxies {
            any: false,
            networks: Vec::new(),
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "*" {
                trusted.any = true;
            } else if let Ok(addr) = item.parse::<IpAddr>() {
                trusted.networks.push(IpNet::from(addr));
            } else {
                let network = item.parse::<IpNet>().map_err(|_| {
                    format!("'{item}' is not an IP address, a network (10.0.0.0/8) or *")
                })?;
                if network.trunc() != network {
                    return Err(format!(
                        "'{item}' has host bits set: the network is {}",
                        network.trunc()
                    ));
                }
                trusted.networks.push(network);
            }
        }
        Ok(trusted)
    }
}

impl TrustedProxies {
    fn trusts_ip(&self, ip: IpAddr) -> bool {
        self.any
            || self
                .networks
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&ip.to_canonical()))
    }

    pub fn trusts(&self, peer: Option<SocketAddr>) -> bool {
        peer.is_none_or(|peer| self.trusts_ip(peer.ip()))
    }
}

/// `--secure-scheme-headers` (gunicorn's secure_scheme_headers): a trusted proxy sending
/// one of these headers with its value says the client used HTTPS.
#[derive(Debug, Clone, Default)]
pub struct SchemeHeaders(Vec<(String, String)>);

impl std::str::FromStr for SchemeHeaders {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(crate::config::parse::scheme_header)
            .collect::<Result<_, _>>()
            .map(SchemeHeaders)
    }
}

impl SchemeHeaders {
    fn says_https(&self, head: &Head) -> bool {
        !self.0.is_empty()
            && head.headers().any(|(name, value)| {
                self.0.iter().any(|(wanted, secure)| {
                    name.eq_ignore_ascii_case(wanted.as_bytes()) && value == secure.as_bytes()
                })
            })
    }
}

/// Whom to believe about a request's client, and how a proxy says it used HTTPS.
#[derive(Debug, Clone)]
pub struct Proxies {
    pub trusted: TrustedProxies,
    pub secure_headers: SchemeHeaders,
}

/// What a trusted proxy says about the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientView {
    pub addr: Option<String>,
    pub scheme: Option<&'static str>,
}

/// The client's address and scheme from a trusted peer's headers (`Forwarded` wins).
/// Of a chain of addresses, the right-most one not itself a trusted proxy is the client.
/// A secure scheme header matching its value makes the scheme https when those headers
/// name none.
pub fn client_view(head: &Head, peer: Option<SocketAddr>, proxies: &Proxies) -> ClientView {
    let trusted = &proxies.trusted;
    if !trusted.trusts(peer) {
        return ClientView::default();
    }
    let mut view = named_client(head, trusted);
    if view.scheme.is_none() && proxies.secure_headers.says_https(head) {
        view.scheme = Some("https");
    }
    view
}

fn named_client(head: &Head, trusted: &TrustedProxies) -> ClientView {
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
        let proxies = Proxies {
            trusted: trusted.parse().unwrap(),
            secure_headers: "X-FORWARDED-SSL=on".parse().unwrap(),
        };
        client_view(&head, Some(peer.parse().unwrap()), &proxies)
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

    #[test]
    fn networks_and_secure_scheme_headers() {
        let seen = view("X-Forwarded-Ssl: on\r\n", "10.1.2.3:5", "10.0.0.0/8");
        assert_eq!(seen.scheme, Some("https"));
        let seen = view("X-Forwarded-Ssl: off\r\n", "10.1.2.3:5", "10.0.0.0/8");
        assert_eq!(seen.scheme, None);
        let seen = view("X-Forwarded-Ssl: on\r\n", "11.1.2.3:5", "10.0.0.0/8");
        assert_eq!(seen.scheme, None);
        assert!("10.0.0.1/8".parse::<TrustedProxies>().is_err());
        assert!("fd00::/8, 127.0.0.1".parse::<TrustedProxies>().is_ok());
    }
}
