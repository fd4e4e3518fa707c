//! A presence value in the stock format from its fields given apart, for the front doors that
//! take them that way (AMI `PresenceStateSet`, ARI `PUT /presenceStates/{name}`), so a panel
//! never base64-encodes by hand.

use super::base64;
use super::state::PresenceState;
use super::value::{Presence, ValueError};

/// The fields of a write.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields<'a> {
    pub state: &'a [u8],
    pub subtype: &'a [u8],
    pub message: &'a [u8],
    /// Subtype and message are given base64-encoded already.
    pub encoded: bool,
    /// Seconds until the state reverts (option `t(<seconds>)`); empty: untimed.
    pub expiry: &'a [u8],
}

/// Why the fields make no value. Each front door words it with its own field names.
#[derive(Debug, PartialEq, Eq)]
pub enum FieldError {
    MissingState,
    UnknownState(Vec<u8>),
    BadExpiry(Vec<u8>),
    /// The value they make is refused (invalid base64 given as encoded, a NUL byte).
    Value(ValueError),
}

/// The value to write: `state` alone, or `state,subtype,message`, with option `e` when the
/// fields are `encoded` or when the subtype or message holds a comma (both are then stored
/// base64-encoded, so the stock module reads them back whole), and `t(<seconds>)` for an
/// expiry. The state is stored by its canonical name.
pub fn compose(fields: &Fields<'_>) -> Result<Vec<u8>, FieldError> {
    if fields.state.is_empty() {
        return Err(FieldError::MissingState);
    }
    let state = PresenceState::parse(fields.state)
        .ok_or_else(|| FieldError::UnknownState(fields.state.to_vec()))?;
    let needs_encoding = [fields.subtype, fields.message]
        .iter()
        .any(|field| field.contains(&b','));
    let (subtype, message, mut options): (Vec<u8>, Vec<u8>, Vec<u8>) = if fields.encoded {
        (
            fields.subtype.to_vec(),
            fields.message.to_vec(),
            b"e".to_vec(),
        )
    } else if needs_encoding {
        (
            base64::encode(fields.subtype),
            base64::encode(fields.message),
            b"e".to_vec(),
        )
    } else {
        (fields.subtype.to_vec(), fields.message.to_vec(), Vec::new())
    };
    if !fields.expiry.is_empty() {
        // A ')' or ',' in the field would end the option early: refused as it stands.
        if !fields.expiry.iter().all(u8::is_ascii_digit) {
            return Err(FieldError::BadExpiry(fields.expiry.to_vec()));
        }
        options.extend_from_slice(b"t(");
        options.extend_from_slice(fields.expiry);
        options.push(b')');
    }
    let mut value = state.name().as_bytes().to_vec();
    if !(subtype.is_empty() && message.is_empty() && options.is_empty()) {
        for field in [&subtype[..], &message[..]] {
            value.push(b',');
            value.extend_from_slice(field);
        }
        if !options.is_empty() {
            value.push(b',');
            value.extend_from_slice(&options);
        }
    }
    // The same checks a write makes (base64 given as encoded, NUL bytes, the range of the
    // expiry), so the error names the field before anything is written.
    Presence::parse(&value).map_err(|error| match error {
        ValueError::BadExpiry { .. } => FieldError::BadExpiry(fields.expiry.to_vec()),
        error => FieldError::Value(error),
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(state: &str, subtype: &str, message: &str, expiry: &str) -> String {
        let fields = Fields {
            state: state.as_bytes(),
            subtype: subtype.as_bytes(),
            message: message.as_bytes(),
            encoded: false,
            expiry: expiry.as_bytes(),
        };
        String::from_utf8(compose(&fields).unwrap()).unwrap()
    }

    #[test]
    fn fields_make_the_stock_value() {
        assert_eq!(value("AWAY", "", "", ""), "away");
        assert_eq!(value("dnd", "busy", "In a call", ""), "dnd,busy,In a call");
        assert_eq!(value("dnd", "", "", "60"), "dnd,,,t(60)");
        assert_eq!(value("away", "a, b", "", "60"), "away,YSwgYg==,,et(60)");
    }

    #[test]
    fn bad_fields_are_named() {
        let error = |state: &str, expiry: &str| {
            compose(&Fields {
                state: state.as_bytes(),
                expiry: expiry.as_bytes(),
                ..Fields::default()
            })
            .unwrap_err()
        };
        assert_eq!(error("", ""), FieldError::MissingState);
        assert_eq!(
            error("bored", ""),
            FieldError::UnknownState(b"bored".to_vec())
        );
        for bad in ["0", "-1", "1.5", "31536001"] {
            assert_eq!(
                error("dnd", bad),
                FieldError::BadExpiry(bad.as_bytes().to_vec())
            );
        }
        let encoded = compose(&Fields {
            state: b"away",
            message: b"%%%",
            encoded: true,
            ..Fields::default()
        });
        assert!(matches!(encoded, Err(FieldError::Value(_))), "{encoded:?}");
    }
}
