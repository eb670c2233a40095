//! `--bind` addresses, in every form gunicorn takes: `HOST:PORT` (an IP or a name such as
//! localhost), `HOST` alone (port 8000), `:PORT` (every IPv4 address), `[IPv6]:PORT`,
//! `tcp://HOST:PORT`, `unix:PATH` or `unix://PATH`, `fd://N`; and wsgihost's
//! `http://HOST:PORT` / `https://HOST:PORT` to choose a TCP listener's scheme.
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::path::PathBuf;

/// gunicorn's port when an address names none.
const DEFAULT_PORT: u16 = 8000;

/// A `--bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    Tcp(SocketAddr, Scheme),
    /// A host name, looked up when binding (its first IPv4 address, as gunicorn binds).
    Named(String, u16, Scheme),
    Unix(PathBuf),
    /// `fd://N`: a listening socket the parent process opened and passed down.
    Fd(RawFd),
}

/// What a TCP listener speaks: `https://HOST:PORT` or `http://HOST:PORT`, or, given as
/// plain `HOST:PORT`, HTTPS exactly when --certfile is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Default,
    Http,
    Https,
}

impl BindAddr {
    pub fn scheme(&self) -> Option<Scheme> {
        match self {
            BindAddr::Tcp(_, scheme) | BindAddr::Named(_, _, scheme) => Some(*scheme),
            _ => None,
        }
    }

    /// The address to bind a TCP listener to (a name is looked up now).
    pub fn socket_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        match self {
            BindAddr::Tcp(addr, _) => Ok(Some(*addr)),
            BindAddr::Named(host, port, _) => {
                let found = (host.as_str(), *port)
                    .to_socket_addrs()?
                    .find(SocketAddr::is_ipv4);
                found.map(Some).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{host} has no IPv4 address"),
                    )
                })
            }
            _ => Ok(None),
        }
    }
}

impl std::fmt::Display for BindAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = |scheme: &Scheme| match scheme {
            Scheme::Default => "",
            Scheme::Http => "http://",
            Scheme::Https => "https://",
        };
        match self {
            BindAddr::Tcp(addr, scheme) => write!(f, "{}{addr}", prefix(scheme)),
            BindAddr::Named(host, port, scheme) => write!(f, "{}{host}:{port}", prefix(scheme)),
            BindAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            BindAddr::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

impl std::str::FromStr for BindAddr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some(fd) = text.strip_prefix("fd://") {
            return match fd.parse::<RawFd>() {
                Ok(fd) if fd >= 0 => Ok(BindAddr::Fd(fd)),
                _ => Err(format!(
                    "'{text}' is not fd://N with N a file descriptor number"
                )),
            };
        }
        if let Some(path) = text.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return if path.is_empty() {
                Err("unix: needs a socket path, e.g. unix:/run/app.sock".into())
            } else {
                Ok(BindAddr::Unix(PathBuf::from(path)))
            };
        }
        let (scheme, address) = if let Some(rest) = text.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            (Scheme::Default, text.strip_prefix("tcp://").unwrap_or(text))
        };
        host_and_port(address, scheme).ok_or_else(|| {
            format!(
                "'{text}' is not HOST:PORT, HOST, [IPv6]:PORT, unix:PATH or fd://N (e.g. 127.0.0.1:8000)"
            )
        })
    }
}

fn host_and_port(address: &str, scheme: Scheme) -> Option<BindAddr> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => "",
            None => return None,
        };
        let ip: IpAddr = host.parse().ok()?;
        return Some(BindAddr::Tcp(SocketAddr::new(ip, port_of(port)?), scheme));
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, port),
            Some(_) => return None,
            None => (address, ""),
        }
    };
    let port = port_of(port)?;
    if host.is_empty() {
        return Some(BindAddr::Tcp(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            scheme,
        ));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(BindAddr::Tcp(SocketAddr::new(ip, port), scheme));
    }
    let is_name = host.split('.').all(|label| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    is_name.then(|| BindAddr::Named(host.to_ascii_lowercase(), port, scheme))
}

fn port_of(text: &str) -> Option<u16> {
    match text {
        "" => Some(DEFAULT_PORT),
        text => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str, scheme: Scheme) -> BindAddr {
        BindAddr::Tcp(addr.parse().unwrap(), scheme)
    }

    #[test]
    fn bind_addresses_parse() {
        let parse = |text: &str| text.parse::<BindAddr>();
        assert_eq!(
            parse("127.0.0.1:80"),
            Ok(tcp("127.0.0.1:80", Scheme::Default))
        );
        assert_eq!(parse("[::1]:80"), Ok(tcp("[::1]:80", Scheme::Default)));
        assert_eq!(parse("[::]"), Ok(tcp("[::]:8000", Scheme::Default)));
        assert_eq!(
            parse("https://[::1]:443"),
            Ok(tcp("[::1]:443", Scheme::Https))
        );
        assert_eq!(
            parse("tcp://10.0.0.1:5"),
            Ok(tcp("10.0.0.1:5", Scheme::Default))
        );
        assert_eq!(parse(":9000"), Ok(tcp("0.0.0.0:9000", Scheme::Default)));
        assert_eq!(parse("0.0.0.0"), Ok(tcp("0.0.0.0:8000", Scheme::Default)));
        assert_eq!(
            parse("LocalHost:8001"),
            Ok(BindAddr::Named("localhost".into(), 8001, Scheme::Default))
        );
        assert_eq!(
            parse("unix:/tmp/a.sock"),
            Ok(BindAddr::Unix("/tmp/a.sock".into()))
        );
        assert_eq!(
            parse("unix:///tmp/a.sock"),
            Ok(BindAddr::Unix("/tmp/a.sock".into()))
        );
        assert!(parse("unix:").is_err());
        assert_eq!(parse("fd://3"), Ok(BindAddr::Fd(3)));
        assert!(parse("fd://x").is_err());
        assert!(parse("nowhere:port").is_err());
        assert!(parse("a b:80").is_err());
        assert!(parse("1:2:3").is_err());
        let named = parse("localhost:8001").unwrap();
        assert_eq!(named.to_string(), "localhost:8001");
        assert!(named.socket_addr().unwrap().unwrap().ip().is_loopback());
    }
}
