//! The store's announcements: one thread per stripe at a time announces, the others queue
//! their names for it (see [`Store`]).

use super::{fnv1a, lock_ignoring_poison, stripe_of, Host, Name, Store, Stripe};

/// The announcement queue of one stripe.
#[derive(Default)]
pub(super) struct Announcing {
    /// A thread is announcing this stripe's names; it takes `queued` before it stops.
    pub(super) busy: bool,
    queued: Vec<Vec<u8>>,
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
        {
            let mut announcing = lock_ignoring_poison(&stripe.announcing);
            if announcing.busy {
                announcing.queued.push(name.to_vec());
                return;
            }
            announcing.busy = true;
        }
        let _unbusy_on_panic = BusyUntilDone(stripe);
        self.announce_both(host, name);
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
                self.announce_both(host, &name);
            }
        }
    }
}
