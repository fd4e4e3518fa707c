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

use super::meta::{value_fnv, Meta};
use super::shown;
use super::store::Name;
use super::value::{Presence, ValueError};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A timed state's expiry: when, and the state it then reverts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Unix time in milliseconds.
    pub deadline_ms: u64,
    /// The last state of the name written without an expiry; `None` for not_set.
    pub revert: Option<Arc<Presence>>,
}

impl Timing {
    /// The stored text the state reverts to.
    pub fn revert_text(&self) -> &[u8] {
        self.revert.as_deref().map_or(NOT_SET, Presence::stored)
    }
}

const NOT_SET: &[u8] = b"not_set";

/// The state a timed write over `current` reverts to: the last one written without an expiry.
pub fn revert_target(current: Option<&Arc<Presence>>) -> Option<Arc<Presence>> {
    let current = current?;
    match current.timing() {
        Some(timing) => timing.revert.clone(),
        None => Some(Arc::clone(current)),
    }
}

/// Why the revert a timed state came with from another server is refused. `Display` gives
/// the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum RevertError {
    /// Not `not_set` nor a presence value.
    Invalid(Vec<u8>, ValueError),
    /// A timed value: a state reverts to one written without an expiry.
    Timed(Vec<u8>),
    /// An untimed state (or a delete) came with one.
    Unexpected(Vec<u8>),
}

impl fmt::Display for RevertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevertError::Invalid(text, error) => write!(
                f,
                "the state it reverts to, '{}', is not usable: {error}",
                shown(text)
            ),
            RevertError::Timed(text) => write!(
                f,
                "the state it reverts to, '{}', is itself timed",
                shown(text)
            ),
            RevertError::Unexpected(text) => write!(
                f,
                "it is not timed but names a state to revert to, '{}'",
                shown(text)
            ),
        }
    }
}

/// The state a timed state written on another server reverts to, from the text its writer
/// sent: `not_set` (`None`) or a presence value written without an expiry.
pub fn parse_revert(text: &[u8]) -> Result<Option<Arc<Presence>>, RevertError> {
    if text == NOT_SET {
        return Ok(None);
    }
    let revert = Presence::parse(text).map_err(|e| RevertError::Invalid(text.to_vec(), e))?;
    if revert.expiry().is_some() {
        return Err(RevertError::Timed(text.to_vec()));
    }
    Ok(Some(Arc::new(revert)))
}

/// The timing of `presence` written on another server at `written_ms` (its version's clock)
/// with `revert` (empty: none), so that it expires on every server at the same moment, to the
/// same state, without a message. A timed state sent without a revert is held as its writer
/// holds it: with no expiry (its expiry record was lost there, see [`stored_timing`]).
pub fn remote_timing(
    presence: &Presence,
    revert: &[u8],
    written_ms: u64,
) -> Result<Option<Timing>, RevertError> {
    match presence.expiry() {
        None if revert.is_empty() => Ok(None),
        None => Err(RevertError::Unexpected(revert.to_vec())),
        Some(_) if revert.is_empty() => Ok(None),
        Some(seconds) => Ok(Some(Timing {
            deadline_ms: written_ms.saturating_add(u64::from(seconds.get()) * 1000),
            revert: parse_revert(revert)?,
        })),
    }
}

/// CustomPresenceMeta field: the deadline of a timed state, unix milliseconds.
pub const EXPIRES_MS: &str = "expires_ms";
/// CustomPresenceMeta field: the stored text the timed state reverts to.
pub const REVERT: &str = "revert";
/// CustomPresenceMeta field: FNV-1a of the timed value, as `value_fnv` writes it. The expiry's
/// own, so a record of a later change (which rewrites `value_fnv`) never carries it over.
pub const EXPIRES_VALUE_FNV: &str = "expires_value_fnv";

/// Writes `timing` of the state stored as `stored_value` into `meta`, or removes the fields
/// when the state is not timed. The fields name the value they describe, so an expiry is never
/// applied to a value someone else wrote since (the stock module, `database put`).
pub fn record_timing(meta: &mut Meta, stored_value: &[u8], timing: Option<&Timing>) {
    match timing {
        Some(timing) => {
            meta.set(EXPIRES_MS, timing.deadline_ms.to_string().as_bytes());
            meta.set(REVERT, timing.revert_text());
            meta.set(EXPIRES_VALUE_FNV, value_fnv(stored_value).as_bytes());
        }
        None => {
            meta.remove(EXPIRES_MS);
            meta.remove(REVERT);
            meta.remove(EXPIRES_VALUE_FNV);
        }
    }
}

