//! The CLI commands `presencestate list` and `presencestate change`, as text.

use super::state::PresenceState;
use super::store::Name;
use super::value::Presence;
use std::sync::Arc;

const RULE: &str = "---------------------------------------------------------------------\n";

/// `presencestate list` in the stock layout: name, state, subtype and message as stored, and
/// the base64 flag. Unlike stock, the full name is shown (stock cut it at its last `/`).
pub fn list(states: &[(Name, Arc<Presence>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\n");
    out.extend_from_slice(RULE.as_bytes());
    out.extend_from_slice(
        b"--- Custom Presence States ------------------------------------------\n",
    );
    out.extend_from_slice(RULE.as_bytes());
    out.extend_from_slice(b"---\n");
    if states.is_empty() {
        out.extend_from_slice(b"No custom presence states defined\n");
        return out;
    }
    for (name, presence) in states {
        let fields: [(&[u8], &[u8]); 5] = [
            (b"--- Name: 'CustomPresence:", name),
            (b"    --- State: '", presence.state().name().as_bytes()),
            (b"    --- Subtype: '", presence.stored_subtype()),
            (b"    --- Message: '", presence.stored_message()),
            (
                b"    --- Base64 Encoded: '",
                if presence.base64() { b"Yes" } else { b"No" },
            ),
        ];
        for (label, text) in fields {
            out.extend_from_slice(label);
            out.extend_from_slice(text);
            out.extend_from_slice(b"'\n");
        }
        out.extend_from_slice(b"---\n");
    }
    out.extend_from_slice(RULE.as_bytes());
    out.extend_from_slice(RULE.as_bytes());
    out.extend_from_slice(b"\n");
    out
}

/// Tab completion of the state argument of `presencestate change`: the `n`th state name (upper
/// case, as stock offers them) that starts with `word`, ignoring case.
pub fn complete_state(word: &[u8], n: usize) -> Option<String> {
    PresenceState::ALL
        .into_iter()
        .map(|state| state.name().to_ascii_uppercase())
        .filter(|name| {
            name.len() >= word.len() && name.as_bytes()[..word.len()].eq_ignore_ascii_case(word)
        })
        .nth(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_shows_full_names_and_stored_text() {
        let states = vec![(
            Name::from(&b"team/alice"[..]),
            Arc::new(Presence::parse(b"away,ZG93bg==,,e").unwrap()),
        )];
        let text = String::from_utf8(list(&states)).unwrap();
        assert!(
            text.contains("--- Name: 'CustomPresence:team/alice'\n"),
            "{text}"
        );
        assert!(text.contains("    --- State: 'away'\n"));
        assert!(text.contains("    --- Subtype: 'ZG93bg=='\n"));
        assert!(text.contains("    --- Message: ''\n"));
        assert!(text.contains("    --- Base64 Encoded: 'Yes'\n"));
    }

    #[test]
    fn empty_list_says_so() {
        let text = String::from_utf8(list(&[])).unwrap();
        assert!(text.ends_with("No custom presence states defined\n"));
    }

    #[test]
    fn completion_offers_matching_states() {
        assert_eq!(complete_state(b"a", 0).as_deref(), Some("AVAILABLE"));
        assert_eq!(complete_state(b"a", 1).as_deref(), Some("AWAY"));
        assert_eq!(complete_state(b"a", 2), None);
        assert_eq!(complete_state(b"", 6).as_deref(), Some("DND"));
        assert_eq!(complete_state(b"Dn", 0).as_deref(), Some("DND"));
    }
}
