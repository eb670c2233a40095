//! For messages that can repeat many times a second (a full descriptor table makes every
//! accept fail): let one through per interval and count the ones held back.
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Throttle {
    every_ms: u64,
    /// `clock::millis()` from which the next message may go; 0 = at once.
    next_ms: AtomicU64,
    held_back: AtomicU64,
}

impl Throttle {
    pub const fn new(every_ms: u64) -> Throttle {
        Throttle {
            every_ms,
            next_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// Some(n) when the message may be logged now; n were held back since the last one.
    pub fn allow(&self) -> Option<u64> {
        let now = crate::clock::millis();
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.every_ms,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_interval() {
        let throttle = Throttle::new(60_000);
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        throttle.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.allow(), Some(2));
    }
}
