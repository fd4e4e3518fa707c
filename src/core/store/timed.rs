//! The store's timed states, device states and identical-write suppression.

use super::{
    fnv1a, lock_ignoring_poison,
    records::{unix_now, Outgoing},
    stripe_of, Host, Name, Record, States, Store, Writing,
};
use crate::core::device_state::{DeviceState, DeviceStateMap, Remapped};
use crate::core::expiry::{
    record_timing, stored_timing, Due, ExpiryQueue, Timing, TimingError, EXPIRES_MS,
};
use crate::core::meta::{rewrite_for_change, Meta, Source};
use crate::core::state::PresenceState;
use crate::core::value::Presence;
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

/// After an expiry that AstDB refused, the next try.
const RETRY_FAILED_MS: u64 = 10_000;
/// After an expiry that met a write of its name under way, the next look.
const RETRY_BUSY_MS: u64 = 1_000;

/// A change just put in memory.
pub(super) struct Put {
    /// The map's name, for the expiry queue, when the new state is timed.
    pub(super) timed_name: Option<Name>,
    /// The map's name, when the change added it.
    pub(super) inserted: Option<Name>,
    /// `None`: the name was deleted.
    pub(super) new: Option<Arc<Presence>>,
    pub(super) replaced: Option<Arc<Presence>>,
}

impl Put {
    /// Whether the change makes or ends a timed state, so its record must be stored even when
    /// changes are not recorded (`record_changes = no`).
    pub(super) fn changes_timing(&self) -> bool {
        let timed = |p: &Option<Arc<Presence>>| p.as_ref().is_some_and(|p| p.timing().is_some());
        timed(&self.new) || timed(&self.replaced)
    }
}

/// The `CustomPresenceMeta` record to store for a name: the one kept in memory, plus the
/// expiry of `presence` if it is timed (shared as it is otherwise). `None`: no record (delete
/// it).
pub(super) fn record_to_store(
    in_memory: Option<&Record>,
    presence: Option<&Presence>,
) -> Option<Record> {
    let Some(timing) = presence.and_then(|p| p.timing()) else {
        return in_memory.cloned();
    };
    let mut meta = in_memory
        .and_then(|record| Meta::parse(record.to_bytes()).ok())
        .unwrap_or_default();
    if let Some(presence) = presence {
        record_timing(&mut meta, presence.stored(), Some(timing));
    }
    // Escaping leaves no NUL in a record.
    CString::new(meta.encode()).ok().map(Record::from)
}

/// Restores the expiries recorded for freshly loaded states (`fresh`), taking them out of the
/// records kept in memory (which never hold them: see `Store::note_change`). A state whose
/// deadline is before `now_ms` is replaced by the state it reverts to. Returns the names so
/// reverted and the records that could not be used. Runs with every stripe locked
/// (`writing`). States reverting to the same text share it.
pub(super) fn restore_timings(
    writing: &mut [MutexGuard<'_, Writing>],
    fresh: &mut States,
    now_ms: u64,
) -> (Vec<Name>, Vec<(Name, TimingError)>) {
    let mut shared = HashMap::new();
    let (mut reverted, mut bad) = (Vec::new(), Vec::new());
    if writing.iter().all(|stripe| stripe.meta.is_empty()) {
        return (reverted, bad); // (no record, so no expiry: no need to look each state up)
    }
    for (name, presence) in fresh.iter_mut() {
        let Some(record) = writing[stripe_of(fnv1a(name))].meta.get_mut(&name[..]) else {
            continue;
        };
        let key = EXPIRES_MS.as_bytes();
        if !record
            .to_bytes()
            .windows(key.len())
            .any(|window| window == key)
        {
            continue;
        }
        let Ok(mut meta) = Meta::parse(record.to_bytes()) else {
            continue;
        };
        let recorded = stored_timing(&meta, presence.stored());
        record_timing(&mut meta, b"", None);
        // Escaping leaves no NUL in a record.
        if let Ok(stripped) = CString::new(meta.encode()) {
            *record = stripped.into();
        }
        match recorded.map(|stored| stored?.resolve(&mut shared)) {
            None => {}
            Some(Err(error)) => bad.push((Arc::clone(name), error)),
            Some(Ok(timing)) if timing.deadline_ms <= now_ms => {
                *presence = timing
                    .revert
                    .unwrap_or_else(|| Arc::new(Presence::not_set()));
                reverted.push(Arc::clone(name));
            }
            // Fresh states are not shared yet, so this sets the timing in place.
            Some(Ok(timing)) => Arc::make_mut(presence).set_timing(timing),
        }
    }
    for stripe in writing.iter_mut() {
        stripe
            .meta
            .retain(|_, record| !record.to_bytes().is_empty());
    }
    (reverted, bad)
}

/// Every timed state of `states` and its deadline.
pub(super) fn pending_of(states: &States) -> Vec<(Name, u64)> {
    states
        .iter()
        .filter_map(|(name, p)| p.timing().map(|t| (Arc::clone(name), t.deadline_ms)))
        .collect()
}

/// What [`Store::expire`] did with one due entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired {
    /// The name now holds its revert state, stored and announced.
    Reverted,
    /// The name was written since (or is gone): nothing to do.
    Stale,
    /// A write of the name is under way and will replace the timed state; looked at again
    /// in a second.
    Busy,
    /// AstDB refused the revert; the timed state stays and is tried again in 10 seconds.
    PersistFailed,
}

