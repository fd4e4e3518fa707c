//! `PresenceStateChanged` to ARI apps: the `presence:` event source's callbacks, and a
//! subscription to Asterisk's presence topic (while any app is subscribed) that turns every
//! change announced there, whatever made it, into an event for each app subscribed (the logic
//! is `core::ari::events`).

use super::bindings::{self, stasis_message, stasis_subscription};
use super::boundary::{c_bytes, guard};
use super::host::{from_asterisk, presence_message, PresenceMessage, STORE};
use super::json::{self, Owned};
use crate::core::ari::Subscriptions;
use crate::core::ari::{changed_event, custom_state_json, provider_state_json, subscribes_all};
use crate::core::custom_presence_name;
use crate::core::expiry::{Clock, SystemClock};
use crate::core::shown;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

/// Which app is subscribed to what.
static SUBSCRIPTIONS: LazyLock<Subscriptions> = LazyLock::new(Subscriptions::default);

/// A subscription to Asterisk's presence topic.
struct Handle(*mut stasis_subscription);
// SAFETY: a Stasis subscription handle may be used from any thread.
unsafe impl Send for Handle {}

/// The presence topic is followed only while some app is subscribed, as Asterisk's own
/// device-state source does: with none, a change costs nothing here (a subscriber on the
/// topic costs every write a wake-up of its thread; bench/ari). A subscription that is no
/// longer needed is retired without waiting for it (the last app may leave in a callback
/// Asterisk makes while holding the locks the subscription's own callback may wait for), and
/// released once it has delivered its last message, at the latest at unload.
#[derive(Default)]
struct Topic {
    live: Option<Handle>,
    retired: Vec<Handle>,
}

static TOPIC: Mutex<Topic> = Mutex::new(Topic {
    live: None,
    retired: Vec::new(),
});

fn topic() -> MutexGuard<'static, Topic> {
    TOPIC.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Topic {
    /// Follows the presence topic (if not already); false if Stasis refused.
    fn follow(&mut self) -> bool {
        if self.live.is_some() {
            return true;
        }
        // SAFETY: on_presence has the callback's signature and no data; the subscription is
        // retired or joined before the module goes away.
        let handle = unsafe {
            bindings::fprs_shim_subscribe_presence(Some(on_presence), std::ptr::null_mut())
        };
        if handle.is_null() {
            error!("Could not subscribe to presence changes for ARI events");
            return false;
        }
        self.live = Some(Handle(handle));
        true
    }

    /// Stops following the topic when no app is subscribed; releases retired subscriptions
    /// that are done.
    fn rest(&mut self) {
        if SUBSCRIPTIONS.is_empty() {
            if let Some(Handle(live)) = self.live.take() {
                // SAFETY: live is our subscription; the handle stays valid until reaped.
                let retired = unsafe { bindings::fprs_shim_retire_subscription(live) };
                self.retired.push(Handle(retired));
            }
        }
        self.retired.retain(|Handle(sub)| {
            // SAFETY: a retired handle, not reaped yet.
            let done = unsafe { bindings::fprs_shim_subscription_done(*sub) } != 0;
            if done {
                // SAFETY: done: joining returns at once; the handle is released here, once.
                unsafe { bindings::fprs_shim_reap_subscription(*sub) };
            }
            !done
        });
    }
}

/// At load: takes the `subscribeAll` apps registered before the module was loaded. False if
/// Stasis refused the subscription they need.
pub(crate) fn start() -> bool {
    let mut topic = topic();
    adopt_subscribe_all_apps();
    SUBSCRIPTIONS.is_empty() || topic.follow()
}

/// At unload, once no callback of the event source can run: ends the subscriptions (waiting
/// for a change being sent) and forgets every app's.
pub(crate) fn stop() {
    let Topic { live, retired } = std::mem::take(&mut *topic());
    if let Some(Handle(live)) = live {
        // SAFETY: live came from stasis_subscribe; once joined no callback runs.
        unsafe { bindings::stasis_unsubscribe_and_join(live) };
    }
    for Handle(sub) in retired {
        // SAFETY: a retired handle, reaped once, here.
        unsafe { bindings::fprs_shim_reap_subscription(sub) };
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
                &json::strings_of(app.as_ptr(), c"channel_ids", None),
                &json::strings_of(app.as_ptr(), c"bridge_ids", None),
                &json::strings_of(app.as_ptr(), c"endpoint_ids", None),
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
        // SAFETY: msg is the message being delivered, alive during the callback.
        let Some(PresenceMessage {
            state,
            provider,
            subtype,
            message,
        }) = (unsafe { presence_message(msg) })
        else {
            return;
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
        let mut topic = topic();
        SUBSCRIPTIONS.subscribe(app, name);
        if topic.follow() {
            0
        } else {
            SUBSCRIPTIONS.unsubscribe(app, name);
            -1
        }
    })
}

#[no_mangle]
pub extern "C" fn fprs_ari_source_unsubscribe(app: *const c_char, name: *const c_char) -> c_int {
    guard("ARI event source presence:", -1, || {
        // SAFETY: as above.
        let (Some(app), name) = (unsafe { c_bytes(app) }, unsafe { id(name) }) else {
            return -1;
        };
        let mut topic = topic();
        let done = SUBSCRIPTIONS.unsubscribe(app, name);
        topic.rest();
        if done {
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
