//! The module's threads, started and joined through the C shim: std::thread::spawn registers
//! a thread-local destructor of this module's std on the thread that calls it (an Asterisk
//! thread that outlives the unload), and glibc then keeps the module mapped at dlclose.
//! Nothing here touches std's thread machinery on the caller's thread.

use super::bindings;
use crate::core::expiry::Join;
use std::ffi::{c_void, CStr};
use std::io;

type Body = Box<dyn FnOnce() + Send>;
/// What the new thread gets: its name (for a panic's ERROR) and what it runs.
type Start = (&'static CStr, Body);

/// A thread the shim started; joined once, by the [`Join`] that [`spawn`] returns.
struct Started(*mut bindings::fprs_thread);

// SAFETY: the pointer is only handed back to the shim's join, which may run on any thread.
unsafe impl Send for Started {}

extern "C" fn run(arg: *mut c_void) {
    // SAFETY: `spawn` leaked this Box<Start> for this one call and no longer owns it.
    let (name, body) = *unsafe { Box::from_raw(arg.cast::<Start>()) };
    // No panic may unwind into the shim's C frame.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        error!("The {} thread ended with a panic", name.to_string_lossy());
    }
}

/// Starts `body` on a new thread named `name` (up to 15 bytes shown); the returned call joins it.
pub(crate) fn spawn(name: &'static CStr, body: Body) -> io::Result<Join> {
    let arg = Box::into_raw(Box::new((name, body)));
    // SAFETY: name is NUL-terminated (the shim copies it); run has the signature the shim
    // calls, and gets arg exactly once when the thread starts.
    let thread = unsafe { bindings::fprs_shim_thread_start(name.as_ptr(), Some(run), arg.cast()) };
    if thread.is_null() {
        // SAFETY: no thread started, so run never got arg: it is ours to free.
        drop(unsafe { Box::from_raw(arg) });
        return Err(io::Error::other("Asterisk could not start a thread"));
    }
    let started = Started(thread);
    Ok(Box::new(move || {
        let started = started;
        // SAFETY: a thread the shim started, joined (and freed) exactly once, here.
        unsafe { bindings::fprs_shim_thread_join(started.0) }
    }))
}
