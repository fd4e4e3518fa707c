//! The AMI actions `PresenceStateSet` and `PresenceStateDelete`: their headers checked and
//! turned into the stock AstDB value (`compose`).

use super::compose::{compose, FieldError, Fields};
use super::shown;
use super::stats::Refusal;
use super::store::{name_for_write, WriteError};
use super::value::MAX_EXPIRY_SECONDS;
use std::fmt;

/// The fields of a `PresenceStateSet` action (empty when the header is absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAction<'a> {
    pub presentity: &'a [u8],
    pub state: &'a [u8],
    pub subtype: &'a [u8],
    pub message: &'a [u8],
    pub encoded: &'a [u8],
    /// `Expiry: <seconds>`: a timed state, as option `t(<seconds>)` writes it.
    pub expiry: &'a [u8],
}

/// Why an action was refused before anything was written. `Display` gives the `Message`.
#[derive(Debug, PartialEq, Eq)]
pub enum ActionError {
    MissingPresentity,
    MissingState,
    UnknownState(Vec<u8>),
    BadEncoded(Vec<u8>),
    BadExpiry(Vec<u8>),
    Write(WriteError),
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::MissingPresentity => {
                write!(f, "Presentity is required (CustomPresence:<name>)")
            }
            ActionError::MissingState => write!(
                f,
                "State is required (not_set, unavailable, available, away, xa, chat, dnd)"
            ),
            ActionError::UnknownState(state) => write!(
                f,
                "unknown State '{}' (not_set, unavailable, available, away, xa, chat, dnd)",
                shown(state)
            ),
            ActionError::BadEncoded(text) => {
                write!(f, "Encoded must be yes or no, not '{}'", shown(text))
            }
            ActionError::BadExpiry(text) => write!(
                f,
                "Expiry must be a whole number of seconds from 1 to {MAX_EXPIRY_SECONDS} (one \
                 year), not '{}'",
                shown(text)
            ),
            ActionError::Write(error) => write!(f, "{error}"),
        }
    }
}

impl ActionError {
    /// How `presencestate stats` counts the refusal.
    pub fn refusal(&self) -> Refusal {
        match self {
            ActionError::MissingPresentity => Refusal::NotCustomPresence,
            ActionError::MissingState | ActionError::UnknownState(_) => Refusal::UnknownState,
            ActionError::BadEncoded(_) | ActionError::BadExpiry(_) => Refusal::BadValue,
            ActionError::Write(error) => error.refusal(),
        }
    }
}

/// An AMI yes/no as Asterisk's `ast_true`/`ast_false` read it; `Some(false)` when absent.
fn yes_no(text: &[u8]) -> Option<bool> {
    let any = |words: &[&str]| {
        words
            .iter()
            .any(|w| text.eq_ignore_ascii_case(w.as_bytes()))
    };
    if text.is_empty() || any(&["no", "false", "n", "f", "0", "off"]) {
        Some(false)
    } else if any(&["yes", "true", "y", "t", "1", "on"]) {
        Some(true)
    } else {
        None
    }
}

/// The name the action addresses: `Presentity: CustomPresence:<name>`.
pub fn presentity(text: &[u8]) -> Result<&[u8], ActionError> {
    if text.is_empty() {
        return Err(ActionError::MissingPresentity);
    }
    name_for_write(text).map_err(ActionError::Write)
}

/// The value to write for a `PresenceStateSet`, in the stock format (see
/// [`compose`]); `Encoded: yes` takes subtype and message already base64-encoded.
pub fn value_for_set(action: &SetAction<'_>) -> Result<Vec<u8>, ActionError> {
    presentity(action.presentity)?;
    let encoded =
        yes_no(action.encoded).ok_or_else(|| ActionError::BadEncoded(action.encoded.to_vec()));
    let fields = Fields {
        state: action.state,
        subtype: action.subtype,
        message: action.message,
        encoded: false,
        expiry: action.expiry,
    };
    // The state is checked before Encoded, as it always was.
    if let Err(error @ (FieldError::MissingState | FieldError::UnknownState(_))) = compose(&fields)
    {
        return Err(error.into());
    }
    let fields = Fields {
        encoded: encoded?,
        ..fields
    };
    compose(&fields).map_err(ActionError::from)
}

