//! Timed states in a running Asterisk: the expiry thread, and the expiry records in AstDB
//! family `CustomPresenceMeta` (deadline and revert state) that carry them over a restart.

use super::bindings;
use super::boundary::{asterisk_free, c_bytes, guard};
use super::host::{with_family_entries, Asterisk, STORE};
use crate::core::expiry::{
    record_timing, stored_timing, ExpiryThread, SystemClock, Timing, EXPIRES_MS,
};
use crate::core::meta::{Meta, FAMILY};
use crate::core::store::{Replaced, TimingOf};
use crate::core::{shown, PROVIDER_PREFIX};
use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use std::sync::{Mutex, PoisonError};

/// The AstDB family of the module's own records, as a C string.
fn meta_family() -> CString {
    CString::new(FAMILY).expect("the family name holds no NUL")
}

/// The expiry thread while the module is loaded.
static THREAD: Mutex<Option<ExpiryThread>> = Mutex::new(None);

/// Starts the expiry thread (at load, once the states are loaded and every callback is
/// registered). False if the system could not start a thread.
pub(crate) fn start() -> bool {
    let fire = |due| {
        guard("presence expiry", (), || {
            for name in STORE.expire_all(&Asterisk, due) {
                warning!(
                    "{PROVIDER_PREFIX}{} has expired but AstDB refused its revert; it keeps \
                     its timed state and is tried again in 10 seconds",
                    shown(&name)
                );
            }
        })
    };
    match ExpiryThread::start(STORE.expiries(), &SystemClock, fire) {
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

/// The record of `name` in `CustomPresenceMeta`: `Ok(None)` when there is none.
fn read_meta(family: &CStr, name: &CStr) -> Result<Option<Meta>, String> {
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: family and name are NUL-terminated; out is a valid out-pointer. On success
    // Asterisk stores a string from its allocator there, freed below.
    let found = unsafe { bindings::ast_db_get_allocated(family.as_ptr(), name.as_ptr(), &mut out) };
    if found != 0 || out.is_null() {
        return Ok(None);
    }
    // SAFETY: out is the NUL-terminated string Asterisk just allocated; copied before freeing.
    let parsed = Meta::parse(unsafe { c_bytes(out) }.unwrap_or_default());
    // SAFETY: out came from Asterisk's allocator and is not used after this.
    unsafe { asterisk_free(out) };
    parsed.map(Some).map_err(|error| error.to_string())
}

/// Records (or, for `None`, removes) the expiry of `name`'s state stored as `stored`, keeping
/// every other field of its record.
pub(crate) fn persist_timing(name: &CStr, stored: &[u8], timing: Option<&Timing>) {
    let family = meta_family();
    let mut meta = match read_meta(&family, name) {
        Ok(meta) => meta.unwrap_or_default(),
        Err(error) => {
            warning!(
                "{FAMILY}/{} could not be read ({error}); it is replaced by a new record",
                shown(name.to_bytes())
            );
            Meta::default()
        }
    };
    if timing.is_none() && meta.get(EXPIRES_MS).is_none() {
        return;
    }
    record_timing(&mut meta, stored, timing);
    let stored_ok = if meta.is_empty() {
        // SAFETY: both NUL-terminated, only read during the call.
        unsafe { bindings::ast_db_del(family.as_ptr(), name.as_ptr()) };
        true
    } else {
        // The record escapes control bytes, so it holds no NUL.
        CString::new(meta.encode()).is_ok_and(|record| {
            // SAFETY: three NUL-terminated strings, only read during the call.
            unsafe { bindings::ast_db_put(family.as_ptr(), name.as_ptr(), record.as_ptr()) == 0 }
        })
    };
    if !stored_ok && timing.is_some() {
        warning!(
            "AstDB refused the expiry record of {PROVIDER_PREFIX}{}: it expires on time, but \
             not after a restart",
            shown(name.to_bytes())
        );
    }
}

/// Calls `f` with the expiry each `(name, value)` has recorded in `CustomPresenceMeta`.
pub(crate) fn with_recorded_timings<R>(f: impl FnOnce(TimingOf<'_>) -> R) -> R {
    with_family_entries(&meta_family(), |records| {
        let by_name: HashMap<&[u8], &[u8]> = records.iter().copied().collect();
        let timing_of = |name: &[u8], value: &[u8]| {
            let record = by_name.get(name)?;
            match Meta::parse(record) {
                Ok(meta) => stored_timing(&meta, value),
                Err(error) => {
                    warning!(
                        "{FAMILY}/{} = '{}' is not a record this module can read ({error}); \
                         it is ignored (the state is not timed)",
                        shown(name),
                        shown(record)
                    );
                    None
                }
            }
        };
        f(&timing_of)
    })
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
