//! The store's view of Asterisk: AstDB for persistence, Stasis (through the presence core) for
//! announcements, and the one global store every callback uses.

use super::bindings::{self, ast_presence_state as ast_state, stasis_message};
use super::boundary::c_bytes;
use crate::core::device_state::DeviceState;
use crate::core::meta::{RecordText, Source};
use crate::core::state::PresenceState;
#[cfg(feature = "cluster")]
use crate::core::store::Version;
use crate::core::store::{Host, Name, Store, WriteError};
use crate::core::value::Presence;
use crate::core::{shown, PROVIDER_LABEL, PROVIDER_PREFIX};
use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::LazyLock;

/// Every custom presence state. Filled at load, emptied at unload.
pub(crate) static STORE: LazyLock<Store> = LazyLock::new(Store::default);

/// The AstDB family, as the stock module names it.
const FAMILY: &CStr = c"CustomPresence";
/// The module's own family (core::meta).
const META_FAMILY: &CStr = c"CustomPresenceMeta";

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

/// A presence-state message as Stasis delivered it, borrowed from the message.
pub(crate) struct PresenceMessage<'a> {
    pub(crate) state: ast_state::Type,
    pub(crate) provider: &'a [u8],
    pub(crate) subtype: &'a [u8],
    pub(crate) message: &'a [u8],
}

/// The fields of `msg`, or `None` for a message of another type.
///
/// # Safety
/// `msg` is a Stasis message being delivered, alive for `'a`.
pub(crate) unsafe fn presence_message<'a>(msg: *mut stasis_message) -> Option<PresenceMessage<'a>> {
    let (mut state, mut provider, mut subtype, mut message) = (
        0,
        ptr::null::<c_char>(),
        ptr::null::<c_char>(),
        ptr::null::<c_char>(),
    );
    // SAFETY: msg is live (as the caller guarantees); the out-pointers are valid locals.
    let found = unsafe {
        bindings::fprs_shim_presence_message(
            msg,
            &mut state,
            &mut provider,
            &mut subtype,
            &mut message,
        )
    };
    // SAFETY: the fields are NUL-terminated strings of msg, alive for 'a.
    (found == 0).then(|| unsafe {
        PresenceMessage {
            state,
            provider: c_bytes(provider).unwrap_or_default(),
            subtype: c_bytes(subtype).unwrap_or_default(),
            message: c_bytes(message).unwrap_or_default(),
        }
    })
}

/// The store's [`Host`] in a running Asterisk.
pub(crate) struct Asterisk;

impl Host for Asterisk {
    fn persist(&self, name: &CStr, value: &CStr) -> bool {
        // SAFETY: three valid NUL-terminated strings, only read during the call.
        unsafe { bindings::ast_db_put(FAMILY.as_ptr(), name.as_ptr(), value.as_ptr()) == 0 }
    }

    fn remove(&self, name: &CStr) -> bool {
        // SAFETY: two valid NUL-terminated strings, only read during the call.
        unsafe { bindings::ast_db_del(FAMILY.as_ptr(), name.as_ptr()) == 0 }
    }

    fn persist_meta(&self, name: &CStr, record: Option<RecordText<'_>>) -> bool {
        let done = match record {
            // SAFETY: valid NUL-terminated strings (a RecordText ends in a NUL by its type),
            // only read during the call.
            Some(record) => unsafe {
                bindings::ast_db_put(
                    META_FAMILY.as_ptr(),
                    name.as_ptr(),
                    record.with_nul().as_ptr().cast(),
                ) == 0
            },
            // SAFETY: as above. (Deleting a key that is not there succeeds.)
            None => unsafe { bindings::ast_db_del(META_FAMILY.as_ptr(), name.as_ptr()) == 0 },
        };
        if !done {
            warning!(
                "AstDB refused to update {}/{}; the state itself changed, but `presencestate \
                 show` may show an older change for it",
                shown(META_FAMILY.to_bytes()),
                shown(name.to_bytes())
            );
        }
        done
    }

