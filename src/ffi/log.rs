//! Logging into Asterisk's log. The text is passed as data (`"%.*s"` in the shim), never as a
//! printf format, so user text cannot inject conversions.

use super::bindings;
use std::ffi::c_int;

/// Writes one line at `level` (`__LOG_WARNING`, ...). `file` and `function` end in NUL.
pub(crate) fn write(level: u32, file: &'static str, line: u32, function: &'static str, text: &str) {
    debug_assert!(file.ends_with('\0') && function.ends_with('\0'));
    // %.*s takes an int length: a longer text is cut to it (with no NUL inside, this is safe).
    let len = text.len().min(i32::MAX as usize);
    // SAFETY: file and function are NUL-terminated statics; text is valid for len bytes and is
    // read only during the call; level is one of Asterisk's own constants.
    unsafe {
        bindings::fprs_shim_log(
            level as c_int,
            file.as_ptr().cast(),
            line as c_int,
            function.as_ptr().cast(),
            text.as_ptr().cast(),
            len,
        )
    }
}

macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        $crate::ffi::log::write(
            $level,
            concat!(file!(), "\0"),
            line!(),
            concat!(module_path!(), "\0"),
            &format!($($arg)*),
        )
    };
}

macro_rules! warning {
    ($($arg:tt)*) => { log_at!($crate::ffi::bindings::__LOG_WARNING, $($arg)*) };
}

macro_rules! notice {
    ($($arg:tt)*) => { log_at!($crate::ffi::bindings::__LOG_NOTICE, $($arg)*) };
}

macro_rules! error {
    ($($arg:tt)*) => { log_at!($crate::ffi::bindings::__LOG_ERROR, $($arg)*) };
}
