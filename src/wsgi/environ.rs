//! The WSGI environ: a per-mount template dict of constant keys, copied for each request and
//! filled with that request's CGI variables and HTTP_* headers (latin-1 strings, PEP 3333).
use std::net::SocketAddr;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{ffi, intern};

use crate::http::forwarded::{Proxies, client_view};
use crate::http::request::Head;
use crate::net::connection::AddressText;
use crate::net::tls::ClientCert;

/// What the environ says about the server as a whole.
pub struct ServerTraits {
    pub multithread: bool,
    pub multiprocess: bool,
}

/// Entries an environ has room for from the start: the template's, the per-request
/// variables and a dozen headers. Copies of the template keep its table size, so a request
/// fills its environ without the dict resizing (three resizes per request otherwise).
const ENVIRON_ENTRIES: ffi::Py_ssize_t = 40;

/// Keys `build` (and the caller, for wsgi.input) sets on every request. The template holds
/// them with None so each request replaces values in place instead of inserting keys.
const PER_REQUEST_KEYS: [&str; 11] = [
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_URI",
    "RAW_URI",
    "SERVER_PROTOCOL",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.input_terminated",
    "wsgi.input",
];

unsafe extern "C" {
    /// CPython's presized dict constructor (exported by libpython; not in the limited API).
    fn _PyDict_NewPresized(minused: ffi::Py_ssize_t) -> *mut ffi::PyObject;
}

/// The constant part of every environ, built once.
pub fn template(py: Python<'_>, traits: &ServerTraits) -> PyResult<Py<PyDict>> {
    // SAFETY: the GIL is held; the result is a new reference or NULL with an exception set.
    let dict = unsafe {
        Bound::from_owned_ptr_or_err(py, _PyDict_NewPresized(ENVIRON_ENTRIES))?
            .cast_into_unchecked::<PyDict>()
    };
    for key in PER_REQUEST_KEYS {
        dict.set_item(PyString::intern(py, key), py.None())?;
    }
    dict.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    dict.set_item("wsgi.url_scheme", "http")?;
    dict.set_item("wsgi.errors", py.import("sys")?.getattr("stderr")?)?;
    dict.set_item("wsgi.multithread", traits.multithread)?;
    dict.set_item("wsgi.multiprocess", traits.multiprocess)?;
    dict.set_item("wsgi.run_once", false)?;
    dict.set_item(
        "wsgi.file_wrapper",
        py.get_type::<super::file_wrapper::FileWrapper>(),
    )?;
    dict.set_item(
        "SERVER_SOFTWARE",
        concat!("wsgihost/", env!("CARGO_PKG_VERSION")),
    )?;
    Ok(dict.unbind())
}

/// Decodes bytes as latin-1 into a str (never fails: every byte is a code point).
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: pointer and length describe `bytes`; the result is a new reference or NULL.
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// Where the request is in the URL space and on the network.
pub struct RequestPlace<'a> {
    pub script_name: &'a [u8],
    pub path_info: &'a [u8],
    pub query: &'a [u8],
    /// None on unix sockets: REMOTE_ADDR/REMOTE_PORT are then left out.
    pub peer: Option<SocketAddr>,
    /// The TCP addresses as text (None on unix sockets).
    pub addresses: Option<Arc<AddressText>>,
    /// The connection is TLS; with the client's certificate, if it gave one.
    pub https: bool,
    pub client_cert: Option<Arc<ClientCert>>,
}

/// A fresh environ for one request (without wsgi.input, which the caller adds).
pub fn build<'py>(
    py: Python<'py>,
    template: &Bound<'py, PyDict>,
    head: &Head,
    place: &RequestPlace,
    proxies: &Proxies,
) -> PyResult<Bound<'py, PyDict>> {
    let env = template.copy()?;
    env.set_item(intern!(py, "REQUEST_METHOD"), method(py, head.method())?)?;
    env.set_item(intern!(py, "SCRIPT_NAME"), latin1(py, place.script_name)?)?;
    env.set_item(intern!(py, "PATH_INFO"), latin1(py, place.path_info)?)?;
    env.set_item(intern!(py, "QUERY_STRING"), latin1(py, place.query)?)?;
    let target = latin1(py, head.target())?;
    env.set_item(intern!(py, "REQUEST_URI"), &target)?;
    env.set_item(intern!(py, "RAW_URI"), &target)?;
    let protocol = if head.minor_version == 0 {
        intern!(py, "HTTP/1.0")
    } else {
        intern!(py, "HTTP/1.1")
    };
    env.set_item(intern!(py, "SERVER_PROTOCOL"), protocol)?;
    let (name, port) = server_name_and_port(head, place.addresses.as_deref());
    env.set_item(intern!(py, "SERVER_NAME"), name)?;
    env.set_item(intern!(py, "SERVER_PORT"), port)?;
    if let Some(text) = &place.addresses {
        env.set_item(intern!(py, "REMOTE_ADDR"), &text.remote_addr)?;
        env.set_item(intern!(py, "REMOTE_PORT"), &text.remote_port)?;
    }
    if place.https {
        env.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "https"))?;
        env.set_item(intern!(py, "HTTPS"), intern!(py, "on"))?;
    }
    if let Some(cert) = &place.client_cert {
        env.set_item(intern!(py, "SSL_CLIENT_S_DN"), &cert.subject)?;
        env.set_item(intern!(py, "SSL_CLIENT_CERT"), &cert.pem)?;
    }
    let client = client_view(head, place.peer, proxies);
    if let Some(addr) = client.addr {
        env.set_item(intern!(py, "REMOTE_ADDR"), addr)?;
    }
    if let Some(scheme) = client.scheme {
        env.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
    }
    env.set_item(
        intern!(py, "wsgi.input_terminated"),
        head.framing == crate::http::body::Framing::Chunked,
    )?;
    add_headers(py, &env, head)?;
    Ok(env)
}

