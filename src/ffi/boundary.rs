//! Crossing the C boundary: panic guards and conversions of C strings and Asterisk memory.

use super::bindings;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many entry points are running now, on every thread (unload waits for its own only).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one running entry point for as long as it lives (even through a panic).
struct Running;

impl Running {
    fn enter() -> Running {
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The entry points running now, the caller's own included.
pub(crate) fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Acquire)
}

/// Runs the body of an `extern "C"` entry point. A panic is logged as an ERROR naming `entry`
/// and turned into `on_panic` (a failure code Asterisk understands).
pub(crate) fn guard<T>(entry: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    let _running = Running::enter();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            error!("{entry}: internal error ({reason}); the call failed and nothing was changed");
            on_panic
        }
    }
}

/// The bytes of a C string, or `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
pub(crate) unsafe fn c_bytes<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: as the caller guarantees.
        Some(unsafe { c_str(ptr) }.to_bytes())
    }
}

/// A C string, empty for NULL.
///
/// # Safety
/// As for [`c_bytes`].
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char) -> &'a CStr {
    if ptr.is_null() {
        c""
    } else {
        // SAFETY: non-NULL and NUL-terminated for 'a, as the caller guarantees.
        unsafe { CStr::from_ptr(ptr) }
    }
}

/// A C string of bytes that hold no NUL (a provider to ask the presence core, test inputs).
pub(crate) fn c_string(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}

/// A copy of `bytes` from Asterisk's allocator, for Asterisk to `ast_free`; NULL when empty
/// (the presence core's convention) or when allocation failed.
pub(crate) fn asterisk_copy(bytes: &[u8]) -> *mut c_char {
    if bytes.is_empty() {
        return std::ptr::null_mut();
    }
    // SAFETY: bytes is valid for its length; the shim copies it into new memory from
    // ast_malloc and NUL-terminates it.
    unsafe { bindings::fprs_shim_strndup(bytes.as_ptr().cast(), bytes.len()) }
}

/// Frees a string Asterisk handed us from its allocator.
///
/// # Safety
/// `ptr` is NULL or came from Asterisk's allocator and is not used afterwards.
pub(crate) unsafe fn asterisk_free(ptr: *mut c_char) {
    // SAFETY: as the caller guarantees; ast_free accepts NULL.
    unsafe { bindings::fprs_shim_free(ptr.cast()) }
}
