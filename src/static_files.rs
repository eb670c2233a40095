//! Static files: confinement to the root (no `..`, encoded separators, NULs, backslashes or
//! symlinks leading out), MIME types, validators (ETag, Last-Modified → 304), single byte
//! ranges (206/416) and sendfile(2) for the body.
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::request::Head;
use crate::http::response::{Answered, BodyFraming, encode_head, error_page, simple_response};
use crate::net::connection::Connection;
use crate::net::io::{Readiness, send_file, send_more, wait_ready};
use crate::static_cache::{self, CachedFile, FileInfo};

#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    File(PathBuf),
    /// A directory asked for without its trailing slash.
    AddSlash,
    NotFound,
    Forbidden,
}

/// Maps a decoded URL path below the mount to a file inside `root` (canonical).
pub fn resolve(root: &Path, rest: &[u8]) -> Resolved {
    let Some(relative) = relative_path(rest) else {
        return Resolved::NotFound;
    };
    let Ok(real) = root.join(relative).canonicalize() else {
        return Resolved::NotFound;
    };
    if !real.starts_with(root) {
        return Resolved::Forbidden;
    }
    if real.is_dir() {
        if !rest.ends_with(b"/") {
            return Resolved::AddSlash;
        }
        return match real.join("index.html").canonicalize() {
            Ok(index) if index.starts_with(root) && index.is_file() => Resolved::File(index),
            Ok(_) => Resolved::Forbidden,
            Err(_) => Resolved::NotFound,
        };
    }
    if real.is_file() {
        Resolved::File(real)
    } else {
        Resolved::NotFound
    }
}

/// The path below the root that a decoded URL path names: no NULs, backslashes, `..` or
/// hidden names (but `.well-known`). None when the path is refused.
fn relative_path(rest: &[u8]) -> Option<PathBuf> {
    if rest.contains(&0) || rest.contains(&b'\\') {
        return None;
    }
    let mut path = PathBuf::new();
    for segment in rest.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return None,
            hidden if hidden.starts_with(b".") && hidden != b".well-known" => return None,
            name => path.push(std::ffi::OsStr::from_bytes(name)),
        }
    }
    Some(path)
}

/// A static file found and opened, with its path below the root (for its MIME type).
pub enum Opened {
    File {
        file: File,
        path: PathBuf,
        meta: Box<Metadata>,
    },
    AddSlash,
    NotFound,
    Forbidden,
}

/// Opens what `rest` names under `root`. With openat2(RESOLVE_BENEATH) the kernel keeps
/// the whole lookup, symlinks included, inside the root in one system call; where openat2
/// is missing (old kernels, seccomp), `resolve` canonicalizes instead.
pub fn open(root: &Path, rest: &[u8]) -> Opened {
    let Some(relative) = relative_path(rest) else {
        return Opened::NotFound;
    };
    let file = match beneath::open(root, &relative) {
        None => return open_after_resolve(root, rest),
        Some(Err(err)) => return refusal(&err),
        Some(Ok(file)) => file,
    };
    let Ok(meta) = file.metadata() else {
        return Opened::NotFound;
    };
    if meta.is_file() {
        return Opened::File {
            file,
            path: relative,
            meta: Box::new(meta),
        };
    }
    if !meta.is_dir() {
        return Opened::NotFound;
    }
    if !rest.ends_with(b"/") {
        return Opened::AddSlash;
    }
    let index = relative.join("index.html");
    match beneath::open(root, &index) {
        Some(Ok(file)) => match file.metadata() {
            Ok(meta) if meta.is_file() => Opened::File {
                file,
                path: index,
                meta: Box::new(meta),
            },
            _ => Opened::NotFound,
        },
        Some(Err(err)) => refusal(&err),
        None => Opened::NotFound,
    }
}

fn open_after_resolve(root: &Path, rest: &[u8]) -> Opened {
    match resolve(root, rest) {
        Resolved::File(path) => match File::open(&path).and_then(|f| Ok((f.metadata()?, f))) {
            Ok((meta, file)) => Opened::File {
                file,
                path,
                meta: Box::new(meta),
            },
            Err(_) => Opened::NotFound,
        },
        Resolved::AddSlash => Opened::AddSlash,
        Resolved::NotFound => Opened::NotFound,
        Resolved::Forbidden => Opened::Forbidden,
    }
}

