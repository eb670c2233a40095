//! `--proxy-protocol`: settles the PROXY header a connection starts with before its first
//! request is read. A peer in `--proxy-allow-from` must send one (of an accepted version);
//! any other peer must not, and is served as plain HTTP. A connection whose header is
//! refused, malformed or missing is closed with no answer (what follows it cannot be
//! trusted to be HTTP) and counted in `wsgihost_proxy_protocol_refused_total`.
use crate::http::forwarded::TrustedProxies;
use crate::instrument::metrics;
use crate::net::connection::{Connection, Preface};
use crate::net::proxy_protocol::{self, ProxyError, Versions};

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

impl ProxyPolicy {
    /// Reads the header from the connection's input (removing it) and takes the client
    /// address it gives.
    pub fn settle(&self, conn: &mut Connection) -> Settled {
        let why = if self.allowed.trusts(conn.peer) {
            match proxy_protocol::parse(&conn.input, self.versions) {
                Ok(None) => return Settled::NotYet,
                Ok(Some((header, used))) => {
                    conn.input.drain(..used);
                    if let Some(source) = header.source {
                        conn.set_peer(source);
                    }
                    conn.preface = Preface::Read {
                        client_tls: header.tls,
                    };
                    return Settled::Yes;
                }
                Err(ProxyError::Missing) => "no PROXY header (of an accepted version)",
                Err(ProxyError::TooLong) => "a PROXY v2 header over the length limit",
                Err(ProxyError::Malformed(why)) => why,
            }
        } else {
            match proxy_protocol::looks_like_header(&conn.input) {
                None => return Settled::NotYet,
                Some(false) => {
                    conn.preface = Preface::Read { client_tls: false };
                    return Settled::Yes;
                }
                Some(true) => "a PROXY header from a peer not in --proxy-allow-from",
            }
        };
        metrics::proxy_header_refused();
        let peer = conn.peer.map_or("a unix socket".into(), |p| p.to_string());
        crate::log_warn!("closing the connection from {peer}: {why}");
        Settled::Refused
    }
}
