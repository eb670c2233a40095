//! Which request paths answered slowly last time (an app waiting on a sleep, a database, a
//! remote call). Before a request runs, its path is looked up: a slow one is started only
//! while a thread stays free for the others (see `EventLoop::try_begin_slow`). Slowness
//! belongs to the endpoint, not the connection: behind a proxy's keep-alive pool one
//! connection carries every kind of request, and clients without keep-alive bring each
//! request on a new connection.
//!
//! A path turns slow after two slow requests in a row, and quick again after one quick
//! request. One slow request says little: the first request of a script or a view also
//! loads its code and warms its caches (a drop-in script's first call took 5.1-5.6 ms
//! under the pip-installed server, just over the threshold, and the next request to it
//! then waited behind the sleeping ones).
//!
//! A fixed table of counters indexed by a hash of the path: bounded memory whatever paths
//! clients invent; two paths that share one are only ever scheduled a little worse.
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// A request that took this long marks its path as slow.
pub const SLOW_REQUEST: Duration = Duration::from_millis(5);
const PATHS: usize = 4096;
/// Slow requests in a row that make a path slow.
const SLOW_IN_A_ROW: u8 = 2;

pub struct SlowRoutes {
    slow_in_a_row: Box<[AtomicU8]>,
}

/// A path's place in the table.
#[derive(Clone, Copy)]
pub struct RouteKey(usize);

impl Default for SlowRoutes {
    fn default() -> Self {
        SlowRoutes {
            slow_in_a_row: (0..PATHS).map(|_| AtomicU8::new(0)).collect(),
        }
    }
}

impl SlowRoutes {
    pub fn key(path: &[u8]) -> RouteKey {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(path);
        RouteKey(hash as usize % PATHS)
    }

    pub fn is_slow(&self, key: RouteKey) -> bool {
        self.slow_in_a_row[key.0].load(Ordering::Relaxed) >= SLOW_IN_A_ROW
    }

    /// Remembers how long the path's last request took. Threads racing on one path may
    /// lose a count: that only delays the change by a request.
    pub fn record(&self, key: RouteKey, took: Duration) {
        let count = &self.slow_in_a_row[key.0];
        let before = count.load(Ordering::Relaxed);
        let after = if took >= SLOW_REQUEST {
            (before + 1).min(SLOW_IN_A_ROW)
        } else {
            0
        };
        if after != before {
            count.store(after, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_slow_after_two_slow_requests_until_a_quick_one() {
        let routes = SlowRoutes::default();
        let key = SlowRoutes::key(b"/report");
        assert!(!routes.is_slow(key));
        routes.record(key, Duration::from_millis(12));
        assert!(
            !routes.is_slow(key),
            "one slow request (a first load) is not enough"
        );
        routes.record(key, Duration::from_millis(12));
        assert!(routes.is_slow(key));
        routes.record(key, Duration::from_millis(30));
        assert!(routes.is_slow(key));
        routes.record(key, Duration::from_micros(80));
        assert!(!routes.is_slow(key));
        routes.record(key, Duration::from_millis(12));
        assert!(!routes.is_slow(key));
    }
}
