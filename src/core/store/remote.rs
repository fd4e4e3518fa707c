//! Writes that come from another server (cluster replication): applied only when newer than
//! what this server holds, through the same per-name protocol as local writes (see [`Store`])
//! so that AstDB, memory, the meta record and the announcements still end on the same state.

use super::{fnv1a, lock_ignoring_poison, name_for_write, stripe_of};
use super::{Host, Store, WriteError};
use crate::core::expiry::remote_timing;
use crate::core::meta::Source;
use crate::core::value::Presence;
use std::ffi::CStr;
use std::sync::Arc;

/// Decides whether a write from another server replaces what memory holds.
pub trait RemoteWrite {
    /// Whether it wins over `held` (memory's state of the name, if any). With `commit`, it
    /// is also recorded as the name's version. Called under the name's write lock.
    fn wins(&self, held: Option<&Presence>, commit: bool) -> bool;
    /// When the write was made (unix milliseconds, the writer's clock): a timed state's
    /// deadline counts from here, so every server reverts it at the same moment by itself.
    fn written_ms(&self) -> u64;
}

/// A change from another server: `Some` a write, `None` a delete (a tombstone).
#[derive(Clone, Copy)]
pub struct RemoteValue<'a> {
    /// The text written.
    pub value: &'a CStr,
    /// For a timed state, the text of the state it reverts to, as its writer decided it
    /// (`not_set` or an untimed value); empty otherwise.
    pub revert: &'a [u8],
}

impl Store {
    /// Applies a change of `name` from another server if `remote` wins: `Some(value)` a
    /// write, `None` a delete (a tombstone). AstDB, memory, its record, then the announcement,
    /// like a local change (never sent on: no commit hook). A timed state expires at its
    /// writer's deadline, to the state its writer said, whatever this server held before, so
    /// every server reverts it alike by itself. `Ok(false)`: ours is as new or newer,
    /// nothing changed. A delete of a name this server does not hold changes nothing here but
    /// is still taken (`Ok(true)`: the replica keeps its tombstone). On any error nothing is
    /// changed.
    pub fn apply_remote(
        &self,
        host: &dyn Host,
        name: &CStr,
        change: Option<RemoteValue<'_>>,
        remote: &dyn RemoteWrite,
    ) -> Result<bool, WriteError> {
        let value = change.map(|change| change.value);
        let name_bytes = name.to_bytes();
        if name_bytes.is_empty() || name_bytes.contains(&b',') {
            // The same rules as a local write's name (this gives the same errors).
            let mut provider = crate::core::PROVIDER_PREFIX.as_bytes().to_vec();
            provider.extend_from_slice(name_bytes);
            name_for_write(&provider)?;
        }
        let presence = match change {
            Some(change) => {
                let mut presence =
                    Presence::parse(change.value.to_bytes()).map_err(WriteError::Value)?;
                let timing = remote_timing(&presence, change.revert, remote.written_ms())
                    .map_err(WriteError::Revert)?;
                if let Some(timing) = timing {
                    presence.set_timing(timing);
                }
                Some(Arc::new(presence))
            }
            None => None,
        };
        let hash = fnv1a(name_bytes);
        let stripe = &self.stripes[stripe_of(hash)];
        {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            let held = self.get(name_bytes);
            if !remote.wins(held.as_deref(), false) {
                return Ok(false);
            }
            if held.is_none() && presence.is_none() && !writing.in_flight.contains(&hash) {
                // Nothing here to delete: only the tombstone is kept.
                return Ok(remote.wins(None, true));
            }
            writing.enter(hash, name_bytes);
        }
        let persisted = match value {
            Some(value) => host.persist(name, value),
            None => host.remove(name),
        };
        let (put, record, announcer) = {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            writing.leave(hash);
            // A local write may have overtaken it meanwhile: decided again, and recorded.
            let applies = persisted && remote.wins(self.get(name_bytes).as_deref(), true);
            // (Its timing is set already: `put` must not derive one from this server's history.)
            let put = applies.then(|| self.put(name_bytes, presence, None));
            let record = put
                .as_ref()
                .filter(|put| self.records(put))
                .and_then(|put| self.note_change(&mut writing, name_bytes, put, &Source::Cluster));
            let announcer = put
                .as_ref()
                .filter(|put| self.announces(put))
                .and_then(|_| self.claim(stripe, name_bytes));
            self.settle_overlapped(host, &mut writing, hash);
            (put, record, announcer)
        };
        if !persisted {
            self.stats.count_astdb_failure();
            return Err(WriteError::PersistFailed(name_bytes.to_vec()));
        }
        let Some(put) = put else {
            return Ok(false);
        };
        self.finish(host, name_bytes, name, put, record, announcer);
        Ok(true)
    }

