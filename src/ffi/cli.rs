//! `presencestate list` and `presencestate change`, after the shim has handled CLI_INIT.

use super::bindings::{self, RESULT_FAILURE, RESULT_SHOWUSAGE, RESULT_SUCCESS};
use super::boundary::{asterisk_copy, c_bytes, c_str, guard};
use super::host::{self, STORE};
use crate::core::meta::Source;
use crate::core::{cli, shown};
use std::ffi::{c_char, c_int, CStr};

fn print(fd: c_int, text: &[u8]) {
    // %.*s takes an int length: print a long text in pieces rather than cut it.
    for piece in text.chunks(i32::MAX as usize) {
        // SAFETY: piece is valid for its length and only read during the call.
        unsafe { bindings::fprs_shim_cli_print(fd, piece.as_ptr().cast(), piece.len()) };
    }
}

/// The words of a CLI command line.
///
/// # Safety
/// `argv` holds `argc` NUL-terminated strings, alive for `'a`.
unsafe fn words<'a>(argc: c_int, argv: *const *const c_char) -> Vec<&'a CStr> {
    (0..usize::try_from(argc).unwrap_or(0))
        // SAFETY: i < argc, and each argv[i] is NULL or NUL-terminated for 'a.
        .map(|i| unsafe { c_str(*argv.add(i)) })
        .collect()
}

#[no_mangle]
pub extern "C" fn fprs_cli_list(fd: c_int, argc: c_int, argv: *const *const c_char) -> c_int {
    guard("presencestate list", RESULT_FAILURE as c_int, || {
        // SAFETY: Asterisk passes argc words in argv, alive for the call.
        if unsafe { words(argc, argv) }.len() != 2 {
            return RESULT_SHOWUSAGE as c_int;
        }
        print(fd, &cli::list(&STORE.snapshot()));
        RESULT_SUCCESS as c_int
    })
}

#[no_mangle]
pub extern "C" fn fprs_cli_change(fd: c_int, argc: c_int, argv: *const *const c_char) -> c_int {
    guard("presencestate change", RESULT_FAILURE as c_int, || {
        // SAFETY: Asterisk passes argc words in argv, alive for the call.
        let &[_, _, provider, value] = unsafe { words(argc, argv) }.as_slice() else {
            return RESULT_SHOWUSAGE as c_int;
        };
        let result = host::write(provider, value, &Source::Cli);
        let (provider, value) = (provider.to_bytes(), value.to_bytes());
        match result {
            Ok(()) => {
                print(
                    fd,
                    format!("Changing {} to {}\n", shown(provider), shown(value)).as_bytes(),
                );
                RESULT_SUCCESS as c_int
            }
            Err(error) => {
                let text = format!(
                    "presencestate change {} {}: refused, nothing changed: {error}",
                    shown(provider),
                    shown(value)
                );
                warning!("{text}");
                print(fd, format!("{text}\n").as_bytes());
                RESULT_FAILURE as c_int
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn fprs_cli_complete_state(word: *const c_char, n: c_int) -> *mut c_char {
    guard(
        "presencestate change completion",
        std::ptr::null_mut(),
        || {
            // SAFETY: word is the NUL-terminated word being completed, alive for the call.
            let word = unsafe { c_bytes(word) }.unwrap_or_default();
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            cli::complete_state(word, n)
                .map_or(std::ptr::null_mut(), |name| asterisk_copy(name.as_bytes()))
        },
    )
}