impl From<FieldError> for ActionError {
    fn from(error: FieldError) -> ActionError {
        match error {
            FieldError::MissingState => ActionError::MissingState,
            FieldError::UnknownState(state) => ActionError::UnknownState(state),
            FieldError::BadExpiry(text) => ActionError::BadExpiry(text),
            FieldError::Value(error) => ActionError::Write(WriteError::Value(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::value::Presence;

    fn set<'a>(
        presentity: &'a str,
        state: &'a str,
        subtype: &'a str,
        message: &'a str,
        encoded: &'a str,
    ) -> SetAction<'a> {
        SetAction {
            presentity: presentity.as_bytes(),
            state: state.as_bytes(),
            subtype: subtype.as_bytes(),
            message: message.as_bytes(),
            encoded: encoded.as_bytes(),
            expiry: b"",
        }
    }

    #[test]
    fn expiry_becomes_option_t_and_bad_values_are_named() {
        let timed = |expiry: &'static str, subtype| SetAction {
            expiry: expiry.as_bytes(),
            ..set("CustomPresence:a", "dnd", subtype, "", "")
        };
        assert_eq!(value(timed("3600", "")), "dnd,,,t(3600)");
        assert_eq!(value(timed("60", "a, b")), "dnd,YSwgYg==,,et(60)");
        for bad in ["0", "-5", "abc", "31536001", "1)", "5,e"] {
            assert_eq!(
                value_for_set(&timed(bad, "")),
                Err(ActionError::BadExpiry(bad.as_bytes().to_vec())),
                "{bad}"
            );
        }
        let message = value_for_set(&timed("x", "")).unwrap_err().to_string();
        assert!(
            message.starts_with("Expiry must be a whole number of seconds"),
            "{message}"
        );
    }

    fn value(action: SetAction<'_>) -> String {
        String::from_utf8(value_for_set(&action).unwrap()).unwrap()
    }

    #[test]
    fn plain_values_are_stored_as_the_dialplan_would_write_them() {
        assert_eq!(value(set("CustomPresence:a", "AWAY", "", "", "")), "away");
        assert_eq!(
            value(set("CustomPresence:a", "dnd", "busy", "In a call", "no")),
            "dnd,busy,In a call"
        );
        assert_eq!(
            value(set("CustomPresence:a", "xa", "", "Back Monday", "")),
            "xa,,Back Monday"
        );
    }

    #[test]
    fn commas_are_stored_base64_with_option_e_and_read_back_whole() {
        let stored = value(set(
            "CustomPresence:a",
            "away",
            "lunch, late",
            "Back at 2, promise",
            "",
        ));
        assert_eq!(stored, "away,bHVuY2gsIGxhdGU=,QmFjayBhdCAyLCBwcm9taXNl,e");
        let presence = Presence::parse(stored.as_bytes()).unwrap();
        assert_eq!(presence.subtype(), b"lunch, late");
        assert_eq!(presence.message(), b"Back at 2, promise");
    }

    #[test]
    fn encoded_yes_takes_base64_as_given() {
        assert_eq!(
            value(set(
                "CustomPresence:a",
                "away",
                "",
                "T24gdmFjYXRpb24=",
                "yes"
            )),
            "away,,T24gdmFjYXRpb24=,e"
        );
        assert_eq!(
            value(set("CustomPresence:a", "away", "", "", "yes")),
            "away,,,e"
        );
    }

    #[test]
    fn bad_actions_say_what_is_wrong() {
        let error = |action: SetAction<'_>| value_for_set(&action).unwrap_err().to_string();
        assert_eq!(
            error(set("", "away", "", "", "")),
            "Presentity is required (CustomPresence:<name>)"
        );
        assert!(error(set("PJSIP/100", "away", "", "", ""))
            .contains("only CustomPresence: presence can be set"));
        assert!(error(set("CustomPresence:", "away", "", "", "")).contains("empty"));
        assert!(error(set("CustomPresence:a", "", "", "", "")).starts_with("State is required"));
        assert!(error(set("CustomPresence:a", "bored", "", "", ""))
            .starts_with("unknown State 'bored'"));
        assert_eq!(
            error(set("CustomPresence:a", "away", "", "", "maybe")),
            "Encoded must be yes or no, not 'maybe'"
        );
        assert!(
            error(set("CustomPresence:a", "away", "", "%%%", "yes")).contains("not valid base64")
        );
    }

    #[test]
    fn delete_needs_a_custom_presence_presentity() {
        assert_eq!(presentity(b"CustomPresence:x"), Ok(&b"x"[..]));
        assert_eq!(presentity(b""), Err(ActionError::MissingPresentity));
        assert!(presentity(b"SIP/x").is_err());
    }
}
