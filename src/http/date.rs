//! The Date header value, formatted at most once a second per thread.
use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

thread_local! {
    static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current HTTP date (e.g. `Sun, 06 Nov 1994 08:49:37 GMT`) to `out`.
pub fn append_http_date(out: &mut Vec<u8>) {
    let secs = crate::clock::unix_seconds();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            let now = UNIX_EPOCH + Duration::from_secs(secs);
            *cache = (secs, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
}
