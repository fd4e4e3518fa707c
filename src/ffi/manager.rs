//! The AMI actions `PresenceStateSet` and `PresenceStateDelete`, after the shim's one-line
//! handlers. Every refusal is a `Response: Error` whose `Message` says what is wrong.

use super::bindings::{self, mansession, message};
use super::boundary::{c_bytes, guard};
use super::host::{self, STORE};
use crate::core::ami::{self, ActionError, SetAction};
use crate::core::meta::Source;
use crate::core::shown;
use std::ffi::{c_int, CStr, CString};

/// The value of header `name` of `m`, empty when absent.
///
/// # Safety
/// `m` is the message Asterisk passed to the action, alive for `'a`.
unsafe fn header<'a>(m: *const message, name: &CStr) -> &'a [u8] {
    // SAFETY: astman_get_header only reads the name (its parameter lacks const) and returns
    // a string owned by m, or "" when absent.
    unsafe { c_bytes(bindings::astman_get_header(m, name.as_ptr().cast_mut())) }.unwrap_or_default()
}

/// Answers `Response: Success` (`Ok`) or `Response: Error` with the text as `Message`.
///
/// # Safety
/// `s` and `m` are the session and message Asterisk passed to the action.
unsafe fn respond(s: *mut mansession, m: *const message, result: Result<String, String>) {
    let ok = result.is_ok();
    let text = result.unwrap_or_else(|e| e);
    // Header values end at a line break: keep the message on one line.
    let text = CString::new(text.replace(['\r', '\n'], " ")).unwrap_or_default();
    // SAFETY: s and m are live for the action; the text is copied into the response (Asterisk
    // prints it with "%s", never as a format).
    unsafe {
        if ok {
            bindings::astman_send_ack(s, m, text.as_ptr().cast_mut());
        } else {
            bindings::astman_send_error(s, m, text.as_ptr().cast_mut());
        }
    }
}

/// Counts a refusal of the action's own checks in the stats (the store counts its own).
fn checked<T>(result: Result<T, ActionError>) -> Result<T, ActionError> {
    if let Err(error) = &result {
        STORE.stats.count(error.refusal());
    }
    result
}

fn refused(action: &str, error: &ActionError) -> Result<String, String> {
    warning!("AMI {action}: refused, nothing changed: {error}");
    Err(error.to_string())
}

#[no_mangle]
pub extern "C" fn fprs_ami_set(s: *mut mansession, m: *const message) -> c_int {
    guard("AMI PresenceStateSet", 0, || {
        // SAFETY: m is the action's message, alive for the call.
        let action = unsafe {
            SetAction {
                presentity: header(m, c"Presentity"),
                state: header(m, c"State"),
                subtype: header(m, c"Subtype"),
                message: header(m, c"Message"),
                encoded: header(m, c"Encoded"),
                expiry: header(m, c"Expiry"),
            }
        };
        let result = checked(ami::value_for_set(&action)).and_then(|value| {
            let provider = CString::new(action.presentity).unwrap_or_default();
            let value_c = CString::new(value).unwrap_or_default();
            host::write(&provider, &value_c, &Source::Ami)
                .map(|()| value_c)
                .map_err(ActionError::Write)
        });
        let answer = match result {
            Ok(value) => Ok(format!(
                "{} set to '{}'",
                shown(action.presentity),
                shown(value.to_bytes())
            )),
            Err(error) => refused("PresenceStateSet", &error),
        };
        // SAFETY: s and m are the action's own.
        unsafe { respond(s, m, answer) };
        0
    })
}

#[no_mangle]
pub extern "C" fn fprs_ami_delete(s: *mut mansession, m: *const message) -> c_int {
    guard("AMI PresenceStateDelete", 0, || {
        // SAFETY: m is the action's message, alive for the call.
        let presentity = unsafe { header(m, c"Presentity") };
        let result = checked(ami::presentity(presentity)).and_then(|_| {
            let provider = CString::new(presentity).unwrap_or_default();
            host::delete(&provider, &Source::Ami).map_err(ActionError::Write)
        });
        let answer = match result {
            Ok(()) => Ok(format!("{} deleted", shown(presentity))),
            Err(error) => refused("PresenceStateDelete", &error),
        };
        // SAFETY: s and m are the action's own.
        unsafe { respond(s, m, answer) };
        0
    })
}
