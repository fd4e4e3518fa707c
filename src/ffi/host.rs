//! The store's view of Asterisk: AstDB for persistence, Stasis (through the presence core) for
//! announcements, and the one global store every callback uses.

use super::bindings::{self, ast_presence_state as ast_state};
use super::boundary::c_bytes;
use crate::core::state::PresenceState;
use crate::core::store::{Host, Name, Store};
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
    fn persist(&self, name: &CStr, value: &CStr) -> bool {
        // SAFETY: three valid NUL-terminated strings, only read during the call.
        unsafe { bindings::ast_db_put(FAMILY.as_ptr(), name.as_ptr(), value.as_ptr()) == 0 }
    }

    fn announce(&self, name: &[u8], presence: Option<&Presence>) {
        let (state, subtype, message) = match presence {
            Some(p) => (p.state(), p.subtype_c(), p.message_c()),
            // A state that is gone: for not_set the presence core asks our provider, which
            // answers not_set for an unknown name.
            None => (PresenceState::NotSet, c"", c""),
        };
        with_provider(name, |provider| {
            let Some(provider) = provider else {
                // Names come from C strings (writes, AstDB keys), so this cannot happen; say
                // so loudly if it ever does.
                error!(
                    "{PROVIDER_LABEL}:{} holds a NUL byte and cannot be announced",
                    shown(name)
                );
                return;
            };
            // SAFETY: valid NUL-terminated strings, only read during the call (the core copies
            // them).
            unsafe {
                bindings::ast_presence_state_changed_literal(
                    to_asterisk(state),
                    subtype.as_ptr(),
                    message.as_ptr(),
                    provider.as_ptr(),
                );
            }
        });
    }

    #[cfg(feature = "cluster")]
    fn committed(&self, name: &[u8], value: &CStr) {
        super::cluster::committed(name, value);
    }
}

/// Calls `f` with `CustomPresence:<name>` as a C string (`None` if the name holds a NUL),
/// built on the stack for names of usual length so an announcement allocates nothing.
fn with_provider<R>(name: &[u8], f: impl FnOnce(Option<&CStr>) -> R) -> R {
    let prefix = PROVIDER_PREFIX.as_bytes();
    let len = prefix.len() + name.len() + 1;
    let mut on_stack = [0u8; 256];
    let mut on_heap = Vec::new();
    let text: &mut [u8] = if len <= on_stack.len() {
        &mut on_stack[..len]
    } else {
        on_heap.resize(len, 0);
        &mut on_heap
    };
    text[..prefix.len()].copy_from_slice(prefix);
    text[prefix.len()..len - 1].copy_from_slice(name);
    f(CStr::from_bytes_with_nul(text).ok())
}

/// Calls `f` with every `(name, value)` of the `CustomPresence` AstDB family, borrowed from
/// AstDB's answer (no copies). Keys come back as `/CustomPresence/<name>`; the name is
/// everything after that prefix, `/` included.
pub(crate) fn with_astdb_entries<R>(f: impl FnOnce(&[(&[u8], &[u8])]) -> R) -> R {
    with_family_entries(FAMILY, f)
}

/// As [`with_astdb_entries`], for any AstDB family.
pub(crate) fn with_family_entries<R>(family: &CStr, f: impl FnOnce(&[(&[u8], &[u8])]) -> R) -> R {
    let prefix = [b"/", family.to_bytes(), b"/"].concat();
    let mut entries = Vec::new();
    // SAFETY: family is NUL-terminated; a NULL key tree asks for the whole family.
    let tree = unsafe { bindings::ast_db_gettree(family.as_ptr(), std::ptr::null()) };
    let mut entry = tree;
    while !entry.is_null() {
        // SAFETY: entry is a node of the list ast_db_gettree returned, alive until freetree
        // below (after `f`, which cannot keep the borrows); its key and its inline data are
        // NUL-terminated strings owned by the node.
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
                entries.push((&key[prefix.len()..], data));
            }
        }
        entry = next;
    }
    let result = f(&entries);
    drop(entries);
    // SAFETY: tree came from ast_db_gettree (or is NULL) and none of its nodes is used after.
    unsafe { bindings::ast_db_freetree(tree) };
    result
}

/// Re-reads AstDB into the store, warns about entries that cannot be used, and returns the
/// names whose announced state changed.
pub(crate) fn reload_from_astdb() -> Vec<Name> {
    let replaced = with_astdb_entries(|entries| STORE.replace_all(entries));
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
