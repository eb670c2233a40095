//! HTTP/1.1 protocol pieces: request heads, body framing, response encoding.
pub mod body;
pub mod date;
pub mod forwarded;
pub mod request;
pub mod request_start;
pub mod response;

/// A request the server refuses before any application sees it: answered with `status` and
/// the connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: &'static str,
}

impl HttpError {
    pub const fn new(status: u16, reason: &'static str) -> HttpError {
        HttpError { status, reason }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}
