//! A written presence value: `state[,subtype[,message[,options]]]`, the stock AstDB format.

use super::base64::{self, Base64Error};
use super::shown;
use super::state::PresenceState;
use std::ffi::CStr;
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;

mod stock_cases;
pub use stock_cases::{ParseCase, STOCK_INVALID, STOCK_VALID};
mod timing;
pub use timing::{Timing, NOT_SET};

/// The longest expiry option `t(<seconds>)` accepts: one year of 365 days.
pub const MAX_EXPIRY_SECONDS: u32 = 365 * 24 * 3600;

/// One custom presence state, parsed from the text that was written and is stored in AstDB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    state: PresenceState,
    base64: bool,
    /// `stored\0subtype\0message\0`: the text exactly as written (the AstDB value), then the
    /// subtype and message consumers see (decoded when `base64`), each NUL-terminated so an
    /// announcement hands them to Asterisk without copying. Inside the state when short.
    text: Text,
    stored_len: usize,
    /// The subtype and message inside the stored text (still encoded when `base64`).
    stored_subtype: Range<usize>,
    stored_message: Range<usize>,
    /// Where the consumers' message starts in `text` (their subtype starts after `stored\0`).
    message_start: usize,
    /// Option `t(<seconds>)`: the state reverts after that long.
    expiry: Option<NonZeroU32>,
    /// When a timed write made this the name's state: its deadline and what it reverts to.
    /// (A stored value holding `t(...)` but no recorded deadline, e.g. one the stock module
    /// wrote, is not timed.)
    timing: Option<Box<Timing>>,
}

/// Why a written or stored value was refused. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum ValueError {
    NulByte,
    MissingState,
    UnknownState(Vec<u8>),
    TooManyFields(usize),
    UnknownOptions(Vec<u8>),
    BadExpiry {
        options: Vec<u8>,
        reason: ExpiryProblem,
    },
    BadBase64 {
        field: &'static str,
        error: Base64Error,
    },
    NulInDecoded {
        field: &'static str,
    },
}

/// What is wrong with a `t(<seconds>)` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryProblem {
    /// `t` without `(`, or `(` without `)`.
    NoArgument,
    /// The argument is empty or not a plain decimal number (`t()`, `t(-1)`, `t(abc)`).
    NotANumber,
    /// `t(0)`, or more than [`MAX_EXPIRY_SECONDS`].
    OutOfRange,
    /// `t(...)` given twice.
    Repeated,
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
                "unknown options '{}' (the options are 'e' and 't(<seconds>)'); {COMMA_HINT}",
                shown(options)
            ),
            ValueError::BadExpiry { options, reason } => {
                let what = match reason {
                    ExpiryProblem::NoArgument => "'t' needs its seconds in parentheses",
                    ExpiryProblem::NotANumber => "the seconds of t(...) are not a whole number",
                    ExpiryProblem::OutOfRange => "the seconds of t(...) are out of range",
                    ExpiryProblem::Repeated => "t(...) is given more than once",
                };
                write!(
                    f,
                    "bad options '{}': {what} (expected t(<seconds>), 1 to \
                     {MAX_EXPIRY_SECONDS}, one year)",
                    shown(options)
                )
            }
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

/// The options field: any sequence of `e` (base64) and at most one `t(<seconds>)`, in any
/// order, as Asterisk's letter-with-argument options are written. Returns (base64, expiry).
fn parse_options(options: &[u8]) -> Result<(bool, Option<NonZeroU32>), ValueError> {
    let bad_expiry = |reason| ValueError::BadExpiry {
        options: options.to_vec(),
        reason,
    };
    let (mut base64, mut expiry) = (false, None);
    let mut rest = options;
    while let Some((&letter, after)) = rest.split_first() {
        rest = after;
        match letter {
            b'e' => base64 = true,
            b't' => {
                let argument = rest
                    .strip_prefix(b"(")
                    .ok_or(bad_expiry(ExpiryProblem::NoArgument))?;
                let close = argument
                    .iter()
                    .position(|&b| b == b')')
                    .ok_or(bad_expiry(ExpiryProblem::NoArgument))?;
                let digits = &argument[..close];
                rest = &argument[close + 1..];
                if expiry.is_some() {
                    return Err(bad_expiry(ExpiryProblem::Repeated));
                }
                expiry = Some(expiry_seconds(digits).map_err(bad_expiry)?);
            }
            _ => return Err(ValueError::UnknownOptions(options.to_vec())),
        }
    }
    Ok((base64, expiry))
}

