//! `PRESENCE_STATE()` read and write, and the `CustomPresence` provider callback.

use super::bindings::{self, ast_channel, ast_presence_state as ast_state, ast_str};
use super::boundary::{asterisk_copy, asterisk_free, c_bytes, c_str, c_string, guard};
use super::host::{self, from_asterisk, to_asterisk, STORE};
use crate::core::meta::Source;
use crate::core::read::{parse_read, render, ReadRequest};
use crate::core::state::PresenceState;
use crate::core::{custom_presence_name, shown};
use std::borrow::Cow;
use std::ffi::{c_char, c_int};
use std::ptr;

/// Computes what a read returns and hands it to `deliver`, or says why it cannot.
fn with_read_result<T>(
    data: &[u8],
    deliver: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, String> {
    let request = parse_read(data).map_err(|e| e.to_string())?;
    let Some(name) = custom_presence_name(request.provider) else {
        return read_through_presence_core(&request, deliver);
    };
    if name.is_empty() {
        return Err("the name after CustomPresence: is empty".to_string());
    }
    match STORE.get(name) {
        Some(p) => deliver(&render(&request, p.state(), p.subtype(), p.message())),
        // An unknown name holding `&` is a list of providers (`CustomPresence:a&PJSIP/b`),
        // which only the presence core can aggregate.
        None if name.contains(&b'&') => read_through_presence_core(&request, deliver),
        None => deliver(&render(&request, PresenceState::NotSet, b"", b"")),
    }
}

/// Asks the presence core, for providers other than our own states (`PJSIP/100`, lists, ...).
fn read_through_presence_core<T>(
    request: &ReadRequest<'_>,
    deliver: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, String> {
    let (state, subtype, message) = ask_presence_core(request.provider)?;
    deliver(&render(request, state, &subtype, &message))
}

/// The presence core's answer for `provider` (state, subtype, message), or why there is none.
pub(crate) fn ask_presence_core(
    provider: &[u8],
) -> Result<(PresenceState, Vec<u8>, Vec<u8>), String> {
    let provider_c = c_string(provider).ok_or("the provider holds a NUL byte")?;
    let (mut subtype, mut message): (*mut c_char, *mut c_char) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: provider_c is NUL-terminated; the core stores into the two out-pointers strings
    // from its allocator (or NULL), which are freed below.
    let state = unsafe {
        bindings::ast_presence_state_nocache(provider_c.as_ptr(), &mut subtype, &mut message)
    };
    // SAFETY: NULL or NUL-terminated strings the core just allocated for us; copied before freeing.
    let (subtype_bytes, message_bytes) = unsafe {
        (
            c_bytes(subtype).unwrap_or_default().to_vec(),
            c_bytes(message).unwrap_or_default().to_vec(),
        )
    };
    // SAFETY: both came from Asterisk's allocator and are not used after this.
    unsafe {
        asterisk_free(subtype);
        asterisk_free(message);
    }
    let state = from_asterisk(state).ok_or_else(|| {
        format!(
            "presence provider '{}' is unknown or gave no state",
            shown(provider)
        )
    })?;
    Ok((state, subtype_bytes, message_bytes))
}

fn refuse_read(data: &[u8], reason: &str) -> c_int {
    warning!("PRESENCE_STATE({}): read refused: {reason}", shown(data));
    -1
}

/// `read`: fills a fixed buffer. A value that does not fit is refused, never cut.
#[no_mangle]
pub extern "C" fn fprs_read(
    _chan: *mut ast_channel,
    _cmd: *const c_char,
    data: *mut c_char,
    buf: *mut c_char,
    len: usize,
) -> c_int {
    guard("PRESENCE_STATE read", -1, || {
        STORE.stats.count_read();
        if buf.is_null() || len == 0 {
            return -1;
        }
        // SAFETY: buf holds len >= 1 writable bytes (Asterisk's workspace).
        unsafe { *buf = 0 };
        // SAFETY: data is Asterisk's NUL-terminated copy of the arguments, alive for the call.
        let data = unsafe { c_bytes(data) }.unwrap_or_default();
        let copied = with_read_result(data, |value| {
            if value.len() >= len {
                return Err(format!(
                    "the value is {} bytes and the caller's buffer holds {}; it is not cut \
                     (callers that use read2, such as ${{...}} substitution into dynamic strings, get it whole)",
                    value.len(),
                    len - 1
                ));
            }
            // SAFETY: value.len() + 1 <= len bytes are writable at buf and do not overlap value.
            unsafe {
                ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), value.len());
                *buf.add(value.len()) = 0;
            }
            Ok(())
        });
        copied.map_or_else(|reason| refuse_read(data, &reason), |()| 0)
    })
}

