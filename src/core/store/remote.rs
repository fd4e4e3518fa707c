//! Writes that come from another server (cluster replication): applied only when newer than
//! what this server holds, through the same per-name protocol as local writes (see [`Store`])
//! so that AstDB, memory and the announcements still end on the same state.

use super::{extract, fnv1a, lock_ignoring_poison, name_for_write, stripe_of};
use super::{Host, Store, WriteError};
use crate::core::value::Presence;
use std::ffi::{CStr, CString};
use std::sync::Arc;

/// Decides whether a write from another server replaces what memory holds.
pub trait RemoteWrite {
    /// Whether it wins over `held` (memory's state of the name, if any). With `commit`, it
    /// is also recorded as the name's version. Called under the name's write lock.
    fn wins(&self, held: Option<&Presence>, commit: bool) -> bool;
}

impl Store {
    /// Applies `value` for `name` from another server if `remote` wins: AstDB, memory, then
    /// the announcement, like a local write. `Ok(false)`: ours is as new or newer, nothing
    /// changed. On any error nothing is changed.
    pub fn apply_remote(
        &self,
        host: &dyn Host,
        name: &CStr,
        value: &CStr,
        remote: &dyn RemoteWrite,
    ) -> Result<bool, WriteError> {
        let name_bytes = name.to_bytes();
        if name_bytes.is_empty() || name_bytes.contains(&b',') {
            // The same rules as a local write's name (this gives the same errors).
            let mut provider = crate::core::PROVIDER_PREFIX.as_bytes().to_vec();
            provider.extend_from_slice(name_bytes);
            name_for_write(&provider)?;
        }
        let presence = Arc::new(Presence::parse(value.to_bytes()).map_err(WriteError::Value)?);
        let hash = fnv1a(name_bytes);
        let stripe = &self.stripes[stripe_of(hash)];
        {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            if !remote.wins(self.get(name_bytes).as_deref(), false) {
                return Ok(false);
            }
            if writing.in_flight.contains(&hash)
                && !writing.overlapped.iter().any(|(_, n)| n == name_bytes)
            {
                writing.overlapped.push((hash, name_bytes.to_vec()));
            }
            writing.in_flight.push(hash);
        }
        let persisted = host.persist(name, value);
        let (applied, replaced) = {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            if let Some(mine) = writing.in_flight.iter().position(|&h| h == hash) {
                writing.in_flight.swap_remove(mine);
            }
            // A local write may have overtaken it meanwhile: decided again, and recorded.
            let applied = persisted && remote.wins(self.get(name_bytes).as_deref(), true);
            let replaced = applied.then(|| self.put(name_bytes, presence));
            if !writing.in_flight.contains(&hash) {
                self.settle(host, extract(&mut writing.overlapped, hash));
            }
            (applied, replaced)
        };
        drop(replaced);
        if !persisted {
            return Err(WriteError::PersistFailed(name_bytes.to_vec()));
        }
        if applied {
            self.announce_current(host, stripe, name_bytes);
        }
        Ok(applied)
    }

    /// Gives AstDB memory's state of each name whose puts overlapped (see `Store::write`).
    fn settle(&self, host: &dyn Host, names: Vec<Vec<u8>>) {
        for other in names {
            if let (Some(now), Ok(other_c)) = (self.get(&other), CString::new(other)) {
                host.persist(&other_c, now.stored_c());
            }
        }
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
        assert_eq!(store.apply_remote(&host, c"bob", c"dnd,,far", &r), Ok(true));
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
            .write(&host, c"CustomPresence:bob", c"away,,newer")
            .unwrap();
        let before = (
            host.db.lock().unwrap().len(),
            host.announced.lock().unwrap().len(),
        );
        let r = remote();
        assert_eq!(store.apply_remote(&host, c"bob", c"dnd", &r), Ok(false));
        assert!(store.apply_remote(&host, c"bob", c"bored", &r).is_err());
        assert!(store.apply_remote(&host, c"a,b", c"dnd", &r).is_err());
        assert!(store.apply_remote(&host, c"", c"dnd", &r).is_err());
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
            store.apply_remote(&failing, c"bob", c"dnd", &r),
            Err(WriteError::PersistFailed(b"bob".to_vec()))
        );
        assert!(store.get(b"bob").is_none() && !r.recorded.load(Ordering::Relaxed));
    }
}
