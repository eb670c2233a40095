//! Byte ranges (RFC 9110 §14): one `bytes=` range gives a 206, an unsatisfiable one a 416,
//! anything else (several ranges, a stale If-Range) the whole file.
use crate::http::request::Head;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangeAnswer {
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; several ranges or an If-Range that does not match → the whole file.
pub(super) fn requested_range(head: &Head, etag: &str, size: u64) -> RangeAnswer {
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
}