/// `read2`: fills a dynamic string, so long values come back whole.
#[no_mangle]
pub extern "C" fn fprs_read2(
    _chan: *mut ast_channel,
    _cmd: *const c_char,
    data: *mut c_char,
    buf: *mut *mut ast_str,
    maxlen: isize,
) -> c_int {
    guard("PRESENCE_STATE read", -1, || {
        STORE.stats.count_read();
        // SAFETY: data is Asterisk's NUL-terminated copy of the arguments, alive for the call.
        let data = unsafe { c_bytes(data) }.unwrap_or_default();
        let set = with_read_result(data, |value| {
            if value.len() > i32::MAX as usize {
                return Err(format!(
                    "the value is {} bytes, more than a dynamic string holds",
                    value.len()
                ));
            }
            // SAFETY: buf is the caller's ast_str handle; value is valid for its length.
            match unsafe {
                bindings::fprs_shim_str_set(buf, maxlen, value.as_ptr().cast(), value.len())
            } {
                0 => Ok(()),
                _ => Err(format!(
                    "the value is {} bytes and the caller allows {maxlen}; it is not cut",
                    value.len()
                )),
            }
        });
        set.map_or_else(|reason| refuse_read(data, &reason), |()| 0)
    })
}

/// `write`: `Set(PRESENCE_STATE(CustomPresence:<name>)=state[,subtype[,message[,options]]])`.
#[no_mangle]
pub extern "C" fn fprs_write(
    chan: *mut ast_channel,
    _cmd: *const c_char,
    data: *mut c_char,
    value: *const c_char,
) -> c_int {
    guard("PRESENCE_STATE write", -1, || {
        // SAFETY: data and value are NUL-terminated strings Asterisk keeps alive for the call.
        let (provider, value) = unsafe { (c_str(data), c_str(value)) };
        let source = if chan.is_null() {
            Source::NoChannel
        } else {
            Source::Channel(Cow::Borrowed(
                // SAFETY: chan is the live channel running the write; its name is a
                // NUL-terminated string it owns for the call (copied only if recorded).
                unsafe { c_bytes(bindings::ast_channel_name(chan)) }.unwrap_or_default(),
            ))
        };
        match host::write(provider, value, &source) {
            Ok(()) => 0,
            Err(error) => {
                warning!(
                    "PRESENCE_STATE({})={}: write refused, nothing changed: {error}",
                    shown(provider.to_bytes()),
                    shown(value.to_bytes())
                );
                -1
            }
        }
    })
}

/// The `CustomPresence` provider: the state of `CustomPresence:<data>` with decoded subtype and
/// message from Asterisk's allocator (the core frees them), NULL when empty.
#[no_mangle]
pub extern "C" fn fprs_provider(
    data: *const c_char,
    subtype: *mut *mut c_char,
    message: *mut *mut c_char,
) -> ast_state::Type {
    guard(
        "CustomPresence provider",
        ast_state::AST_PRESENCE_INVALID,
        || {
            STORE.stats.count_provider_query();
            if subtype.is_null() || message.is_null() {
                return ast_state::AST_PRESENCE_INVALID;
            }
            // SAFETY: data is the NUL-terminated text after "CustomPresence:", alive for the call.
            let name = unsafe { c_bytes(data) }.unwrap_or_default();
            let presence = STORE.get(name);
            let (state, sub, msg) = match &presence {
                Some(p) => (p.state(), p.subtype(), p.message()),
                None => (PresenceState::NotSet, &b""[..], &b""[..]),
            };
            // SAFETY: the core passes two valid out-pointers (checked non-NULL above).
            unsafe {
                *subtype = asterisk_copy(sub);
                *message = asterisk_copy(msg);
            }
            to_asterisk(state)
        },
    )
}