/// A lookup that would leave the root (EXDEV) or loops (ELOOP) is forbidden; the rest is
/// simply not there.
fn refusal(err: &std::io::Error) -> Opened {
    match err.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) | Some(libc::EACCES) => Opened::Forbidden,
        _ => Opened::NotFound,
    }
}

/// openat2(2) below a root directory whose O_PATH handle is opened once and kept.
mod beneath {
    use std::collections::HashMap;
    use std::ffi::CString;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{OnceLock, RwLock};

    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
    static ROOTS: OnceLock<RwLock<HashMap<PathBuf, OwnedFd>>> = OnceLock::new();

    /// The root's directory handle, once a confined open has been made below it.
    pub fn root_fd(root: &Path) -> Option<RawFd> {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let roots = ROOTS.get()?.read().ok()?;
        roots.get(root).map(|fd| fd.as_raw_fd())
    }

    /// None: openat2 is not available here (use the fallback).
    pub fn open(root: &Path, relative: &Path) -> Option<io::Result<File>> {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let roots = ROOTS.get_or_init(Default::default);
        let cached = roots.read().ok()?.get(root).map(|fd| fd.as_raw_fd());
        let dir = match cached {
            Some(fd) => fd,
            None => {
                let handle = match File::open(root) {
                    Ok(file) => OwnedFd::from(file),
                    Err(err) => return Some(Err(err)),
                };
                // Entries are never removed, so the descriptor outlives every use.
                roots
                    .write()
                    .ok()?
                    .entry(root.to_path_buf())
                    .or_insert(handle)
                    .as_raw_fd()
            }
        };
        let name = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        let name = CString::new(name.as_os_str().as_bytes()).ok()?;
        // SAFETY: open_how is plain data; all-zero is its documented empty value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        // O_NONBLOCK: opening a FIFO someone left in the folder must not hang.
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: valid directory fd, NUL-terminated path and a correctly sized open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                name.as_ptr(),
                &how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us.
            return Some(Ok(unsafe { File::from_raw_fd(fd as i32) }));
        }
        let err = io::Error::last_os_error();
        if matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EINVAL)
        ) {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            return None;
        }
        Some(Err(err))
    }
}

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
        static_cache::lookup(root, root_fd, relative)
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
                None => return send_from_disk(conn, head, &file, &info, keep_alive, timeout),
            }
        }
    };
    send_from_memory(conn, head, &file, keep_alive, timeout)
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
    let etag = entity_tag(modified, size);
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
    let identity = static_cache::Identity::of_metadata(meta);
    if info.size > static_cache::MAX_FILE || !identity.settled() {
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
    static_cache::insert(root, path, cached.clone());
    Some(cached)
}

/// What a GET/HEAD for a file answers, whatever the bytes come from.
enum Plan {
    NotModified,
    Unsatisfiable(Vec<u8>),
    Send {
        status_line: &'static [u8],
        headers: Vec<u8>,
        start: u64,
        len: u64,
    },
}

fn plan(head: &Head, headers: &[u8], etag: &str, modified: SystemTime, size: u64) -> Plan {
    if not_modified(head, etag, modified) {
        return Plan::NotModified;
    }
    let mut headers = headers.to_vec();
    match requested_range(head, etag, size) {
        RangeAnswer::Whole => Plan::Send {
            status_line: b"200 OK",
            headers,
            start: 0,
            len: size,
        },
        RangeAnswer::Part(start, end) => {
            push_header(
                &mut headers,
                "Content-Range",
                &format!("bytes {start}-{end}/{size}"),
            );
            Plan::Send {
                status_line: b"206 Partial Content",
                headers,
                start,
                len: end - start + 1,
            }
        }
        RangeAnswer::Unsatisfiable => {
            push_header(&mut headers, "Content-Range", &format!("bytes */{size}"));
            Plan::Unsatisfiable(headers)
        }
    }
}

/// A 200 or 206 to send: its head and the byte range of the file.
struct Sending {
    reply: Vec<u8>,
    start: u64,
    len: u64,
}

