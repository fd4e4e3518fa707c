//! A written presence value: `state[,subtype[,message[,options]]]`, the stock AstDB format.

use super::base64::{self, Base64Error};
use super::shown;
use super::state::PresenceState;
use std::ffi::CStr;
use std::fmt;
use std::ops::Range;

/// One custom presence state, parsed from the text that was written and is stored in AstDB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    state: PresenceState,
    base64: bool,
    /// `stored\0subtype\0message\0`: the text exactly as written (the AstDB value), then the
    /// subtype and message consumers see (decoded when `base64`), each NUL-terminated so an
    /// announcement hands them to Asterisk without copying. One allocation per state.
    text: Box<[u8]>,
    stored_len: usize,
    /// The subtype and message inside the stored text (still encoded when `base64`).
    stored_subtype: Range<usize>,
    stored_message: Range<usize>,
    /// Where the consumers' message starts in `text` (their subtype starts after `stored\0`).
    message_start: usize,
}

/// Why a written or stored value was refused. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum ValueError {
    NulByte,
    MissingState,
    UnknownState(Vec<u8>),
    TooManyFields(usize),
    UnknownOptions(Vec<u8>),
    BadBase64 {
        field: &'static str,
        error: Base64Error,
    },
    NulInDecoded {
        field: &'static str,
    },
}

const STATE_NAMES: &str = "not_set, unavailable, available, away, xa, chat, dnd";
const COMMA_HINT: &str =
    "to put commas in a subtype or message, base64-encode both and add the 'e' option";

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NulByte => write!(f, "the value holds a NUL byte"),
            ValueError::MissingState => {
                write!(
                    f,
                    "the state is missing (expected state[,subtype[,message[,options]]])"
                )
            }
            ValueError::UnknownState(text) => {
                write!(
                    f,
                    "'{}' is not a presence state ({STATE_NAMES})",
                    shown(text)
                )
            }
            ValueError::TooManyFields(count) => write!(
                f,
                "the value has {count} comma-separated fields, at most 4 are allowed \
                 (state,subtype,message,options); {COMMA_HINT}"
            ),
            ValueError::UnknownOptions(options) => write!(
                f,
                "unknown options '{}' (the only option is 'e'); {COMMA_HINT}",
                shown(options)
            ),
            ValueError::BadBase64 { field, error } => {
                write!(
                    f,
                    "option 'e' is set but the {field} is not valid base64: {error}"
                )
            }
            ValueError::NulInDecoded { field } => {
                write!(f, "the base64 {field} decodes to text holding a NUL byte")
            }
        }
    }
}

/// Appends the base64 `text` of `field`, decoded, to `out`.
fn decode_field(text: &[u8], field: &'static str, out: &mut Vec<u8>) -> Result<(), ValueError> {
    let start = out.len();
    base64::decode_into(text, out).map_err(|error| ValueError::BadBase64 { field, error })?;
    if out[start..].contains(&0) {
        return Err(ValueError::NulInDecoded { field });
    }
    Ok(())
}

