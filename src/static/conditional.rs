//! Conditional requests: the entity tag of a file version, and whether If-None-Match or
//! If-Modified-Since make the answer a 304.
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::request::Head;

pub(super) fn entity_tag(modified: SystemTime, size: u64) -> String {
    let stamp = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "\"{:x}-{:x}-{size:x}\"",
        stamp.as_secs(),
        stamp.subsec_nanos()
    )
}

/// RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since.
pub(super) fn not_modified(head: &Head, etag: &str, modified: SystemTime) -> bool {
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