/// The request method as a str; the common ones are interned, not built per request.
fn method<'py>(py: Python<'py>, method: &[u8]) -> PyResult<Bound<'py, PyString>> {
    Ok(match method {
        b"GET" => intern!(py, "GET").clone(),
        b"POST" => intern!(py, "POST").clone(),
        b"HEAD" => intern!(py, "HEAD").clone(),
        _ => latin1(py, method)?,
    })
}

/// SERVER_NAME: the Host header's name, else the address the request came in on.
/// SERVER_PORT: the port the request came in on; on a unix socket, the Host header's port
/// or 80 (PEP 3333 wants both non-empty).
fn server_name_and_port<'a>(head: &'a Head, local: Option<&'a AddressText>) -> (&'a str, &'a str) {
    let host = head
        .header("host")
        .and_then(|h| std::str::from_utf8(h).ok())
        .unwrap_or("");
    let (name, host_port) = match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => (&host[..colon], Some(&host[colon + 1..])),
        _ => (host, None),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let name = match (name.is_empty(), local) {
        (false, _) => name,
        (true, Some(local)) => &local.local_addr,
        (true, None) => "localhost",
    };
    let port = match (local, host_port) {
        (Some(local), _) => &local.local_port,
        (None, Some(port)) if !port.is_empty() => port,
        (None, _) => "80",
    };
    (name, port)
}

/// HTTP_* variables, plus CONTENT_TYPE / CONTENT_LENGTH. Repeated fields are joined with
/// ", " ("; " for Cookie). Names with `_` are dropped: they would be indistinguishable from
/// `-` once converted, a known header-spoofing trick.
fn add_headers(py: Python<'_>, env: &Bound<'_, PyDict>, head: &Head) -> PyResult<()> {
    for (name, value) in head.headers() {
        if name.contains(&b'_') {
            continue;
        }
        let key = header_key(py, name);
        let value = latin1(py, value)?;
        let key_text = key.to_str()?;
        match env.get_item(&key)? {
            Some(previous) if key_text != "CONTENT_LENGTH" => {
                let separator = if key_text == "HTTP_COOKIE" {
                    "; "
                } else {
                    ", "
                };
                let joined = format!("{}{separator}{}", previous.str()?, value);
                env.set_item(&key, joined)?;
            }
            _ => env.set_item(&key, value)?,
        }
    }
    if head.framing == crate::http::body::Framing::Chunked {
        let _ = env.del_item(intern!(py, "CONTENT_LENGTH"));
    }
    Ok(())
}

/// The environ key for a header field name. The fields nearly every request carries get
/// interned keys (no allocation, hash computed once); others are built.
fn header_key<'py>(py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
    macro_rules! known {
        ($($field:literal => $key:literal),* $(,)?) => {
            $(if name.eq_ignore_ascii_case($field) {
                return intern!(py, $key).clone();
            })*
        };
    }
    known!(
        b"host" => "HTTP_HOST",
        b"user-agent" => "HTTP_USER_AGENT",
        b"accept" => "HTTP_ACCEPT",
        b"accept-encoding" => "HTTP_ACCEPT_ENCODING",
        b"accept-language" => "HTTP_ACCEPT_LANGUAGE",
        b"connection" => "HTTP_CONNECTION",
        b"cookie" => "HTTP_COOKIE",
        b"referer" => "HTTP_REFERER",
        b"content-type" => "CONTENT_TYPE",
        b"content-length" => "CONTENT_LENGTH",
    );
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.iter().map(|&b| match b {
        b'-' => '_',
        _ => b.to_ascii_uppercase() as char,
    }));
    PyString::new(py, &key)
}