impl Store {
    /// The queue the expiry thread serves.
    pub fn expiries(&self) -> &ExpiryQueue {
        &self.expiries
    }

    pub fn suppresses_identical(&self) -> bool {
        self.suppress_identical.load(Ordering::Relaxed)
    }

    pub fn set_suppress_identical(&self, suppress: bool) {
        self.suppress_identical.store(suppress, Ordering::Relaxed);
    }

    /// After a change's put: schedules its expiry.
    pub(super) fn schedule_expiry(&self, put: &Put) {
        let timing = put.new.as_ref().and_then(|new| new.timing());
        if let (Some(timed_name), Some(timing)) = (&put.timed_name, timing) {
            if self
                .expiries
                .schedule(Arc::clone(timed_name), timing.deadline_ms)
            {
                self.expiries
                    .compact(|name, deadline| self.expiry_is_live(name, deadline));
            }
        }
    }

    /// Whether the change `put` is announced (not when `suppress_identical` is on and
    /// consumers would see nothing new).
    pub(super) fn announces(&self, put: &Put) -> bool {
        if !self.suppresses_identical() {
            return true;
        }
        !matches!((&put.replaced, &put.new), (Some(old), Some(new)) if old.announces_same(new))
    }

    /// Whether a queue entry may still be due: its name holds a timed state whose deadline is
    /// not after the entry's.
    fn expiry_is_live(&self, name: &[u8], deadline_ms: u64) -> bool {
        self.read()
            .get(name)
            .and_then(|p| p.timing())
            .is_some_and(|timing| timing.deadline_ms <= deadline_ms)
    }

    /// Reverts the name of a due queue entry if it still holds the timed state: AstDB, then
    /// memory, then the announcement, as a write does. Holds the name's stripe throughout, so
    /// no write of it can start meanwhile; one already under way wins. Not replicated: every
    /// server of a cluster reverts the state by itself at its deadline.
    pub fn expire(&self, host: &dyn Host, due: &Due) -> Expired {
        let is_due = |_: &Arc<Presence>, timing: &Timing| timing.deadline_ms <= due.deadline_ms;
        self.revert_timed(host, &due.name, &is_due, &Source::Expiry, false)
    }

    /// Ends the timed state `expected` of `name` before its deadline, as its expiry would
    /// (the SIP publication that set it was removed), recording `source`; replicated like a
    /// write. `Stale` when the name holds another state by now.
    pub fn end_timed(
        &self,
        host: &dyn Host,
        name: &[u8],
        expected: &Arc<Presence>,
        source: &Source,
    ) -> Expired {
        let is_expected = |now: &Arc<Presence>, _: &Timing| Arc::ptr_eq(now, expected);
        self.revert_timed(host, name, &is_expected, source, true)
    }

