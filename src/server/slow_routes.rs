//! Which request paths answered slowly last time (an app waiting on a sleep, a database, a
//! remote call). Before a request runs, its path is looked up: a slow one is started only
//! while a thread stays free for the others (see `EventLoop::try_begin_slow`). Slowness
//! belongs to the endpoint, not the connection: behind a proxy's keep-alive pool one
//! connection carries every kind of request, and clients without keep-alive bring each
//! request on a new connection.
//!
//! A fixed table of flags indexed by a hash of the path: bounded memory whatever paths
//! clients invent; two paths that share a flag are only ever scheduled a little worse.
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A request that took this long marks its path as slow.
pub const SLOW_REQUEST: Duration = Duration::from_millis(5);
const FLAGS: usize = 4096;

pub struct SlowRoutes {
    flags: Box<[AtomicBool]>,
}

/// A path's place in the table.
#[derive(Clone, Copy)]
pub struct RouteKey(usize);

impl Default for SlowRoutes {
    fn default() -> Self {
        SlowRoutes {
            flags: (0..FLAGS).map(|_| AtomicBool::new(false)).collect(),
        }
    }
}

impl SlowRoutes {
    pub fn key(path: &[u8]) -> RouteKey {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(path);
        RouteKey(hash as usize % FLAGS)
    }

    pub fn is_slow(&self, key: RouteKey) -> bool {
        self.flags[key.0].load(Ordering::Relaxed)
    }

    /// Remembers how long the path's last request took.
    pub fn record(&self, key: RouteKey, took: Duration) {
        let slow = took >= SLOW_REQUEST;
        if self.flags[key.0].load(Ordering::Relaxed) != slow {
            self.flags[key.0].store(slow, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_slow_after_a_slow_request_until_a_quick_one() {
        let routes = SlowRoutes::default();
        let key = SlowRoutes::key(b"/report");
        assert!(!routes.is_slow(key));
        routes.record(key, Duration::from_millis(12));
        assert!(routes.is_slow(key));
        routes.record(key, Duration::from_micros(80));
        assert!(!routes.is_slow(key));
    }
}
