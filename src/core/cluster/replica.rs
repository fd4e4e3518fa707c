//! One server's side of the cluster: the version of every state, what to send, and what to do
//! with what arrives. Driven by the FFI's CPG dispatch thread and by the store's commit hook;
//! knows nothing of corosync itself.

use super::resync::{bucket_of, digest, Member, Round};
use super::version::{wall_clock_ms, wins, Clock, Version};
use super::wire::{self, Batcher, Entry, Message};
use crate::core::expiry::{remote_timing, Timing};
use crate::core::shown;
use crate::core::store::{Host, Name, RemoteValue, RemoteWrite, Store};
use crate::core::value::Presence;
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A version more than this far ahead of this server's clock is refused: a peer with a
/// broken clock (or a forged message) would otherwise win every conflict for as long as its
/// clock is ahead, and drag every server's clock along.
pub const MAX_AHEAD_MS: u64 = 24 * 3600 * 1000;

/// How long a round waits for every member's digest before deciding with those it has.
pub const DIGEST_WAIT: Duration = Duration::from_secs(3);

/// How long a delete's tombstone is kept by default: a server away for longer than this (a
/// partition, or switched off) could bring a deleted name back with its older write.
pub const DEFAULT_TOMBSTONE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where versions are kept across restarts (the module's own AstDB family).
pub trait VersionStore {
    fn save(&self, name: &[u8], record: &[u8]);
    /// Removes the record of `name` (a tombstone past its time).
    fn forget(&self, name: &[u8]);
}

/// The stored record of a version: `wall_ms.counter.node fingerprint`, the fingerprint that of
/// the value it versions (the empty value for a delete's tombstone), so a record left behind by a value changed otherwise (a crash
/// between the two puts, `database put`) is not taken for the new value's version.
pub fn record(version: Version, value: &[u8]) -> Vec<u8> {
    format!("{version} {:016x}", fingerprint(value)).into_bytes()
}

/// The version `record` gives `value`, if it is a record of this very value.
pub fn parse_record(record: &[u8], value: &[u8]) -> Option<Version> {
    let text = std::str::from_utf8(record).ok()?;
    let (version, print) = text.split_once(' ')?;
    (u64::from_str_radix(print, 16).ok()? == fingerprint(value))
        .then(|| version.parse().ok())
        .flatten()
}

fn fingerprint(value: &[u8]) -> u64 {
    value.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Counters shown by `presencestate cluster`.
#[derive(Default)]
pub struct Stats {
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub entries_sent: AtomicU64,
    pub entries_applied: AtomicU64,
    pub conflicts: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The last completed resynchronisation.
#[derive(Clone, Debug)]
pub struct ResyncReport {
    pub finished_unix_ms: u64,
    pub members: usize,
    pub names_applied: u64,
    pub names_sent: u64,
    pub took: Duration,
}

/// A local change not yet packed into a message.
struct Outgoing {
    name: Vec<u8>,
    /// Empty: a delete.
    value: Vec<u8>,
    /// For a timed state, the state it reverts to; empty otherwise.
    revert: Vec<u8>,
    version: Version,
}

#[derive(Default)]
struct Outbox {
    /// Local writes not yet packed into messages.
    live: Vec<Outgoing>,
    messages: VecDeque<Vec<u8>>,
}

struct Sync {
    me: Option<Member>,
    members: Vec<Member>,
    round: Option<(Round, Instant, u64, u64)>,
    last: Option<ResyncReport>,
}

pub struct Replica {
    clock: Clock,
    /// Names of states too large for any message: they stay on this server (the FFI warns).
    too_large: Mutex<Vec<Vec<u8>>>,
    /// The version of every state held (locked before `tombstones`).
    versions: Mutex<HashMap<Name, Version>>,
    /// Names deleted, with the version of the delete: kept `tombstone_ttl` after it, so an
    /// older write of the name (from a server that was away) cannot bring it back.
    tombstones: Mutex<HashMap<Name, Version>>,
    tombstone_ttl: Duration,
    outbox: Mutex<Outbox>,
    sync: Mutex<Sync>,
    joined: AtomicBool,
    pub stats: Stats,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A received entry's claim, decided under the name's write lock (see [`Store::apply_remote`]).
struct Incoming<'a> {
    replica: &'a Replica,
    name: &'a [u8],
    version: Version,
    value: &'a [u8],
}

impl RemoteWrite for Incoming<'_> {
    fn wins(&self, held: Option<&Presence>, commit: bool) -> bool {
        let mut versions = lock(&self.replica.versions);
        let mut tombstones = lock(&self.replica.tombstones);
        let held = match held {
            Some(p) => {
                let version = versions.get(self.name).copied().unwrap_or(Version::UNKNOWN);
                Some((version, p.stored()))
            }
            // A name deleted holds its tombstone's version, with the empty value.
            None => tombstones
                .get(self.name)
                .map(|&version| (version, &b""[..])),
        };
        let wins = wins(self.version, self.value, held);
        if wins && commit {
            record_version(
                &mut versions,
                &mut tombstones,
                self.name,
                self.version,
                self.value.is_empty(),
            );
        }
        wins
    }
    fn written_ms(&self) -> u64 {
        self.version.wall_ms
    }
}

/// Makes `version` the version of `name`: of its state, or of its delete (`deleted`).
fn record_version(
    versions: &mut HashMap<Name, Version>,
    tombstones: &mut HashMap<Name, Version>,
    name: &[u8],
    version: Version,
    deleted: bool,
) {
    if deleted {
        versions.remove(name);
        tombstones.insert(name.into(), version);
    } else {
        tombstones.remove(name);
        versions.insert(name.into(), version);
    }
}

impl Replica {
    pub fn new(node: u32) -> Replica {
        Replica {
            clock: Clock::new(node),
            too_large: Mutex::default(),
            versions: Mutex::default(),
            tombstones: Mutex::default(),
            tombstone_ttl: DEFAULT_TOMBSTONE_TTL,
            outbox: Mutex::default(),
            sync: Mutex::new(Sync {
                me: None,
                members: Vec::new(),
                round: None,
                last: None,
            }),
            joined: AtomicBool::new(false),
            stats: Stats::default(),
        }
    }

    /// Keeps tombstones `ttl` (`[cluster] tombstone_ttl`) instead of the default.
    pub fn keeping_tombstones(mut self, ttl: Duration) -> Replica {
        self.tombstone_ttl = ttl;
        self
    }

    /// Takes the stored versions (`(name, record)`): of the states `store` holds, and the
    /// tombstones of names it does not. A record that does not match the stored value is
    /// ignored (that state's version is unknown). Returns (versions, tombstones) taken.
    pub fn load_versions(&self, store: &Store, records: &[(&[u8], &[u8])]) -> (usize, usize) {
        let mut versions = lock(&self.versions);
        let mut tombstones = lock(&self.tombstones);
        for &(name, text) in records {
            match store.get(name) {
                Some(held) => {
                    if let Some(version) = parse_record(text, held.stored()) {
                        versions.insert(name.into(), version);
                    }
                }
                None => {
                    if let Some(version) = parse_record(text, b"") {
                        tombstones.insert(name.into(), version);
                    }
                }
            }
        }
        (versions.len(), tombstones.len())
    }

    /// The version of a local change about to enter memory (the store asks it under the
    /// name's write lock, so versions follow memory's order): the timed state's deadline is
    /// counted from it here as on every other server.
    pub fn local_stamp(&self) -> Version {
        self.clock.tick(wall_clock_ms())
    }

    /// The store's commit hook: records a local write (`Some(value)`; `revert`, for a timed
    /// state, the state it reverts to) or delete (`None`: its tombstone) at the `version`
    /// [`Replica::local_stamp`] gave it, and queues it for the
    /// others.
    pub fn local_commit(
        &self,
        name: &[u8],
        value: Option<&[u8]>,
        revert: Option<&[u8]>,
        version: Version,
    ) {
        record_version(
            &mut lock(&self.versions),
            &mut lock(&self.tombstones),
            name,
            version,
            value.is_none(),
        );
        // While not in the group, the next resynchronisation carries it instead.
        if self.joined.load(Ordering::Relaxed) {
            lock(&self.outbox).live.push(Outgoing {
                name: name.to_vec(),
                value: value.unwrap_or_default().to_vec(),
                revert: revert.unwrap_or_default().to_vec(),
                version,
            });
        }
    }

    /// Forgets the tombstones older than `tombstone_ttl` (by their version's clock), and their
    /// stored records. Returns how many.
    pub fn purge_tombstones(&self, now_ms: u64, saved: &dyn VersionStore) -> usize {
        let ttl_ms = u64::try_from(self.tombstone_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut gone = Vec::new();
        lock(&self.tombstones).retain(|name, version| {
            let keep = version.wall_ms.saturating_add(ttl_ms) > now_ms;
            if !keep {
                gone.push(Arc::clone(name));
            }
            keep
        });
        for name in &gone {
            saved.forget(name);
        }
        gone.len()
    }

    /// How many tombstones are kept.
    pub fn tombstones(&self) -> usize {
        lock(&self.tombstones).len()
    }

    /// The version this server holds for `name`: of its state or of its delete.
    fn version_of(&self, name: &[u8]) -> Option<Version> {
        let versions = lock(&self.versions);
        let version = versions.get(name).copied();
        version.or_else(|| lock(&self.tombstones).get(name).copied())
    }

    /// The next message to multicast, if any (local writes packed first); the versions of the
    /// local writes packed are saved through `saved`.
    pub fn next_message(&self, saved: &dyn VersionStore) -> Option<Vec<u8>> {
        let live = std::mem::take(&mut lock(&self.outbox).live);
        if !live.is_empty() {
            let mut batcher = Batcher::default();
            let mut count = 0;
            for change in &live {
                saved.save(&change.name, &record(change.version, &change.value));
                let entry = Entry {
                    name: &change.name,
                    value: &change.value,
                    revert: &change.revert,
                    version: change.version,
                };
                if batcher.push(&entry) {
                    count += 1;
                } else {
                    lock(&self.too_large).push(change.name.clone());
                }
            }
            add(&self.stats.entries_sent, count);
            lock(&self.outbox).messages.extend(batcher.into_messages());
        }
        lock(&self.outbox).messages.pop_front()
    }

    /// The names of states found too large to send since the last call.
    pub fn take_too_large(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut lock(&self.too_large))
    }

    /// A message corosync could not take yet (`CS_ERR_TRY_AGAIN`): sent first next time.
    pub fn retry_later(&self, message: Vec<u8>) {
        lock(&self.outbox).messages.push_front(message);
    }

    pub fn sent(&self) {
        add(&self.stats.messages_sent, 1);
    }

    pub fn has_outgoing(&self) -> bool {
        let outbox = lock(&self.outbox);
        !outbox.live.is_empty() || !outbox.messages.is_empty()
    }

    /// Joined the group as `me` (node id and pid); versions of new writes carry the node id.
    pub fn joined(&self, me: Member) {
        self.clock.set_node(me.node);
        lock(&self.sync).me = Some(me);
        self.joined.store(true, Ordering::Relaxed);
    }

    /// Out of the group (corosync gone): nothing queued is sent; the next join resynchronises.
    pub fn left_group(&self) {
        self.joined.store(false, Ordering::Relaxed);
        *lock(&self.outbox) = Outbox::default();
        let mut sync = lock(&self.sync);
        sync.members.clear();
        sync.round = None;
    }

    pub fn is_joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    pub fn node(&self) -> u32 {
        self.clock.node()
    }

    pub fn members(&self) -> Vec<Member> {
        lock(&self.sync).members.clone()
    }

    pub fn last_resync(&self) -> Option<ResyncReport> {
        lock(&self.sync).last.clone()
    }

    /// A membership change. Someone joined: a new round starts with this server's digest.
    /// Someone left: the round under way stops waiting for them.
    pub fn membership(&self, store: &Store, members: &[Member], left: &[Member], joined: bool) {
        let mut sync = lock(&self.sync);
        sync.members = members.to_vec();
        sync.members.sort_unstable();
        let Some(me) = sync.me else { return };
        if joined {
            let round = Round::new(me, members);
            let held = self.held(store);
            let digest = digest(held.iter().map(|(n, v, _)| (&n[..], *v)));
            lock(&self.outbox)
                .messages
                .push_back(wire::encode_digest(round.id, &digest));
            let applied = self.stats.entries_applied.load(Ordering::Relaxed);
            let sent = self.stats.entries_sent.load(Ordering::Relaxed);
            sync.round = Some((round, Instant::now(), applied, sent));
        } else if let Some((round, ..)) = sync.round.as_mut() {
            if let Some(buckets) = round.on_left(left) {
                let id = round.id;
                drop(sync);
                self.send_buckets(store, id, &buckets);
            } else if round.is_complete() {
                self.finish_round(&mut sync);
            }
        }
    }

    /// Records the report of the round under way, which is over.
    fn finish_round(&self, sync: &mut Sync) {
        if let Some((_, started, applied, sent)) = sync.round.take() {
            sync.last = Some(ResyncReport {
                finished_unix_ms: wall_clock_ms(),
                members: sync.members.len(),
                names_applied: self.stats.entries_applied.load(Ordering::Relaxed) - applied,
                names_sent: self.stats.entries_sent.load(Ordering::Relaxed) - sent,
                took: started.elapsed(),
            });
        }
    }

    /// Every state held with its version, and every tombstone (no state) of a name not held,
    /// for digests and resynchronisation.
    fn held(&self, store: &Store) -> Vec<(Name, Version, Option<Arc<Presence>>)> {
        let snapshot = store.snapshot();
        let versions = lock(&self.versions);
        let tombstones = lock(&self.tombstones);
        let mut held: Vec<_> = tombstones
            .iter()
            // (The snapshot is sorted by name.)
            .filter(|(name, _)| snapshot.binary_search_by(|(n, _)| n.cmp(name)).is_err())
            .map(|(name, &version)| (Arc::clone(name), version, None))
            .collect();
        held.extend(snapshot.into_iter().map(|(name, presence)| {
            let version = versions.get(&name).copied().unwrap_or(Version::UNKNOWN);
            (name, version, Some(presence))
        }));
        held
    }

    fn send_buckets(&self, store: &Store, round: u64, buckets: &[usize]) {
        let mut wanted = vec![false; super::resync::BUCKETS];
        for &b in buckets {
            wanted[b] = true;
        }
        let mut batcher = Batcher::default();
        let mut count = 0;
        if !buckets.is_empty() {
            for (name, version, presence) in self.held(store) {
                if wanted[bucket_of(&name)] {
                    let entry = Entry {
                        name: &name,
                        value: presence.as_ref().map_or(&b""[..], |p| p.stored()),
                        // A timed state goes with the state it reverts to here, so that the
                        // others revert it alike, not to whatever they held before.
                        revert: presence
                            .as_ref()
                            .and_then(|p| p.timing())
                            .map_or(&b""[..], Timing::revert_text),
                        version,
                    };
                    if batcher.push(&entry) {
                        count += 1;
                    } else {
                        lock(&self.too_large).push(name.to_vec());
                    }
                }
            }
        }
        add(&self.stats.entries_sent, count);
        let mut outbox = lock(&self.outbox);
        outbox.messages.extend(batcher.into_messages());
        outbox.messages.push_back(wire::encode_done(round));
    }

    /// Called now and then by the dispatch thread: a round whose digests did not all come
    /// within [`DIGEST_WAIT`] is decided with those that did.
    pub fn tick(&self, store: &Store) {
        let mut sync = lock(&self.sync);
        let Some((round, started, ..)) = sync.round.as_mut() else {
            return;
        };
        if round.is_evaluated() || started.elapsed() < DIGEST_WAIT {
            return;
        }
        if let Some(buckets) = round.on_timeout() {
            let id = round.id;
            drop(sync);
            self.send_buckets(store, id, &buckets);
        }
    }

    /// A message delivered by CPG from `from`. `Err` holds why it was dropped (nothing
    /// changed); the caller logs it, rate-limited.
    pub fn receive(
        &self,
        from: Member,
        bytes: &[u8],
        store: &Store,
        host: &dyn Host,
        saved: &dyn VersionStore,
    ) -> Result<(), String> {
        add(&self.stats.messages_received, 1);
        let result = self.handle(from, bytes, store, host, saved);
        if result.is_err() {
            add(&self.stats.messages_dropped, 1);
        }
        result
    }

    fn handle(
        &self,
        from: Member,
        bytes: &[u8],
        store: &Store,
        host: &dyn Host,
        saved: &dyn VersionStore,
    ) -> Result<(), String> {
        let message = wire::decode(bytes).map_err(|e| e.to_string())?;
        let me = lock(&self.sync).me;
        match message {
            Message::Entries(_) if Some(from) == me => Ok(()),
            Message::Entries(entries) => self.apply(&entries, store, host, saved),
            Message::Digest { round, digest } => {
                let mut sync = lock(&self.sync);
                let Some((current, ..)) = sync.round.as_mut().filter(|(r, ..)| r.id == round)
                else {
                    return Ok(()); // a digest of a round this server is no longer in
                };
                if let Some(buckets) = current.on_digest(from, digest) {
                    drop(sync);
                    self.send_buckets(store, round, &buckets);
                }
                Ok(())
            }
            Message::Done { round } => {
                let mut sync = lock(&self.sync);
                let Some((current, ..)) = sync.round.as_mut().filter(|(r, ..)| r.id == round)
                else {
                    return Ok(());
                };
                if current.on_done(from) {
                    self.finish_round(&mut sync);
                }
                Ok(())
            }
        }
    }

    /// Applies each entry that is newer than ours. The whole message is checked first: one
    /// bad entry drops it all.
    fn apply(
        &self,
        entries: &[Entry<'_>],
        store: &Store,
        host: &dyn Host,
        saved: &dyn VersionStore,
    ) -> Result<(), String> {
        let mut checked = Vec::with_capacity(entries.len());
        let latest = wall_clock_ms().saturating_add(MAX_AHEAD_MS);
        for entry in entries {
            if entry.version.wall_ms > latest {
                return Err(format!(
                    "entry {}: its version {} is more than a day ahead of this server's clock",
                    shown(entry.name),
                    entry.version
                ));
            }
            // An empty value is a delete's tombstone.
            if !entry.value.is_empty() {
                let bad = |e: &dyn std::fmt::Display| {
                    format!("entry {}={}: {e}", shown(entry.name), shown(entry.value))
                };
                let presence = Presence::parse(entry.value).map_err(|e| bad(&e))?;
                remote_timing(&presence, entry.revert, entry.version.wall_ms)
                    .map_err(|e| bad(&e))?;
            }
            let name = CString::new(entry.name).map_err(|_| "a NUL in a name".to_string())?;
            let value = CString::new(entry.value).map_err(|_| "a NUL in a value".to_string())?;
            checked.push((entry, name, value));
        }
        for (entry, name, value) in checked {
            self.clock.observe(entry.version);
            let incoming = Incoming {
                replica: self,
                name: entry.name,
                version: entry.version,
                value: entry.value,
            };
            let change = (!entry.value.is_empty()).then_some(RemoteValue {
                value: &value,
                revert: entry.revert,
            });
            match store.apply_remote(host, &name, change, &incoming) {
                Ok(true) => {
                    add(&self.stats.entries_applied, 1);
                    saved.save(entry.name, &record(entry.version, entry.value));
                }
                Ok(false) => {
                    if self.version_of(entry.name) != Some(entry.version) {
                        add(&self.stats.conflicts, 1);
                    }
                }
                Err(error) => return Err(format!("entry {}: {error}", shown(entry.name))),
            }
        }
        Ok(())
    }
}
