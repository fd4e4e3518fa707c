//! Timed states in a running Asterisk: the expiry thread, and what a load did with the
//! expiries recorded in AstDB family `CustomPresenceMeta`.

use super::boundary::guard;
use super::host::{Asterisk, STORE};
use crate::core::expiry::{ExpiryThread, SystemClock};
use crate::core::store::Replaced;
use crate::core::{shown, PROVIDER_PREFIX};
use std::sync::{Mutex, PoisonError};

/// The expiry thread while the module is loaded.
static THREAD: Mutex<Option<ExpiryThread>> = Mutex::new(None);

/// Starts the expiry thread (at load, once the states are loaded and every callback is
/// registered). False if the system could not start a thread.
pub(crate) fn start() -> bool {
    let fire = |due: Vec<crate::core::expiry::Due>| {
        guard("presence expiry", (), || {
            let log_changes = super::host::log_changes();
            let mut reverted = |name: &[u8]| {
                if log_changes {
                    let now = STORE.get(name);
                    notice!(
                        "{PROVIDER_PREFIX}{} expired; reverted to '{}'",
                        shown(name),
                        shown(now.as_ref().map_or(&b"not_set"[..], |p| p.stored()))
                    );
                }
            };
            // A name a SIP publication set may have another publication to hand over to.
            #[cfg(feature = "sip")]
            for entry in &due {
                super::sip::expiring(&entry.name);
            }
            for name in STORE.expire_all(&Asterisk, due, &mut reverted) {
                warning!(
                    "{PROVIDER_PREFIX}{} has expired but AstDB refused its revert; it keeps \
                     its timed state and is tried again in 10 seconds",
                    shown(&name)
                );
            }
        })
    };
    let spawn = |body| super::thread::spawn(c"presence-expiry", body);
    match ExpiryThread::start(STORE.expiries(), &SystemClock, fire, spawn) {
        Ok(thread) => {
            *THREAD.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
            true
        }
        Err(error) => {
            error!("Could not start the presence expiry thread: {error}");
            false
        }
    }
}

/// Stops the expiry thread and waits for it (at unload, before anything it calls goes away).
pub(crate) fn stop() {
    let thread = THREAD.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(thread) = thread {
        thread.stop();
    }
}

/// After a load or reload: stores the states whose deadline passed while the module was not
/// running, and says what happened to expiries that could not be used.
pub(crate) fn report_load(replaced: &Replaced) {
    for (name, error) in &replaced.bad_timings {
        warning!(
            "The expiry recorded for {PROVIDER_PREFIX}{} is ignored: {error}. The state stays, \
             untimed.",
            shown(name)
        );
    }
    for name in STORE.persist_reverted(&Asterisk, &replaced.reverted) {
        warning!(
            "{PROVIDER_PREFIX}{} expired while the module was not running, but AstDB refused \
             its revert; it reverts in memory now and again at the next load",
            shown(&name)
        );
    }
    if !replaced.reverted.is_empty() {
        notice!(
            "{} timed presence states expired while the module was not running and were \
             reverted.",
            replaced.reverted.len()
        );
    }
}