    fn announce_device(&self, name: &[u8], state: DeviceState) {
        super::devstate::announce(name, state);
    }

    fn announce(&self, name: &[u8], presence: Option<&Presence>) {
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
            match presence {
                // SAFETY: valid NUL-terminated strings (a Presence keeps its subtype and message
                // each ending in its only NUL), only read during the call (the core copies them).
                Some(p) => unsafe {
                    bindings::ast_presence_state_changed_literal(
                        to_asterisk(p.state()),
                        p.subtype_with_nul().as_ptr().cast(),
                        p.message_with_nul().as_ptr().cast(),
                        provider.as_ptr(),
                    );
                },
                // A state that is gone (deleted, or no longer in AstDB at reload) is announced
                // as not_set directly: the core's not_set path would ask the providers again
                // and cannot resolve a name holding '/' or '&'.
                None => {
                    // SAFETY: valid NUL-terminated strings, copied into the message.
                    let published = unsafe {
                        bindings::fprs_shim_publish_presence(
                            to_asterisk(PresenceState::NotSet),
                            provider.as_ptr(),
                            c"".as_ptr(),
                            c"".as_ptr(),
                        )
                    };
                    if published != 0 {
                        warning!(
                            "Could not announce {} as not_set",
                            shown(provider.to_bytes())
                        );
                    }
                }
            }
        });
    }

    #[cfg(feature = "cluster")]
    fn stamp(&self) -> Option<Version> {
        super::cluster::stamp()
    }

    #[cfg(feature = "cluster")]
    fn committed(
        &self,
        name: &[u8],
        value: Option<&CStr>,
        revert: Option<&[u8]>,
        version: Version,
    ) {
        super::cluster::committed(name, value, revert, version);
    }
}

/// presencestate.conf `log_changes`.
static LOG_CHANGES: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_log_changes(on: bool) {
    LOG_CHANGES.store(on, Relaxed);
}

pub(crate) fn log_changes() -> bool {
    LOG_CHANGES.load(Relaxed)
}

/// Writes `value` to `provider` from any path (dialplan, CLI, AMI); with `log_changes` on, a
/// NOTICE records each accepted write.
#[inline(always)]
pub(crate) fn write(provider: &CStr, value: &CStr, source: &Source) -> Result<(), WriteError> {
    STORE.write(&Asterisk, provider, value, source)?;
    if LOG_CHANGES.load(Relaxed) {
        log_write(provider, value, source);
    }
    Ok(())
}

/// Out of line: the write path stays small when `log_changes` is off.
#[cold]
#[inline(never)]
fn log_write(provider: &CStr, value: &CStr, source: &Source) {
    notice!(
        "{} set to '{}' by {source}",
        shown(provider.to_bytes()),
        shown(value.to_bytes())
    );
}

/// Deletes `provider` from any path (CLI, AMI); logged as a NOTICE with `log_changes` on.
pub(crate) fn delete(provider: &CStr, source: &Source) -> Result<(), WriteError> {
    STORE.delete(&Asterisk, provider, source)?;
    if LOG_CHANGES.load(Relaxed) {
        notice!("{} deleted by {source}", shown(provider.to_bytes()));
    }
    Ok(())
}

/// Calls `f` with `CustomPresence:<name>` as a C string (`None` if the name holds a NUL),
/// built on the stack for names of usual length so an announcement allocates nothing.
pub(crate) fn with_provider<R>(name: &[u8], f: impl FnOnce(Option<&CStr>) -> R) -> R {
    let prefix = PROVIDER_PREFIX.as_bytes();
    let len = prefix.len() + name.len() + 1;
    let mut on_stack = [0u8; 96];
    let mut on_heap = Vec::new();
    let text: &mut [u8] = if len <= on_stack.len() {
        &mut on_stack[..len]
    } else {
        on_heap.resize(len, 0);
        &mut on_heap
    };
    text[..prefix.len()].copy_from_slice(prefix);
    text[prefix.len()..len - 1].copy_from_slice(name);
    if name.contains(&0) {
        return f(None);
    }
    // SAFETY: text ends in the 0 the buffer was filled with, and neither the prefix nor the
    // name (checked just above) holds another.
    f(Some(unsafe { CStr::from_bytes_with_nul_unchecked(text) }))
}

