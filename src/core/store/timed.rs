//! The store's timed states, device states and identical-write suppression.

use super::{fnv1a, lock_ignoring_poison, stripe_of, Host, Name, States, Store};
use crate::core::device_state::{DeviceState, DeviceStateMap};
use crate::core::expiry::{Due, ExpiryQueue, StoredTiming, TimingError};
use crate::core::state::PresenceState;
use crate::core::value::Presence;
use std::ffi::{CStr, CString};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The expiry recorded for a stored `(name, value)`, if any (see `expiry::stored_timing`).
pub type TimingOf<'a> = &'a dyn Fn(&[u8], &[u8]) -> Option<Result<StoredTiming, TimingError>>;

/// After an expiry that AstDB refused, the next try.
const RETRY_FAILED_MS: u64 = 10_000;
/// After an expiry that met a write of its name under way, the next look.
const RETRY_BUSY_MS: u64 = 1_000;

/// A state just put in memory by a write.
pub(super) struct Put {
    /// The map's name, for the expiry queue, when the new state is timed.
    pub(super) timed_name: Option<Name>,
    pub(super) new: Arc<Presence>,
    pub(super) replaced: Option<Arc<Presence>>,
}

/// What a loaded state became, given its recorded expiry.
pub(super) enum Restored {
    Kept(Arc<Presence>),
    /// The deadline had passed: the state it reverts to.
    Reverted(Arc<Presence>),
    /// The record could not be used: the state, untimed.
    Bad(Arc<Presence>, TimingError),
}