    /// The stripe of `name` (for tests).
    #[cfg(test)]
    fn stripe_for(&self, name: &[u8]) -> &super::Stripe {
        &self.stripes[stripe_of(fnv1a(name))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::tests::RecordingHost;
    use crate::core::store::Expired;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Wins over anything but a state whose message is "newer".
    struct Remote {
        recorded: AtomicBool,
    }

    impl RemoteWrite for Remote {
        fn wins(&self, held: Option<&Presence>, commit: bool) -> bool {
            let wins = held.is_none_or(|p| p.message() != b"newer");
            if wins && commit {
                self.recorded.store(true, Ordering::Relaxed);
            }
            wins
        }
        fn written_ms(&self) -> u64 {
            1_000_000
        }
    }

    fn untimed(value: &CStr) -> Option<RemoteValue<'_>> {
        Some(RemoteValue { value, revert: b"" })
    }

    /// Wins over anything; written at the given time.
    struct Later(u64);

    impl RemoteWrite for Later {
        fn wins(&self, _: Option<&Presence>, _: bool) -> bool {
            true
        }
        fn written_ms(&self) -> u64 {
            self.0
        }
    }

    fn remote() -> Remote {
        Remote {
            recorded: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_winning_remote_write_persists_stores_and_announces() {
        let (host, store) = (RecordingHost::default(), Store::default());
        let r = remote();
        assert_eq!(
            store.apply_remote(&host, c"bob", untimed(c"dnd,,far"), &r),
            Ok(true)
        );
        assert!(r.recorded.load(Ordering::Relaxed));
        assert_eq!(store.get(b"bob").unwrap().stored(), b"dnd,,far");
        assert_eq!(host.db.lock().unwrap().len(), 1);
        assert_eq!(host.announced.lock().unwrap().len(), 1);
        assert!(!lock_ignoring_poison(&store.stripe_for(b"bob").announcing).busy);
    }

    #[test]
    fn a_losing_or_bad_remote_write_changes_nothing() {
        let (host, store) = (RecordingHost::default(), Store::default());
        store
            .write(&host, c"CustomPresence:bob", c"away,,newer", &Source::Cli)
            .unwrap();
        let before = (
            host.db.lock().unwrap().len(),
            host.announced.lock().unwrap().len(),
        );
        let r = remote();
        assert_eq!(
            store.apply_remote(&host, c"bob", untimed(c"dnd"), &r),
            Ok(false)
        );
        assert!(store
            .apply_remote(&host, c"bob", untimed(c"bored"), &r)
            .is_err());
        assert!(store
            .apply_remote(&host, c"a,b", untimed(c"dnd"), &r)
            .is_err());
        assert!(store.apply_remote(&host, c"", untimed(c"dnd"), &r).is_err());
        assert!(!r.recorded.load(Ordering::Relaxed));
        assert_eq!(store.get(b"bob").unwrap().message(), b"newer");
        let after = (
            host.db.lock().unwrap().len(),
            host.announced.lock().unwrap().len(),
        );
        assert_eq!(before, after);
    }

    #[test]
    fn a_refused_persist_changes_nothing() {
        let store = Store::default();
        let failing = RecordingHost {
            fail: true,
            ..Default::default()
        };
        let r = remote();
        assert_eq!(
            store.apply_remote(&failing, c"bob", untimed(c"dnd"), &r),
            Err(WriteError::PersistFailed(b"bob".to_vec()))
        );
        assert!(store.get(b"bob").is_none() && !r.recorded.load(Ordering::Relaxed));
    }

    #[test]
    fn a_timed_remote_write_counts_its_deadline_from_when_it_was_written() {
        let (host, store) = (RecordingHost::default(), Store::default());
        let r = remote();
        let timed = RemoteValue {
            value: c"away,,,t(30)",
            revert: b"xa,,sent",
        };
        assert_eq!(store.apply_remote(&host, c"bob", Some(timed), &r), Ok(true));
        let timing = store.get(b"bob").unwrap().timing().unwrap().clone();
        assert_eq!(timing.deadline_ms, r.written_ms() + 30_000);
        assert_eq!(timing.revert_text(), b"xa,,sent");
        assert_eq!(store.pending_expiries(), 1);
    }

    #[test]
    fn a_timed_remote_write_reverts_to_its_writers_state_not_to_what_was_held_here() {
        let (host, store) = (RecordingHost::default(), Store::default());
        // This server missed the writer's untimed "available": it still holds "away".
        store
            .write(
                &host,
                c"CustomPresence:bob",
                c"away,,held here",
                &Source::Cli,
            )
            .unwrap();
        let r = remote();
        let timed = RemoteValue {
            value: c"dnd,,,t(5)",
            revert: b"available",
        };
        assert_eq!(store.apply_remote(&host, c"bob", Some(timed), &r), Ok(true));
        let due = store.expiries().take_due(r.written_ms() + 5_000);
        assert_eq!(due.len(), 1);
        assert_eq!(store.expire(&host, &due[0]), Expired::Reverted);
        assert_eq!(store.get(b"bob").unwrap().stored(), b"available");
        let db = host.db.lock().unwrap().clone();
        let stored = db.iter().rev().find(|(name, _)| name == b"bob");
        assert_eq!(stored.map(|(_, v)| &v[..]), Some(&b"available"[..]));
        // To not_set just as well, over a name held here.
        let timed = RemoteValue {
            value: c"dnd,,,t(5)",
            revert: b"not_set",
        };
        let later = Later(r.written_ms() + 1);
        assert_eq!(
            store.apply_remote(&host, c"bob", Some(timed), &later),
            Ok(true)
        );
        let timing = store.get(b"bob").unwrap().timing().unwrap().clone();
        assert_eq!((timing.revert, timing.deadline_ms), (None, later.0 + 5_000));
    }

    #[test]
    fn a_remote_write_with_a_bad_revert_changes_nothing() {
        let (host, store) = (RecordingHost::default(), Store::default());
        store
            .write(&host, c"CustomPresence:bob", c"away", &Source::Cli)
            .unwrap();
        let before = (
            host.db.lock().unwrap().clone(),
            host.announced.lock().unwrap().len(),
        );
        let r = remote();
        for (value, revert) in [
            (c"dnd,,,t(5)", &b"bored"[..]),
            (c"dnd,,,t(5)", b"away,!!,,e"),
            (c"dnd", b"available"),
        ] {
            let change = RemoteValue { value, revert };
            let result = store.apply_remote(&host, c"bob", Some(change), &r);
            assert!(matches!(result, Err(WriteError::Revert(_))), "{result:?}");
        }
        assert!(!r.recorded.load(Ordering::Relaxed));
        assert_eq!(store.get(b"bob").unwrap().stored(), b"away");
        let after = (
            host.db.lock().unwrap().clone(),
            host.announced.lock().unwrap().len(),
        );
        assert_eq!(before, after);
    }

    #[test]
    fn a_remote_delete_removes_the_state_and_its_record_and_announces_not_set() {
        let (host, store) = (RecordingHost::default(), Store::default());
        store
            .write(&host, c"CustomPresence:bob", c"away", &Source::Cli)
            .unwrap();
        let r = remote();
        assert_eq!(store.apply_remote(&host, c"bob", None, &r), Ok(true));
        assert!(store.get(b"bob").is_none() && r.recorded.load(Ordering::Relaxed));
        assert_eq!(host.removed.lock().unwrap().as_slice(), [b"bob".to_vec()]);
        assert_eq!(
            host.meta.lock().unwrap().last().unwrap(),
            &(b"bob".to_vec(), None)
        );
        assert_eq!(host.announced.lock().unwrap().last().unwrap().1, None);
        // A delete of a name not held: only the tombstone is taken, AstDB is not touched.
        let r = remote();
        assert_eq!(store.apply_remote(&host, c"nobody", None, &r), Ok(true));
        assert!(r.recorded.load(Ordering::Relaxed));
        assert_eq!(host.removed.lock().unwrap().len(), 1);
    }
}
