//! The presence store: every custom state in memory, kept equal to AstDB and announced on
//! every change.

use super::value::{Presence, ValueError};
use super::{custom_presence_name, shown, PROVIDER_PREFIX};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

mod remote;
pub use remote::RemoteWrite;

/// What the store needs from Asterisk: AstDB for persistence, Stasis for announcements.
pub trait Host {
    /// Stores `value` under family `CustomPresence`, key `name`. False when AstDB refused it.
    fn persist(&self, name: &CStr, value: &CStr) -> bool;
    /// Announces `CustomPresence:<name>` to presence subscribers; `None` when it is gone.
    fn announce(&self, name: &[u8], presence: Option<&Presence>);
    /// A local write of `value` to `name` is in memory (called under the name's write lock,
    /// in the order memory took the writes, and only while [`Store::replicate`] is on): the
    /// cluster versions and sends it from here.
    fn committed(&self, _name: &[u8], _value: &CStr) {}
}

/// Why a write was refused. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteError {
    NotCustomPresence(Vec<u8>),
    EmptyName,
    CommaInName(Vec<u8>),
    Value(ValueError),
    PersistFailed(Vec<u8>),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotCustomPresence(provider) => write!(
                f,
                "only {PROVIDER_PREFIX} presence can be set, not '{}'",
                shown(provider)
            ),
            WriteError::EmptyName => write!(f, "the name after {PROVIDER_PREFIX} is empty"),
            WriteError::CommaInName(name) => write!(
                f,
                "the name '{}' holds a comma, so it could never be read back",
                shown(name)
            ),
            WriteError::Value(error) => write!(f, "{error}"),
            WriteError::PersistFailed(name) => write!(
                f,
                "AstDB refused to store CustomPresence/{}; the state is unchanged",
                shown(name)
            ),
        }
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

/// A name as the store keeps it: shared, so listing and announcing never copy it.
pub type Name = Arc<[u8]>;

/// What [`Store::replace_all`] found.
#[derive(Debug, Default)]
pub struct Replaced {
    pub skipped: Vec<SkippedEntry>,
    pub changed: Vec<Name>,
}

/// How many stripes writers are spread over (by name), so writes to different names overlap.
const STRIPES: usize = 32;

type States = HashMap<Name, Arc<Presence>, SeededFnv>;

/// The map's hasher: FNV-1a from a per-process random seed, with a final mix. Names are short,
/// so a lookup costs a fraction of std's SipHash (a write makes two or three); they are chosen
/// by the PBX's own dialplan, AMI and CLI users, and the seed keeps colliding names from being
/// worked out in advance.
#[derive(Clone)]
struct SeededFnv(u64);

impl Default for SeededFnv {
    fn default() -> SeededFnv {
        SeededFnv(std::collections::hash_map::RandomState::new().hash_one(0_u8))
    }
}

impl BuildHasher for SeededFnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(self.0)
    }
}

struct FnvHasher(u64);

