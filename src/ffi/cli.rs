//! The `presencestate` CLI commands, after the shim has handled CLI_INIT.

use super::bindings::{self, RESULT_FAILURE, RESULT_SHOWUSAGE, RESULT_SUCCESS};
use super::boundary::{asterisk_copy, c_bytes, c_str, guard};
use super::host::{self, Asterisk, STORE};
use crate::core::meta::Source;
use crate::core::store::{name_for_write, Host, WriteError};
use crate::core::{cli, shown, stats, PROVIDER_PREFIX};
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
        let like = match unsafe { words(argc, argv) }.as_slice() {
            [_, _] => None,
            [_, _, like, text] if like.to_bytes().eq_ignore_ascii_case(b"like") => {
                Some(text.to_bytes())
            }
            _ => return RESULT_SHOWUSAGE as c_int,
        };
        print(fd, &cli::list(&STORE.snapshot(), like));
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
                // A write succeeded, so the provider starts with the prefix.
                let name = provider.get(PROVIDER_PREFIX.len()..).unwrap_or_default();
                print(fd, &cli::changed(name, value));
                RESULT_SUCCESS as c_int
            }
            Err(error) => refuse(
                fd,
                &format!(
                    "presencestate change {} {}: refused, nothing changed: {error}",
                    shown(provider),
                    shown(value)
                ),
            ),
        }
    })
}

/// Prints `text` as the command's error (and logs it as a WARNING); the command fails.
fn refuse(fd: c_int, text: &str) -> c_int {
    warning!("{text}");
    print(fd, format!("{text}\n").as_bytes());
    RESULT_FAILURE as c_int
}

#[no_mangle]
pub extern "C" fn fprs_cli_show(fd: c_int, argc: c_int, argv: *const *const c_char) -> c_int {
    guard("presencestate show", RESULT_FAILURE as c_int, || {
        // SAFETY: Asterisk passes argc words in argv, alive for the call.
        let &[_, _, provider] = unsafe { words(argc, argv) }.as_slice() else {
            return RESULT_SHOWUSAGE as c_int;
        };
        let presence = name_for_write(provider.to_bytes()).and_then(|name| {
            STORE
                .get(name)
                .map(|p| (name, p))
                .ok_or_else(|| WriteError::NotSet(name.to_vec()))
        });
        match presence {
            Ok((name, presence)) => {
                let changed = STORE
                    .change_of(name)
                    .map(|(when, by)| (local_time(when), by));
                let mut text = cli::show(name, &presence, changed);
                if let Some(timing) = presence.timing() {
                    let when = local_time(timing.deadline_ms / 1000);
                    let in_ms = timing.deadline_ms.saturating_sub(Asterisk.now_ms());
                    text.extend(cli::show_expiry(timing, &when, in_ms.div_ceil(1000)));
                }
                print(fd, &text);
                RESULT_SUCCESS as c_int
            }
            Err(error) => refuse(
                fd,
                &format!("presencestate show {}: {error}", shown(provider.to_bytes())),
            ),
        }
    })
}

/// Unix seconds as the local date and time, to the second, with the zone.
fn local_time(seconds: u64) -> String {
    let mut buf = [0u8; 64];
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    // SAFETY: buf is writable for its length; the shim NUL-terminates within it.
    unsafe { bindings::fprs_shim_local_time(seconds, buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[no_mangle]
pub extern "C" fn fprs_cli_delete(fd: c_int, argc: c_int, argv: *const *const c_char) -> c_int {
    guard("presencestate delete", RESULT_FAILURE as c_int, || {
        // SAFETY: Asterisk passes argc words in argv, alive for the call.
        let &[_, _, provider] = unsafe { words(argc, argv) }.as_slice() else {
            return RESULT_SHOWUSAGE as c_int;
        };
        match host::delete(provider, &Source::Cli) {
            Ok(()) => {
                print(
                    fd,
                    format!("Deleted {}\n", shown(provider.to_bytes())).as_bytes(),
                );
                RESULT_SUCCESS as c_int
            }
            Err(error) => refuse(
                fd,
                &format!(
                    "presencestate delete {}: refused, nothing changed: {error}",
                    shown(provider.to_bytes())
                ),
            ),
        }
    })
}

#[no_mangle]
pub extern "C" fn fprs_cli_stats(fd: c_int, argc: c_int, argv: *const *const c_char) -> c_int {
    guard("presencestate stats", RESULT_FAILURE as c_int, || {
        // SAFETY: Asterisk passes argc words in argv, alive for the call.
        if unsafe { words(argc, argv) }.len() != 2 {
            return RESULT_SHOWUSAGE as c_int;
        }
        let states: Vec<_> = STORE.snapshot().iter().map(|(_, p)| p.state()).collect();
        print(fd, format!("{}\n", super::module::IDENTITY).as_bytes());
        print(fd, stats::render(&STORE.stats.counts(), &states).as_bytes());
        #[cfg(feature = "sip")]
        print(fd, super::sip::stats_text().as_bytes());
        RESULT_SUCCESS as c_int
    })
}

#[no_mangle]
pub extern "C" fn fprs_cli_complete_names(word: *const c_char) {
    guard("presencestate completion", (), || {
        // SAFETY: word is the NUL-terminated word being completed, alive for the call.
        let word = unsafe { c_bytes(word) }.unwrap_or_default();
        let names: Vec<_> = STORE.snapshot().into_iter().map(|(name, _)| name).collect();
        for full in cli::completions(&names, word) {
            // SAFETY: the copy comes from Asterisk's allocator; Asterisk frees it (always).
            if unsafe { bindings::ast_cli_completion_add(asterisk_copy(&full)) } != 0 {
                break;
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