    fn revert_timed(
        &self,
        host: &dyn Host,
        name: &[u8],
        ends: &dyn Fn(&Arc<Presence>, &Timing) -> bool,
        source: &Source,
        replicate: bool,
    ) -> Expired {
        let hash = fnv1a(name);
        let stripe = &self.stripes[stripe_of(hash)];
        let Ok(name_c) = CString::new(name.to_vec()) else {
            return Expired::Stale;
        };
        let (revert, replaced, record) = {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            if writing.in_flight.contains(&hash) {
                return Expired::Busy;
            }
            let Some(current) = self.get(name) else {
                return Expired::Stale;
            };
            let Some(timing) = current.timing().filter(|t| ends(&current, t)) else {
                return Expired::Stale;
            };
            let revert = timing
                .revert
                .clone()
                .unwrap_or_else(|| Arc::new(Presence::not_set()));
            if !host.persist(&name_c, revert.stored_c()) {
                return Expired::PersistFailed;
            }
            let version = if replicate { self.stamp(host) } else { None };
            let put = self.put(name, Some(Arc::clone(&revert)), None);
            let record = self.note_change(&mut writing, name, &put, source);
            if let Some(version) = version {
                host.committed(name, Some(revert.stored_c()), None, version);
            }
            drop(writing);
            (revert, put.replaced, record)
        };
        if let Some(record) = record {
            if !host.persist_meta(&name_c, record.as_ref().map(Outgoing::text)) {
                self.stats.count_astdb_failure();
            }
        }
        let identical = replaced.is_some_and(|old| old.announces_same(&revert));
        if !(identical && self.suppresses_identical()) {
            self.announce_current(host, stripe, name);
        }
        Expired::Reverted
    }

    /// Expires a batch of due entries (the expiry thread's work). Entries that could not be
    /// expired yet are queued again; returns the names AstDB refused to revert, and calls
    /// `reverted` with each name reverted.
    pub fn expire_all(
        &self,
        host: &dyn Host,
        due: Vec<Due>,
        reverted: &mut dyn FnMut(&[u8]),
    ) -> Vec<Name> {
        let mut refused = Vec::new();
        for entry in due {
            let retry_in = match self.expire(host, &entry) {
                Expired::Reverted => {
                    reverted(&entry.name);
                    continue;
                }
                Expired::Stale => continue,
                Expired::Busy => RETRY_BUSY_MS,
                Expired::PersistFailed => {
                    refused.push(Arc::clone(&entry.name));
                    RETRY_FAILED_MS
                }
            };
            self.expiries
                .schedule(entry.name, host.now_ms().saturating_add(retry_in));
        }
        refused
    }

    /// Stores the states a load reverted (their deadline passed while the module was not
    /// running) and removes their expiry records. Returns the names AstDB refused.
    pub fn persist_reverted(&self, host: &dyn Host, names: &[Name]) -> Vec<Name> {
        let mut refused = Vec::new();
        for name in names {
            let (Some(presence), Ok(name_c)) = (self.get(name), CString::new(name.to_vec())) else {
                continue;
            };
            if !host.persist(&name_c, presence.stored_c()) {
                refused.push(Arc::clone(name));
                continue;
            }
            let record = {
                let stripe = &self.stripes[stripe_of(fnv1a(name))];
                let mut writing = lock_ignoring_poison(&stripe.writing);
                if self.record_changes.load(Ordering::Relaxed) {
                    let old = writing
                        .meta
                        .get(&name[..])
                        .map_or(&b""[..], |record| record.to_bytes());
                    let rewritten =
                        rewrite_for_change(old, unix_now(), &Source::Expiry, presence.stored());
                    // Escaping leaves no NUL in a record.
                    if let Ok(record) = CString::new(rewritten) {
                        writing.meta.insert(Arc::clone(name), record.into());
                    }
                }
                // The record in AstDB still holds the expiry: stored without it.
                record_to_store(writing.meta.get(&name[..]), Some(&presence))
            };
            if !host.persist_meta(&name_c, record.as_ref().map(Record::text)) {
                self.stats.count_astdb_failure();
            }
        }
        refused
    }

    /// How many expiries are pending (timed states in memory).
    pub fn pending_expiries(&self) -> usize {
        self.read()
            .values()
            .filter(|p| p.timing().is_some())
            .count()
    }

    /// Announces device state and presence of `name` as memory holds it now. Device state
    /// first: a hint holding `CustomPresence:<name>` notifies its SIP subscribers once per
    /// message, so a BLF key shows the new state from the first NOTIFY on.
    pub(super) fn announce_both(&self, host: &dyn Host, name: &[u8]) {
        self.announce_state(host, name, self.get(name).as_deref());
    }

