//! Reading: `PRESENCE_STATE(provider,field[,options])`.

use super::base64;
use super::shown;
use super::state::PresenceState;
use std::borrow::Cow;
use std::fmt;

/// Which part of a presence state a read returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Value,
    Subtype,
    Message,
}

/// A parsed read: the provider string, the field, and whether option `e` asks for base64.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadRequest<'a> {
    pub provider: &'a [u8],
    pub field: Field,
    pub base64: bool,
}

/// Why a read was refused. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    NoArgument,
    MissingProviderOrField,
    UnknownField(Vec<u8>),
    UnknownOptions(Vec<u8>),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NoArgument => {
                write!(f, "reading requires arguments (provider,field[,options])")
            }
            ReadError::MissingProviderOrField => {
                write!(f, "reading requires both a presence provider and a field (provider,field[,options])")
            }
            ReadError::UnknownField(field) => write!(
                f,
                "unknown field '{}' (use value, subtype or message)",
                shown(field)
            ),
            ReadError::UnknownOptions(options) => {
                write!(
                    f,
                    "unknown read options '{}' (the only option is 'e')",
                    shown(options)
                )
            }
        }
    }
}

/// Parses the function arguments of a read. A comma in the third argument stays in it (as
/// Asterisk's argument splitter leaves it), so it is refused as an unknown option.
pub fn parse_read(data: &[u8]) -> Result<ReadRequest<'_>, ReadError> {
    if data.is_empty() {
        return Err(ReadError::NoArgument);
    }
    let mut args = data.splitn(3, |&b| b == b',');
    let provider = args.next().unwrap_or_default();
    let field_text = args.next().unwrap_or_default();
    let options = args.next().unwrap_or_default();
    if provider.is_empty() || field_text.is_empty() {
        return Err(ReadError::MissingProviderOrField);
    }
    let field = if field_text.eq_ignore_ascii_case(b"value") {
        Field::Value
    } else if field_text.eq_ignore_ascii_case(b"subtype") {
        Field::Subtype
    } else if field_text.eq_ignore_ascii_case(b"message") {
        Field::Message
    } else {
        return Err(ReadError::UnknownField(field_text.to_vec()));
    };
    if options.iter().any(|&option| option != b'e') {
        return Err(ReadError::UnknownOptions(options.to_vec()));
    }
    Ok(ReadRequest {
        provider,
        field,
        base64: !options.is_empty(),
    })
}

/// The text a read returns, from the decoded subtype and message. `value` is never encoded.
pub fn render<'a>(
    request: &ReadRequest<'_>,
    state: PresenceState,
    subtype: &'a [u8],
    message: &'a [u8],
) -> Cow<'a, [u8]> {
    let text = match request.field {
        Field::Value => return Cow::Borrowed(state.name().as_bytes()),
        Field::Subtype => subtype,
        Field::Message => message,
    };
    if request.base64 {
        Cow::Owned(base64::encode(text))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_options_parse() {
        let r = parse_read(b"CustomPresence:alice,Message,e").unwrap();
        assert_eq!(
            r,
            ReadRequest {
                provider: b"CustomPresence:alice",
                field: Field::Message,
                base64: true
            }
        );
        let r = parse_read(b"PJSIP/100,value").unwrap();
        assert_eq!(
            (r.provider, r.field, r.base64),
            (&b"PJSIP/100"[..], Field::Value, false)
        );
        assert_eq!(parse_read(b"x,SUBTYPE,").unwrap().field, Field::Subtype);
    }

    #[test]
    fn bad_reads_are_refused() {
        assert_eq!(parse_read(b""), Err(ReadError::NoArgument));
        assert_eq!(
            parse_read(b"CustomPresence:a"),
            Err(ReadError::MissingProviderOrField)
        );
        assert_eq!(
            parse_read(b",value"),
            Err(ReadError::MissingProviderOrField)
        );
        assert_eq!(
            parse_read(b"CustomPresence:a,"),
            Err(ReadError::MissingProviderOrField)
        );
        // Stock section 7, defect 9: an unknown field gave an empty string without a word.
        assert_eq!(
            parse_read(b"CustomPresence:a,status"),
            Err(ReadError::UnknownField(b"status".to_vec()))
        );
        assert_eq!(
            parse_read(b"CustomPresence:a,value,x"),
            Err(ReadError::UnknownOptions(b"x".to_vec()))
        );
        assert_eq!(
            parse_read(b"CustomPresence:a,value,e,e"),
            Err(ReadError::UnknownOptions(b"e,e".to_vec()))
        );
    }

    #[test]
    fn render_encodes_only_subtype_and_message() {
        let r = parse_read(b"CustomPresence:a,value,e").unwrap();
        assert_eq!(&*render(&r, PresenceState::Away, b"s", b"m"), b"away");
        let r = parse_read(b"CustomPresence:a,subtype,e").unwrap();
        assert_eq!(
            &*render(&r, PresenceState::Away, b"down the hall", b"m"),
            b"ZG93biB0aGUgaGFsbA=="
        );
        let r = parse_read(b"CustomPresence:a,message").unwrap();
        assert_eq!(&*render(&r, PresenceState::Away, b"s", b"Lunch"), b"Lunch");
        let r = parse_read(b"CustomPresence:a,message,e").unwrap();
        assert_eq!(&*render(&r, PresenceState::Away, b"s", b""), b"");
    }
}
