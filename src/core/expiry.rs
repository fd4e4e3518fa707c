//! Timed states: one deadline queue for every name, served by one thread.
//!
//! A timed write (option `t(<seconds>)`) puts `(deadline, name)` on a binary heap. The thread
//! sleeps on a condition variable until the earliest deadline (or, with nothing pending, until
//! something is scheduled), so pending expiries cost no CPU while they wait, and hands the due
//! entries to the store, which reverts the names still holding that deadline. A later write
//! to a name does not search the heap: its old entry stays and is skipped when it comes due
//! (and dropped earlier by [`ExpiryQueue::compact`] once stale entries outnumber live ones).
//!
//! Deadlines are wall-clock milliseconds since the Unix epoch, because they are stored in
//! AstDB and must mean the same after a restart. The thread re-reads the clock at least once a
//! minute, so a step of the system clock delays an expiry by at most that.
//!
//! What a timed state expires to, and how its timing is recorded and sent, is in
//! `expiry/timing.rs` (re-exported here).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A name as the store keeps it: shared, so listing, announcing and the expiry queue never
/// copy it. (Here, below the store, as the queue holds names too.)
pub type Name = Arc<[u8]>;

mod timing;
pub use timing::{
    deadline_after, parse_revert, record_timing, remote_timing, revert_target, stored_timing,
    RevertError, StoredTiming, Timing, TimingError, EXPIRES_MS, EXPIRES_VALUE_FNV, REVERT,
};

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The longest the thread sleeps with expiries pending before it reads the clock again.
const LONGEST_SLEEP_MS: u64 = 60_000;

/// At most this many due entries are handed over per batch, so a burst of expiries does not
/// hold the queue's lock (and writers scheduling new ones) for long.
const BATCH: usize = 1024;

/// Below this many entries the heap is never compacted.
const COMPACT_FLOOR: usize = 1024;

/// One scheduled expiry: 24 bytes on the heap (the name is shared with the store's map).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Due {
    pub deadline_ms: u64,
    pub name: Name,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Due>>,
    /// Set by [`ExpiryThread::stop`]; the thread returns as soon as it sees it.
    stopping: bool,
    /// The heap's size that triggers the next [`ExpiryQueue::compact`].
    compact_at: usize,
}

/// Every pending expiry, earliest first.
#[derive(Default)]
pub struct ExpiryQueue {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl ExpiryQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Schedules `name` to come due at `deadline_ms`. Returns true when the heap has grown
    /// enough that the caller should [`ExpiryQueue::compact`] it.
    pub fn schedule(&self, name: Name, deadline_ms: u64) -> bool {
        let mut queue = self.lock();
        let earliest = queue
            .heap
            .peek()
            .is_none_or(|Reverse(first)| deadline_ms < first.deadline_ms);
        queue.heap.push(Reverse(Due { deadline_ms, name }));
        if earliest {
            // The thread may be sleeping towards a later deadline.
            self.changed.notify_one();
        }
        queue.heap.len() > queue.compact_at.max(COMPACT_FLOOR)
    }

    /// Drops the entries `live` says are stale (their name has been written since), and sets
    /// the next compaction at twice the size left, so compacting costs O(1) per schedule.
    pub fn compact(&self, live: impl Fn(&Name, u64) -> bool) {
        let mut queue = self.lock();
        let entries = std::mem::take(&mut queue.heap).into_vec();
        queue.heap = entries
            .into_iter()
            .filter(|Reverse(due)| live(&due.name, due.deadline_ms))
            .collect();
        queue.heap.shrink_to_fit();
        queue.compact_at = queue.heap.len() * 2;
    }

    /// Replaces every entry with `entries` (a load's timed states), in one allocation of the
    /// right size.
    pub fn replace(&self, entries: Vec<(Name, u64)>) {
        let heap: Vec<Reverse<Due>> = entries
            .into_iter()
            .map(|(name, deadline_ms)| Reverse(Due { deadline_ms, name }))
            .collect();
        let mut queue = self.lock();
        queue.heap = BinaryHeap::from(heap);
        queue.compact_at = queue.heap.len() * 2;
        // The thread may be sleeping towards a deadline no longer there, or with none at all.
        self.changed.notify_one();
    }

    /// Removes and returns up to `BATCH` entries due at `now_ms`, earliest first.
    pub fn take_due(&self, now_ms: u64) -> Vec<Due> {
        take_due(&mut self.lock(), now_ms)
    }

