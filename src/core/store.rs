//! The presence store: every custom state in memory, kept equal to AstDB and announced on
//! every change.

use super::custom_presence_name;
use super::device_state::{DeviceState, LiveDeviceStateMap};
use super::expiry::{deadline_after, Clock, ExpiryQueue, SystemClock, Timing};
use super::meta::{ChangeFields, RecordText, Source};
use super::stats::Stats;
use super::value::{Presence, ValueError};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

mod announcing;
mod error;
mod hash;
mod records;
#[cfg(test)]
pub(crate) mod tests;

use announcing::{Announcer, Announcing};
use hash::{fnv1a, SeededFnv};
use records::{Outgoing, Record};

mod timed;
pub use timed::Expired;
use timed::Put;

mod remote;
pub use remote::{RemoteValue, RemoteWrite};

mod version;
pub use version::Version;

pub use error::WriteError;

/// What the store needs from Asterisk: AstDB for persistence, Stasis for announcements.
pub trait Host {
    /// Stores `value` under family `CustomPresence`, key `name`. False when AstDB refused it.
    fn persist(&self, name: &CStr, value: &CStr) -> bool;
    /// Removes key `name` from family `CustomPresence`. False when AstDB failed.
    fn remove(&self, name: &CStr) -> bool;
    /// Stores (`Some`) or removes (`None`) the `CustomPresenceMeta` record of `name`. False
    /// when AstDB failed (the host says so in the log; the change itself stands).
    fn persist_meta(&self, name: &CStr, record: Option<RecordText<'_>>) -> bool;
    /// Announces `CustomPresence:<name>` to presence subscribers; `None` when it is gone.
    fn announce(&self, name: &[u8], presence: Option<&Presence>);
    /// Announces the device state of `CustomPresence:<name>` (hints, BLF, queues).
    fn announce_device(&self, name: &[u8], state: DeviceState);
    /// Wall-clock time, unix milliseconds (deadlines of timed states).
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms()
    }
    /// The version of a local change about to enter memory (called under the name's write
    /// lock, in the order memory takes the changes, and only while [`Store::replicate`] is
    /// on); `None` when there is no cluster to version it. A timed state's deadline counts
    /// from its `wall_ms`, as every other server counts it from the version it receives.
    fn stamp(&self) -> Option<Version> {
        None
    }
    /// That change is in memory: `Some(value)` the text written, `None` a delete; `revert`,
    /// for a timed state, the text of the state it reverts to; `version` what
    /// [`Host::stamp`] gave it (called under the same lock): the cluster sends it from here.
    fn committed(
        &self,
        _name: &[u8],
        _value: Option<&CStr>,
        _revert: Option<&[u8]>,
        _version: Version,
    ) {
    }
}

/// The name of the state a write to `provider` changes: `CustomPresence:<name>`, any case.
pub fn name_for_write(provider: &[u8]) -> Result<&[u8], WriteError> {
    let name = custom_presence_name(provider)
        .ok_or_else(|| WriteError::NotCustomPresence(provider.to_vec()))?;
    if name.is_empty() {
        return Err(WriteError::EmptyName);
    }
    if name.contains(&b',') {
        return Err(WriteError::CommaInName(name.to_vec()));
    }
    Ok(name)
}

/// A stored entry that could not be used at load or reload. It stays in AstDB untouched.
#[derive(Debug, PartialEq, Eq)]
pub struct SkippedEntry {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    pub error: ValueError,
}

pub use super::expiry::Name;

/// What [`Store::replace_all`] found.
#[derive(Debug, Default)]
pub struct Replaced {
    pub skipped: Vec<SkippedEntry>,
    pub changed: Vec<Name>,
    /// Timed states whose deadline had passed (while Asterisk was down or the module not
    /// loaded): memory holds their revert state, which [`Store::persist_reverted`] stores.
    pub reverted: Vec<Name>,
    /// Recorded expiries that could not be used; those states are kept, untimed.
    pub bad_timings: Vec<(Name, super::expiry::TimingError)>,
}

/// How many stripes writers are spread over (by name), so writes to different names overlap.
const STRIPES: usize = 32;

type States = HashMap<Name, Arc<Presence>, SeededFnv>;

