//! The CLI commands `presencestate list [like <text>]`, `show`, `change` and `delete`, as
//! text.

use super::expiry::Timing;
use super::meta::Source;
use super::state::PresenceState;
use super::store::Name;
use super::value::Presence;
use super::{shown, PROVIDER_PREFIX};
use std::sync::Arc;

const RULE: &str = "---------------------------------------------------------------------\n";

/// Whether `CustomPresence:<name>` contains `text`, ignoring case (as `module show like`).
pub fn is_like(name: &[u8], text: &[u8]) -> bool {
    let full = [PROVIDER_PREFIX.as_bytes(), name].concat();
    text.is_empty()
        || full
            .windows(text.len())
            .any(|window| window.eq_ignore_ascii_case(text))
}

/// `N custom presence states (M shown)`.
fn count_line(total: usize, shown: usize) -> String {
    let plural = if total == 1 { "state" } else { "states" };
    format!("{total} custom presence {plural} ({shown} shown)\n")
}

/// `presencestate list [like <text>]` in the stock layout (name, state, subtype and message
/// as stored, the base64 flag) for the states whose name contains `like`; `like` (ours
/// alone) adds a count line, plain `list` is exactly stock's. Unlike stock, the full name is
/// shown (stock cut it at its last `/`).
pub fn list(states: &[(Name, Arc<Presence>)], like: Option<&[u8]>) -> Vec<u8> {
    let matching: Vec<_> = states
        .iter()
        .filter(|(name, _)| like.is_none_or(|text| is_like(name, text)))
        .collect();
    let mut out = list_layout(&matching, like);
    if like.is_some() {
        out.extend_from_slice(count_line(states.len(), matching.len()).as_bytes());
    }
    out
}

/// What `presencestate change` prints after a write, as stock prints it: the name after the
/// prefix, and the state as written (the text before the first comma).
pub fn changed(name: &[u8], value: &[u8]) -> Vec<u8> {
    let state = value.split(|&b| b == b',').next().unwrap_or_default();
    format!("Changing {} to {}\n", shown(name), shown(state)).into_bytes()
}