/// A deadline and revert text read back from AstDB.
#[derive(Debug, PartialEq, Eq)]
pub struct StoredTiming {
    pub deadline_ms: u64,
    pub revert: Vec<u8>,
}

/// Why a stored expiry was not used. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum TimingError {
    BadDeadline(Vec<u8>),
    BadRevert(Vec<u8>, ValueError),
}

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimingError::BadDeadline(text) => {
                write!(f, "its {EXPIRES_MS} '{}' is not a time", shown(text))
            }
            TimingError::BadRevert(text, error) => write!(
                f,
                "the state it reverts to, '{}', is not usable: {error}",
                shown(text)
            ),
        }
    }
}

/// The expiry `meta` records for the state stored as `stored_value`: `None` when it records
/// none, or records one for another value (written since by someone who keeps no record).
pub fn stored_timing(
    meta: &Meta,
    stored_value: &[u8],
) -> Option<Result<StoredTiming, TimingError>> {
    let deadline = meta.get(EXPIRES_MS)?;
    if meta.get(EXPIRES_VALUE_FNV)? != value_fnv(stored_value).as_bytes() {
        return None;
    }
    let parsed = std::str::from_utf8(deadline)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok());
    Some(match parsed {
        Some(deadline_ms) => Ok(StoredTiming {
            deadline_ms,
            revert: meta.get(REVERT).unwrap_or(NOT_SET).to_vec(),
        }),
        None => Err(TimingError::BadDeadline(deadline.to_vec())),
    })
}

impl StoredTiming {
    /// The timing of a state loaded from AstDB. States reverting to the same text share its
    /// parsed form through `shared` (a load of many timed states, most of them reverting to
    /// `available`, keeps one).
    pub fn resolve(
        &self,
        shared: &mut HashMap<Vec<u8>, Arc<Presence>>,
    ) -> Result<Timing, TimingError> {
        let revert = if self.revert == NOT_SET {
            None
        } else if let Some(revert) = shared.get(&self.revert) {
            Some(Arc::clone(revert))
        } else {
            let revert = Arc::new(
                Presence::parse(&self.revert)
                    .map_err(|error| TimingError::BadRevert(self.revert.clone(), error))?,
            );
            shared.insert(self.revert.clone(), Arc::clone(&revert));
            Some(revert)
        };
        Ok(Timing {
            deadline_ms: self.deadline_ms,
            revert,
        })
    }
}

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

    /// Removes and returns up to [`BATCH`] entries due at `now_ms`, earliest first.
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

/// The one thread that serves an [`ExpiryQueue`]. [`ExpiryThread::stop`] stops and joins it.
pub struct ExpiryThread {
    queue: &'static ExpiryQueue,
    handle: JoinHandle<()>,
}

impl ExpiryThread {
    /// Starts the thread; `fire` gets every batch of due entries.
    pub fn start(
        queue: &'static ExpiryQueue,
        clock: &'static dyn Clock,
        mut fire: impl FnMut(Vec<Due>) + Send + 'static,
    ) -> io::Result<ExpiryThread> {
        queue.lock().stopping = false;
        let handle = std::thread::Builder::new()
            .name("presence-expiry".into())
            .spawn(move || queue.serve(clock, &mut fire))?;
        Ok(ExpiryThread { queue, handle })
    }