/// The seconds of `t(<digits>)`: a plain decimal number from 1 to [`MAX_EXPIRY_SECONDS`].
fn expiry_seconds(digits: &[u8]) -> Result<NonZeroU32, ExpiryProblem> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ExpiryProblem::NotANumber);
    }
    // Past ten digits the number is out of range whatever they are (leading zeros aside).
    let significant = &digits[digits.iter().take_while(|&&b| b == b'0').count()..];
    if significant.len() > 10 {
        return Err(ExpiryProblem::OutOfRange);
    }
    let seconds = significant
        .iter()
        .fold(0_u64, |n, &d| n * 10 + u64::from(d - b'0'));
    u32::try_from(seconds)
        .ok()
        .filter(|&s| s <= MAX_EXPIRY_SECONDS)
        .and_then(NonZeroU32::new)
        .ok_or(ExpiryProblem::OutOfRange)
}

/// How many bytes of text a state holds inside itself; a longer text is a separate allocation.
/// (A state's text is its value, subtype and message with a NUL each: 46 bytes hold
/// `away,lunch,Back at 2` twice over, and keep the whole state within 112 bytes of malloc.)
const INLINE: usize = 46;

/// The text of a state: inside it when short (most are), so a state is one allocation.
#[derive(Clone)]
enum Text {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Text {
    /// `parts` one after the other, each followed by a NUL, if they fit inside.
    fn inline(parts: &[&[u8]]) -> Option<Text> {
        let len: usize = parts.iter().map(|part| part.len() + 1).sum();
        if len > INLINE {
            return None;
        }
        // (Zeroed, so the NUL after each part is there already.)
        let mut bytes = [0u8; INLINE];
        let mut at = 0;
        for part in parts {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len() + 1;
        }
        Some(Text::Inline {
            len: len as u8,
            bytes,
        })
    }
}

impl From<Vec<u8>> for Text {
    /// `all`, its NULs included.
    fn from(all: Vec<u8>) -> Text {
        if let Some((0, but_last)) = all.split_last() {
            if let Some(inline) = Text::inline(&[but_last]) {
                return inline;
            }
        }
        Text::Heap(all.into_boxed_slice())
    }
}

impl std::ops::Deref for Text {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Text::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Text::Heap(bytes) => bytes,
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        **self == **other
    }
}

impl Eq for Text {}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", shown(self))
    }
}

impl Presence {
    /// Parses `state[,subtype[,message[,options]]]`. Unlike stock, options may hold only `e`
    /// and `t(<seconds>)`, and a fifth field is an error rather than silently dropped.
    pub fn parse(text: &[u8]) -> Result<Presence, ValueError> {
        // Values reach us as C strings; a NUL could only come from a caller's mistake, and
        // refusing it keeps every text NUL-free for Asterisk.
        if text.contains(&0) {
            return Err(ValueError::NulByte);
        }
        Presence::parse_nul_free(text)
    }

    /// [`Presence::parse`] of a C string's text, which holds no NUL by its type.
    pub fn parse_c(text: &CStr) -> Result<Presence, ValueError> {
        Presence::parse_nul_free(text.to_bytes())
    }

