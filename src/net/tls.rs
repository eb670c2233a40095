//! HTTPS on the same loop: rustls is sans-IO, so a TLS connection is an ordinary socket plus
//! a session that turns ciphertext into plaintext and back, driven by the thread that runs
//! the request (no second runtime). This file loads the certificate and key (and the CAs
//! that client certificates must chain to), and moves bytes between socket and session.
//! Crypto: aws-lc-rs, rustls' default provider.
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::io::{Readiness, Wait};
use super::stream::Stream;
use crate::instrument::metrics;

/// Whether clients must present a certificate (`--cert-reqs`, gunicorn's name; its values
/// 0, 1 and 2, Python's ssl.CERT_NONE, CERT_OPTIONAL and CERT_REQUIRED, too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientCerts {
    #[value(alias = "0")]
    None = 0,
    #[value(alias = "1")]
    Optional = 1,
    #[value(alias = "2")]
    Required = 2,
}

/// What `--certfile`, `--keyfile`, `--ca-certs` and `--cert-reqs` name.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub ca_certs: Option<PathBuf>,
    pub client_certs: ClientCerts,
}

/// Certificates expiring sooner than this are warned about at start and reload.
const EXPIRY_WARNING_DAYS: i64 = 7;
/// Plaintext encrypted per record batch: big bodies go out in bounded pieces.
const WRITE_PIECE: usize = 64 * 1024;

