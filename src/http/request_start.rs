//! `X-Request-Start`: when the front proxy received the request, so the time it waited
//! before wsgihost read it (in the proxy's queue, the listen queue, the worker) can be
//! measured. nginx sends `t=${msec}` (seconds with milliseconds), Heroku's router
//! milliseconds, some proxies microseconds; `t=` may be missing. The unit is told by the
//! size of the number.
use std::time::Duration;

/// The wait since `value`'s time, at `now_micros` (microseconds since the epoch). None when
/// the value is not a time or is more than a day away (a clock that far off says nothing).
pub fn waited(value: &[u8], now_micros: u64) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let text = text.strip_prefix("t=").unwrap_or(text);
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = match (whole.len(), fraction.is_empty()) {
        (16.., true) => whole.parse::<u64>().ok()?,
        (13..=15, true) => whole.parse::<u64>().ok()?.checked_mul(1000)?,
        _ => {
            let seconds: f64 = text.parse().ok()?;
            (seconds * 1e6) as u64
        }
    };
    const DAY: u64 = 86_400_000_000;
    if micros.abs_diff(now_micros) > DAY {
        return None;
    }
    Some(Duration::from_micros(now_micros.saturating_sub(micros)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_765_000_000_500_000; // µs

    #[test]
    fn every_unit_and_form() {
        let ms = Duration::from_millis;
        assert_eq!(waited(b"t=1765000000.400", NOW), Some(ms(100)));
        assert_eq!(waited(b"1765000000.250", NOW), Some(ms(250)));
        assert_eq!(waited(b"t=1765000000300", NOW), Some(ms(200)));
        assert_eq!(waited(b"t=1765000000499000", NOW), Some(ms(1)));
        assert_eq!(waited(b"t=1765000000", NOW), Some(ms(500)));
        assert_eq!(waited(b"t=1765000001.000", NOW), Some(Duration::ZERO));
        assert_eq!(waited(b"t=12", NOW), None);
        assert_eq!(waited(b"t=abc", NOW), None);
        assert_eq!(waited(b"", NOW), None);
        assert_eq!(waited(b"t=-5", NOW), None);
    }
}