impl Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a_from(self.0, bytes);
    }
    fn finish(&self) -> u64 {
        // murmur3's fmix64: FNV-1a's low bits depend only on the inputs' low bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

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

/// The announcement queue of one stripe.
#[derive(Default)]
struct Announcing {
    /// A thread is announcing this stripe's names; it takes `queued` before it stops.
    busy: bool,
    queued: Vec<Vec<u8>>,
}

impl Default for Store {
    fn default() -> Store {
        Store {
            states: RwLock::default(),
            stripes: std::array::from_fn(|_| Stripe::default()),
            replicating: AtomicBool::new(false),
        }
    }
}

fn fnv1a_from(start: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(start, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// FNV-1a: a cheap, fixed hash of a name, for its stripe and to spot overlapping writes.
fn fnv1a(name: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, name)
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

/// Frees a stripe for the next announcer if announcing panicked, so it is never left busy.
struct BusyUntilDone<'a>(&'a Stripe);

impl Drop for BusyUntilDone<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock_ignoring_poison(&self.0.announcing).busy = false;
        }
    }
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
        self.replicating.store(on, Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `value` to `CustomPresence:<name>`: AstDB first, then memory, then the
    /// announcement. On any error nothing is changed.
    pub fn write(&self, host: &dyn Host, provider: &CStr, value: &CStr) -> Result<(), WriteError> {
        let name = name_for_write(provider.to_bytes())?;
        let presence = Arc::new(Presence::parse(value.to_bytes()).map_err(WriteError::Value)?);
        let name_c = c_suffix(provider, provider.to_bytes().len() - name.len());
        let hash = fnv1a(name);
        let stripe = &self.stripes[stripe_of(hash)];
        {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            let overlapping = writing.in_flight.contains(&hash);
            if overlapping && !writing.overlapped.iter().any(|(_, n)| n == name) {
                writing.overlapped.push((hash, name.to_vec()));
            }
            writing.in_flight.push(hash);
        }
        let persisted = host.persist(name_c, value);
        let replaced = {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            if let Some(mine) = writing.in_flight.iter().position(|&h| h == hash) {
                writing.in_flight.swap_remove(mine);
            }
            let replaced = persisted.then(|| self.put(name, presence));
            if persisted && self.replicating.load(Ordering::Relaxed) {
                host.committed(name, value);
            }
            if !writing.in_flight.contains(&hash) {
                // No write with this hash is under way, so none of the names in `overlapped`
                // with it is being put now; their puts may have landed in AstDB in another
                // order than in memory, so AstDB is given memory's state again. Still under
                // the stripe's lock, so no put of theirs can start meanwhile. Should AstDB
                // refuse this put, it keeps one of the values it accepted from the writes.
                let settled: Vec<Vec<u8>> = extract(&mut writing.overlapped, hash);
                for other in settled {
                    if let (Some(now), Ok(other_c)) = (self.get(&other), CString::new(other)) {
                        host.persist(&other_c, now.stored_c());
                    }
                }
            }
            replaced
        };
        // The state replaced is freed here, outside every lock.
        drop(replaced);
        if !persisted {
            return Err(WriteError::PersistFailed(name.to_vec()));
        }
        self.announce_current(host, stripe, name);
        Ok(())
    }

    /// Puts `presence` in memory; returns the state it replaced.
    fn put(&self, name: &[u8], presence: Arc<Presence>) -> Option<Arc<Presence>> {
        let mut states = self.write_states();
        match states.get_mut(name) {
            Some(slot) => Some(std::mem::replace(slot, presence)),
            None => states.insert(name.into(), presence),
        }
    }

    /// Announces what memory holds for `name` (`None` once it is gone), or queues it for the
    /// thread already announcing on its stripe (`stripe`, the name's).
    fn announce_current(&self, host: &dyn Host, stripe: &Stripe, name: &[u8]) {
        {
            let mut announcing = lock_ignoring_poison(&stripe.announcing);
            if announcing.busy {
                announcing.queued.push(name.to_vec());
                return;
            }
            announcing.busy = true;
        }
        let _unbusy_on_panic = BusyUntilDone(stripe);
        host.announce(name, self.get(name).as_deref());
        let mut batch = Vec::new();
        loop {
            {
                let mut announcing = lock_ignoring_poison(&stripe.announcing);
                if announcing.queued.is_empty() {
                    announcing.busy = false;
                    return;
                }
                std::mem::swap(&mut announcing.queued, &mut batch);
            }
            batch.sort_unstable();
            batch.dedup();
            for name in batch.drain(..) {
                host.announce(&name, self.get(&name).as_deref());
            }
        }
    }

    /// Replaces the whole store with the stored `(name, value)` entries of AstDB's family.
    /// Returns the entries that do not parse (AstDB keeps them) and the names whose announced
    /// state changed, including names that are gone, for [`Store::announce`].
    pub fn replace_all<'a>(&self, entries: &[(&'a [u8], &'a [u8])]) -> Replaced {
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
        let _serial: Vec<_> = self
            .stripes
            .iter()
            .map(|stripe| lock_ignoring_poison(&stripe.writing))
            .collect();
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
        drop(states);
        // The states replaced are freed outside the map's lock.
        drop(before);
        Replaced { skipped, changed }
    }

    /// Announces the current state of each name (`None` for names no longer stored), or leaves
    /// it to the writer already announcing on its stripe.
    pub fn announce(&self, host: &dyn Host, names: &[Name]) {
        for name in names {
            self.announce_current(host, &self.stripes[stripe_of(fnv1a(name))], name);
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
        let before = std::mem::take(&mut *self.write_states());
        drop(before);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::state::PresenceState;

    type Announced = Vec<(Vec<u8>, Option<(PresenceState, Vec<u8>, Vec<u8>)>)>;

    /// A host that records what the store asked of it; AstDB refuses writes when `fail` is set.
    #[derive(Default)]
    pub(crate) struct RecordingHost {
        pub db: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
        pub announced: Mutex<Announced>,
        pub fail: bool,
    }

    impl Host for RecordingHost {
        fn persist(&self, name: &CStr, value: &CStr) -> bool {
            if !self.fail {
                self.db
                    .lock()
                    .unwrap()
                    .push((name.to_bytes().to_vec(), value.to_bytes().to_vec()));
            }
            !self.fail
        }
        fn announce(&self, name: &[u8], presence: Option<&Presence>) {
            let seen = presence.map(|p| (p.state(), p.subtype().to_vec(), p.message().to_vec()));
            self.announced.lock().unwrap().push((name.to_vec(), seen));
        }
    }

    #[test]
    fn a_write_persists_stores_and_announces_decoded() {
        let (host, store) = (RecordingHost::default(), Store::default());
        store
            .write(&host, c"CustomPresence:lamp3", c"xa,T24gdmFjYXRpb24=,,e")
            .unwrap();
        assert_eq!(
            *host.db.lock().unwrap(),
            vec![(b"lamp3".to_vec(), b"xa,T24gdmFjYXRpb24=,,e".to_vec())]
        );
        let announced = host.announced.lock().unwrap();
        assert_eq!(
            announced[0],
            (
                b"lamp3".to_vec(),
                Some((PresenceState::Xa, b"On vacation".to_vec(), vec![]))
            )
        );
        assert_eq!(
            store.get(b"lamp3").unwrap().stored(),
            b"xa,T24gdmFjYXRpb24=,,e"
        );
    }

    /// Stock section 7, defect 7: the prefix case leaked into the published name.
    #[test]
    fn any_prefix_case_writes_the_same_name() {
        let (host, store) = (RecordingHost::default(), Store::default());
        store
            .write(&host, c"custompresence:Alice", c"away")
            .unwrap();
        store.write(&host, c"CUSTOMPRESENCE:Alice", c"dnd").unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(store.get(b"Alice").unwrap().state(), PresenceState::Dnd);
        assert!(host
            .announced
            .lock()
            .unwrap()
            .iter()
            .all(|(name, _)| name == b"Alice"));
    }

    /// Stock section 7, defect 8: AstDB write failures were ignored.
    #[test]
    fn a_refused_persist_changes_nothing() {
        let store = Store::default();
        store
            .write(&RecordingHost::default(), c"CustomPresence:a", c"away")
            .unwrap();
        let failing = RecordingHost {
            fail: true,
            ..Default::default()
        };
        let err = store
            .write(&failing, c"CustomPresence:a", c"dnd")
            .unwrap_err();
        assert_eq!(err, WriteError::PersistFailed(b"a".to_vec()));
        assert_eq!(store.get(b"a").unwrap().state(), PresenceState::Away);
        assert!(failing.announced.lock().unwrap().is_empty());
    }

    #[test]
    fn bad_writes_change_nothing() {
        let (host, store) = (RecordingHost::default(), Store::default());
        let bad: [(&CStr, &CStr); 6] = [
            (c"PJSIP/100", c"away"),
            (c"CustomPresence:", c"away"),
            (c"CustomPresence:a,b", c"away"),
            (c"CustomPresence:a", c"bored"),
            (c"CustomPresence:a", c"away,,Lunch, see you"),
            (c"CustomPresence:a", c"away,%%%,,e"),
        ];
        for (provider, value) in bad {
            assert!(
                store.write(&host, provider, value).is_err(),
                "{provider:?} {value:?}"
            );
        }
        assert!(store.is_empty());
        assert!(host.db.lock().unwrap().is_empty() && host.announced.lock().unwrap().is_empty());
    }

    /// Stock section 7, defects 5 and 6: names with `/` and long names were cut at load.
    #[test]
    fn load_keeps_full_names_and_skips_bad_entries() {
        let (host, store) = (RecordingHost::default(), Store::default());
        let long_name = vec![b'n'; 300];
        let replaced = store.replace_all(&[
            (b"team/alice", b"away,,In a meeting"),
            (&long_name, b"dnd"),
            (b"broken", b"bored,x"),
        ]);
        assert_eq!(replaced.skipped.len(), 1);
        assert_eq!(replaced.skipped[0].name, b"broken");
        store.announce(&host, &replaced.changed);
        assert!(store.get(b"team/alice").is_some() && store.get(&long_name).is_some());
        let mut announced: Vec<_> = host
            .announced
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        announced.sort();
        assert_eq!(announced, vec![long_name, b"team/alice".to_vec()]);
    }

    #[test]
    fn reload_announces_only_what_changed() {
        let (host, store) = (RecordingHost::default(), Store::default());
        store.replace_all(&[(b"a", b"away"), (b"b", b"dnd")]);
        let replaced = store.replace_all(&[(b"a", b"away,,,"), (b"c", b"chat")]);
        store.announce(&host, &replaced.changed);
        let mut announced: Vec<_> = host
            .announced
            .lock()
            .unwrap()
            .iter()
            .map(|(n, p)| (n.clone(), p.is_some()))
            .collect();
        announced.sort();
        assert_eq!(
            announced,
            vec![(b"b".to_vec(), false), (b"c".to_vec(), true)]
        );
    }

    type Writes = Mutex<Vec<(&'static CStr, &'static CStr)>>;

    /// Records like [`RecordingHost`], and makes other writes while AstDB takes its first put
    /// (`during_persist`) or while the first announcement is made (`during_announce`), as
    /// other channels writing at that moment do.
    struct Interleaving<'a> {
        recorded: RecordingHost,
        store: &'a Store,
        during_persist: Writes,
        during_announce: Writes,
    }

    impl Interleaving<'_> {
        fn run(&self, writes: &Writes) {
            let writes = std::mem::take(&mut *writes.lock().unwrap());
            for (provider, value) in writes {
                self.store.write(self, provider, value).unwrap();
            }
        }
    }

    impl Host for Interleaving<'_> {
        fn persist(&self, name: &CStr, value: &CStr) -> bool {
            let accepted = self.recorded.persist(name, value);
            self.run(&self.during_persist);
            accepted
        }
        fn announce(&self, name: &[u8], presence: Option<&Presence>) {
            self.recorded.announce(name, presence);
            self.run(&self.during_announce);
        }
    }

    #[test]
    fn writes_during_an_announcement_are_queued_coalesced_and_announced_newest() {
        let store = Store::default();
        let host = Interleaving {
            recorded: RecordingHost::default(),
            store: &store,
            during_persist: Writes::default(),
            during_announce: Mutex::new(vec![
                (c"CustomPresence:a", c"dnd,,second"),
                (c"CustomPresence:a", c"xa,,third"),
            ]),
        };
        store
            .write(&host, c"CustomPresence:a", c"away,,first")
            .unwrap();
        let announced = host.recorded.announced.lock().unwrap();
        let messages: Vec<&[u8]> = announced
            .iter()
            .map(|(_, seen)| &seen.as_ref().unwrap().2[..])
            .collect();
        // "second" was overtaken by "third" before its turn came: only the newest is announced.
        assert_eq!(messages, [&b"first"[..], b"third"]);
        assert_eq!(host.recorded.db.lock().unwrap().len(), 3);
        assert_eq!(store.get(b"a").unwrap().stored(), b"xa,,third");
    }

    #[test]
    fn overlapping_writes_of_a_name_leave_astdb_equal_to_memory() {
        let store = Store::default();
        let host = Interleaving {
            recorded: RecordingHost::default(),
            store: &store,
            during_persist: Mutex::new(vec![(c"CustomPresence:a", c"dnd,,second")]),
            during_announce: Writes::default(),
        };
        // AstDB takes "first" then "second"; "second" finishes first, so memory ends on
        // "first", the write that finished last, and AstDB must be set to it again.
        store
            .write(&host, c"CustomPresence:a", c"away,,first")
            .unwrap();
        let in_memory = store.get(b"a").unwrap();
        assert_eq!(in_memory.stored(), b"away,,first");
        let db = host.recorded.db.lock().unwrap();
        assert_eq!(db.last().unwrap().1, in_memory.stored(), "{db:?}");
        let announced = host.recorded.announced.lock().unwrap();
        assert_eq!(announced.last().unwrap().1.as_ref().unwrap().2, b"first");
    }

    #[test]
    fn concurrent_writes_end_on_the_last_write_everywhere() {
        let (host, store) = (RecordingHost::default(), Store::default());
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (host, store) = (&host, &store);
                scope.spawn(move || {
                    for i in 0..500 {
                        let provider = CString::new(format!("CustomPresence:n{}", i % 10));
                        let value = CString::new(format!("away,t{t},m{i}"));
                        store
                            .write(host, &provider.unwrap(), &value.unwrap())
                            .unwrap();
                    }
                });
            }
        });
        for n in 0..10 {
            let name = format!("n{n}").into_bytes();
            let last_db = host
                .db
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(k, _)| *k == name)
                .unwrap()
                .1
                .clone();
            let announced = host.announced.lock().unwrap();
            let last_announced = announced
                .iter()
                .rev()
                .find(|(k, _)| *k == name)
                .unwrap()
                .1
                .clone()
                .unwrap();
            let stored = store.get(&name).unwrap();
            assert_eq!(stored.stored(), &last_db[..]);
            assert_eq!(
                (stored.subtype().to_vec(), stored.message().to_vec()),
                (last_announced.1, last_announced.2)
            );
        }
    }
}
