//! `wsgi.input`: the request body as a file-like object, read from the socket on demand
//! (GIL released while waiting), so memory stays bounded whatever the body's size.
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::exchange::{Exchange, SharedExchange, gil_free_wait, with_exchange};
use crate::http::ExchangeError;

/// Bytes read per step when the app asks for "everything" or for a line.
const STEP: usize = 64 * 1024;

#[pyclass(frozen, module = "wsgihost")]
pub struct InputStream {
    shared: SharedExchange,
    timeout: std::time::Duration,
}

impl InputStream {
    pub fn new(shared: SharedExchange, timeout: std::time::Duration) -> Self {
        InputStream { shared, timeout }
    }

    /// Reads up to `limit` bytes (all that is left when `None`), stopping early at the
    /// first newline when `line` is set; bytes read past that are pushed back.
    fn read_until(&self, py: Python<'_>, limit: Option<usize>, line: bool) -> PyResult<Vec<u8>> {
        let timeout = self.timeout;
        with_exchange(&self.shared, |exchange: &mut Exchange| {
            let mut wait = gil_free_wait(py, exchange.conn.fd(), timeout);
            let mut out = Vec::with_capacity(limit.map_or(0, |l| l.min(STEP)));
            loop {
                let want = limit.map_or(STEP, |l| (l - out.len()).min(STEP));
                if want == 0 {
                    break;
                }
                let start = out.len();
                let read = exchange
                    .read_body_into(&mut out, want, &mut wait)
                    .map_err(to_py_error)?;
                if read == 0 {
                    break;
                }
                if line && let Some(pos) = out[start..].iter().position(|&b| b == b'\n') {
                    let rest = out.split_off(start + pos + 1);
                    exchange.unread(rest);
                    break;
                }
            }
            Ok(out)
        })
    }
}

fn to_py_error(err: ExchangeError) -> PyErr {
    match err {
        ExchangeError::Client(io) => PyOSError::new_err(format!("client connection: {io}")),
        ExchangeError::Request(http) => PyOSError::new_err(format!("request body refused: {http}")),
    }
}

/// A negative or missing size means "no limit", as for Python files.
fn size_limit(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

#[pymethods]
impl InputStream {
    #[pyo3(signature = (size = None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.read_until(py, size_limit(size), false)?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (size = None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.read_until(py, size_limit(size), true)?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let hint = size_limit(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.read_until(py, None, true)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_until(py, None, true)?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}