/// Every custom presence state, by name (the bytes after `CustomPresence:`).
///
/// Writes to one name reach AstDB, memory and Stasis so that all three end on the same last
/// write, without holding a lock across the AstDB put (under load, channels would queue on it):
/// - memory takes the write that finishes last (its update is made under its stripe's lock);
/// - AstDB takes the puts in its own order, which may differ when two writes of one name
///   overlap; so when they do, the last of them to finish writes memory's state to AstDB
///   again, under the stripe's lock, before it returns;
/// - announcing is left to one thread per stripe at a time: the first writer to find nobody
///   announcing announces what memory holds for its name, then whatever names other writers
///   queued meanwhile, until the queue is empty; a writer that finds the stripe busy queues
///   its name and returns. So every announcement is of the state in memory at that moment,
///   and writes that come faster than Stasis takes them are coalesced (a write overtaken
///   before it was announced is not announced: subscribers get the newest state).
///
/// Load and reload hold every stripe's lock. The provider callback (which the announcement of
/// `not_set` calls back into) takes only `states`.
pub struct Store {
    states: RwLock<States>,
    stripes: [Stripe; STRIPES],
    /// Every pending expiry of a timed state (served by one thread, see `expiry`).
    expiries: ExpiryQueue,
    /// The device state each presence state announces (`[device_state]`).
    device_states: LiveDeviceStateMap,
    /// `suppress_identical`: a write that changes nothing consumers see is not announced.
    suppress_identical: AtomicBool,
    /// presencestate.conf `record_changes`: keep `CustomPresenceMeta` records of changes.
    record_changes: AtomicBool,
    pub stats: Stats,
    /// Whether writes go to [`Host::committed`] (the cluster is on): one load per write
    /// when it is off.
    replicating: AtomicBool,
}

#[derive(Default)]
struct Stripe {
    writing: Mutex<Writing>,
    announcing: Mutex<Announcing>,
}

/// The writes of one stripe under way.
#[derive(Default)]
struct Writing {
    /// A hash of the name of each write under way (two names with one hash only cost a
    /// needless AstDB put below).
    in_flight: Vec<u64>,
    /// Names (and their hash) written by overlapping writes: AstDB is set to memory's state
    /// once no write with that hash is under way.
    overlapped: Vec<(u64, Vec<u8>)>,
    /// The `CustomPresenceMeta` record of each name of this stripe that has one, as stored
    /// (kept here so a write updates it without reading AstDB, and keeps fields it does not
    /// know).
    meta: HashMap<Name, Record, SeededFnv>,
    /// Where a write's record is written before it is shared (no allocation per write).
    scratch: Vec<u8>,
    /// The last record's `changed` and `source`, formatted.
    fields: ChangeFields,
}

impl Writing {
    /// Registers a write of `name` (hash `hash`) as under way, noting it as overlapped when
    /// another write with its hash is.
    fn enter(&mut self, hash: u64, name: &[u8]) {
        if self.in_flight.contains(&hash) && !self.overlapped.iter().any(|(_, n)| n == name) {
            self.overlapped.push((hash, name.to_vec()));
        }
        self.in_flight.push(hash);
    }

    /// The write with hash `hash` is no longer under way.
    fn leave(&mut self, hash: u64) {
        if let Some(mine) = self.in_flight.iter().position(|&h| h == hash) {
            self.in_flight.swap_remove(mine);
        }
    }
}

/// Removes and returns the names in `overlapped` with hash `hash`.
fn extract(overlapped: &mut Vec<(u64, Vec<u8>)>, hash: u64) -> Vec<Vec<u8>> {
    let mut taken = Vec::new();
    overlapped.retain_mut(|(h, name)| {
        let matches = *h == hash;
        if matches {
            taken.push(std::mem::take(name));
        }
        !matches
    });
    taken
}

impl Default for Store {
    fn default() -> Store {
        Store {
            states: RwLock::default(),
            stripes: std::array::from_fn(|_| Stripe::default()),
            expiries: ExpiryQueue::default(),
            device_states: LiveDeviceStateMap::default(),
            suppress_identical: AtomicBool::new(false),
            record_changes: AtomicBool::new(true),
            stats: Stats::default(),
            replicating: AtomicBool::new(false),
        }
    }
}

