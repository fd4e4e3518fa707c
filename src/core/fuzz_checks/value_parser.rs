//! Fuzz target `value_parser`: `Presence::parse` against a reference parser written from the
//! value format `state[,subtype[,message[,options]]]`.

use super::check_warning_text;
use crate::core::base64;
use crate::core::state::PresenceState;
use crate::core::value::{ExpiryProblem, Presence, ValueError, MAX_EXPIRY_SECONDS};

type Fields<'a> = (
    PresenceState,
    &'a [u8],
    &'a [u8],
    Option<(Vec<u8>, Vec<u8>)>,
    Option<u32>,
);

/// The options field from its definition, read left to right: `e` any number of times, and at
/// most one `t(<seconds>)` (1 to one year, decimal digits only); the first problem found
/// decides the error. Returns (base64, seconds).
fn reference_options(options: &[u8]) -> Result<(bool, Option<u32>), ValueError> {
    let bad = |reason| ValueError::BadExpiry {
        options: options.to_vec(),
        reason,
    };
    let (mut base64, mut seconds) = (false, None);
    let mut i = 0;
    while i < options.len() {
        if options[i] == b'e' {
            base64 = true;
            i += 1;
            continue;
        }
        if options[i] != b't' {
            return Err(ValueError::UnknownOptions(options.to_vec()));
        }
        if options.get(i + 1) != Some(&b'(') {
            return Err(bad(ExpiryProblem::NoArgument));
        }
        let Some(len) = options[i + 2..].iter().position(|&b| b == b')') else {
            return Err(bad(ExpiryProblem::NoArgument));
        };
        let argument = std::str::from_utf8(&options[i + 2..i + 2 + len]).unwrap_or("x");
        if seconds.is_some() {
            return Err(bad(ExpiryProblem::Repeated));
        }
        if argument.is_empty() || !argument.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(ExpiryProblem::NotANumber));
        }
        let value = argument.trim_start_matches('0');
        match value.parse::<u64>() {
            Ok(n) if (1..=u64::from(MAX_EXPIRY_SECONDS)).contains(&n) => seconds = Some(n as u32),
            _ => return Err(bad(ExpiryProblem::OutOfRange)),
        }
        i += 3 + len;
    }
    Ok((base64, seconds))
}

/// `state[,subtype[,message[,options]]]` from its definition: no NUL byte anywhere (values
/// are C strings), at most four comma-separated fields, a non-empty state name in any case,
/// options as [`reference_options`], and with `e` both subtype and message base64 without
/// NUL once decoded (the subtype checked first).
fn reference_value(text: &[u8]) -> Result<Fields<'_>, ValueError> {
    if text.contains(&0) {
        return Err(ValueError::NulByte);
    }
    let fields: Vec<&[u8]> = text.split(|&b| b == b',').collect();
    if fields.len() > 4 {
        return Err(ValueError::TooManyFields(fields.len()));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or_default();
    if field(0).is_empty() {
        return Err(ValueError::MissingState);
    }
    let lower = field(0).to_ascii_lowercase();
    let state = PresenceState::ALL
        .into_iter()
        .find(|state| state.name().as_bytes() == lower)
        .ok_or_else(|| ValueError::UnknownState(field(0).to_vec()))?;
    let (base64, seconds) = reference_options(field(3))?;
    let decoded = if !base64 {
        None
    } else {
        let mut both = Vec::new();
        for (i, name) in [(1, "subtype"), (2, "message")] {
            let bytes = base64::decode(field(i))
                .map_err(|error| ValueError::BadBase64 { field: name, error })?;
            if bytes.contains(&0) {
                return Err(ValueError::NulInDecoded { field: name });
            }
            both.push(bytes);
        }
        let message = both.pop().expect("two fields");
        Some((both.pop().expect("two fields"), message))
    };
    Ok((state, field(1), field(2), decoded, seconds))
}

/// Fuzz target `value_parser`: `Presence::parse` never panics, agrees with the reference
/// field by field (or refuses with the same error), keeps the input exactly as stored, and
/// its decoded texts re-encode to a value that announces the same.
pub fn value_parser(data: &[u8]) {
    let parsed = Presence::parse(data);
    let expected = reference_value(data);
    let p = match (parsed, expected) {
        (Err(error), Err(want)) => {
            assert_eq!(error, want, "parse({data:?})");
            check_warning_text(&error);
            return;
        }
        (Ok(p), Ok((state, subtype, message, decoded, seconds))) => {
            assert_eq!(p.stored(), data);
            assert_eq!(p.expiry().map(u32::from), seconds);
            assert_eq!(p.state(), state);
            assert_eq!(p.stored_subtype(), subtype);
            assert_eq!(p.stored_message(), message);
            assert_eq!(p.base64(), decoded.is_some());
            let (want_subtype, want_message) = decoded.unwrap_or((subtype.into(), message.into()));
            assert_eq!(p.subtype(), want_subtype);
            assert_eq!(p.message(), want_message);
            p
        }
        (parsed, expected) => panic!("parse({data:?}) = {parsed:?}, expected {expected:?}"),
    };
    assert_eq!(Presence::parse(p.stored()).as_ref(), Ok(&p));
    assert!(p.announces_same(&p));

    if p.base64() {
        for (decoded, stored) in [
            (p.subtype(), p.stored_subtype()),
            (p.message(), p.stored_message()),
        ] {
            assert!(!decoded.contains(&0));
            let again = base64::encode(decoded);
            assert_eq!(base64::decode(&again).as_deref(), Ok(decoded));
            assert_eq!(base64::decode(&again), base64::decode(stored));
        }
    }

    // The same state written the other way (encoded, or plain where it holds no comma) in
    // the canonical lower-case name announces the same.
    let name = p.state().name().as_bytes();
    let encoded = [
        name,
        b",",
        &base64::encode(p.subtype()),
        b",",
        &base64::encode(p.message()),
        b",e",
    ]
    .concat();
    // A parsed value's texts never hold NUL (Asterisk takes them as C strings), so the
    // encoded form always parses.
    assert!(!p.subtype().contains(&0) && !p.message().contains(&0));
    let q = Presence::parse(&encoded)
        .unwrap_or_else(|error| panic!("re-encoded {encoded:?} refused: {error}"));
    assert!(q.base64() && q.announces_same(&p) && p.announces_same(&q));
    if !p.subtype().contains(&b',') && !p.message().contains(&b',') {
        let plain = [name, b",", p.subtype(), b",", p.message()].concat();
        let q = Presence::parse(&plain).expect("plain form parses");
        assert!(!q.base64() && q.announces_same(&p));
    }
}
