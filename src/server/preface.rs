//! `--proxy-protocol`: settles the PROXY header a connection starts with before its first
//! request is read. A peer in `--proxy-allow-from` must send one (of an accepted version);
//! any other peer must not, and is served as plain HTTP. On an HTTPS listener the header
//! comes before the TLS handshake: it is looked at on the socket and taken from it raw. A connection whose header is
//! refused, malformed or missing is closed with no answer (what follows it cannot be
//! trusted to be HTTP) and counted in `wsgihost_proxy_protocol_refused_total`.
use crate::http::forwarded::TrustedProxies;
use crate::instrument::metrics;
use crate::net::connection::{Connection, Preface};
use std::net::SocketAddr;

use crate::net::proxy_protocol::{self, ProxyError, ProxyHeader, Versions};

pub struct ProxyPolicy {
    pub versions: Versions,
    pub allowed: TrustedProxies,
}

/// Where a connection stands with its header.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    Yes,
    /// Only part of it has arrived: read more (the header timeout runs meanwhile).
    NotYet,
    /// Refused: close the connection.
    Refused,
}

/// What the bytes at the start of a connection say.
enum Decision {
    Header(ProxyHeader, usize),
    /// None is expected from this peer, and none came.
    NoHeader,
    NotYet,
    Refused(&'static str),
}

impl ProxyPolicy {
    /// Reads the header from the connection's input (removing it), or, on a TLS
    /// connection, from the socket before the handshake; takes the client address it gives.
    pub fn settle(&self, conn: &mut Connection) -> Settled {
        let decision = match conn.is_tls() {
            false => self.decide(conn.peer(), conn.input()),
            true => {
                let mut peeked = vec![0u8; 16 + proxy_protocol::V2_MAX_PAYLOAD];
                match conn.peek_raw(&mut peeked) {
                    Ok(0) => Decision::Refused("closed before a PROXY header"),
                    Ok(read) => self.decide(conn.peer(), &peeked[..read]),
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Decision::NotYet,
                    Err(_) => Decision::Refused("the socket failed before a PROXY header"),
                }
            }
        };
        let why = match decision {
            Decision::NotYet => return Settled::NotYet,
            Decision::NoHeader => {
                conn.set_preface(Preface::Read { client_tls: false });
                return Settled::Yes;
            }
            Decision::Header(header, used) => {
                let taken = match conn.is_tls() {
                    false => {
                        conn.input().drain(..used);
                        Ok(())
                    }
                    true => conn.consume_raw(used),
                };
                if taken.is_ok() {
                    if let Some(source) = header.source {
                        conn.set_peer(source);
                    }
                    conn.set_preface(Preface::Read {
                        client_tls: header.tls,
                    });
                    return Settled::Yes;
                }
                "the socket failed while the PROXY header was read"
            }
            Decision::Refused(why) => why,
        };
        metrics::proxy_header_refused();
        let peer = conn
            .peer()
            .map_or("a unix socket".into(), |p| p.to_string());
        crate::log_warn!("closing the connection from {peer}: {why}");
        Settled::Refused
    }

    fn decide(&self, peer: Option<SocketAddr>, bytes: &[u8]) -> Decision {
        if self.allowed.trusts(peer) {
            return match proxy_protocol::parse(bytes, self.versions) {
                Ok(None) => Decision::NotYet,
                Ok(Some((header, used))) => Decision::Header(header, used),
                Err(ProxyError::Missing) => {
                    Decision::Refused("no PROXY header (of an accepted version)")
                }
                Err(ProxyError::TooLong) => {
                    Decision::Refused("a PROXY v2 header over the length limit")
                }
                Err(ProxyError::Malformed(why)) => Decision::Refused(why),
            };
        }
        match proxy_protocol::looks_like_header(bytes) {
            None => Decision::NotYet,
            Some(false) => Decision::NoHeader,
            Some(true) => Decision::Refused("a PROXY header from a peer not in --proxy-allow-from"),
        }
    }
}