fn list_layout(states: &[&(Name, Arc<Presence>)], like: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\n");
    out.extend_from_slice(RULE.as_bytes());
    out.extend_from_slice(
        b"--- Custom Presence States ------------------------------------------\n",
    );
    out.extend_from_slice(RULE.as_bytes());
    out.extend_from_slice(b"---\n");
    if states.is_empty() {
        let none = match like {
            Some(text) => format!("No custom presence state matches '{}'\n", shown(text)),
            None => "No custom presence states defined\n".to_string(),
        };
        out.extend_from_slice(none.as_bytes());
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

/// `presencestate show CustomPresence:<name>`: the state, subtype and message decoded, whether
/// they are stored base64-encoded, and the last change (`changed`: the local time already
/// formatted, and what made it) when known.
pub fn show(name: &[u8], presence: &Presence, changed: Option<(String, Source<'_>)>) -> Vec<u8> {
    let (when, by) = match changed {
        Some((when, by)) => (when, by.to_string()),
        None => ("unknown".to_string(), "unknown".to_string()),
    };
    let encoded = if presence.base64() {
        "yes (subtype and message stored base64-encoded, option e)"
    } else {
        "no"
    };
    let mut out = Vec::new();
    for (label, text) in [
        (
            "Presentity",
            format!("{PROVIDER_PREFIX}{}", shown_whole(name)),
        ),
        ("State", presence.state().name().to_string()),
        ("Subtype", shown_whole(presence.subtype())),
        ("Message", shown_whole(presence.message())),
        ("Encoded", encoded.to_string()),
        ("Last changed", when),
        ("Changed by", by),
    ] {
        out.extend_from_slice(format!("{label:<13}: {text}\n").as_bytes());
    }
    out
}

/// The lines `presencestate show` adds for a timed state: when it expires (`when`, local
/// time; `in_seconds` from now) and the state it then reverts to, as stored.
pub fn show_expiry(timing: &Timing, when: &str, in_seconds: u64) -> Vec<u8> {
    format!(
        "{:<13}: {when} (in {in_seconds} s)\n{:<13}: {}\n",
        "Expires",
        "Then reverts",
        shown_whole(timing.revert_text())
    )
    .into_bytes()
}

/// User text shown whole (lossy UTF-8): `show` prints one state, so nothing is elided.
fn shown_whole(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Tab completion of a presentity (`presencestate show` / `delete`): each
/// `CustomPresence:<name>` of `names` (sorted) that starts with `word`, ignoring case.
pub fn completions<'a>(names: &'a [Name], word: &'a [u8]) -> impl Iterator<Item = Vec<u8>> + 'a {
    names
        .iter()
        .map(|name| [PROVIDER_PREFIX.as_bytes(), name].concat())
        .filter(|full| full.len() >= word.len() && full[..word.len()].eq_ignore_ascii_case(word))
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
        let text = String::from_utf8(list(&states, None)).unwrap();
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
        let text = String::from_utf8(list(&[], None)).unwrap();
        assert!(
            text.ends_with("---\nNo custom presence states defined\n"),
            "{text}"
        );
    }

    fn states(names: &[&str]) -> Vec<(Name, Arc<Presence>)> {
        let away = Arc::new(Presence::parse(b"away").unwrap());
        names
            .iter()
            .map(|n| (Name::from(n.as_bytes()), Arc::clone(&away)))
            .collect()
    }

    #[test]
    fn list_like_filters_by_name_ignoring_case_and_counts() {
        let all = states(&["sales/alice", "sales/bob", "support/carol"]);
        let text = String::from_utf8(list(&all, Some(b"SALES"))).unwrap();
        assert!(
            text.contains("'CustomPresence:sales/alice'")
                && text.contains("'CustomPresence:sales/bob'")
        );
        assert!(!text.contains("carol"), "{text}");
        assert!(
            text.ends_with("---\n\n3 custom presence states (2 shown)\n"),
            "{text}"
        );
        let text = String::from_utf8(list(&all, Some(b"zed"))).unwrap();
        assert!(text.ends_with(
            "No custom presence state matches 'zed'\n3 custom presence states (0 shown)\n"
        ));
        let one = String::from_utf8(list(&states(&["x"]), Some(b""))).unwrap();
        assert!(one.ends_with("1 custom presence state (1 shown)\n"));
        let plain = String::from_utf8(list(&states(&["x"]), None)).unwrap();
        assert!(
            plain.ends_with(&format!("---\n{RULE}{RULE}\n")),
            "stock's: {plain}"
        );
        assert_eq!(
            changed(b"team/x", b"AWAY,lunch,,e"),
            b"Changing team/x to AWAY\n"
        );
        assert!(is_like(b"alice", b"presence:al") && !is_like(b"alice", b"bob"));
    }

    #[test]
    fn show_prints_decoded_values_and_the_last_change() {
        let presence = Presence::parse(b"away,bHVuY2g=,YmFjaywgc29vbg==,e").unwrap();
        let when = "2026-11-30 12:00:01 CET".to_string();
        let text = String::from_utf8(show(
            b"alice",
            &presence,
            Some((when, Source::Channel(b"PJSIP/100-00000001".to_vec().into()))),
        ))
        .unwrap();
        assert_eq!(
            text,
            "Presentity   : CustomPresence:alice\n\
             State        : away\n\
             Subtype      : lunch\n\
             Message      : back, soon\n\
             Encoded      : yes (subtype and message stored base64-encoded, option e)\n\
             Last changed : 2026-11-30 12:00:01 CET\n\
             Changed by   : channel PJSIP/100-00000001\n"
        );
        let text = String::from_utf8(show(b"b", &Presence::parse(b"dnd").unwrap(), None)).unwrap();
        assert!(
            text.contains("Encoded      : no\n")
                && text.ends_with("Last changed : unknown\nChanged by   : unknown\n")
        );
    }

    #[test]
    fn show_of_a_timed_state_adds_its_deadline_and_revert() {
        let revert = Arc::new(Presence::parse(b"available,,At my desk").unwrap());
        let timing = Timing {
            deadline_ms: 1_764_503_600_000,
            revert: Some(revert),
        };
        let text =
            String::from_utf8(show_expiry(&timing, "2026-11-30 13:00:00 CET", 3599)).unwrap();
        assert_eq!(
            text,
            "Expires      : 2026-11-30 13:00:00 CET (in 3599 s)\n\
             Then reverts : available,,At my desk\n"
        );
        let to_not_set = Timing {
            deadline_ms: 1,
            revert: None,
        };
        assert!(String::from_utf8(show_expiry(&to_not_set, "x", 0))
            .unwrap()
            .ends_with("Then reverts : not_set\n"));
    }

    #[test]
    fn completion_offers_matching_presentities() {
        let names: Vec<Name> = ["alan", "alice", "bob"]
            .iter()
            .map(|n| Name::from(n.as_bytes()))
            .collect();
        let offered: Vec<Vec<u8>> = completions(&names, b"custompresence:al").collect();
        assert_eq!(
            offered,
            [&b"CustomPresence:alan"[..], b"CustomPresence:alice"]
        );
        assert_eq!(completions(&names, b"").count(), 3);
        assert_eq!(completions(&names, b"CustomPresence:c").count(), 0);
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