    fn parse_nul_free(text: &[u8]) -> Result<Presence, ValueError> {
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
        let (base64, expiry) = parse_options(&text[options_field])?;

        let (subtype, message) = (&text[stored_subtype.clone()], &text[stored_message.clone()]);
        if !base64 {
            if let Some(inline) = Text::inline(&[text, subtype, message]) {
                return Ok(Presence {
                    state,
                    base64,
                    text: inline,
                    stored_len: text.len(),
                    stored_subtype,
                    stored_message,
                    message_start: text.len() + subtype.len() + 2,
                    expiry,
                    timing: None,
                });
            }
        }
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
            text: Text::from(all),
            stored_len: text.len(),
            stored_subtype,
            stored_message,
            message_start,
            expiry,
            timing: None,
        })
    }

    /// The state every name has until written, and the revert of a timed state that had no
    /// untimed state before it.
    pub fn not_set() -> Presence {
        Presence::parse(b"not_set").expect("not_set is a state")
    }

    /// The expiry of this state as the name's current state, if it is timed.
    pub fn timing(&self) -> Option<&Timing> {
        self.timing.as_deref()
    }

    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = Some(Box::new(timing));
    }

    /// Option `t(<seconds>)`: how long the state holds before it reverts.
    pub fn expiry(&self) -> Option<NonZeroU32> {
        self.expiry
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

    /// The subtype every consumer sees (decoded), its NUL included: what the FFI hands to
    /// Asterisk without looking for the NUL again (each text holds none and ends in one).
    pub fn subtype_with_nul(&self) -> &[u8] {
        &self.text[self.stored_len + 1..self.message_start]
    }

    /// The message every consumer sees (decoded), its NUL included (see
    /// [`Presence::subtype_with_nul`]).
    pub fn message_with_nul(&self) -> &[u8] {
        &self.text[self.message_start..]
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
    fn expiry_combines_with_e_in_any_order() {
        let seconds = |text: &[u8]| Presence::parse(text).unwrap().expiry().map(u32::from);
        assert_eq!(seconds(b"dnd,,In a meeting,t(3600)"), Some(3600));
        assert_eq!(seconds(b"dnd"), None);
        assert_eq!(seconds(b"dnd,,,e"), None);
        for text in [
            &b"xa,T24gdmFjYXRpb24=,,et(3600)"[..],
            b"xa,T24gdmFjYXRpb24=,,t(3600)e",
        ] {
            let p = Presence::parse(text).unwrap();
            assert!(p.base64() && p.subtype() == b"On vacation", "{text:?}");
            assert_eq!(p.expiry().map(u32::from), Some(3600));
            assert_eq!(
                p.stored(),
                text,
                "t(...) stays in the stored text as written"
            );
        }
        assert_eq!(seconds(b"away,,,t(1)"), Some(1));
        assert_eq!(seconds(b"away,,,t(007)"), Some(7));
        assert_eq!(seconds(b"away,,,t(31536000)"), Some(MAX_EXPIRY_SECONDS));
        // Without e, t(...) leaves subtype and message plain (stock ignores it: no 'e' in it).
        let p = Presence::parse(b"away,upstairs,Lunch,t(60)").unwrap();
        assert!(!p.base64() && p.message() == b"Lunch");
    }

    #[test]
    fn bad_expiry_arguments_are_refused() {
        use ExpiryProblem::*;
        let cases: [(&[u8], ExpiryProblem); 12] = [
            (b"t()", NotANumber),
            (b"t(-1)", NotANumber),
            (b"t(abc)", NotANumber),
            (b"t(+5)", NotANumber),
            (b"t( 5)", NotANumber),
            (b"t(0)", OutOfRange),
            (b"t(000)", OutOfRange),
            (b"t(31536001)", OutOfRange),
            (b"t(99999999999999999999)", OutOfRange),
            (b"t", NoArgument),
            (b"t(5", NoArgument),
            (b"t(5)et(6)", Repeated),
        ];
        for (options, reason) in cases {
            let text = [&b"dnd,,,"[..], options].concat();
            assert_eq!(
                Presence::parse(&text),
                Err(ValueError::BadExpiry {
                    options: options.to_vec(),
                    reason
                }),
                "{options:?}"
            );
        }
        let err = Presence::parse(b"dnd,,,t(abc)").unwrap_err().to_string();
        assert!(
            err.contains("'t(abc)'") && err.contains("31536000"),
            "{err}"
        );
        assert_eq!(
            Presence::parse(b"dnd,,,t(5)x"),
            Err(ValueError::UnknownOptions(b"t(5)x".to_vec()))
        );
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
        let c = |text| CStr::from_bytes_with_nul(text).unwrap();
        let p = Presence::parse(b"away,T24gdmFjYXRpb24=,YmFjayBhdCAy,e").unwrap();
        assert_eq!(c(p.subtype_with_nul()), c"On vacation");
        assert_eq!(c(p.message_with_nul()), c"back at 2");
        let p = Presence::parse_c(c"dnd,,In a meeting").unwrap();
        assert_eq!(
            (c(p.subtype_with_nul()), c(p.message_with_nul())),
            (c"", c"In a meeting")
        );
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