impl Presence {
    /// Parses `state[,subtype[,message[,options]]]`. Unlike stock, options may hold only `e`,
    /// and a fifth field is an error rather than silently dropped.
    pub fn parse(text: &[u8]) -> Result<Presence, ValueError> {
        // Values reach us as C strings; a NUL could only come from a caller's mistake, and
        // refusing it keeps every text NUL-free for Asterisk.
        if text.contains(&0) {
            return Err(ValueError::NulByte);
        }
        let mut fields: [Range<usize>; 4] = std::array::from_fn(|_| text.len()..text.len());
        let (mut count, mut start) = (0, 0);
        for (i, &byte) in text.iter().enumerate() {
            if byte == b',' {
                if let Some(field) = fields.get_mut(count) {
                    *field = start..i;
                }
                count += 1;
                start = i + 1;
            }
        }
        if let Some(field) = fields.get_mut(count) {
            *field = start..text.len();
        }
        count += 1;
        if count > 4 {
            return Err(ValueError::TooManyFields(count));
        }
        let [state_field, stored_subtype, stored_message, options_field] = fields;

        let state_text = &text[state_field];
        if state_text.is_empty() {
            return Err(ValueError::MissingState);
        }
        let state = PresenceState::parse(state_text)
            .ok_or_else(|| ValueError::UnknownState(state_text.to_vec()))?;
        let options = &text[options_field];
        if options.iter().any(|&option| option != b'e') {
            return Err(ValueError::UnknownOptions(options.to_vec()));
        }
        let base64 = !options.is_empty();

        let (subtype, message) = (&text[stored_subtype.clone()], &text[stored_message.clone()]);
        let mut all = Vec::with_capacity(text.len() + subtype.len() + message.len() + 3);
        all.extend_from_slice(text);
        all.push(0);
        if base64 {
            decode_field(subtype, "subtype", &mut all)?;
        } else {
            all.extend_from_slice(subtype);
        }
        all.push(0);
        let message_start = all.len();
        if base64 {
            decode_field(message, "message", &mut all)?;
        } else {
            all.extend_from_slice(message);
        }
        all.push(0);
        Ok(Presence {
            state,
            base64,
            text: all.into_boxed_slice(),
            stored_len: text.len(),
            stored_subtype,
            stored_message,
            message_start,
        })
    }

    pub fn state(&self) -> PresenceState {
        self.state
    }

    /// The text as written: what AstDB holds.
    pub fn stored(&self) -> &[u8] {
        &self.text[..self.stored_len]
    }

