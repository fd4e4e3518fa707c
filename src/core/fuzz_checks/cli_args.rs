//! Fuzz target `cli_args`: `presencestate change` (name, completion, the write) and
//! `presencestate list`.

use super::store_load::{check_load, check_write, Recorder};
use super::{check_warning_text, entries, split_lines};
use crate::core::cli;
use crate::core::custom_presence_name;
use crate::core::state::PresenceState;
use crate::core::store::{name_for_write, Name, Store, WriteError};
use crate::core::value::Presence;
use std::collections::BTreeMap;

/// The state names `presencestate change` completion offers, upper case, in Asterisk's order.
const COMPLETIONS: [&str; 7] = [
    "NOT_SET",
    "UNAVAILABLE",
    "AVAILABLE",
    "AWAY",
    "XA",
    "CHAT",
    "DND",
];

/// `presencestate list` read back in order: the fixed header, one block per state with the
/// full name and the subtype and message as stored, and the footer (or the empty notice):
/// stock's layout, nothing after it.
fn check_list(text: &[u8], states: &[(Name, std::sync::Arc<Presence>)]) {
    let mut rest = text;
    let mut take = |expected: &[u8]| {
        assert!(
            rest.starts_with(expected),
            "list: expected {:?} at {:?}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&rest[..rest.len().min(80)])
        );
        rest = &rest[expected.len()..];
    };
    let rule: &[u8] = &[b'-'; 69];
    take(b"\n");
    let header: [&[u8]; 4] = [
        rule,
        b"--- Custom Presence States ------------------------------------------",
        rule,
        b"---",
    ];
    for line in header {
        take(line);
        take(b"\n");
    }
    if states.is_empty() {
        take(b"No custom presence states defined\n");
    } else {
        for (name, p) in states {
            let flag: &[u8] = if p.base64() { b"Yes" } else { b"No" };
            let fields: [(&[u8], &[u8]); 5] = [
                (b"--- Name: 'CustomPresence:", name),
                (b"    --- State: '", p.state().name().as_bytes()),
                (b"    --- Subtype: '", p.stored_subtype()),
                (b"    --- Message: '", p.stored_message()),
                (b"    --- Base64 Encoded: '", flag),
            ];
            for (label, value) in fields {
                take(label);
                take(value);
                take(b"'\n");
            }
            take(b"---\n");
        }
        let footer: [&[u8]; 3] = [rule, rule, b""];
        for line in footer {
            take(line);
            take(b"\n");
        }
    }
    assert!(rest.is_empty(), "list: trailing {rest:?}");
}

/// Fuzz target `cli_args`: `name_for_write` accepts exactly a `CustomPresence:` prefix in any
/// case followed by a non-empty comma-free name (and returns that name); completion offers
/// exactly the state names starting with the word, ignoring case, each of which parses; a
/// `presencestate change` onto a loaded store does what the write checks say, and
/// `presencestate list` shows every state whole, sorted by name.
pub fn cli_args(data: &[u8]) {
    let mut lines = split_lines(data);
    let word = lines.next().unwrap_or_default();
    let value = lines.next().unwrap_or_default();

    const PREFIX: &[u8] = b"custompresence:";
    let has_prefix =
        word.len() >= PREFIX.len() && word[..PREFIX.len()].to_ascii_lowercase() == PREFIX;
    let after = has_prefix.then(|| &word[PREFIX.len()..]);
    assert_eq!(custom_presence_name(word), after);
    let wanted = match after {
        None => Err(WriteError::NotCustomPresence(word.to_vec())),
        Some([]) => Err(WriteError::EmptyName),
        Some(name) if name.contains(&b',') => Err(WriteError::CommaInName(name.to_vec())),
        Some(name) => Ok(name),
    };
    let got = name_for_write(word);
    match &got {
        Ok(name) => assert_eq!(name.as_ptr(), word[PREFIX.len()..].as_ptr()),
        Err(error) => check_warning_text(error),
    }
    assert_eq!(got, wanted);

    let lower = word.to_ascii_lowercase();
    let offered: Vec<&str> = COMPLETIONS
        .into_iter()
        .filter(|name| name.to_ascii_lowercase().as_bytes().starts_with(&lower))
        .collect();
    for n in (0..=COMPLETIONS.len()).chain([usize::MAX]) {
        let completion = cli::complete_state(word, n);
        assert_eq!(
            completion.as_deref(),
            offered.get(n).copied(),
            "complete({word:?}, {n})"
        );
        if let Some(name) = completion {
            assert!(PresenceState::parse(name.as_bytes()).is_some());
        }
    }

    let store = Store::default();
    let mut model = BTreeMap::new();
    check_load(&store, &mut model, entries(lines));
    let _ = check_write(&store, &Recorder::default(), &mut model, word, value);
    let states = store.snapshot();
    check_list(&cli::list(&states, None), &states);
}
