//! `PresenceStateChanged` to ARI apps: the `presence:` event source's callbacks, and one
//! subscription to Asterisk's presence topic that turns every change announced there, whatever
//! made it, into an event for each app subscribed (the logic is `core::ari::events`).

use super::bindings::{self, stasis_message, stasis_subscription};
use super::boundary::{c_bytes, guard};
use super::host::{from_asterisk, STORE};
use super::json::{self, Owned};
use crate::core::ari::Subscriptions;
use crate::core::ari::{changed_event, custom_state_json, provider_state_json, subscribes_all};
use crate::core::custom_presence_name;
use crate::core::expiry::{Clock, SystemClock};
use crate::core::shown;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{LazyLock, Mutex, PoisonError};

/// Which app is subscribed to what.
static SUBSCRIPTIONS: LazyLock<Subscriptions> = LazyLock::new(Subscriptions::default);

/// The subscription to the presence topic while the module is loaded.
struct Topic(*mut stasis_subscription);
// SAFETY: a Stasis subscription handle may be used (unsubscribed) from any thread.
unsafe impl Send for Topic {}
static TOPIC: Mutex<Option<Topic>> = Mutex::new(None);

/// Subscribes to the presence topic and takes the `subscribeAll` apps registered before the
/// module was loaded. False if Stasis refused the subscription.
pub(crate) fn start() -> bool {
    // SAFETY: on_presence has the callback's signature and no data; the subscription is
    // joined at stop, before the module goes away.
    let handle =
        unsafe { bindings::fprs_shim_subscribe_presence(Some(on_presence), std::ptr::null_mut()) };
    if handle.is_null() {
        error!("Could not subscribe to presence changes for ARI events");
        return false;
    }
    *TOPIC.lock().unwrap_or_else(PoisonError::into_inner) = Some(Topic(handle));
    adopt_subscribe_all_apps();
    true
}

/// Ends the subscription (waiting for a change being sent) and forgets every app's.
pub(crate) fn stop() {
    let topic = TOPIC.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(Topic(handle)) = topic {
        // SAFETY: handle came from stasis_subscribe; once joined no callback runs.
        unsafe { bindings::stasis_unsubscribe_and_join(handle) };
    }
    SUBSCRIPTIONS.clear();
}

/// Asterisk calls a source's subscribe for a `subscribeAll` app once, when the app registers:
/// an app that registered before this module was loaded (or while it was unloaded) would never
/// hear of presence. Each registered app is looked at once here, and the ones registered with
/// `subscribeAll` (see `core::ari::subscribes_all`) are subscribed to every name.
fn adopt_subscribe_all_apps() {
    // SAFETY: returns a new JSON array of names (or NULL), released by Owned.
    let Some(names) = Owned::new(unsafe { bindings::fprs_shim_stasis_app_names() }) else {
        return;
    };
    // SAFETY: names is a live array (size 0 otherwise).
    let count = unsafe { bindings::ast_json_array_size(names.as_ptr()) };
    let mut adopted = 0;
    for i in 0..count {
        // SAFETY: i < count; the string belongs to names, copied before names is released.
        let Some(name) = (unsafe {
            c_bytes(bindings::ast_json_string_get(bindings::ast_json_array_get(
                names.as_ptr(),
                i,
            )))
        })
        .map(<[u8]>::to_vec) else {
            continue;
        };
        let Ok(name_c) = CString::new(name.as_slice()) else {
            continue;
        };
        // SAFETY: name_c is NUL-terminated; the JSON returned is new (or NULL).
        let Some(app) = Owned::new(unsafe { bindings::fprs_shim_stasis_app_json(name_c.as_ptr()) })
        else {
            continue;
        };
        // SAFETY: app is a live object, alive while the borrowed strings are used.
        let all = unsafe {
            subscribes_all(
                &json::string_array(app.as_ptr(), c"channel_ids"),
                &json::string_array(app.as_ptr(), c"bridge_ids"),
                &json::string_array(app.as_ptr(), c"endpoint_ids"),
            )
        };
        if all {
            SUBSCRIPTIONS.subscribe(&name, None);
            adopted += 1;
        }
    }
    if adopted > 0 {
        notice!(
            "{adopted} ARI applications registered with subscribeAll before this module was \
             loaded now get PresenceStateChanged events"
        );
    }
}

