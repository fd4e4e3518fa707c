//! Fuzz target `read_args`: `PRESENCE_STATE()`'s arguments and what a read returns.

use super::{check_warning_text, split_once};
use crate::core::base64;
use crate::core::read::{parse_read, render, Field, ReadError, ReadRequest};
use crate::core::state::PresenceState;
use crate::core::value::Presence;

/// `provider,field[,options]` from its definition: both non-empty, the field one of three
/// names in any case, and everything after the second comma the options (so a third comma is
/// an unknown option), which may hold only `e`.
fn reference_read(data: &[u8]) -> Result<ReadRequest<'_>, ReadError> {
    if data.is_empty() {
        return Err(ReadError::NoArgument);
    }
    let (provider, rest) = split_once(data, b',');
    let (field, options) = split_once(rest.unwrap_or_default(), b',');
    let options = options.unwrap_or_default();
    if provider.is_empty() || field.is_empty() {
        return Err(ReadError::MissingProviderOrField);
    }
    let field = match &*field.to_ascii_lowercase() {
        b"value" => Field::Value,
        b"subtype" => Field::Subtype,
        b"message" => Field::Message,
        _ => return Err(ReadError::UnknownField(field.to_vec())),
    };
    if options.iter().any(|&b| b != b'e') {
        return Err(ReadError::UnknownOptions(options.to_vec()));
    }
    Ok(ReadRequest {
        provider,
        field,
        base64: !options.is_empty(),
    })
}

/// Fuzz target `read_args`: `parse_read` agrees with the reference; `render` of `value` is
/// the state's name, and of a subtype or message the text itself, or base64 that decodes to
/// it with `e`, for every state, for the stored value's decoded texts and for raw bytes.
pub fn read_args(data: &[u8]) {
    let (args, stored) = split_once(data, b'\n');
    let parsed = parse_read(args);
    assert_eq!(parsed, reference_read(args), "parse_read({args:?})");
    let request = match parsed {
        Ok(request) => request,
        Err(error) => return check_warning_text(&error),
    };
    assert_eq!(request.provider.as_ptr(), args.as_ptr());

    let stored = stored.unwrap_or_default();
    // What the module reads: a stored state, or `not_set` for a name never written.
    let (state, subtype, message) = match Presence::parse(stored) {
        Ok(p) => (p.state(), p.subtype().to_vec(), p.message().to_vec()),
        Err(_) => (PresenceState::NotSet, Vec::new(), Vec::new()),
    };
    let (raw_subtype, raw_message) = split_once(stored, b',');
    let raw_message = raw_message.unwrap_or_default();
    let mut cases = vec![(state, &subtype[..], &message[..])];
    cases.extend(
        PresenceState::ALL
            .into_iter()
            .map(|state| (state, raw_subtype, raw_message)),
    );
    for (state, subtype, message) in cases {
        let text = render(&request, state, subtype, message);
        let source = match request.field {
            Field::Value => {
                assert_eq!(&*text, state.name().as_bytes());
                assert_eq!(PresenceState::parse(&text), Some(state));
                continue;
            }
            Field::Subtype => subtype,
            Field::Message => message,
        };
        if request.base64 {
            assert_eq!(text.len(), source.len().div_ceil(3) * 4);
            assert_eq!(base64::decode(&text).as_deref(), Ok(source));
        } else {
            assert_eq!(&*text, source);
        }
    }
}
