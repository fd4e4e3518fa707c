//! `presencestate cluster`.

use super::bindings::{self, RESULT_FAILURE, RESULT_SHOWUSAGE, RESULT_SUCCESS};
use super::boundary::guard;
use std::ffi::{c_char, c_int};

#[no_mangle]
pub extern "C" fn fprs_cli_cluster(fd: c_int, argc: c_int, _argv: *const *const c_char) -> c_int {
    guard("presencestate cluster", RESULT_FAILURE as c_int, || {
        if argc != 2 {
            return RESULT_SHOWUSAGE as c_int;
        }
        let text = super::cluster::status_text();
        // SAFETY: text is valid for its length and only read during the call.
        unsafe { bindings::fprs_shim_cli_print(fd, text.as_ptr().cast(), text.len()) };
        RESULT_SUCCESS as c_int
    })
}
