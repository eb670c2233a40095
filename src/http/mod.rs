//! HTTP/1.1 protocol pieces: request heads, body framing, response encoding, and one
//! exchange's body reader and response writer over a `Transport`.
pub mod body;
pub mod body_reader;
pub mod date;
pub mod forwarded;
pub mod request;
pub mod request_start;
pub mod response;
pub mod response_writer;
pub mod transport;

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

/// Why reading a request body or writing a response failed; decides what the client gets.
#[derive(Debug)]
pub enum ExchangeError {
    /// The client went away or timed out: nothing more can be sent.
    Client(std::io::Error),
    /// The request body was malformed or too large: answer with this status.
    Request(HttpError),
}

impl From<std::io::Error> for ExchangeError {
    fn from(err: std::io::Error) -> Self {
        ExchangeError::Client(err)
    }
}
