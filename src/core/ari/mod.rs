//! ARI: the `/ari/presenceStates` resource, its `PresenceStateChanged` events and the
//! `presence:` event source, as Asterisk-free logic. The FFI layer (`ffi::ari`,
//! `ffi::ari_events`) turns Asterisk's request into the inputs here and the [`Json`] answers
//! into Asterisk's JSON; what each status code means and the shape of every object is decided
//! here, and described to clients by `rest-api/presenceStates.json`.

mod json;
pub use json::{Json, Param};

mod auth;
pub use auth::ari_user;

mod resource;
pub use resource::{
    amend_listing, custom_state_json, delete, get, list, provider_state_json, put, Presences,
    Request, Response, Status, DECLARATION, LISTING_PATH,
};

mod events;
pub use events::{changed_event, subscribes_all, Subscriptions, EVENT_TYPE};

#[cfg(test)]
mod tests;

use crate::core::setting::Setting;

/// Whether ARI is on, as res_ari reads `ari.conf`: `[general] enabled`, default yes, true only
/// for Asterisk's true words. The module offers its HTTP pages only then.
pub fn ari_enabled(settings: &[Setting<'_>]) -> bool {
    settings
        .iter()
        .rfind(|s| s.section.eq_ignore_ascii_case(b"general") && s.is("enabled"))
        .is_none_or(|s| {
            let value = s.value.trim_ascii();
            ["yes", "true", "y", "t", "1", "on"]
                .iter()
                .any(|w| value.eq_ignore_ascii_case(w.as_bytes()))
        })
}
