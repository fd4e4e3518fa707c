//! The `CustomPresence` device-state provider and device-state announcements, so hints such as
//! `exten => 300,hint,CustomPresence:erin` and BLF keys of phones that know only device state
//! follow presence.

use super::bindings::{self, ast_device_state as ast_dev, ast_devstate_cache};
use super::boundary::{c_bytes, guard};
use super::host::{with_provider, STORE};
use crate::core::device_state::DeviceState;
use crate::core::{shown, PROVIDER_LABEL};
use std::ffi::{c_char, CStr};

const LABEL: &CStr = c"CustomPresence";

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

pub(crate) fn register_provider() -> bool {
    debug_assert_eq!(LABEL.to_bytes(), PROVIDER_LABEL.as_bytes());
    // SAFETY: LABEL is NUL-terminated (Asterisk copies it); the callback has the provider's
    // signature and stays loaded until the provider is deleted at unload.
    unsafe { bindings::ast_devstate_prov_add(LABEL.as_ptr(), Some(fprs_devstate_provider)) == 0 }
}

pub(crate) fn unregister_provider() {
    // SAFETY: LABEL is NUL-terminated. Asterisk deletes under its provider list's write lock,
    // so no call of the callback is running once this returns.
    unsafe { bindings::ast_devstate_prov_del(LABEL.as_ptr()) };
}