fn stripe_of(hash: u64) -> usize {
    (hash % STRIPES as u64) as usize
}

fn lock_ignoring_poison<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The name that follows `offset` bytes of `text`, still NUL-terminated.
fn c_suffix(text: &CStr, offset: usize) -> &CStr {
    CStr::from_bytes_until_nul(&text.to_bytes_with_nul()[offset..]).unwrap_or_default()
}

// The locks ignore poisoning: the store's invariants hold between any two statements (the map
// is replaced or updated in one step), so a panic elsewhere must not wedge every later caller.
impl Store {
    fn read(&self) -> RwLockReadGuard<'_, States> {
        self.states.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_states(&self) -> RwLockWriteGuard<'_, States> {
        self.states.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<Presence>> {
        self.read().get(name).cloned()
    }

    /// Turns the commit hook on (the cluster started) or off.
    pub fn replicate(&self, on: bool) {
        self.replicating.store(on, Relaxed);
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `value` to `CustomPresence:<name>`: AstDB first, then memory, then the
    /// announcement; `source` is recorded as what made the change. On any error nothing is
    /// changed. Counted in [`Store::stats`].
    pub fn write(
        &self,
        host: &dyn Host,
        provider: &CStr,
        value: &CStr,
        source: &Source,
    ) -> Result<(), WriteError> {
        let result = self.try_write(host, provider, value, source);
        match &result {
            Ok(()) => self.stats.count_write(),
            Err(error) => self.stats.count(error.refusal()),
        }
        result
    }

    fn try_write(
        &self,
        host: &dyn Host,
        provider: &CStr,
        value: &CStr,
        source: &Source,
    ) -> Result<(), WriteError> {
        let name = name_for_write(provider.to_bytes())?;
        let presence = Arc::new(Presence::parse_c(value).map_err(WriteError::Value)?);
        let name_c = c_suffix(provider, provider.to_bytes().len() - name.len());
        self.change(host, name, name_c, Some((presence, value)), source)
    }

    /// Deletes `CustomPresence:<name>`: from AstDB, then memory, its `CustomPresenceMeta`
    /// record, and announces `not_set`. A name that holds no state is an error and nothing
    /// changes. Counted in [`Store::stats`].
    pub fn delete(
        &self,
        host: &dyn Host,
        provider: &CStr,
        source: &Source,
    ) -> Result<(), WriteError> {
        let result = name_for_write(provider.to_bytes()).and_then(|name| {
            if self.get(name).is_none() {
                return Err(WriteError::NotSet(name.to_vec()));
            }
            let name_c = c_suffix(provider, provider.to_bytes().len() - name.len());
            self.change(host, name, name_c, None, source)
        });
        match &result {
            Ok(()) => self.stats.count_delete(),
            Err(error) => self.stats.count(error.refusal()),
        }
        result
    }

    /// Sets (`Some`: the state and the text written, which AstDB stores) or deletes (`None`)
    /// the state of `name` in AstDB, memory and its meta record, then announces it (see
    /// [`Store`] for how overlapping changes of one name end equal everywhere).
    #[inline]
    fn change(
        &self,
        host: &dyn Host,
        name: &[u8],
        name_c: &CStr,
        new: Option<(Arc<Presence>, &CStr)>,
        source: &Source,
    ) -> Result<(), WriteError> {
        let hash = fnv1a(name);
        let stripe = &self.stripes[stripe_of(hash)];
        lock_ignoring_poison(&stripe.writing).enter(hash, name);
        let persisted = match &new {
            Some((_, value)) => host.persist(name_c, value),
            None => host.remove(name_c),
        };
        let text = new.as_ref().map(|&(_, value)| value);
        let new = new.map(|(presence, _)| presence);
        let (put, record, announcer) = {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            writing.leave(hash);
            let (mut record, mut announcer) = (None, None);
            let put = if persisted {
                let version = self.stamp(host);
                // A timed state's deadline counts from the change's version where there is
                // one, so every server of a cluster holds the same deadline.
                let deadline_ms = new.as_ref().and_then(|new| new.expiry()).map(|seconds| {
                    deadline_after(
                        version.map_or_else(|| host.now_ms(), |v| v.wall_ms),
                        seconds,
                    )
                });
                let put = self.put(name, new, deadline_ms);
                if self.records(&put) {
                    record = self.note_change(&mut writing, name, &put, source);
                }
                if let Some(version) = version {
                    let timing = put.new.as_ref().and_then(|new| new.timing());
                    host.committed(name, text, timing.map(Timing::revert_text), version);
                }
                if self.announces(&put) {
                    announcer = self.claim(stripe, name);
                }
                Some(put)
            } else {
                None
            };
            self.settle_overlapped(host, &mut writing, hash);
            (put, record, announcer)
        };
        let Some(put) = put else {
            self.stats.count_astdb_failure();
            return Err(WriteError::PersistFailed(name.to_vec()));
        };
        self.finish(host, name, name_c, put, record, announcer);
        Ok(())
    }

    /// The version of a local change about to enter memory, while replicating (see
    /// [`Host::stamp`]); called under the name's write lock.
    #[inline]
    fn stamp(&self, host: &dyn Host) -> Option<Version> {
        if self.replicating.load(Relaxed) {
            host.stamp()
        } else {
            None
        }
    }

    /// Whether the change `put` updates its name's meta record: a delete, or any change
    /// while `record_changes` is on, or one that makes or ends a timed state. (Checked before
    /// [`Store::note_change`], so a write that records nothing costs no call.)
    #[inline]
    fn records(&self, put: &Put) -> bool {
        put.new.is_none() || self.record_changes.load(Relaxed) || put.changes_timing()
    }

    /// Once no write with hash `hash` is under way, none of the names in `overlapped` with it
    /// is being put now; their puts may have landed in AstDB in another order than in memory,
    /// so AstDB is given memory's state (and record) again. Called under the stripe's lock,
    /// so no put of theirs can start meanwhile. Should AstDB refuse this put, it keeps one of
    /// the values it accepted.
    fn settle_overlapped(&self, host: &dyn Host, writing: &mut Writing, hash: u64) {
        if !writing.overlapped.is_empty() && !writing.in_flight.contains(&hash) {
            for other in extract(&mut writing.overlapped, hash) {
                self.settle(host, writing, other);
            }
        }
    }

    /// After a change is in AstDB and memory: stores its meta record (`record`, from
    /// [`Store::note_change`]) and, as the stripe's announcer (`announcer`, claimed under the
    /// stripe's lock after the put), announces it. The state replaced is freed here, outside
    /// every lock.
    fn finish(
        &self,
        host: &dyn Host,
        name: &[u8],
        name_c: &CStr,
        put: Put,
        record: Option<Option<Outgoing>>,
        announcer: Option<Announcer<'_>>,
    ) {
        if let Some(record) = record {
            if !host.persist_meta(name_c, record.as_ref().map(Outgoing::text)) {
                self.stats.count_astdb_failure();
            }
        }
        self.schedule_expiry(&put);
        let Put { new, replaced, .. } = put;
        drop(replaced);
        if let Some(announcer) = announcer {
            self.announce_put(host, announcer, name, new.as_deref());
        }
    }

    /// Writes memory's state and record of `name` to AstDB again (see [`Store::change`]).
    fn settle(&self, host: &dyn Host, writing: &Writing, name: Vec<u8>) {
        let now = self.get(&name);
        let record = timed::record_to_store(writing.meta.get(&name[..]), now.as_deref());
        let Ok(name_c) = CString::new(name) else {
            return;
        };
        let stored = match &now {
            Some(presence) => host.persist(&name_c, presence.stored_c()),
            None => host.remove(&name_c),
        };
        if !stored || !host.persist_meta(&name_c, record.as_ref().map(Record::text)) {
            self.stats.count_astdb_failure();
        }
    }

    /// Puts `presence` in memory (`None`: removes the name). With `deadline_ms` it is a timed
    /// state, reverting to the last untimed state found there (looked up under the map's
    /// lock, so overlapping writes of the name cannot make it revert to a state that was
    /// never the last untimed one). A state from another server comes with its writer's
    /// timing already set, and keeps it.
    fn put(&self, name: &[u8], presence: Option<Arc<Presence>>, deadline_ms: Option<u64>) -> Put {
        let mut states = self.write_states();
        let Some(mut presence) = presence else {
            return Put {
                timed_name: None,
                inserted: None,
                new: None,
                replaced: states.remove(name),
            };
        };
        if let (Some(deadline_ms), Some(unshared)) = (deadline_ms, Arc::get_mut(&mut presence)) {
            unshared.set_timing(Timing {
                deadline_ms,
                revert: super::expiry::revert_target(states.get(name)),
            });
        }
        let new = Arc::clone(&presence);
        let (replaced, inserted) = match states.get_mut(name) {
            Some(slot) => (Some(std::mem::replace(slot, presence)), None),
            None => {
                let key = Name::from(name);
                states.insert(Arc::clone(&key), presence);
                (None, Some(key))
            }
        };
        // A timed state's expiry (and a new name's record) shares the map's name rather than
        // copying it.
        let timed_name = new.timing().and_then(|_| {
            inserted
                .clone()
                .or_else(|| states.get_key_value(name).map(|(key, _)| Arc::clone(key)))
        });
        Put {
            timed_name,
            inserted,
            new: Some(new),
            replaced,
        }
    }

    /// Replaces the whole store with the stored `(name, value)` entries of AstDB's family.
    /// Returns the entries that do not parse (AstDB keeps them) and the names whose announced
    /// state changed, including names that are gone, for [`Store::announce`].
    ///
    /// A timed state's expiry comes from its `CustomPresenceMeta` record (so
    /// [`Store::replace_meta`] goes first); a state whose deadline is before `now_ms` is
    /// replaced by its revert state at once.
    pub fn replace_all<'a>(&self, entries: &[(&'a [u8], &'a [u8])], now_ms: u64) -> Replaced {
        let mut skipped = Vec::new();
        let mut fresh = States::with_capacity_and_hasher(entries.len(), SeededFnv::default());
        for &(name, value) in entries {
            match Presence::parse(value) {
                Ok(presence) => {
                    fresh.insert(name.into(), Arc::new(presence));
                }
                Err(error) => skipped.push(SkippedEntry {
                    name: name.to_vec(),
                    value: value.to_vec(),
                    error,
                }),
            }
        }
        let mut serial: Vec<_> = self
            .stripes
            .iter()
            .map(|stripe| lock_ignoring_poison(&stripe.writing))
            .collect();
        let (reverted, bad_timings) = timed::restore_timings(&mut serial, &mut fresh, now_ms);
        let mut states = self.write_states();
        let mut changed: Vec<Name> = states
            .keys()
            .filter(|name| !fresh.contains_key(*name))
            .cloned()
            .collect();
        changed.extend(fresh.iter().filter_map(|(name, presence)| {
            let same = states
                .get(name)
                .is_some_and(|before| before.announces_same(presence));
            (!same).then(|| Arc::clone(name))
        }));
        let before = std::mem::replace(&mut *states, fresh);
        let timed = timed::pending_of(&states);
        drop(states);
        // The states replaced are freed outside the map's lock.
        drop(before);
        self.expiries.replace(timed);
        drop(serial);
        Replaced {
            skipped,
            changed,
            reverted,
            bad_timings,
        }
    }

    /// Every state, sorted by name.
    pub fn snapshot(&self) -> Vec<(Name, Arc<Presence>)> {
        let mut all: Vec<_> = self
            .read()
            .iter()
            .map(|(name, presence)| (Arc::clone(name), Arc::clone(presence)))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Forgets everything and frees the memory (at unload: the store itself is static and
    /// goes with the module's image, so whatever it still points to would leak).
    pub fn clear(&self) {
        for stripe in &self.stripes {
            *lock_ignoring_poison(&stripe.writing) = Writing::default();
            *lock_ignoring_poison(&stripe.announcing) = Announcing::default();
        }
        self.expiries.clear();
        self.device_states.replace(&Default::default());
        self.set_suppress_identical(false);
        let before = std::mem::take(&mut *self.write_states());
        drop(before);
    }
}
