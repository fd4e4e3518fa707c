//! The `CustomPresence` device-state provider and device-state announcements, so hints such as
//! `exten => 300,hint,CustomPresence:erin` and BLF keys of phones that know only device state
//! follow presence. Only with `[device_state] enabled = yes`: stock has no such provider, so by
//! default a hint naming `CustomPresence:x` among its devices ignores presence, as with stock.

use super::bindings::{self, ast_device_state as ast_dev, ast_devstate_cache};
use super::boundary::{c_bytes, guard};
use super::host::{with_provider, Asterisk, STORE};
use crate::core::device_state::{DeviceState, Remapped};
use crate::core::{shown, PROVIDER_LABEL};
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

const LABEL: &CStr = c"CustomPresence";

const OFF: u8 = 0;
const ON: u8 = 1;
/// Being switched off by a reload: the provider is gone and each name is announced INVALID
/// once, so hints drop what it last said.
const LEAVING: u8 = 2;

/// `[device_state] enabled` as in force: OFF, ON or LEAVING.
static MODE: AtomicU8 = AtomicU8::new(OFF);
/// Whether the provider is registered with Asterisk.
static REGISTERED: AtomicBool = AtomicBool::new(false);

pub(crate) fn enabled() -> bool {
    MODE.load(Ordering::Relaxed) == ON
}

/// Load and unload: puts the setting in force before the provider is registered, or after it
/// is gone.
pub(crate) fn set_enabled(enabled: bool) {
    MODE.store(if enabled { ON } else { OFF }, Ordering::Relaxed);
}

/// Reload: registers or removes the provider as `enabled` now says; on a change, every name's
/// device state is announced again (the provider's answer, or INVALID once it is gone, as
/// stock's hints see such a device). Returns whether the setting changed.
pub(crate) fn follow(enabled: bool) -> bool {
    if enabled == REGISTERED.load(Ordering::Relaxed) {
        return false;
    }
    if enabled {
        set_enabled(true);
        if !register_provider() {
            error!("Could not register the CustomPresence device-state provider");
            set_enabled(false);
            return false;
        }
    } else {
        MODE.store(LEAVING, Ordering::Relaxed);
        unregister_provider();
    }
    STORE.announce_device_states(&Asterisk, Remapped::all());
    set_enabled(enabled);
    true
}

fn to_asterisk(state: DeviceState) -> ast_dev::Type {
    match state {
        DeviceState::Unknown => ast_dev::AST_DEVICE_UNKNOWN,
        DeviceState::NotInuse => ast_dev::AST_DEVICE_NOT_INUSE,
        DeviceState::Inuse => ast_dev::AST_DEVICE_INUSE,
        DeviceState::Busy => ast_dev::AST_DEVICE_BUSY,
        DeviceState::Invalid => ast_dev::AST_DEVICE_INVALID,
        DeviceState::Unavailable => ast_dev::AST_DEVICE_UNAVAILABLE,
        DeviceState::Ringing => ast_dev::AST_DEVICE_RINGING,
        DeviceState::RingInuse => ast_dev::AST_DEVICE_RINGINUSE,
        DeviceState::OnHold => ast_dev::AST_DEVICE_ONHOLD,
    }
}

/// Announces the device state of `CustomPresence:<name>` (`state`, the provider's answer now)
/// to hints, queues, SIP dialog subscriptions and AMI `DeviceStateChange`.
///
/// Cachable, as `state`, only for a name holding '/': Asterisk reads such a device as a channel
/// (`CustomPresence:team` / `alice`), never from the provider, so only its cache can answer.
/// Every other name is announced not cachable and as UNKNOWN, which Asterisk takes as "ask the
/// provider": its device-state thread asks, off this (writing) thread, and publishes the
/// answer, and Asterisk asks again whenever it needs the state. The cache costs more than it
/// gives here: each cachable device gets a Stasis topic that Asterisk never frees, in a pool of
/// 57 hash buckets scanned by name, so every new name costs more than the one before: a fresh
/// cluster node took 27.8 s instead of 5.4 s to take 100,000 states, and leaving the publish to
/// Asterisk's thread raised the cluster's throughput by about a tenth (docs/BENCHMARKS.md,
/// "Device states: cachable or not", "Several servers").
pub(crate) fn announce(name: &[u8], state: DeviceState) {
    let state = match MODE.load(Ordering::Relaxed) {
        ON => state,
        LEAVING => DeviceState::Invalid,
        _ => return,
    };
    with_provider(name, |device| {
        let Some(device) = device else {
            error!(
                "{PROVIDER_LABEL}:{} holds a NUL byte; its device state cannot be announced",
                shown(name)
            );
            return;
        };
        let (state, cache) = if name.contains(&b'/') {
            (
                to_asterisk(state),
                ast_devstate_cache::AST_DEVSTATE_CACHABLE,
            )
        } else {
            (
                ast_dev::AST_DEVICE_UNKNOWN,
                ast_devstate_cache::AST_DEVSTATE_NOT_CACHABLE,
            )
        };
        // SAFETY: device is NUL-terminated and only read during the call (Asterisk copies it).
        unsafe {
            bindings::ast_devstate_changed_literal(state, cache, device.as_ptr());
        }
    });
}

/// The provider callback: the device state of `CustomPresence:<data>`.
#[no_mangle]
pub extern "C" fn fprs_devstate_provider(data: *const c_char) -> ast_dev::Type {
    guard(
        "CustomPresence device-state provider",
        ast_dev::AST_DEVICE_INVALID,
        || {
            // SAFETY: data is the NUL-terminated text after "CustomPresence:", alive for the call.
            let name = unsafe { c_bytes(data) }.unwrap_or_default();
            to_asterisk(STORE.device_state(name))
        },
    )
}

/// At load: registers the provider if the setting asks for it.
pub(crate) fn register_provider() -> bool {
    debug_assert_eq!(LABEL.to_bytes(), PROVIDER_LABEL.as_bytes());
    if !enabled() {
        return true;
    }
    // SAFETY: LABEL is NUL-terminated (Asterisk copies it); the callback has the provider's
    // signature and stays loaded until the provider is deleted at unload.
    let done = unsafe {
        bindings::ast_devstate_prov_add(LABEL.as_ptr(), Some(fprs_devstate_provider)) == 0
    };
    REGISTERED.store(done, Ordering::Relaxed);
    done
}

pub(crate) fn unregister_provider() {
    if !REGISTERED.swap(false, Ordering::Relaxed) {
        return;
    }
    // SAFETY: LABEL is NUL-terminated. Asterisk deletes under its provider list's write lock,
    // so no call of the callback is running once this returns.
    unsafe { bindings::ast_devstate_prov_del(LABEL.as_ptr()) };
}
