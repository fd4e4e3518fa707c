//! The stock module's own parse test vectors, as our parser must read them: the unit tests
//! and the in-Asterisk self-test (`ffi::selftest`) both run them.

use super::Presence;
use crate::core::state::PresenceState;

/// A value with the fields it must parse to (subtype and message as stored).
pub struct ParseCase {
    pub text: &'static [u8],
    pub state: PresenceState,
    pub subtype: &'static [u8],
    pub message: &'static [u8],
    pub base64: bool,
}

impl ParseCase {
    pub fn matches(&self, parsed: &Presence) -> bool {
        parsed.state() == self.state
            && parsed.stored_subtype() == self.subtype
            && parsed.stored_message() == self.message
            && parsed.base64() == self.base64
    }
}

const fn case(
    text: &'static [u8],
    state: PresenceState,
    subtype: &'static [u8],
    message: &'static [u8],
    base64: bool,
) -> ParseCase {
    ParseCase {
        text,
        state,
        subtype,
        message,
        base64,
    }
}

/// The valid values of the stock module's `parse_valid_presence_data` test. Where stock used
/// `e` with text that is not base64, the text here is the base64 of it (ours checks).
pub const STOCK_VALID: [ParseCase; 14] = {
    use PresenceState::*;
    [
        case(b"away", Away, b"", b"", false),
        case(b"not_set", NotSet, b"", b"", false),
        case(b"unavailable", Unavailable, b"", b"", false),
        case(b"available", Available, b"", b"", false),
        case(b"xa", Xa, b"", b"", false),
        case(b"chat", Chat, b"", b"", false),
        case(b"dnd", Dnd, b"", b"", false),
        case(b"away,down the hall", Away, b"down the hall", b"", false),
        case(
            b"away,down the hall,Quarterly financial meeting",
            Away,
            b"down the hall",
            b"Quarterly financial meeting",
            false,
        ),
        case(
            b"away,,Quarterly financial meeting",
            Away,
            b"",
            b"Quarterly financial meeting",
            false,
        ),
        case(b"away,,,e", Away, b"", b"", true),
        case(
            b"away,ZG93biB0aGUgaGFsbA==,,e",
            Away,
            b"ZG93biB0aGUgaGFsbA==",
            b"",
            true,
        ),
        case(
            b"away,ZG93bg==,UXVhcnRlcmx5,e",
            Away,
            b"ZG93bg==",
            b"UXVhcnRlcmx5",
            true,
        ),
        case(b"away,,UXVhcnRlcmx5,e", Away, b"", b"UXVhcnRlcmx5", true),
    ]
};

/// The invalid values of the stock module's `parse_invalid_presence_data` test, the one its
/// comment admits stock accepts (`away,,,,e`), and the stock defects of options and base64.
pub const STOCK_INVALID: [&[u8]; 7] = [
    b"",
    b"bored",
    b"away,,,i",
    b"away,,,,e",
    b"away,,Lunch, see you",
    b"away,down the hall,,e",
    b"away,,,E",
];
