//! `start_response(status, headers, exc_info=None)` and the `write(data)` it returns.
//! Arguments are validated here, so nothing malformed can reach the wire.
use std::borrow::Cow;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use super::exchange::{SharedExchange, gil_free_wait, with_exchange};
use crate::http::response::{is_field_value, is_token, reason_phrase};
use crate::http::response_writer::ResponseStart;

#[pyclass(frozen, module = "wsgihost")]
pub struct StartResponse {
    shared: SharedExchange,
    timeout: std::time::Duration,
}

impl StartResponse {
    pub fn new(shared: SharedExchange, timeout: std::time::Duration) -> Self {
        StartResponse { shared, timeout }
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let exc_info = exc_info.filter(|info| !info.is_none());
        let start = parse_start(status, headers)?;
        with_exchange(&slf.get().shared, |exchange| {
            match exc_info {
                Some(info) if exchange.response.head_sent() => {
                    // PEP 3333: too late to change the response; re-raise the app's error.
                    return Err(PyErr::from_value(info.get_item(1)?));
                }
                None if exchange.response.start().is_some() => {
                    return Err(PyRuntimeError::new_err(
                        "start_response called a second time without exc_info",
                    ));
                }
                _ => exchange.response.set_start(start),
            }
            Ok(())
        })?;
        slf.getattr(pyo3::intern!(slf.py(), "write"))
    }

    /// The legacy `write(data)` callable: sends `data` at once, headers first.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() takes bytes, not {}",
                data.get_type().name().map_or("?".into(), |n| n.to_string())
            ))
        })?;
        let timeout = self.timeout;
        with_exchange(&self.shared, |exchange| {
            if exchange.response.start().is_none() {
                return Err(PyRuntimeError::new_err(
                    "write() called before start_response",
                ));
            }
            let mut wait = gil_free_wait(py, exchange.conn.fd(), timeout);
            exchange
                .send(data.as_bytes(), None, &mut wait)
                .map_err(|_| pyo3::exceptions::PyOSError::new_err("client connection closed"))
        })
    }
}

/// Hop-by-hop headers the server owns; an app's values are not passed through.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// Validates and encodes a status and header list (latin-1, no control characters).
pub fn parse_start(
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
) -> PyResult<ResponseStart> {
    let status = status
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("status must be a str such as '200 OK'"))?;
    let mut status_line = latin1(&status.to_cow()?, "status")?.into_owned();
    let code = parse_status_code(&status_line)?;
    if !is_field_value(&status_line) {
        return Err(PyValueError::new_err("status contains control characters"));
    }
    // RFC 9112: `NNN SP reason`; an app that gave no reason gets the standard one.
    if status_line[3..].trim_ascii().is_empty() {
        status_line = format!("{code} {}", reason_phrase(code)).into_bytes();
    }
    if !headers.is_instance_of::<pyo3::types::PyList>() {
        return Err(PyTypeError::new_err(
            "response headers must be a list of (name, value) tuples",
        ));
    }
    let mut start = ResponseStart {
        code,
        status_line,
        header_lines: Vec::with_capacity(128),
        content_length: None,
        close_requested: false,
    };
    for item in headers.try_iter()? {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| {
                PyTypeError::new_err(format!("header {item} is not a (name, value) tuple"))
            })?;
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let (Ok(name), Ok(value)) = (name.cast::<PyString>(), value.cast::<PyString>()) else {
            return Err(PyTypeError::new_err(format!(
                "header {item}: name and value must be str"
            )));
        };
        let name_text = name.to_cow()?;
        let value_text = value.to_cow()?;
        let name = latin1(&name_text, "header name")?;
        let value = latin1(&value_text, "header value")?;
        if !is_token(&name) {
            return Err(PyValueError::new_err(format!(
                "invalid header name {name_text:?}"
            )));
        }
        if !is_field_value(&value) {
            return Err(PyValueError::new_err(format!(
                "header {name_text}: value contains CR, LF or other control characters"
            )));
        }
        add_header(&mut start, &name_text, &name, &value)?;
    }
    Ok(start)
}

fn add_header(
    start: &mut ResponseStart,
    name_text: &str,
    name: &[u8],
    value: &[u8],
) -> PyResult<()> {
    let is = |known: &str| name_text.eq_ignore_ascii_case(known);
    if is("content-length") {
        let text = std::str::from_utf8(value).unwrap_or("").trim();
        let length: u64 = text
            .parse()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| PyValueError::new_err(format!("invalid Content-Length {text:?}")))?;
        if start.content_length.is_some_and(|seen| seen != length) {
            return Err(PyValueError::new_err("conflicting Content-Length headers"));
        }
        start.content_length = Some(length);
        return Ok(());
    }
    if HOP_BY_HOP.iter().any(|hop| is(hop)) {
        if is("connection") {
            start.close_requested |= value
                .split(|&b| b == b',')
                .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        return Ok(());
    }
    if is("date") {
        return Ok(()); // the server sends its own, always current
    }
    start.header_lines.extend_from_slice(name);
    start.header_lines.extend_from_slice(b": ");
    start.header_lines.extend_from_slice(value);
    start.header_lines.extend_from_slice(b"\r\n");
    Ok(())
}

/// `NNN` or `NNN reason`, NNN from 200 to 599 (a 1xx cannot be the final answer).
fn parse_status_code(line: &[u8]) -> PyResult<u16> {
    let well_formed = line.len() >= 3
        && line[..3].iter().all(u8::is_ascii_digit)
        && (line.len() == 3 || line[3] == b' ');
    let code = well_formed
        .then(|| std::str::from_utf8(&line[..3]).ok()?.parse::<u16>().ok())
        .flatten()
        .filter(|code| (200..600).contains(code));
    code.ok_or_else(|| {
        PyValueError::new_err(format!(
            "invalid status {:?}: expected a 3-digit code from 200 to 599 and a reason, like '200 OK'",
            String::from_utf8_lossy(line)
        ))
    })
}

/// Encodes text as latin-1, refusing characters above U+00FF. ASCII (nearly every status
/// and header) is its own encoding and is borrowed as it is.
fn latin1<'t>(text: &'t str, what: &str) -> PyResult<Cow<'t, [u8]>> {
    if text.is_ascii() {
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Cow::Owned)
        .ok_or_else(|| PyValueError::new_err(format!("{what} {text:?} is not latin-1")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(parse_status_code(b"200 OK").ok(), Some(200));
        assert_eq!(parse_status_code(b"404").ok(), Some(404));
        assert!(parse_status_code(b"20 OK").is_err());
        assert!(parse_status_code(b"200OK").is_err());
        assert!(parse_status_code(b"101 Switching").is_err());
        assert!(parse_status_code(b"abc").is_err());
    }

    #[test]
    fn latin1_encoding() {
        assert_eq!(latin1("café", "x").unwrap().as_ref(), b"caf\xe9");
        assert_eq!(latin1("plain", "x").unwrap().as_ref(), b"plain");
        assert!(latin1("snow ☃", "x").is_err());
    }
}
