//! The store's announcements: one thread per stripe at a time announces, the others queue
//! their names for it (see [`Store`]).

use super::{fnv1a, lock_ignoring_poison, stripe_of, Host, Name, Store, Stripe};
use crate::core::value::Presence;

/// The announcement queue of one stripe.
#[derive(Default)]
pub(super) struct Announcing {
    /// A thread is announcing this stripe's names; it takes `queued` before it stops.
    pub(super) busy: bool,
    queued: Vec<Vec<u8>>,
}

/// The thread announcing a stripe's names. Should announcing panic, dropping it frees the
/// stripe for the next announcer, so it is never left busy.
pub(super) struct Announcer<'a> {
    stripe: &'a Stripe,
    done: bool,
}

impl Drop for Announcer<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock_ignoring_poison(&self.stripe.announcing).busy = false;
        }
    }
}

impl Store {
    /// Announces the current state of each name (`None` for names no longer stored), or leaves
    /// it to the writer already announcing on its stripe.
    pub fn announce(&self, host: &dyn Host, names: &[Name]) {
        for name in names {
            self.announce_current(host, &self.stripes[stripe_of(fnv1a(name))], name);
        }
    }

    /// Announces what memory holds for `name` (`None` once it is gone), or queues it for the
    /// thread already announcing on its stripe (`stripe`, the name's).
    pub(super) fn announce_current(&self, host: &dyn Host, stripe: &Stripe, name: &[u8]) {
        if let Some(announcer) = self.claim(stripe, name) {
            self.announce_both(host, name);
            self.announce_queued(host, announcer);
        }
    }

    /// Makes the caller the announcer of `stripe` (`name`'s), or queues `name` for the one
    /// under way (`None`). A writer calls it under the stripe's write lock, just after its
    /// put: every later change of the name then finds the stripe busy and queues the name, so
    /// the writer may announce the state it put without reading memory again.
    pub(super) fn claim<'a>(&self, stripe: &'a Stripe, name: &[u8]) -> Option<Announcer<'a>> {
        let mut announcing = lock_ignoring_poison(&stripe.announcing);
        if announcing.busy {
            announcing.queued.push(name.to_vec());
            return None;
        }
        announcing.busy = true;
        Some(Announcer {
            stripe,
            done: false,
        })
    }

    /// As the stripe's announcer ([`Store::claim`]d just after putting `presence` as the state
    /// of `name`): announces it, then what others queued meanwhile.
    pub(super) fn announce_put(
        &self,
        host: &dyn Host,
        announcer: Announcer<'_>,
        name: &[u8],
        presence: Option<&Presence>,
    ) {
        self.announce_state(host, name, presence);
        self.announce_queued(host, announcer);
    }

    /// Announces memory's state of every name queued on the announcer's stripe, until none
    /// is left; then the stripe is free.
    fn announce_queued(&self, host: &dyn Host, mut announcer: Announcer<'_>) {
        let mut batch = Vec::new();
        loop {
            {
                let mut announcing = lock_ignoring_poison(&announcer.stripe.announcing);
                if announcing.queued.is_empty() {
                    announcing.busy = false;
                    announcer.done = true;
                    return;
                }
                std::mem::swap(&mut announcing.queued, &mut batch);
            }
            batch.sort_unstable();
            batch.dedup();
            for name in batch.drain(..) {
                self.announce_both(host, &name);
            }
        }
    }
}