pub(super) fn restore(
    mut presence: Presence,
    recorded: Option<Result<StoredTiming, TimingError>>,
    now_ms: u64,
) -> Restored {
    let timing = match recorded.map(|stored| stored?.resolve()) {
        None => return Restored::Kept(Arc::new(presence)),
        Some(Err(error)) => return Restored::Bad(Arc::new(presence), error),
        Some(Ok(timing)) => timing,
    };
    if timing.deadline_ms <= now_ms {
        return Restored::Reverted(
            timing
                .revert
                .unwrap_or_else(|| Arc::new(Presence::not_set())),
        );
    }
    presence.set_timing(timing);
    Restored::Kept(Arc::new(presence))
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

    /// After a write's put: schedules its expiry and records it in AstDB (or removes the
    /// record of the timed state it replaced). Returns whether the write is to be announced.
    pub(super) fn after_put(&self, host: &dyn Host, name: &CStr, put: &Put) -> bool {
        if let (Some(timed_name), Some(timing)) = (&put.timed_name, put.new.timing()) {
            if self
                .expiries
                .schedule(Arc::clone(timed_name), timing.deadline_ms)
            {
                self.expiries
                    .compact(|name, deadline| self.expiry_is_live(name, deadline));
            }
        }
        let was_timed = put
            .replaced
            .as_ref()
            .is_some_and(|old| old.timing().is_some());
        if was_timed || put.new.timing().is_some() {
            host.persist_timing(name, put.new.stored(), put.new.timing());
        }
        let identical = put
            .replaced
            .as_ref()
            .is_some_and(|old| old.announces_same(&put.new));
        !(identical && self.suppresses_identical())
    }

    /// Whether a queue entry may still be due: its name holds a timed state whose deadline is
    /// not after the entry's.
    fn expiry_is_live(&self, name: &[u8], deadline_ms: u64) -> bool {
        self.read()
            .get(name)
            .and_then(|p| p.timing())
            .is_some_and(|timing| timing.deadline_ms <= deadline_ms)
    }

    /// Replaces the queue's entries with the timed states just loaded.
    pub(super) fn reschedule(&self, timed: Vec<(Name, u64)>) {
        self.expiries.clear();
        for (name, deadline_ms) in timed {
            self.expiries.schedule(name, deadline_ms);
        }
    }

    /// Reverts the name of a due queue entry if it still holds the timed state: AstDB, then
    /// memory, then the announcement, as a write does. Holds the name's stripe throughout, so
    /// no write of it can start meanwhile; one already under way wins.
    pub fn expire(&self, host: &dyn Host, due: &Due) -> Expired {
        let hash = fnv1a(&due.name);
        let stripe = &self.stripes[stripe_of(hash)];
        let Ok(name_c) = CString::new(due.name.to_vec()) else {
            return Expired::Stale;
        };
        let (revert, replaced) = {
            let writing = lock_ignoring_poison(&stripe.writing);
            if writing.in_flight.contains(&hash) {
                return Expired::Busy;
            }
            let Some(current) = self.get(&due.name) else {
                return Expired::Stale;
            };
            let Some(timing) = current
                .timing()
                .filter(|t| t.deadline_ms <= due.deadline_ms)
            else {
                return Expired::Stale;
            };
            let revert = timing
                .revert
                .clone()
                .unwrap_or_else(|| Arc::new(Presence::not_set()));
            if !host.persist(&name_c, revert.stored_c()) {
                return Expired::PersistFailed;
            }
            let put = self.put(&due.name, Arc::clone(&revert), None);
            drop(writing);
            (revert, put.replaced)
        };
        host.persist_timing(&name_c, revert.stored(), None);
        let identical = replaced.is_some_and(|old| old.announces_same(&revert));
        if !(identical && self.suppresses_identical()) {
            self.announce_current(host, stripe, &due.name);
        }
        Expired::Reverted
    }

    /// Expires a batch of due entries (the expiry thread's work). Entries that could not be
    /// expired yet are queued again; returns the names AstDB refused to revert.
    pub fn expire_all(&self, host: &dyn Host, due: Vec<Due>) -> Vec<Name> {
        let mut refused = Vec::new();
        for entry in due {
            let retry_in = match self.expire(host, &entry) {
                Expired::Reverted | Expired::Stale => continue,
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
            if host.persist(&name_c, presence.stored_c()) {
                host.persist_timing(&name_c, presence.stored(), None);
            } else {
                refused.push(Arc::clone(name));
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

    /// Announces presence and device state of `name` as memory holds it now.
    pub(super) fn announce_both(&self, host: &dyn Host, name: &[u8]) {
        let presence = self.get(name);
        host.announce(name, presence.as_deref());
        let state = presence.map_or(PresenceState::NotSet, |p| p.state());
        host.announce_device(name, self.device_states.get(state));
    }

    /// The device state of `CustomPresence:<name>` (the device-state provider's answer).
    pub fn device_state(&self, name: &[u8]) -> DeviceState {
        let state = self
            .read()
            .get(name)
            .map_or(PresenceState::NotSet, |p| p.state());
        self.device_states.get(state)
    }

    /// Puts a `[device_state]` table in force; true when any presence state maps differently.
    pub fn set_device_states(&self, map: &DeviceStateMap) -> bool {
        self.device_states.replace(map)
    }

    /// Announces the device state of every name (after the table changed).
    pub fn announce_device_states(&self, host: &dyn Host) {
        for (name, presence) in self.snapshot() {
            host.announce_device(&name, self.device_states.get(presence.state()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::RecordingHost;
    use super::*;
    use crate::core::expiry::{record_timing, stored_timing};
    use crate::core::meta::Meta;

    fn write(store: &Store, host: &RecordingHost, name: &str, value: &str) {
        let provider = CString::new(format!("CustomPresence:{name}")).unwrap();
        store
            .write(host, &provider, &CString::new(value).unwrap())
            .unwrap();
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

    #[test]
    fn a_timed_write_reverts_to_the_last_untimed_state_when_due() {
        let (host, store) = (host_at(1_000), Store::default());
        write(&store, &host, "a", "available,,at desk");
        write(&store, &host, "a", "dnd,,meeting,t(60)");
        write(&store, &host, "a", "away,,lunch,t(2)");
        let timing = store.get(b"a").unwrap().timing().cloned().unwrap();
        assert_eq!(timing.deadline_ms, 3_000);
        assert_eq!(timing.revert_text(), b"available,,at desk");
        assert_eq!(
            *host.timings.lock().unwrap().last().unwrap(),
            (b"a".to_vec(), b"away,,lunch,t(2)".to_vec(), Some(3_000))
        );
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
        assert_eq!(host.timings.lock().unwrap().last().unwrap().2, None);
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
    fn a_new_write_replaces_the_pending_expiry() {
        let (host, store) = (host_at(0), Store::default());
        write(&store, &host, "b", "dnd,,,t(5)");
        assert_eq!(store.pending_expiries(), 1);
        write(&store, &host, "b", "chat");
        assert_eq!(store.pending_expiries(), 0);
        // Its record is removed from AstDB, and the old entry is stale when due.
        assert_eq!(
            *host.timings.lock().unwrap().last().unwrap(),
            (b"b".to_vec(), b"chat".to_vec(), None)
        );
        assert_eq!(store.expire(&host, &due("b", 5_000)), Expired::Stale);
        assert_eq!(store.get(b"b").unwrap().stored(), b"chat");
    }

    #[test]
    fn without_an_untimed_state_before_it_reverts_to_not_set() {
        let (host, store) = (host_at(0), Store::default());
        write(&store, &host, "c", "dnd,,,t(1)");
        assert_eq!(
            store.expire_all(&host, store.expiries().take_due(1_000)),
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
        let refused = store.expire_all(&failing, store.expiries().take_due(1_000));
        assert_eq!(refused, [Name::from(&b"d"[..])]);
        assert_eq!(store.get(b"d").unwrap().state(), PresenceState::Dnd);
        assert!(store.expiries().take_due(10_999).is_empty());
        store.expire_all(&host, store.expiries().take_due(11_000));
        assert_eq!(store.get(b"d").unwrap().state(), PresenceState::NotSet);
    }

    #[test]
    fn a_load_restores_pending_expiries_and_reverts_passed_ones() {
        let (host, store) = (host_at(0), Store::default());
        let mut metas = std::collections::HashMap::new();
        for (name, value, deadline, revert) in [
            ("later", "dnd,,,t(60)", 90_000, "available"),
            ("passed", "away,,,et(60)", 10_000, "chat,,back"),
            ("stock", "xa,,,t(60)", 0, ""),
        ] {
            if deadline > 0 {
                let timing = StoredTiming {
                    deadline_ms: deadline,
                    revert: revert.into(),
                };
                let mut meta = Meta::default();
                record_timing(
                    &mut meta,
                    value.as_bytes(),
                    Some(&timing.resolve().unwrap()),
                );
                metas.insert(name.as_bytes().to_vec(), meta);
            }
        }
        let timing_of = |name: &[u8], value: &[u8]| stored_timing(metas.get(name)?, value);
        let replaced = store.replace_all(
            &[
                (b"later", b"dnd,,,t(60)"),
                (b"passed", b"away,,,et(60)"),
                (b"stock", b"xa,,,t(60)"),
            ],
            &timing_of,
            50_000,
        );
        assert_eq!(replaced.reverted, [Name::from(&b"passed"[..])]);
        assert_eq!(store.get(b"passed").unwrap().stored(), b"chat,,back");
        assert_eq!(
            store.pending_expiries(),
            1,
            "a t(...) without a record is not timed"
        );
        assert_eq!(store.persist_reverted(&host, &replaced.reverted), []);
        assert_eq!(
            *host.db.lock().unwrap(),
            [(b"passed".to_vec(), b"chat,,back".to_vec())]
        );
        let due = store.expiries().take_due(90_000);
        assert_eq!(due.len(), 1);
        assert_eq!(store.expire(&host, &due[0]), Expired::Reverted);
        assert_eq!(store.get(b"later").unwrap().stored(), b"available");
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
        let mut map = DeviceStateMap::default();
        assert!(!store.set_device_states(&map));
        map.set(PresenceState::Dnd, DeviceState::OnHold);
        assert!(store.set_device_states(&map));
        store.announce_device_states(&host);
        assert_eq!(store.device_state(b"f"), DeviceState::OnHold);
        assert_eq!(
            host.devices.lock().unwrap().last().unwrap(),
            &(b"f".to_vec(), DeviceState::OnHold)
        );
    }
}