    /// Announces device state and presence of `name` as `presence` (memory's state).
    pub(super) fn announce_state(&self, host: &dyn Host, name: &[u8], presence: Option<&Presence>) {
        let state = presence.map_or(PresenceState::NotSet, |p| p.state());
        host.announce_device(name, self.device_states.get(state));
        host.announce(name, presence);
    }

    /// The device state of `CustomPresence:<name>` (the device-state provider's answer).
    pub fn device_state(&self, name: &[u8]) -> DeviceState {
        let state = self
            .read()
            .get(name)
            .map_or(PresenceState::NotSet, |p| p.state());
        self.device_states.get(state)
    }

    /// Puts a `[device_state]` table in force; returns the presence states it maps
    /// differently.
    pub fn set_device_states(&self, map: &DeviceStateMap) -> Remapped {
        self.device_states.replace(map)
    }

    /// Announces the device state of every name whose presence state `remapped` holds (after
    /// the table changed), each as memory holds it when its turn comes (a write meanwhile has
    /// announced its own). Returns how many were announced.
    pub fn announce_device_states(&self, host: &dyn Host, remapped: Remapped) -> usize {
        let names: Vec<Name> = self
            .read()
            .iter()
            .filter(|(_, presence)| remapped.contains(presence.state()))
            .map(|(name, _)| Arc::clone(name))
            .collect();
        for name in &names {
            host.announce_device(name, self.device_state(name));
        }
        names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::RecordingHost;
    use super::*;
    use crate::core::expiry::{StoredTiming, Timing, REVERT};

    fn write(store: &Store, host: &RecordingHost, name: &str, value: &str) {
        let provider = CString::new(format!("CustomPresence:{name}")).unwrap();
        let value = CString::new(value).unwrap();
        store.write(host, &provider, &value, &Source::Cli).unwrap();
    }

    fn due(name: &str, deadline_ms: u64) -> Due {
        Due {
            deadline_ms,
            name: Name::from(name.as_bytes()),
        }
    }

    fn host_at(now_ms: u64) -> RecordingHost {
        let host = RecordingHost::default();
        host.now.store(now_ms, Ordering::Relaxed);
        host
    }

    /// The last `CustomPresenceMeta` record stored for `name` (`None`: deleted or never).
    fn last_record(host: &RecordingHost, name: &str) -> Option<Meta> {
        let puts = host.meta.lock().unwrap();
        let (_, record) = puts.iter().rev().find(|(n, _)| n == name.as_bytes())?;
        record.as_ref().map(|r| Meta::parse(r).unwrap())
    }

    fn recorded_deadline(host: &RecordingHost, name: &str) -> Option<Vec<u8>> {
        last_record(host, name)?.get(EXPIRES_MS).map(<[u8]>::to_vec)
    }

    #[test]
    fn a_timed_write_reverts_to_the_last_untimed_state_when_due() {
        let (host, store) = (host_at(1_000), Store::default());
        write(&store, &host, "a", "available,,at desk");
        write(&store, &host, "a", "dnd,,meeting,t(60)");
        write(&store, &host, "a", "away,,lunch,t(2)");
        let timing = store.get(b"a").unwrap().timing().cloned().unwrap();
        assert_eq!(timing.deadline_ms, 3_000);
        assert_eq!(timing.revert_text(), b"available,,at desk");
        let record = last_record(&host, "a").unwrap();
        assert_eq!(record.get(EXPIRES_MS), Some(&b"3000"[..]));
        assert_eq!(record.get(REVERT), Some(&b"available,,at desk"[..]));
        // The entry of the overtaken t(60) is stale when it comes: only the t(2) one counts.
        assert_eq!(store.expire(&host, &due("a", 2_999)), Expired::Stale);
        assert_eq!(store.expire(&host, &due("a", 3_000)), Expired::Reverted);
        let now = store.get(b"a").unwrap();
        assert_eq!(
            (now.stored(), now.timing()),
            (&b"available,,at desk"[..], None)
        );
        assert_eq!(
            host.db.lock().unwrap().last().unwrap().1,
            b"available,,at desk"
        );
        assert_eq!(recorded_deadline(&host, "a"), None);
        assert_eq!(store.change_of(b"a").unwrap().1, Source::Expiry);
        let announced = host.announced.lock().unwrap();
        assert_eq!(announced.last().unwrap().1.as_ref().unwrap().2, b"at desk");
        let devices = host.devices.lock().unwrap();
        assert_eq!(
            devices.last().unwrap(),
            &(b"a".to_vec(), DeviceState::NotInuse)
        );
        assert_eq!(store.expire(&host, &due("a", 3_000)), Expired::Stale);
    }

    #[test]
    fn a_new_write_or_a_delete_replaces_the_pending_expiry() {
        let (host, store) = (host_at(0), Store::default());
        write(&store, &host, "b", "dnd,,,t(5)");
        assert_eq!(store.pending_expiries(), 1);
        write(&store, &host, "b", "chat");
        assert_eq!(store.pending_expiries(), 0);
        // Its record loses the expiry, and the old entry is stale when due.
        assert_eq!(recorded_deadline(&host, "b"), None);
        assert!(
            last_record(&host, "b").is_some(),
            "the change is still recorded"
        );
        assert_eq!(store.expire(&host, &due("b", 5_000)), Expired::Stale);
        assert_eq!(store.get(b"b").unwrap().stored(), b"chat");
        write(&store, &host, "b", "dnd,,,t(5)");
        store
            .delete(&host, c"CustomPresence:b", &Source::Cli)
            .unwrap();
        assert_eq!(store.expire(&host, &due("b", 5_000)), Expired::Stale);
        assert!(store.get(b"b").is_none());
    }

    #[test]
    fn expiries_are_recorded_even_when_changes_are_not() {
        let (host, store) = (host_at(0), Store::default());
        store.set_record_changes(false);
        write(&store, &host, "g", "away");
        assert!(host.meta.lock().unwrap().is_empty());
        write(&store, &host, "g", "dnd,,,t(5)");
        let record = last_record(&host, "g").unwrap();
        assert_eq!(record.get(EXPIRES_MS), Some(&b"5000"[..]));
        assert_eq!(record.get("changed"), None);
        write(&store, &host, "g", "chat");
        assert_eq!(
            host.meta.lock().unwrap().last().unwrap(),
            &(b"g".to_vec(), None)
        );
    }

    #[test]
    fn without_an_untimed_state_before_it_reverts_to_not_set() {
        let (host, store) = (host_at(0), Store::default());
        write(&store, &host, "c", "dnd,,,t(1)");
        assert_eq!(
            store.expire_all(&host, store.expiries().take_due(1_000), &mut |_| ()),
            []
        );
        assert_eq!(store.get(b"c").unwrap().state(), PresenceState::NotSet);
        assert_eq!(host.db.lock().unwrap().last().unwrap().1, b"not_set");
    }

    #[test]
    fn a_refused_revert_keeps_the_timed_state_and_is_retried() {
        let (host, store) = (host_at(0), Store::default());
        write(&store, &host, "d", "dnd,,,t(1)");
        let failing = RecordingHost {
            fail: true,
            ..host_at(1_000)
        };
        let refused = store.expire_all(&failing, store.expiries().take_due(1_000), &mut |_| ());
        assert_eq!(refused, [Name::from(&b"d"[..])]);
        assert_eq!(store.get(b"d").unwrap().state(), PresenceState::Dnd);
        assert!(store.expiries().take_due(10_999).is_empty());
        let mut reverted = Vec::new();
        store.expire_all(&host, store.expiries().take_due(11_000), &mut |name| {
            reverted.push(name.to_vec())
        });
        assert_eq!(reverted, [b"d".to_vec()]);
        assert_eq!(store.get(b"d").unwrap().state(), PresenceState::NotSet);
    }

    #[test]
    fn a_load_restores_pending_expiries_and_reverts_passed_ones() {
        let (host, store) = (host_at(0), Store::default());
        let mut records = Vec::new();
        for (name, value, deadline, revert) in [
            ("later", "dnd,,,t(60)", 90_000, "available"),
            ("later2", "dnd,,,t(60)", 90_000, "available"),
            ("passed", "away,,,et(60)", 10_000, "chat,,back"),
        ] {
            let stored = StoredTiming {
                deadline_ms: deadline,
                revert: revert.into(),
            };
            let mut meta = Meta::parse(b"changed=1;source=cli;hlc=9").unwrap();
            let timing: Timing = stored.resolve(&mut HashMap::new()).unwrap();
            record_timing(&mut meta, value.as_bytes(), Some(&timing));
            records.push((name.as_bytes(), meta.encode()));
        }
        let borrowed: Vec<(&[u8], &[u8])> = records.iter().map(|(n, r)| (*n, &r[..])).collect();
        assert!(store.replace_meta(&borrowed).is_empty());
        let replaced = store.replace_all(
            &[
                (b"later", b"dnd,,,t(60)"),
                (b"later2", b"dnd,,,t(60)"),
                (b"passed", b"away,,,et(60)"),
                (b"stock", b"xa,,,t(60)"),
            ],
            50_000,
        );
        assert_eq!(replaced.reverted, [Name::from(&b"passed"[..])]);
        assert_eq!(store.get(b"passed").unwrap().stored(), b"chat,,back");
        assert_eq!(
            store.pending_expiries(),
            2,
            "a t(...) without a record is not timed"
        );
        let revert_of = |name: &[u8]| store.get(name).unwrap().timing().unwrap().revert.clone();
        assert!(
            Arc::ptr_eq(
                &revert_of(b"later").unwrap(),
                &revert_of(b"later2").unwrap()
            ),
            "states reverting to the same text share it"
        );
        assert_eq!(store.persist_reverted(&host, &replaced.reverted), []);
        assert_eq!(
            *host.db.lock().unwrap(),
            [(b"passed".to_vec(), b"chat,,back".to_vec())]
        );
        let record = last_record(&host, "passed").unwrap();
        assert_eq!(
            (record.get(EXPIRES_MS), record.get("hlc")),
            (None, Some(&b"9"[..]))
        );
        let due = store.expiries().take_due(90_000);
        assert_eq!(due.len(), 2);
        assert_eq!(store.expire(&host, &due[0]), Expired::Reverted);
        assert_eq!(store.expire(&host, &due[1]), Expired::Reverted);
        assert_eq!(store.get(b"later").unwrap().stored(), b"available");
        // The expiry was taken out of the record kept in memory, and is not applied twice.
        assert_eq!(recorded_deadline(&host, "later"), None);
        assert!(stored_timing(&last_record(&host, "later").unwrap(), b"available").is_none());
    }

    #[test]
    fn identical_writes_are_announced_unless_suppressed() {
        let (host, store) = (host_at(0), Store::default());
        write(&store, &host, "e", "away,,lunch");
        write(&store, &host, "e", "away,,lunch");
        assert_eq!(host.announced.lock().unwrap().len(), 2);
        store.set_suppress_identical(true);
        write(&store, &host, "e", "away,,lunch");
        write(&store, &host, "e", "away,bGF0ZXI=,,e");
        write(&store, &host, "e", "AWAY,bGF0ZXI=,,e");
        assert_eq!(
            host.announced.lock().unwrap().len(),
            3,
            "only the change is announced"
        );
        assert_eq!(host.db.lock().unwrap().len(), 5, "every write is stored");
    }

    #[test]
    fn device_states_follow_presence_and_the_table() {
        let (host, store) = (host_at(0), Store::default());
        assert_eq!(store.device_state(b"nobody"), DeviceState::Unknown);
        write(&store, &host, "f", "dnd");
        assert_eq!(store.device_state(b"f"), DeviceState::Busy);
        write(&store, &host, "g", "away");
        let mut map = DeviceStateMap::default();
        assert!(store.set_device_states(&map).is_empty());
        map.set(PresenceState::Dnd, DeviceState::OnHold);
        let remapped = store.set_device_states(&map);
        let before = host.devices.lock().unwrap().len();
        assert_eq!(store.announce_device_states(&host, remapped), 1);
        assert_eq!(store.device_state(b"f"), DeviceState::OnHold);
        let devices = host.devices.lock().unwrap();
        assert_eq!(
            devices[before..],
            [(b"f".to_vec(), DeviceState::OnHold)],
            "only the name whose state maps differently"
        );
    }
}