/// Reads the files into a server configuration: TLS 1.2 and 1.3 with rustls' safe defaults,
/// ALPN http/1.1. Errors are one line naming the file and the problem.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let chain = read_certs(&files.certfile)?;
    let key = PrivateKeyDer::from_pem_file(&files.keyfile)
        .map_err(|err| format!("--keyfile {}: {}", files.keyfile.display(), pem_error(&err)))?;
    warn_if_expiring(&files.certfile, &chain[0]);
    let builder = ServerConfig::builder();
    let builder = match (&files.ca_certs, files.client_certs) {
        (_, ClientCerts::None) => builder.with_no_client_auth(),
        (None, _) => {
            return Err("--cert-reqs optional/required needs --ca-certs, the CAs that client certificates must chain to".into());
        }
        (Some(ca_file), wanted) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca_file)? {
                roots
                    .add(cert)
                    .map_err(|err| format!("--ca-certs {}: {err}", ca_file.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
            let verifier = match wanted {
                ClientCerts::Optional => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|err| format!("--ca-certs {}: {err}", ca_file.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|err| {
        format!(
            "--keyfile {} does not go with --certfile {}: {err}",
            files.keyfile.display(),
            files.certfile.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| format!("{shown}: {}", pem_error(&err)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("{shown}: {}", pem_error(&err)))?;
    if certs.is_empty() {
        return Err(format!("{shown}: no PEM certificate in the file"));
    }
    Ok(certs)
}

fn pem_error(err: &rustls_pki_types::pem::Error) -> String {
    match err {
        rustls_pki_types::pem::Error::Io(err) => err.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => {
            "no PEM key or certificate in the file".into()
        }
        other => format!("not valid PEM ({other:?})"),
    }
}

/// A warning when the certificate expires within a week (or has expired).
fn warn_if_expiring(path: &Path, cert: &CertificateDer<'_>) {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = parsed.validity().not_after.timestamp() - now;
    if left < EXPIRY_WARNING_DAYS * 86_400 {
        crate::log_warn!(
            "certificate {} {} ({}): renew it and send SIGHUP",
            path.display(),
            match left {
                ..0 => "has expired".to_string(),
                secs => format!("expires in {} hours", secs / 3600),
            },
            parsed.validity().not_after
        );
    }
}

/// A verified client certificate, as the environ shows it (Apache mod_ssl's names).
pub struct ClientCert {
    /// SSL_CLIENT_S_DN, e.g. `CN=alice, O=Example`.
    pub subject: String,
    /// SSL_CLIENT_CERT: the certificate as PEM.
    pub pem: String,
}

/// The TLS side of one connection.
pub struct TlsSession {
    session: ServerConnection,
    /// Nothing has been read yet: the first bytes tell TLS from plain HTTP.
    fresh: bool,
    client_cert: Option<Arc<ClientCert>>,
}

/// Why reading from a TLS connection ended it (besides socket errors).
#[derive(Debug)]
pub enum TlsFailure {
    /// A plain-HTTP request arrived on the TLS port; the answer saying so was sent.
    PlainHttp,
    /// The handshake or a record was bad (garbage, wrong certificate, no common cipher).
    Protocol(rustls::Error),
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsFailure::PlainHttp => write!(f, "plain HTTP on the HTTPS port"),
            TlsFailure::Protocol(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for TlsFailure {}

/// What a client that speaks plain HTTP to a TLS port is told, as nginx's 497 does.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 56\r\nConnection: close\r\n\r\nThis port speaks HTTPS: use https:// to reach this URL.\n";

impl TlsSession {
    pub fn new(config: &Arc<ServerConfig>) -> io::Result<TlsSession> {
        let mut session = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        // Writes are fed in bounded pieces, each sent before the next (see `write`).
        session.set_buffer_limit(None);
        Ok(TlsSession {
            session,
            fresh: true,
            client_cert: None,
        })
    }

    /// Appends decrypted bytes to `out`, reading from the socket (through `wait` when it
    /// is empty) and sending what the session has to say (handshake flights). Ok(0): the
    /// client closed.
    pub fn read(
        &mut self,
        socket: &mut Stream,
        out: &mut Vec<u8>,
        wait: Wait,
    ) -> io::Result<usize> {
        loop {
            match self.take_plaintext(out)? {
                (0, true) => return Ok(0),
                (0, false) => {}
                (taken, _) => return Ok(taken),
            }
            if self.fresh && self.plain_http(socket)? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    TlsFailure::PlainHttp,
                ));
            }
            match self.session.read_tls(socket) {
                Ok(0) => return Ok(0),
                Ok(read) => {
                    self.fresh = false;
                    metrics::bytes_in(read);
                    if let Err(err) = self.session.process_new_packets() {
                        // The alert rustls queued goes out if the socket takes it now.
                        let _ = self.try_send(socket);
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            TlsFailure::Protocol(err),
                        ));
                    }
                    self.send(socket, wait)?;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => wait(Readiness::Readable)?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Moves the plaintext the session holds into `out`: how many bytes, and whether the
    /// client has closed its side (after them).
    fn take_plaintext(&mut self, out: &mut Vec<u8>) -> io::Result<(usize, bool)> {
        let before = out.len();
        let closed = match self.session.reader().read_to_end(out) {
            Ok(_) => true, // a clean close_notify
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => false,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => true,
            Err(err) => return Err(err),
        };
        Ok((out.len() - before, closed))
    }

    /// Looks (without taking) at the first byte: a TLS connection starts with a handshake
    /// record (0x16); a capital letter is the method of a plain-HTTP request, which gets a
    /// short plain answer.
    fn plain_http(&mut self, socket: &mut Stream) -> io::Result<bool> {
        let mut first = [0u8];
        let Stream::Tcp(tcp) = socket else {
            return Ok(false);
        };
        match tcp.peek(&mut first) {
            Ok(1) if first[0].is_ascii_uppercase() => {
                // The request is read first: closing with it unread would reset the
                // connection and could destroy the answer.
                let mut request = [0u8; 16 * 1024];
                while matches!(socket.read(&mut request), Ok(read) if read > 0) {}
                let _ = socket.write(PLAIN_HTTP_ANSWER);
                Ok(true)
            }
            // Not a method, or nothing yet (read_tls will say WouldBlock), or closed.
            _ => Ok(false),
        }
    }

    /// Encrypts `parts` and sends everything, waiting through `wait` when the socket is full.
    pub fn write<'a>(
        &mut self,
        socket: &mut Stream,
        parts: impl IntoIterator<Item = &'a [u8]>,
        wait: Wait,
    ) -> io::Result<()> {
        for part in parts {
            for piece in part.chunks(WRITE_PIECE) {
                self.session.writer().write_all(piece)?;
                self.send(socket, wait)?;
            }
        }
        self.send(socket, wait)
    }

    /// Encrypts `parts` and sends what the socket takes now. Ok(true): all sent; Ok(false):
    /// the rest waits in the session for `send`.
    pub fn write_without_waiting<'a>(
        &mut self,
        socket: &mut Stream,
        parts: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<bool> {
        for part in parts {
            self.session.writer().write_all(part)?;
        }
        self.try_send(socket)
    }

    /// Whether encrypted bytes wait to be sent.
    pub fn has_pending(&self) -> bool {
        self.session.wants_write()
    }

    /// Sends what the session has queued, waiting through `wait` when the socket is full.
    pub fn send(&mut self, socket: &mut Stream, wait: Wait) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(socket) {
                Ok(written) => metrics::bytes_out(written),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => wait(Readiness::Writable)?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Sends what the socket takes now; Ok(true) when nothing is left queued.
    fn try_send(&mut self, socket: &mut Stream) -> io::Result<bool> {
        let mut would_block = |_| Err(io::ErrorKind::WouldBlock.into());
        match self.send(socket, &mut would_block) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The client's verified certificate, if it presented one.
    pub fn client_cert(&mut self) -> Option<Arc<ClientCert>> {
        if self.client_cert.is_none() {
            let der = self.session.peer_certificates()?.first()?;
            let subject = x509_parser::parse_x509_certificate(der)
                .map(|(_, cert)| cert.subject().to_string())
                .unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
            for line in encoded.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
            self.client_cert = Some(Arc::new(ClientCert { subject, pem }));
        }
        self.client_cert.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_answer_is_well_framed() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