/// Calls `f` with every `(name, value)` of AstDB family `family`, borrowed from AstDB's answer
/// (no copies). Keys come back as `/<family>/<name>`; the name is everything after that
/// prefix, `/` included. AstDB matches the family with LIKE, which ignores case (as the stock
/// module reads its family), by scanning every key it holds.
pub(crate) fn with_astdb_family<R>(family: &CStr, f: impl FnOnce(&[(&[u8], &[u8])]) -> R) -> R {
    // SAFETY: family is NUL-terminated; a NULL key tree asks for the whole family.
    let tree = unsafe { bindings::ast_db_gettree(family.as_ptr(), std::ptr::null()) };
    with_astdb_tree(tree, family, f)
}

/// [`with_astdb_family`] for a family only this module writes, so always in this case: AstDB
/// finds its keys by range in its index instead of scanning every key (at load, reading
/// `CustomPresenceMeta` this way costs a few instructions per record instead of ~1,300 per
/// key in AstDB, docs/BENCHMARKS.md). The range ends at `/<family>/` followed by two 0xFF
/// bytes, so a longer name beginning with them would not be found; names are text, where
/// 0xFF does not occur.
fn with_own_astdb_family<R>(family: &CStr, f: impl FnOnce(&[(&[u8], &[u8])]) -> R) -> R {
    let Ok(with_slash) = CString::new([family.to_bytes(), b"/"].concat()) else {
        return f(&[]);
    };
    // SAFETY: both NUL-terminated; AstDB prefixes the key prefix with "/<family>", here
    // "/<family>/", and an empty key prefix adds nothing to it.
    let tree = unsafe { bindings::ast_db_gettree_by_prefix(with_slash.as_ptr(), c"".as_ptr()) };
    with_astdb_tree(tree, family, f)
}

fn with_astdb_tree<R>(
    tree: *mut bindings::ast_db_entry,
    family: &CStr,
    f: impl FnOnce(&[(&[u8], &[u8])]) -> R,
) -> R {
    let prefix = [b"/", family.to_bytes(), b"/"].concat();
    let mut entries = Vec::new();
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

/// Calls `f` with every `(name, value)` of the `CustomPresence` family (see
/// [`with_astdb_family`]).
pub(crate) fn with_astdb_entries<R>(f: impl FnOnce(&[(&[u8], &[u8])]) -> R) -> R {
    with_astdb_family(FAMILY, f)
}

/// Re-reads AstDB into the store, warns about entries that cannot be used, and returns the
/// names whose announced state changed. On a reload (`reloading`), a changed state that has no
/// record of its change is recorded as changed by the reload. The records go first: they hold
/// the expiries of timed states, which the states' load restores (or applies, if passed).
pub(crate) fn reload_from_astdb(reloading: bool) -> Vec<Name> {
    let broken = with_own_astdb_family(META_FAMILY, |records| STORE.replace_meta(records));
    for (name, error) in broken {
        warning!(
            "Ignoring the record {}/{}: {error}. `presencestate show` shows its state's last \
             change as unknown until the state changes again, and an expiry it may hold is \
             not applied.",
            shown(META_FAMILY.to_bytes()),
            shown(&name)
        );
    }
    let replaced = with_astdb_entries(|entries| STORE.replace_all(entries, Asterisk.now_ms()));
    super::expiry::report_load(&replaced);
    if reloading {
        STORE.record_reloaded(&Asterisk, &replaced.changed);
    }
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
