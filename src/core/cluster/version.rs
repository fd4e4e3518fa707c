//! Versions of states: a hybrid logical clock (wall-clock milliseconds, a counter, the
//! corosync node id), ordered so that the last writer wins and ties go to the higher node id.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::core::store::Version;

/// Last writer wins: whether `(version, value)` replaces `(held, held_value)`. Versions are
/// unique per writer; should two writers ever make the same one (a node id not yet known),
/// the greater value wins, so every server still picks the same state.
pub fn wins(version: Version, value: &[u8], held: Option<(Version, &[u8])>) -> bool {
    match held {
        None => true,
        Some((held, held_value)) => (version, value) > (held, held_value),
    }
}

/// A hybrid logical clock: never goes backwards, stays close to wall-clock time, and moves
/// past every version it has seen, so a write made after seeing another one wins over it.
pub struct Clock {
    last: Mutex<(u64, u32)>,
    node: AtomicU32,
}

impl Clock {
    pub fn new(node: u32) -> Clock {
        Clock {
            last: Mutex::new((0, 0)),
            node: AtomicU32::new(node),
        }
    }

    /// The node id put in new versions (corosync's, once connected).
    pub fn set_node(&self, node: u32) {
        self.node.store(node, Ordering::Relaxed);
    }

    pub fn node(&self) -> u32 {
        self.node.load(Ordering::Relaxed)
    }

    /// A version for a local write made at `wall_ms` (normally [`wall_clock_ms`]).
    pub fn tick(&self, wall_ms: u64) -> Version {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        *last = if wall_ms > last.0 {
            (wall_ms, 0)
        } else {
            (last.0, last.1.saturating_add(1))
        };
        Version {
            wall_ms: last.0,
            counter: last.1,
            node: self.node(),
        }
    }

    /// Moves past `seen`, a version received from another server.
    pub fn observe(&self, seen: Version) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if (seen.wall_ms, seen.counter) > *last {
            *last = (seen.wall_ms, seen.counter);
        }
    }
}

pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(wall_ms: u64, counter: u32, node: u32) -> Version {
        Version {
            wall_ms,
            counter,
            node,
        }
    }

    #[test]
    fn order_is_wall_then_counter_then_node() {
        assert!(v(2, 0, 1) > v(1, 9, 9));
        assert!(v(1, 2, 1) > v(1, 1, 9));
        assert!(v(1, 1, 2) > v(1, 1, 1));
        assert!(v(0, 0, 1) > Version::UNKNOWN);
    }

    #[test]
    fn last_writer_wins_and_ties_are_decided_the_same_everywhere() {
        assert!(wins(v(1, 0, 1), b"a", None));
        assert!(wins(v(2, 0, 1), b"a", Some((v(1, 0, 2), b"b"))));
        assert!(!wins(v(1, 0, 2), b"b", Some((v(2, 0, 1), b"a"))));
        // Same version and value: a duplicate, not newer.
        assert!(!wins(v(1, 0, 1), b"a", Some((v(1, 0, 1), b"a"))));
        // Same version, different values: exactly one side wins, on every server.
        assert!(wins(v(1, 0, 0), b"b", Some((v(1, 0, 0), b"a"))));
        assert!(!wins(v(1, 0, 0), b"a", Some((v(1, 0, 0), b"b"))));
    }

    #[test]
    fn the_clock_never_goes_back_and_moves_past_what_it_saw() {
        let clock = Clock::new(3);
        let a = clock.tick(100);
        let b = clock.tick(100);
        let c = clock.tick(50); // the wall clock stepped back
        assert!(a < b && b < c, "{a} {b} {c}");
        clock.observe(v(500, 7, 1));
        let d = clock.tick(200);
        assert_eq!(d, v(500, 8, 3));
        assert_eq!(clock.tick(600), v(600, 0, 3));
    }

    #[test]
    fn versions_round_trip_as_text() {
        let version = v(1_700_000_000_123, 4, 2);
        assert_eq!(version.to_string().parse::<Version>(), Ok(version));
        for bad in ["", "1.2", "1.2.3.4", "a.b.c", "1.2.-3", "1..3"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }
}