/// A change on the presence topic: an event for each app subscribed to it.
extern "C" fn on_presence(
    _data: *mut c_void,
    _sub: *mut stasis_subscription,
    msg: *mut stasis_message,
) {
    guard("ARI presence events", (), || {
        let (mut state, mut provider, mut subtype, mut message) = (
            0,
            std::ptr::null::<c_char>(),
            std::ptr::null::<c_char>(),
            std::ptr::null::<c_char>(),
        );
        // SAFETY: msg is the message being delivered; the out-pointers are valid locals.
        if unsafe {
            bindings::fprs_shim_presence_message(
                msg,
                &mut state,
                &mut provider,
                &mut subtype,
                &mut message,
            )
        } != 0
        {
            return;
        }
        // SAFETY: the fields are NUL-terminated strings of msg, alive during the callback.
        let (provider, subtype, message) = unsafe {
            (
                c_bytes(provider).unwrap_or_default(),
                c_bytes(subtype).unwrap_or_default(),
                c_bytes(message).unwrap_or_default(),
            )
        };
        let apps = SUBSCRIPTIONS.recipients(provider);
        if apps.is_empty() {
            return;
        }
        let Some(state) = from_asterisk(state) else {
            return;
        };
        // A state of ours carries its last change and expiry, when memory still holds the very
        // state announced (a newer write may have replaced it already: then it goes as sent).
        let stored = custom_presence_name(provider).and_then(|name| {
            let presence = STORE.get(name)?;
            let same = presence.state() == state
                && presence.subtype() == subtype
                && presence.message() == message;
            same.then(|| custom_state_json(name, &presence, STORE.change_of(name)))
        });
        let presence_state =
            stored.unwrap_or_else(|| provider_state_json(provider, state, subtype, message));
        let event = changed_event(presence_state, SystemClock.now_ms());
        for app in apps {
            send(&app, &event);
        }
    })
}

/// Sends `event` to `app` (a copy each: Asterisk adds the app's own fields to it).
fn send(app: &[u8], event: &crate::core::ari::Json) {
    let (Ok(app_c), Some(event)) = (CString::new(app), json::build(event)) else {
        warning!(
            "Could not build a PresenceStateChanged event for ARI app {}",
            shown(app)
        );
        return;
    };
    // SAFETY: app_c is NUL-terminated; event is live, released by Owned after the call
    // (Asterisk takes its own references).
    if unsafe { bindings::fprs_shim_ari_send(app_c.as_ptr(), event.as_ptr()) } != 0 {
        // Gone without unsubscribing (Asterisk logged it): no more events for it.
        SUBSCRIPTIONS.forget(app);
    }
}

/// The id after `presence:` (NULL or empty: every name).
///
/// # Safety
/// `id` is NULL or a NUL-terminated string alive for the call.
unsafe fn id<'a>(id: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: as the caller guarantees.
    unsafe { c_bytes(id) }.filter(|id| !id.is_empty())
}

#[no_mangle]
pub extern "C" fn fprs_ari_source_accepts(id: *const c_char) -> c_int {
    guard("ARI event source presence:", 0, || {
        // SAFETY: Asterisk's NUL-terminated id.
        let id = unsafe { c_bytes(id) }.unwrap_or_default();
        if Subscriptions::accepts(id) {
            1
        } else {
            warning!(
                "ARI subscription to presence:{} refused: name one presence state as \
                 presence:<provider>:<name> (e.g. presence:CustomPresence:alice), or every one \
                 as presence:",
                shown(id)
            );
            0
        }
    })
}

#[no_mangle]
pub extern "C" fn fprs_ari_source_subscribe(app: *const c_char, name: *const c_char) -> c_int {
    guard("ARI event source presence:", -1, || {
        // SAFETY: Asterisk's NUL-terminated strings, alive for the call.
        let (Some(app), name) = (unsafe { c_bytes(app) }, unsafe { id(name) }) else {
            return -1;
        };
        SUBSCRIPTIONS.subscribe(app, name);
        0
    })
}

#[no_mangle]
pub extern "C" fn fprs_ari_source_unsubscribe(app: *const c_char, name: *const c_char) -> c_int {
    guard("ARI event source presence:", -1, || {
        // SAFETY: as above.
        let (Some(app), name) = (unsafe { c_bytes(app) }, unsafe { id(name) }) else {
            return -1;
        };
        if SUBSCRIPTIONS.unsubscribe(app, name) {
            0
        } else {
            -1
        }
    })
}

#[no_mangle]
pub extern "C" fn fprs_ari_source_is_subscribed(app: *const c_char, name: *const c_char) -> c_int {
    guard("ARI event source presence:", 0, || {
        // SAFETY: as above.
        let (Some(app), name) = (unsafe { c_bytes(app) }, unsafe { id(name) }) else {
            return 0;
        };
        c_int::from(SUBSCRIPTIONS.is_subscribed(app, name))
    })
}
