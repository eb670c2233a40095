//! Static files: confinement to the root (`confine`), MIME types, validators and 304s
//! (`conditional`), single byte ranges (`ranges`), small files kept in memory (`cache`) and
//! sending with sendfile(2) (`send`).
pub mod cache;
mod conditional;
mod confine;
mod ranges;
mod send;

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::http::request::Head;
use crate::http::response::{Answered, error_page, simple_response};
use crate::net::connection::Connection;
use cache::{CachedFile, FileInfo};
pub use confine::{Opened, Resolved, open, resolve};
use confine::{beneath, relative_path};

/// Whether there is something to serve (lets an app at the same prefix take the rest).
pub fn exists(root: &Path, rest: &[u8]) -> bool {
    !matches!(open(root, rest), Opened::NotFound)
}

/// Serves one request for a static file. Returns whether the connection stays open.
pub fn serve(
    conn: &mut Connection,
    head: &Head,
    root: &Path,
    rest: &[u8],
    raw_path: &[u8],
    timeout: Duration,
) -> io::Result<Answered> {
    // A body sent to a static file is not read: close afterwards instead of parsing it.
    let keep_alive = head.keep_alive && head.framing == crate::http::body::Framing::Empty;
    let head_only = head.is_head();
    if head.method() != b"GET" && !head_only {
        let page = error_page(405, "Static files answer GET and HEAD only.");
        let reply = simple_response(405, b"Allow: GET, HEAD\r\n", &page, keep_alive, false);
        conn.write_blocking(&[&reply], timeout)?;
        return Ok(Answered::new(405, page.len() as u64, keep_alive));
    }
    let relative = relative_path(rest);
    let cached = relative.as_deref().and_then(|relative| {
        let root_fd = beneath::root_fd(root)?;
        cache::lookup(root, root_fd, relative)
    });
    let source = match cached {
        Some(cached) => Source::Memory(cached),
        None => match open(root, rest) {
            Opened::File { file, path, meta } => Source::Disk { file, path, meta },
            Opened::AddSlash => {
                let mut location = b"Location: ".to_vec();
                location.extend_from_slice(raw_path);
                location.extend_from_slice(b"/\r\n");
                let reply = simple_response(301, &location, "", keep_alive, head_only);
                conn.write_blocking(&[&reply], timeout)?;
                return Ok(Answered::new(301, 0, keep_alive));
            }
            refused => {
                let status = if matches!(refused, Opened::Forbidden) {
                    403
                } else {
                    404
                };
                let page = error_page(status, "");
                let reply = simple_response(status, b"", &page, keep_alive, head_only);
                conn.write_blocking(&[&reply], timeout)?;
                let bytes = if head_only { 0 } else { page.len() as u64 };
                return Ok(Answered::new(status, bytes, keep_alive));
            }
        },
    };
    let file = match source {
        Source::Memory(cached) => cached,
        Source::Disk { file, path, meta } => {
            let info = describe(&meta, &path);
            // Only a file the URL names itself is cached: the cache key is that path.
            let named = relative.as_deref() == Some(path.as_path());
            let cached = named.then(|| remember(root, &path, &file, &meta, &info));
            match cached.flatten() {
                Some(cached) => cached,
                None => return send::send_from_disk(conn, head, &file, &info, keep_alive, timeout),
            }
        }
    };
    send::send_from_memory(conn, head, &file, keep_alive, timeout)
}

/// Where a static response's bytes come from.
enum Source {
    Memory(Arc<CachedFile>),
    Disk {
        file: File,
        path: PathBuf,
        meta: Box<Metadata>,
    },
}

fn describe(meta: &Metadata, path: &Path) -> FileInfo {
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let size = meta.len();
    let etag = conditional::entity_tag(modified, size);
    let mut headers = Vec::with_capacity(256);
    push_header(&mut headers, "Content-Type", &content_type(path));
    push_header(
        &mut headers,
        "Last-Modified",
        &httpdate::fmt_http_date(modified),
    );
    push_header(&mut headers, "ETag", &etag);
    headers.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    FileInfo {
        size,
        modified,
        etag,
        headers,
    }
}

/// Reads a small, settled file into the cache.
fn remember(
    root: &Path,
    path: &Path,
    file: &File,
    meta: &Metadata,
    info: &FileInfo,
) -> Option<Arc<CachedFile>> {
    let identity = cache::Identity::of_metadata(meta);
    if info.size > cache::MAX_FILE || !identity.settled() {
        return None;
    }
    let mut body = Vec::with_capacity(info.size as usize);
    let read = file.take(info.size + 1).read_to_end(&mut body).ok()?;
    if read as u64 != info.size {
        return None; // changing while read: serve it from disk this time
    }
    let cached = Arc::new(CachedFile {
        identity,
        info: info.clone(),
        body,
    });
    cache::insert(root, path, cached.clone());
    Some(cached)
}

pub(super) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "json" | "xml" | "svg+xml"
        );
    if textual && mime.get_param("charset").is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_carry_charset() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
    }
}