/// Decides the answer for a file. 304 and 416 are sent here and come back as `Err` (with
/// the outcome of sending them); a 200 or 206 comes back to have its body sent.
fn start_answer(
    conn: &mut Connection,
    head: &Head,
    info: &FileInfo,
    keep_alive: bool,
    timeout: Duration,
) -> Result<Sending, io::Result<Answered>> {
    let (status_line, headers, start, len) =
        match plan(head, &info.headers, &info.etag, info.modified, info.size) {
            Plan::NotModified => {
                let mut reply = Vec::with_capacity(256);
                encode_head(
                    &mut reply,
                    b"304 Not Modified",
                    &info.headers,
                    BodyFraming::None,
                    keep_alive,
                    head.minor_version == 0,
                );
                let sent = conn.write_blocking(&[&reply], timeout);
                return Err(sent.map(|()| Answered::new(304, 0, keep_alive)));
            }
            Plan::Unsatisfiable(headers) => {
                let reply = simple_response(416, &headers, "", keep_alive, head.is_head());
                let sent = conn.write_blocking(&[&reply], timeout);
                return Err(sent.map(|()| Answered::new(416, 0, keep_alive)));
            }
            Plan::Send {
                status_line,
                headers,
                start,
                len,
            } => (status_line, headers, start, len),
        };
    let mut reply = Vec::with_capacity(320);
    encode_head(
        &mut reply,
        status_line,
        &headers,
        BodyFraming::Length(len),
        keep_alive,
        head.minor_version == 0,
    );
    Ok(Sending { reply, start, len })
}

fn send_from_memory(
    conn: &mut Connection,
    head: &Head,
    file: &CachedFile,
    keep_alive: bool,
    timeout: Duration,
) -> io::Result<Answered> {
    let Sending { reply, start, len } =
        match start_answer(conn, head, &file.info, keep_alive, timeout) {
            Ok(sending) => sending,
            Err(answered) => return answered,
        };
    let body = match head.is_head() {
        true => &[][..],
        false => &file.body[start as usize..(start + len) as usize],
    };
    let socket = conn.fd();
    let mut wait = |readiness: Readiness| wait_ready(socket, readiness, timeout);
    conn.finish_response(&[&reply, body], &mut wait)?;
    let status = if len == file.info.size { 200 } else { 206 };
    Ok(Answered::new(status, body.len() as u64, keep_alive))
}

fn send_from_disk(
    conn: &mut Connection,
    head: &Head,
    file: &File,
    info: &FileInfo,
    keep_alive: bool,
    timeout: Duration,
) -> io::Result<Answered> {
    let Sending { reply, start, len } = match start_answer(conn, head, info, keep_alive, timeout) {
        Ok(sending) => sending,
        Err(answered) => return answered,
    };
    let head_only = head.is_head();
    if head_only || len == 0 {
        conn.write_blocking(&[&reply], timeout)?;
    } else {
        let socket = conn.fd();
        let mut wait = |readiness: Readiness| wait_ready(socket, readiness, timeout);
        // Head and body leave in the same segment(s), the body copied by the kernel.
        conn.flush(timeout)?;
        send_more(socket, &reply, &mut wait)?;
        send_file(socket, file.as_raw_fd(), start as i64, len, &mut wait)?;
    }
    let status = if start == 0 && len == info.size {
        200
    } else {
        206
    };
    Ok(Answered::new(
        status,
        if head_only { 0 } else { len },
        keep_alive,
    ))
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
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

fn entity_tag(modified: SystemTime, size: u64) -> String {
    let stamp = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "\"{:x}-{:x}-{size:x}\"",
        stamp.as_secs(),
        stamp.subsec_nanos()
    )
}

/// RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since.
fn not_modified(head: &Head, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = head.header("if-none-match") {
        return tags.split(|&b| b == b',').map(|t| t.trim_ascii()).any(|t| {
            t == b"*" || t == etag.as_bytes() || t.strip_prefix(b"W/") == Some(etag.as_bytes())
        });
    }
    let since = head
        .header("if-modified-since")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let modified_secs = modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    since.is_some_and(|since| {
        modified_secs
            <= since
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
    })
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; several ranges or an If-Range that does not match → the whole file.
fn requested_range(head: &Head, etag: &str, size: u64) -> RangeAnswer {
    let Some(value) = head.header("range") else {
        return RangeAnswer::Whole;
    };
    if head
        .header("if-range")
        .is_some_and(|v| v != etag.as_bytes())
    {
        return RangeAnswer::Whole;
    }
    parse_range(value, size)
}

fn parse_range(value: &[u8], size: u64) -> RangeAnswer {
    let Some(spec) = std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (number(first), number(last), first.is_empty()) {
        (Some(start), _, _) if start >= size => RangeAnswer::Unsatisfiable,
        (Some(start), Some(end), _) if end >= start => RangeAnswer::Part(start, end.min(size - 1)),
        (Some(start), None, _) if last.is_empty() => RangeAnswer::Part(start, size - 1),
        (None, Some(0), true) => RangeAnswer::Unsatisfiable,
        (None, Some(suffix), true) if size > 0 => {
            RangeAnswer::Part(size - suffix.min(size), size - 1)
        }
        (None, Some(_), true) => RangeAnswer::Unsatisfiable,
        _ => RangeAnswer::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("sub/index.html"), "sub").unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt")).unwrap();
        let root = root.canonicalize().unwrap();
        (dir, root)
    }

    /// A throwaway directory removed on drop (std only, no extra crate for tests).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static COUNT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let path =
                    std::env::temp_dir().join(format!("wsgihost-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn maps_files_and_indexes() {
        let (_dir, root) = tree();
        assert_eq!(
            resolve(&root, b"/"),
            Resolved::File(root.join("index.html"))
        );
        assert_eq!(
            resolve(&root, b"/a.txt"),
            Resolved::File(root.join("a.txt"))
        );
        assert_eq!(
            resolve(&root, b"/sub/"),
            Resolved::File(root.join("sub/index.html"))
        );
        assert_eq!(resolve(&root, b"/sub"), Resolved::AddSlash);
        assert_eq!(resolve(&root, b"/missing"), Resolved::NotFound);
    }

    #[test]
    fn never_escapes_the_root() {
        let (_dir, root) = tree();
        for attack in [
            &b"/../secret.txt"[..],
            b"/sub/../../secret.txt",
            b"/..\\secret.txt",
            b"/a.txt\0",
            b"/.hidden",
        ] {
            assert_eq!(
                resolve(&root, attack),
                Resolved::NotFound,
                "{:?}",
                String::from_utf8_lossy(attack)
            );
        }
        assert_eq!(resolve(&root, b"/leak.txt"), Resolved::Forbidden);
    }

    #[test]
    fn open_agrees_with_resolve() {
        let (_dir, root) = tree();
        let opened = |rest: &[u8]| match open(&root, rest) {
            Opened::File { path, .. } => format!("file {}", path.display()),
            Opened::AddSlash => "slash".into(),
            Opened::NotFound => "missing".into(),
            Opened::Forbidden => "forbidden".into(),
        };
        assert_eq!(opened(b"/"), "file index.html");
        assert_eq!(opened(b"/a.txt"), "file a.txt");
        assert_eq!(opened(b"/sub/"), "file sub/index.html");
        assert_eq!(opened(b"/sub"), "slash");
        assert_eq!(opened(b"/missing"), "missing");
        assert_eq!(opened(b"/../secret.txt"), "missing");
        assert_eq!(opened(b"/leak.txt"), "forbidden");
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(b"bytes=0-3", 10), RangeAnswer::Part(0, 3));
        assert_eq!(parse_range(b"bytes=5-", 10), RangeAnswer::Part(5, 9));
        assert_eq!(parse_range(b"bytes=-4", 10), RangeAnswer::Part(6, 9));
        assert_eq!(parse_range(b"bytes=8-100", 10), RangeAnswer::Part(8, 9));
        assert_eq!(parse_range(b"bytes=10-", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-1,3-4", 10), RangeAnswer::Whole);
        assert_eq!(parse_range(b"items=0-1", 10), RangeAnswer::Whole);
    }

    #[test]
    fn text_types_carry_charset() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
    }
}