    /// The text as written, NUL-terminated.
    pub fn stored_c(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.text).unwrap_or_default()
    }

    /// Whether option `e` was given (subtype and message are stored base64-encoded).
    pub fn base64(&self) -> bool {
        self.base64
    }

    /// The subtype as stored (still encoded when [`Presence::base64`]).
    pub fn stored_subtype(&self) -> &[u8] {
        &self.text[self.stored_subtype.clone()]
    }

    /// The message as stored (still encoded when [`Presence::base64`]).
    pub fn stored_message(&self) -> &[u8] {
        &self.text[self.stored_message.clone()]
    }

    /// The subtype every consumer sees (decoded), NUL-terminated.
    pub fn subtype_c(&self) -> &CStr {
        // The texts hold no NUL (checked when parsed) and each ends in one.
        CStr::from_bytes_until_nul(&self.text[self.stored_len + 1..]).unwrap_or_default()
    }

    /// The message every consumer sees (decoded), NUL-terminated.
    pub fn message_c(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.text[self.message_start..]).unwrap_or_default()
    }

    /// The subtype every consumer sees: decoded. (Where each text ends is known from the
    /// layout, so reads need not search for the NUL.)
    pub fn subtype(&self) -> &[u8] {
        &self.text[self.stored_len + 1..self.message_start - 1]
    }

    /// The message every consumer sees: decoded.
    pub fn message(&self) -> &[u8] {
        &self.text[self.message_start..self.text.len() - 1]
    }

    /// Whether two values announce the same thing to consumers.
    pub fn announces_same(&self, other: &Presence) -> bool {
        self.state == other.state
            && self.subtype() == other.subtype()
            && self.message() == other.message()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceState::*;

    #[test]
    fn stock_valid_values_parse_alike() {
        for case in STOCK_VALID {
            let parsed =
                Presence::parse(case.text).unwrap_or_else(|e| panic!("{:?}: {e}", case.text));
            assert!(case.matches(&parsed), "{:?} gave {parsed:?}", case.text);
            assert_eq!(parsed.stored(), case.text);
        }
    }

    #[test]
    fn stock_invalid_values_are_refused() {
        for text in STOCK_INVALID {
            assert!(Presence::parse(text).is_err(), "{text:?}");
        }
        assert_eq!(Presence::parse(b""), Err(ValueError::MissingState));
        assert_eq!(
            Presence::parse(b"bored"),
            Err(ValueError::UnknownState(b"bored".to_vec()))
        );
        assert_eq!(
            Presence::parse(b"away,,,i"),
            Err(ValueError::UnknownOptions(b"i".to_vec()))
        );
        assert_eq!(
            Presence::parse(b"away,,,,e"),
            Err(ValueError::TooManyFields(5))
        );
        assert_eq!(Presence::parse(b",sub,msg"), Err(ValueError::MissingState));
    }

    /// Stock section 7, defect 3: any option text holding an `e` switched base64 on.
    #[test]
    fn options_hold_only_known_letters() {
        let err = Presence::parse(b"away,,Lunch, see you").unwrap_err();
        assert_eq!(err, ValueError::UnknownOptions(b" see you".to_vec()));
        assert!(err.to_string().contains("base64-encode"), "{err}");
        assert!(Presence::parse(b"away,,,E").is_err());
        assert!(Presence::parse(b"away,,,ee").unwrap().base64());
    }

    #[test]
    fn base64_values_are_decoded_for_consumers_and_kept_encoded_in_store() {
        let p = Presence::parse(b"xa,T24gdmFjYXRpb24=,,e").unwrap();
        assert_eq!(p.stored_subtype(), b"T24gdmFjYXRpb24=");
        assert_eq!(p.subtype(), b"On vacation");
        assert_eq!(p.message(), b"");
    }

    /// Stock section 7, defect 1: decoded values were cut at 255 bytes.
    #[test]
    fn long_base64_values_decode_whole() {
        let long: Vec<u8> = b"0123456789".iter().cycle().take(70_000).copied().collect();
        let mut text = b"away,,".to_vec();
        text.extend(base64::encode(&long));
        text.extend(b",e");
        let p = Presence::parse(&text).unwrap();
        assert_eq!(p.message(), &long[..]);
    }

    #[test]
    fn bad_base64_is_refused_with_the_field_named() {
        let err = Presence::parse(b"away,not base64!,,e").unwrap_err();
        assert!(
            matches!(
                err,
                ValueError::BadBase64 {
                    field: "subtype",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = Presence::parse(b"away,,Zm9v!,e").unwrap_err();
        assert!(
            err.to_string().contains("message is not valid base64"),
            "{err}"
        );
        let err = Presence::parse(b"away,AA==,,e").unwrap_err();
        assert_eq!(err, ValueError::NulInDecoded { field: "subtype" });
    }

    #[test]
    fn values_keep_odd_bytes_and_case() {
        let p = Presence::parse(b"DND,\xff\xfe,caf\xc3\xa9").unwrap();
        assert_eq!(p.state(), Dnd);
        assert_eq!(p.subtype(), b"\xff\xfe");
        assert_eq!(p.stored(), b"DND,\xff\xfe,caf\xc3\xa9");
    }

    #[test]
    fn texts_are_handed_to_asterisk_nul_terminated_and_never_hold_nul() {
        let p = Presence::parse(b"away,T24gdmFjYXRpb24=,back at 2,e").unwrap_err();
        assert!(matches!(
            p,
            ValueError::BadBase64 {
                field: "message",
                ..
            }
        ));
        let p = Presence::parse(b"away,T24gdmFjYXRpb24=,YmFjayBhdCAy,e").unwrap();
        assert_eq!(p.subtype_c(), c"On vacation");
        assert_eq!(p.message_c(), c"back at 2");
        let p = Presence::parse(b"dnd,,In a meeting").unwrap();
        assert_eq!((p.subtype_c(), p.message_c()), (c"", c"In a meeting"));
        assert_eq!(Presence::parse(b"away,a\0b"), Err(ValueError::NulByte));
    }

    #[test]
    fn announces_same_compares_what_consumers_see() {
        let plain = Presence::parse(b"away,On vacation").unwrap();
        let encoded = Presence::parse(b"away,T24gdmFjYXRpb24=,,e").unwrap();
        assert!(plain.announces_same(&encoded));
        assert!(!plain.announces_same(&Presence::parse(b"away,On holiday").unwrap()));
    }
}
