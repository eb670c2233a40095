//! Sending a file's answer: 304, 416, or the head and the (partial) body, from memory
//! (joining the held batch) or from disk with sendfile(2).
use std::fs::File;
use std::io;
use std::time::{Duration, SystemTime};

use super::cache::{CachedFile, FileInfo};
use super::conditional::not_modified;
use super::push_header;
use super::ranges::{RangeAnswer, requested_range};
use crate::http::request::Head;
use crate::http::response::{Answered, BodyFraming, encode_head, simple_response};
use crate::net::connection::Connection;
use crate::net::io::{Readiness, wait_ready};

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

pub(super) fn send_from_memory(
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

pub(super) fn send_from_disk(
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
        conn.send_file(&reply, file, start, len, timeout)?;
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
