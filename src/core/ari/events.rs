//! `PresenceStateChanged` events and the `presence:` event source.
//!
//! Apps subscribe through ARI (`POST /applications/{app}/subscription?eventSource=...`):
//! `presence:` for every presence state, `presence:<provider>` (e.g.
//! `presence:CustomPresence:alice`) for one. A `subscribeAll` app is subscribed to every
//! presence state by Asterisk itself, which calls the source's subscribe once, when the app
//! registers; an app that registered before this module was loaded is found at load by
//! [`subscribes_all`]. Every change announced on Asterisk's presence topic, whatever made it
//! (dialplan, AMI, CLI, ARI, an expiry, another server, another provider), goes to each app
//! subscribed to its name or to all.

use super::json::Json;
use crate::core::{custom_presence_name, PROVIDER_PREFIX};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The event's `type`.
pub const EVENT_TYPE: &str = "PresenceStateChanged";

/// What one app is subscribed to.
#[derive(Debug, Default)]
struct AppSubscription {
    /// `presence:` (or `subscribeAll`): every name.
    all: bool,
    /// `presence:<provider>`, each as [`canonical`] gives it.
    names: BTreeSet<Vec<u8>>,
}

/// Every app's presence subscription, by app name.
#[derive(Debug, Default)]
pub struct Subscriptions {
    apps: Mutex<HashMap<Vec<u8>, AppSubscription>>,
}

/// A provider as announcements name it: a `CustomPresence:` prefix in any case is written
/// `CustomPresence:` (the store announces that form), anything else as given.
fn canonical(provider: &[u8]) -> Vec<u8> {
    match custom_presence_name(provider) {
        Some(name) => [PROVIDER_PREFIX.as_bytes(), name].concat(),
        None => provider.to_vec(),
    }
}

impl Subscriptions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, AppSubscription>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `presence:<id>` names presence one can subscribe to: `<provider>:<name>`, both
    /// parts non-empty (a name not set yet is fine: its first change is an event).
    pub fn accepts(id: &[u8]) -> bool {
        match id.iter().position(|&b| b == b':') {
            Some(colon) => colon > 0 && colon + 1 < id.len(),
            None => false,
        }
    }

    /// Subscribes `app` to `id`'s changes, or to every name's (`None` or empty).
    pub fn subscribe(&self, app: &[u8], id: Option<&[u8]>) {
        let mut apps = self.lock();
        let subscription = apps.entry(app.to_vec()).or_default();
        match id.filter(|id| !id.is_empty()) {
            Some(id) => {
                subscription.names.insert(canonical(id));
            }
            None => subscription.all = true,
        }
    }

    /// Whether `app` is subscribed to `id`; for every name (`None` or empty): whether it has
    /// any presence subscription, so that the unsubscribe Asterisk makes for every source when
    /// an app goes away (with no id) removes them all.
    pub fn is_subscribed(&self, app: &[u8], id: Option<&[u8]>) -> bool {
        let apps = self.lock();
        let Some(subscription) = apps.get(app) else {
            return false;
        };
        match id.filter(|id| !id.is_empty()) {
            Some(id) => subscription.names.contains(&canonical(id)),
            None => subscription.all || !subscription.names.is_empty(),
        }
    }

    /// Ends `app`'s subscription to `id`, or every presence subscription it has (`None` or
    /// empty). False when there was none.
    pub fn unsubscribe(&self, app: &[u8], id: Option<&[u8]>) -> bool {
        let mut apps = self.lock();
        let Some(subscription) = apps.get_mut(app) else {
            return false;
        };
        let removed = match id.filter(|id| !id.is_empty()) {
            Some(id) => subscription.names.remove(&canonical(id)),
            None => {
                apps.remove(app);
                return true;
            }
        };
        if !subscription.all && subscription.names.is_empty() {
            apps.remove(app);
        }
        removed
    }

    /// The apps to tell about a change of `provider`.
    pub fn recipients(&self, provider: &[u8]) -> Vec<Vec<u8>> {
        let apps = self.lock();
        if apps.is_empty() {
            return Vec::new();
        }
        let provider = canonical(provider);
        apps.iter()
            .filter(|(_, s)| s.all || s.names.contains(&provider))
            .map(|(app, _)| app.clone())
            .collect()
    }

    /// Forgets `app` (it is no longer registered).
    pub fn forget(&self, app: &[u8]) {
        self.lock().remove(app);
    }

    /// Forgets every subscription (at unload).
    pub fn clear(&self) {
        *self.lock() = HashMap::new();
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Whether an app, as `GET /applications/{app}` shows it (its `channel_ids`, `bridge_ids` and
/// `endpoint_ids`), was registered with `subscribeAll`: Asterisk then subscribes it to every
/// channel, bridge and endpoint, which it shows as these three ids, and records nothing else
/// an API can read.
pub fn subscribes_all(channel_ids: &[&str], bridge_ids: &[&str], endpoint_ids: &[&str]) -> bool {
    channel_ids.contains(&"__AST_CHANNEL_ALL_TOPIC")
        && bridge_ids.contains(&"__AST_BRIDGE_ALL_TOPIC")
        && endpoint_ids.contains(&"__AST_ENDPOINT_ALL_TOPIC")
}

/// The event for a change: `presence_state` is the `PresenceState` object, `now_ms` the time.
/// (Asterisk adds `application` and `asterisk_id` as it sends it.)
pub fn changed_event(presence_state: Json, now_ms: u64) -> Json {
    Json::Object(vec![
        ("type", Json::Str(EVENT_TYPE.to_string())),
        ("timestamp", Json::Time(now_ms)),
        ("presence_state", presence_state),
    ])
}
