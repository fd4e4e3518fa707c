//! The store's view of Asterisk: AstDB for persistence, Stasis (through the presence core) for
//! announcements, and the one global store every callback uses.

use super::bindings::{self, ast_presence_state as ast_state};
use super::boundary::{c_bytes, c_string};
use crate::core::state::PresenceState;
use crate::core::store::{Host, Store};
use crate::core::value::Presence;
use crate::core::{shown, PROVIDER_LABEL, PROVIDER_PREFIX};
use std::ffi::CStr;
use std::sync::LazyLock;

/// Every custom presence state. Filled at load, emptied at unload.
pub(crate) static STORE: LazyLock<Store> = LazyLock::new(Store::default);

/// The AstDB family, as the stock module names it.
const FAMILY: &CStr = c"CustomPresence";

pub(crate) fn to_asterisk(state: PresenceState) -> ast_state::Type {
    match state {
        PresenceState::NotSet => ast_state::AST_PRESENCE_NOT_SET,
        PresenceState::Unavailable => ast_state::AST_PRESENCE_UNAVAILABLE,
        PresenceState::Available => ast_state::AST_PRESENCE_AVAILABLE,
        PresenceState::Away => ast_state::AST_PRESENCE_AWAY,
        PresenceState::Xa => ast_state::AST_PRESENCE_XA,
        PresenceState::Chat => ast_state::AST_PRESENCE_CHAT,
        PresenceState::Dnd => ast_state::AST_PRESENCE_DND,
    }
}

/// `None` for `AST_PRESENCE_INVALID` or anything unknown.
pub(crate) fn from_asterisk(state: ast_state::Type) -> Option<PresenceState> {
    PresenceState::ALL
        .into_iter()
        .find(|&s| to_asterisk(s) == state)
}

/// The store's [`Host`] in a running Asterisk.
pub(crate) struct Asterisk;

impl Host for Asterisk {
    fn persist(&self, name: &[u8], value: &[u8]) -> bool {
        let (Some(key), Some(value)) = (c_string(name), c_string(value)) else {
            return false;
        };
        // SAFETY: three valid NUL-terminated strings, only read during the call.
        unsafe { bindings::ast_db_put(FAMILY.as_ptr(), key.as_ptr(), value.as_ptr()) == 0 }
    }

    fn announce(&self, name: &[u8], presence: Option<&Presence>) {
        let provider = c_string(&[PROVIDER_PREFIX.as_bytes(), name].concat());
        let (state, subtype, message) = match presence {
            Some(p) => (p.state(), c_string(p.subtype()), c_string(p.message())),
            // A state that is gone: for not_set the presence core asks our provider, which
            // answers not_set for an unknown name.
            None => (PresenceState::NotSet, c_string(b""), c_string(b"")),
        };
        let (Some(provider), Some(subtype), Some(message)) = (provider, subtype, message) else {
            // Names and stored values come from C strings and decoded values are checked for
            // NUL when parsed, so this cannot happen; say so loudly if it ever does.
            error!(
                "{PROVIDER_LABEL}:{} holds a NUL byte and cannot be announced",
                shown(name)
            );
            return;
        };
        // SAFETY: valid NUL-terminated strings, only read during the call (the core copies them).
        unsafe {
            bindings::ast_presence_state_changed_literal(
                to_asterisk(state),
                subtype.as_ptr(),
                message.as_ptr(),
                provider.as_ptr(),
            );
        }
    }
}

/// Every `(name, value)` of the `CustomPresence` AstDB family. Keys come back as
/// `/CustomPresence/<name>`; the name is everything after that prefix, `/` included.
pub(crate) fn read_astdb() -> Vec<(Vec<u8>, Vec<u8>)> {
    let prefix = [b"/", PROVIDER_LABEL.as_bytes(), b"/"].concat();
    let mut entries = Vec::new();
    // SAFETY: FAMILY is NUL-terminated; a NULL key tree asks for the whole family.
    let tree = unsafe { bindings::ast_db_gettree(FAMILY.as_ptr(), std::ptr::null()) };
    let mut entry = tree;
    while !entry.is_null() {
        // SAFETY: entry is a node of the list ast_db_gettree returned, alive until freetree;
        // its key and its inline data are NUL-terminated strings owned by the node.
        let (key, data, next) = unsafe {
            (
                c_bytes((*entry).key),
                c_bytes((*entry).data.as_ptr()),
                (*entry).next,
            )
        };
        if let (Some(key), Some(data)) = (key, data) {
            // AstDB matches the family with LIKE, which ignores case.
            if key.len() > prefix.len() && key[..prefix.len()].eq_ignore_ascii_case(&prefix) {
                entries.push((key[prefix.len()..].to_vec(), data.to_vec()));
            }
        }
        entry = next;
    }
    // SAFETY: tree came from ast_db_gettree (or is NULL) and none of its nodes is used after.
    unsafe { bindings::ast_db_freetree(tree) };
    entries
}

/// Re-reads AstDB into the store, warns about entries that cannot be used, and returns the
/// names whose announced state changed.
pub(crate) fn reload_from_astdb() -> Vec<Box<[u8]>> {
    let replaced = STORE.replace_all(read_astdb());
    for skipped in &replaced.skipped {
        warning!(
            "Skipping stored presence {PROVIDER_PREFIX}{} = '{}': {}. It stays in AstDB unchanged.",
            shown(&skipped.name),
            shown(&skipped.value),
            skipped.error
        );
    }
    replaced.changed
}