    /// How many entries the heap holds (stale ones included).
    pub fn len(&self) -> usize {
        self.lock().heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every entry and frees the heap (at unload and before a reload re-schedules).
    pub fn clear(&self) {
        let mut queue = self.lock();
        queue.heap = BinaryHeap::new();
        queue.compact_at = 0;
    }

    /// The thread's loop: hands due entries to `fire` (outside the lock) and sleeps until the
    /// next deadline, until stopped.
    fn serve(&self, clock: &dyn Clock, fire: &mut dyn FnMut(Vec<Due>)) {
        let mut queue = self.lock();
        loop {
            if queue.stopping {
                return;
            }
            let now = clock.now_ms();
            let due = take_due(&mut queue, now);
            if !due.is_empty() {
                drop(queue);
                fire(due);
                queue = self.lock();
                continue;
            }
            queue = match queue.heap.peek() {
                Some(Reverse(first)) => {
                    let sleep = (first.deadline_ms - now).min(LONGEST_SLEEP_MS);
                    let woken = self
                        .changed
                        .wait_timeout(queue, Duration::from_millis(sleep));
                    woken.unwrap_or_else(PoisonError::into_inner).0
                }
                None => self
                    .changed
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

fn take_due(queue: &mut Queue, now_ms: u64) -> Vec<Due> {
    let mut due = Vec::new();
    while due.len() < BATCH {
        match queue.heap.peek_mut() {
            Some(first) if first.0.deadline_ms <= now_ms => {
                due.push(std::collections::binary_heap::PeekMut::pop(first).0)
            }
            _ => break,
        }
    }
    due
}

/// What a thread's starter gives back: a call that waits for the thread to end.
pub type Join = Box<dyn FnOnce() + Send>;

/// The one thread that serves an [`ExpiryQueue`]. [`ExpiryThread::stop`] stops and joins it.
pub struct ExpiryThread {
    queue: &'static ExpiryQueue,
    join: Join,
}

impl ExpiryThread {
    /// Starts the thread with `spawn` (in Asterisk, through the host: src/ffi/thread.rs says
    /// why not std::thread); `fire` gets every batch of due entries.
    pub fn start(
        queue: &'static ExpiryQueue,
        clock: &'static dyn Clock,
        mut fire: impl FnMut(Vec<Due>) + Send + 'static,
        spawn: impl FnOnce(Box<dyn FnOnce() + Send>) -> io::Result<Join>,
    ) -> io::Result<ExpiryThread> {
        queue.lock().stopping = false;
        let join = spawn(Box::new(move || queue.serve(clock, &mut fire)))?;
        Ok(ExpiryThread { queue, join })
    }

    /// Stops the thread and waits for it: once this returns, no `fire` runs or will run.
    pub fn stop(self) {
        self.queue.lock().stopping = true;
        self.queue.changed.notify_all();
        (self.join)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc;
    use std::time::Instant;

    fn name(text: &str) -> Name {
        Name::from(text.as_bytes())
    }

    #[test]
    fn due_entries_come_out_earliest_first_and_only_when_due() {
        let queue = ExpiryQueue::default();
        queue.schedule(name("b"), 2_000);
        queue.schedule(name("a"), 1_000);
        queue.schedule(name("c"), 3_000);
        assert!(queue.take_due(999).is_empty());
        let due = queue.take_due(2_000);
        let names: Vec<&[u8]> = due.iter().map(|d| &d.name[..]).collect();
        assert_eq!(names, [&b"a"[..], b"b"]);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn compaction_drops_stale_entries_and_backs_off() {
        let queue = ExpiryQueue::default();
        let mut asked = false;
        for i in 0..=COMPACT_FLOOR as u64 {
            asked |= queue.schedule(name("same"), i);
        }
        assert!(asked, "a heap past the floor asks to be compacted");
        // Only the last deadline of "same" is live.
        queue.compact(|_, deadline| deadline == COMPACT_FLOOR as u64);
        assert_eq!(queue.len(), 1);
        assert!(!queue.schedule(name("other"), 5));
    }

    struct FakeClock(AtomicU64);

    /// A std thread for the tests (no host to start one).
    fn spawn(body: Box<dyn FnOnce() + Send>) -> io::Result<Join> {
        let handle = std::thread::Builder::new().spawn(body)?;
        // A panic in `fire` ended the thread already; there is nothing left to stop.
        Ok(Box::new(move || drop(handle.join())))
    }

    impl Clock for FakeClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn the_thread_fires_when_due_sleeps_otherwise_and_stops_when_told() {
        static QUEUE: LazyQueue = LazyQueue::new();
        static CLOCK: FakeClock = FakeClock(AtomicU64::new(0));
        let queue = QUEUE.get();
        let (sent, fired) = mpsc::channel();
        let thread = ExpiryThread::start(
            queue,
            &CLOCK,
            move |due| {
                for d in due {
                    sent.send((d.name.to_vec(), d.deadline_ms)).unwrap();
                }
            },
            spawn,
        )
        .unwrap();
        queue.schedule(name("later"), 10_000);
        queue.schedule(name("soon"), 100);
        assert!(fired.recv_timeout(Duration::from_millis(200)).is_err());
        CLOCK.0.store(100, Ordering::Relaxed);
        // A new earliest deadline wakes the thread, which reads the clock again.
        queue.schedule(name("also-due"), 50);
        let mut got = vec![
            fired.recv_timeout(Duration::from_secs(5)).unwrap(),
            fired.recv_timeout(Duration::from_secs(5)).unwrap(),
        ];
        got.sort();
        assert_eq!(got, [(b"also-due".to_vec(), 50), (b"soon".to_vec(), 100)]);
        let stopping = Instant::now();
        thread.stop();
        assert!(stopping.elapsed() < Duration::from_secs(2));
        assert!(fired.try_recv().is_err());
        assert_eq!(queue.len(), 1, "the later entry stays pending");
    }

    #[test]
    fn real_deadlines_fire_on_time() {
        static QUEUE: LazyQueue = LazyQueue::new();
        let queue = QUEUE.get();
        let (sent, fired) = mpsc::channel();
        let thread = ExpiryThread::start(
            queue,
            &SystemClock,
            move |due| {
                for _ in due {
                    sent.send(SystemClock.now_ms()).unwrap();
                }
            },
            spawn,
        )
        .unwrap();
        let deadline = SystemClock.now_ms() + 150;
        queue.schedule(name("x"), deadline);
        let at = fired.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(at >= deadline && at < deadline + 500, "{at} vs {deadline}");
        thread.stop();
    }

    /// A static queue for a test thread (`ExpiryThread` needs `'static`).
    struct LazyQueue(std::sync::OnceLock<ExpiryQueue>);

    impl LazyQueue {
        const fn new() -> LazyQueue {
            LazyQueue(std::sync::OnceLock::new())
        }
        fn get(&'static self) -> &'static ExpiryQueue {
            self.0.get_or_init(ExpiryQueue::default)
        }
    }
}
