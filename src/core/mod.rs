//! The presence core: safe Rust with no knowledge of Asterisk's C types.
//!
//! Everything here is tested by `cargo test --no-default-features` without Asterisk. The FFI
//! layer (`crate::ffi`) feeds it bytes from Asterisk and implements [`store::Host`] over AstDB
//! and Stasis.
#![forbid(unsafe_code)]

pub mod ami;
pub mod ari;
pub mod base64;
pub mod cli;
pub mod cluster;
pub mod compose;
pub mod config;
pub mod device_state;
pub mod expiry;
#[cfg(any(test, fuzzing))]
pub mod fuzz_checks;
pub mod meta;
pub mod read;
pub mod setting;
pub mod sip_publish;
pub mod state;
pub mod stats;
pub mod store;
pub mod value;

/// The provider label this module registers, and the prefix of every name it owns.
pub const PROVIDER_LABEL: &str = "CustomPresence";

/// `CustomPresence:` — the prefix of a provider string naming one of our states.
pub const PROVIDER_PREFIX: &str = "CustomPresence:";

/// The name after a `CustomPresence:` prefix (matched case-insensitively), if `provider` has it.
pub fn custom_presence_name(provider: &[u8]) -> Option<&[u8]> {
    let prefix = PROVIDER_PREFIX.as_bytes();
    // As written in hints and dialplans almost always: one comparison instead of one per byte.
    if let Some(name) = provider.strip_prefix(prefix) {
        return Some(name);
    }
    if provider.len() >= prefix.len() && provider[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&provider[prefix.len()..])
    } else {
        None
    }
}

/// How many bytes of user text a log line quotes before eliding the rest.
const SHOWN_MAX: usize = 200;

/// User text as quoted in a log line: lossy UTF-8, so odd bytes never break a line, and past
/// `SHOWN_MAX` bytes elided with the full length stated (a 64 KB name makes no 64 KB line).
pub fn shown(bytes: &[u8]) -> String {
    if bytes.len() <= SHOWN_MAX {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let head = String::from_utf8_lossy(&bytes[..SHOWN_MAX]);
    format!("{head}... ({} bytes in all)", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_case_insensitive_and_keeps_the_rest() {
        assert_eq!(
            custom_presence_name(b"CustomPresence:alice"),
            Some(&b"alice"[..])
        );
        assert_eq!(
            custom_presence_name(b"custompresence:Bob"),
            Some(&b"Bob"[..])
        );
        assert_eq!(custom_presence_name(b"CustomPresence:"), Some(&b""[..]));
        assert_eq!(custom_presence_name(b"PJSIP/alice"), None);
        assert_eq!(custom_presence_name(b"CustomPresence"), None);
    }

    #[test]
    fn long_text_is_elided_with_its_length() {
        assert_eq!(shown(b"caf\xc3\xa9 \xff"), "caf\u{e9} \u{fffd}");
        let long = shown(&[b'x'; 70_000]);
        assert!(
            long.ends_with("... (70000 bytes in all)") && long.len() < 300,
            "{long}"
        );
    }
}