    /// Stops the thread and waits for it: once this returns, no `fire` runs or will run.
    pub fn stop(self) {
        self.queue.lock().stopping = true;
        self.queue.changed.notify_all();
        // A panic in `fire` ended the thread already; there is nothing left to stop.
        let _ = self.handle.join();
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
    fn timing_round_trips_through_the_meta_record_of_its_value() {
        let revert = Arc::new(Presence::parse(b"away,,Lunch; back at 2").unwrap());
        let timing = Timing {
            deadline_ms: 1_764_500_000_123,
            revert: Some(revert),
        };
        let mut meta = Meta::parse(b"changed=5;hlc=1").unwrap();
        record_timing(&mut meta, b"dnd,,,t(60)", Some(&timing));
        let meta = Meta::parse(&meta.encode()).unwrap();
        let stored = stored_timing(&meta, b"dnd,,,t(60)").unwrap().unwrap();
        assert_eq!(stored.resolve(&mut HashMap::new()).unwrap(), timing);
        // A value written since by someone keeping no record has no expiry.
        assert_eq!(stored_timing(&meta, b"available"), None);
        let mut cleared = meta.clone();
        record_timing(&mut cleared, b"available", None);
        assert_eq!(stored_timing(&cleared, b"dnd,,,t(60)"), None);
        assert_eq!(cleared.get("hlc"), Some(&b"1"[..]), "other fields stay");
    }

    #[test]
    fn a_timing_without_an_untimed_state_before_reverts_to_not_set() {
        let timing = Timing {
            deadline_ms: 7,
            revert: revert_target(None),
        };
        assert_eq!(timing.revert_text(), b"not_set");
        let mut meta = Meta::default();
        record_timing(&mut meta, b"dnd,,,t(1)", Some(&timing));
        let stored = stored_timing(&meta, b"dnd,,,t(1)").unwrap().unwrap();
        assert_eq!(stored.resolve(&mut HashMap::new()).unwrap(), timing);
        meta.set(EXPIRES_MS, b"soon");
        let error = stored_timing(&meta, b"dnd,,,t(1)").unwrap().unwrap_err();
        assert!(
            error.to_string().contains("'soon' is not a time"),
            "{error}"
        );
    }

    #[test]
    fn a_timed_state_over_a_timed_state_keeps_the_first_revert() {
        let untimed = Arc::new(Presence::parse(b"available").unwrap());
        let mut timed = Presence::parse(b"dnd,,,t(60)").unwrap();
        timed.set_timing(Timing {
            deadline_ms: 1,
            revert: revert_target(Some(&untimed)),
        });
        let timed = Arc::new(timed);
        let again = revert_target(Some(&timed)).unwrap();
        assert!(Arc::ptr_eq(&again, &untimed));
    }

    #[test]
    fn a_remote_timed_state_takes_its_writers_revert_and_deadline() {
        let timed = Presence::parse(b"dnd,,,t(30)").unwrap();
        let timing = remote_timing(&timed, b"available", 1_000).unwrap().unwrap();
        assert_eq!(timing.deadline_ms, 31_000);
        assert_eq!(timing.revert_text(), b"available");
        let to_not_set = remote_timing(&timed, b"not_set", 1_000).unwrap().unwrap();
        assert_eq!((to_not_set.revert, to_not_set.deadline_ms), (None, 31_000));
        // Sent without one, it is held as its writer holds it: without an expiry.
        assert_eq!(remote_timing(&timed, b"", 1_000), Ok(None));
        let untimed = Presence::parse(b"away").unwrap();
        assert_eq!(remote_timing(&untimed, b"", 1_000), Ok(None));
    }

    #[test]
    fn a_bad_remote_revert_is_refused() {
        let timed = Presence::parse(b"dnd,,,t(30)").unwrap();
        let untimed = Presence::parse(b"away").unwrap();
        assert!(matches!(
            remote_timing(&timed, b"bored", 1),
            Err(RevertError::Invalid(text, ValueError::UnknownState(_))) if text == b"bored"
        ));
        assert_eq!(
            remote_timing(&timed, b"away,,,t(5)", 1),
            Err(RevertError::Timed(b"away,,,t(5)".to_vec()))
        );
        let error = remote_timing(&untimed, b"available", 1).unwrap_err();
        assert_eq!(error, RevertError::Unexpected(b"available".to_vec()));
        assert!(error.to_string().contains("'available'"), "{error}");
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
        let thread = ExpiryThread::start(queue, &CLOCK, move |due| {
            for d in due {
                sent.send((d.name.to_vec(), d.deadline_ms)).unwrap();
            }
        })
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
        let thread = ExpiryThread::start(queue, &SystemClock, move |due| {
            for _ in due {
                sent.send(SystemClock.now_ms()).unwrap();
            }
        })
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
