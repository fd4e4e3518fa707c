//! `[sip_publish]` and `[sip_publish_activities]` of presencestate.conf (two arms of
//! `core::config::parse`); `configs/presencestate.conf.sample` explains every default.
//!
//! ```text
//! [sip_publish]
//! enabled = no              ; yes: a PUBLISH (Event: presence) from any endpoint sets presence
//! name = {user}             ; the CustomPresence name it sets: {user} the Request-URI's user,
//!                           ; {endpoint} the endpoint's id (e.g. phones/{endpoint})
//! grant = reception: frontdesk, lobby   ; users an endpoint may publish besides its own id
//! min_expires = 60          ; below: 423 Interval Too Brief (1 to max_expires)
//! max_expires = 3600        ; above: the publication is granted this long (up to one year)
//! default_expires = 3600    ; a PUBLISH without Expires
//! max_body = 16384          ; bytes; above: 413 (256 to 65536)
//! open = available          ; <basic>open</basic> with no mapped activity
//! closed = unavailable      ; <basic>closed</basic> with no mapped activity
//!
//! [sip_publish_activities]  ; RPID activity = presence state (replaces the default table)
//! away = away
//! ```

use crate::core::setting::{ConfigWarning, Problem, Setting};
use crate::core::state::PresenceState;
use crate::core::value::MAX_EXPIRY_SECONDS;

/// What `[sip_publish]` configures; the default is off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipPublishConfig {
    pub enabled: bool,
    pub name: NameTemplate,
    /// `(endpoint, users)`: the Request-URI users each endpoint may publish besides its own id.
    pub grants: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_body: usize,
    pub states: StateMap,
}

impl Default for SipPublishConfig {
    fn default() -> SipPublishConfig {
        SipPublishConfig {
            enabled: false,
            name: NameTemplate::default(),
            grants: Vec::new(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_body: 16_384,
            states: StateMap::default(),
        }
    }
}

impl SipPublishConfig {
    /// Whether `endpoint` may publish for Request-URI user `user`: its own id, or a grant.
    pub fn may_publish(&self, endpoint: &[u8], user: &[u8]) -> bool {
        user == endpoint
            || self
                .grants
                .iter()
                .any(|(e, users)| e == endpoint && users.iter().any(|u| u == user))
    }
}

/// One piece of a [`NameTemplate`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    User,
    Endpoint,
}

/// The name a publication sets, from `{user}` and `{endpoint}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameTemplate {
    pieces: Vec<Piece>,
    text: String,
}

impl Default for NameTemplate {
    fn default() -> NameTemplate {
        NameTemplate::parse(b"{user}").expect("the default template parses")
    }
}

impl NameTemplate {
    /// Parses a template: text with `{user}` and `{endpoint}`; `None` for another `{...}`, a
    /// lone brace, or a template that holds neither placeholder (every endpoint would set one
    /// name).
    pub fn parse(text: &[u8]) -> Option<NameTemplate> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.iter().position(|&b| b == b'{' || b == b'}') {
            if rest[open] == b'}' {
                return None;
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_vec()));
            }
            let close = rest[open..].iter().position(|&b| b == b'}')? + open;
            pieces.push(match &rest[open + 1..close] {
                b"user" => Piece::User,
                b"endpoint" => Piece::Endpoint,
                _ => return None,
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_vec()));
        }
        if !pieces
            .iter()
            .any(|p| matches!(p, Piece::User | Piece::Endpoint))
        {
            return None;
        }
        Some(NameTemplate {
            pieces,
            text: String::from_utf8_lossy(text).into_owned(),
        })
    }

    pub fn expand(&self, user: &[u8], endpoint: &[u8]) -> Vec<u8> {
        let mut name = Vec::new();
        for piece in &self.pieces {
            name.extend_from_slice(match piece {
                Piece::Text(text) => text,
                Piece::User => user,
                Piece::Endpoint => endpoint,
            });
        }
        name
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Body to presence state: RPID activities, then the basic status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMap {
    pub open: PresenceState,
    pub closed: PresenceState,
    activities: Vec<(String, PresenceState)>,
}

/// The default activity table (the sample file says why each).
const DEFAULT_ACTIVITIES: [(&str, PresenceState); 21] = [
    ("away", PresenceState::Away),
    ("breakfast", PresenceState::Away),
    ("dinner", PresenceState::Away),
    ("lunch", PresenceState::Away),
    ("meal", PresenceState::Away),
    ("in-transit", PresenceState::Away),
    ("travel", PresenceState::Away),
    ("steering", PresenceState::Away),
    ("shopping", PresenceState::Away),
    ("busy", PresenceState::Dnd),
    ("on-the-phone", PresenceState::Dnd),
    ("meeting", PresenceState::Dnd),
    ("appointment", PresenceState::Dnd),
    ("performance", PresenceState::Dnd),
    ("presentation", PresenceState::Dnd),
    ("worship", PresenceState::Dnd),
    ("vacation", PresenceState::Xa),
    ("holiday", PresenceState::Xa),
    ("permanent-absence", PresenceState::Xa),
    ("sleeping", PresenceState::Xa),
    ("looking-for-work", PresenceState::Xa),
];

impl Default for StateMap {
    fn default() -> StateMap {
        StateMap {
            open: PresenceState::Available,
            closed: PresenceState::Unavailable,
            activities: DEFAULT_ACTIVITIES
                .iter()
                .map(|&(name, state)| (name.to_string(), state))
                .collect(),
        }
    }
}

impl StateMap {
    /// The state an activity maps to, if the table names it.
    pub fn activity(&self, name: &str) -> Option<PresenceState> {
        self.activities
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(name))
            .map(|&(_, state)| state)
    }
}

fn state_value(
    setting: &Setting<'_>,
    default: PresenceState,
    warnings: &mut Vec<ConfigWarning>,
) -> PresenceState {
    PresenceState::parse(setting.value.trim_ascii()).unwrap_or_else(|| {
        warnings.push(setting.problem(Problem::BadValue {
            expected: "a presence state (unavailable, available, away, xa, chat, dnd)".into(),
            default: default.name().into(),
        }));
        default
    })
}

/// Splits `endpoint: user, user` of a `grant` line.
fn grant(value: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let colon = value.iter().position(|&b| b == b':')?;
    let endpoint = value[..colon].trim_ascii();
    let users: Vec<Vec<u8>> = value[colon + 1..]
        .split(|&b| b == b',' || b == b' ')
        .map(<[u8]>::trim_ascii)
        .filter(|u| !u.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    (!endpoint.is_empty() && !users.is_empty()).then(|| (endpoint.to_vec(), users))
}

/// Parses `[sip_publish]` into `config`.
pub fn parse(
    lines: &[&Setting<'_>],
    config: &mut SipPublishConfig,
    warnings: &mut Vec<ConfigWarning>,
) {
    let defaults = SipPublishConfig::default();
    let max_seconds = u64::from(MAX_EXPIRY_SECONDS);
    for setting in lines {
        if setting.is("enabled") {
            config.enabled = setting.boolean(false, warnings);
        } else if setting.is("name") {
            config.name = NameTemplate::parse(setting.value.trim_ascii()).unwrap_or_else(|| {
                warnings.push(setting.problem(Problem::BadValue {
                    expected:
                        "a name template holding {user} or {endpoint} (and no other {...})".into(),
                    default: defaults.name.as_str().into(),
                }));
                defaults.name.clone()
            });
        } else if setting.is("grant") {
            match grant(setting.value) {
                Some(grant) => config.grants.push(grant),
                None => warnings.push(setting.problem(Problem::BadValue {
                    expected: "'<endpoint>: <user>[, <user>...]'".into(),
                    default: "no grant".into(),
                })),
            }
        } else if setting.is("min_expires") {
            config.min_expires =
                setting.number(1..=max_seconds, defaults.min_expires.into(), warnings) as u32;
        } else if setting.is("max_expires") {
            config.max_expires =
                setting.number(1..=max_seconds, defaults.max_expires.into(), warnings) as u32;
        } else if setting.is("default_expires") {
            config.default_expires =
                setting.number(1..=max_seconds, defaults.default_expires.into(), warnings) as u32;
        } else if setting.is("max_body") {
            config.max_body =
                setting.number(256..=65_536, defaults.max_body as u64, warnings) as usize;
        } else if setting.is("open") {
            config.states.open = state_value(setting, defaults.states.open, warnings);
        } else if setting.is("closed") {
            config.states.closed = state_value(setting, defaults.states.closed, warnings);
        } else {
            setting.unknown(warnings);
        }
    }
    if config.min_expires > config.max_expires {
        if let Some(line) = lines.iter().find(|s| s.is("min_expires")) {
            warnings.push(line.problem(Problem::BadValue {
                expected: format!("at most max_expires ({})", config.max_expires),
                default: config.max_expires.to_string(),
            }));
        }
        config.min_expires = config.max_expires;
    }
}

/// Parses `[sip_publish_activities]`: when present, it replaces the default table whole, so
/// an activity left out maps to nothing (the basic status decides).
pub fn parse_activities(
    lines: &[&Setting<'_>],
    config: &mut SipPublishConfig,
    warnings: &mut Vec<ConfigWarning>,
) {
    let mut activities = Vec::new();
    for setting in lines {
        let name = setting.key.trim_ascii();
        let valid = !name.is_empty()
            && name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            setting.unknown(warnings);
            continue;
        }
        match PresenceState::parse(setting.value.trim_ascii()) {
            Some(state) => {
                activities.push((String::from_utf8_lossy(name).into_owned(), state));
            }
            None => warnings.push(setting.problem(Problem::BadValue {
                expected: "a presence state (unavailable, available, away, xa, chat, dnd)".into(),
                default: "no mapping for this activity".into(),
            })),
        }
    }
    config.states.activities = activities;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::parse as parse_file;
    use crate::core::setting::setting;

    #[test]
    fn off_by_default_with_the_documented_defaults() {
        let config = SipPublishConfig::default();
        assert!(!config.enabled);
        assert_eq!(config.name.expand(b"alice", b"ep"), b"alice");
        assert_eq!(
            (config.min_expires, config.max_expires, config.max_body),
            (60, 3600, 16_384)
        );
        assert_eq!(
            config.states.activity("On-The-Phone"),
            Some(PresenceState::Dnd)
        );
        assert_eq!(config.states.activity("holiday"), Some(PresenceState::Xa));
        assert_eq!(config.states.activity("unknown"), None);
    }

    #[test]
    fn every_option_is_read_and_checked() {
        let (config, warnings) = parse_file(&[
            setting("sip_publish", "enabled", "yes", 1),
            setting("sip_publish", "name", "phones/{endpoint}", 2),
            setting("sip_publish", "grant", "reception: frontdesk, lobby", 3),
            setting("sip_publish", "min_expires", "5", 4),
            setting("sip_publish", "max_expires", "120", 5),
            setting("sip_publish", "closed", "xa", 6),
            setting("sip_publish_activities", "meeting", "away", 7),
            setting("sip_publish", "max_body", "10", 8),
            setting("sip_publish", "name", "{nobody}", 9),
            setting("sip_publish", "grant", "nobody", 10),
            setting("sip_publish_activities", "lunch", "hungry", 11),
        ]);
        let sip = config.sip_publish;
        assert!(sip.enabled);
        // The second, bad, `name` line brought the default back.
        assert_eq!(sip.name.expand(b"u", b"alice"), b"u");
        assert!(sip.may_publish(b"reception", b"lobby") && sip.may_publish(b"bob", b"bob"));
        assert!(!sip.may_publish(b"bob", b"lobby"));
        assert_eq!((sip.min_expires, sip.max_expires), (5, 120));
        assert_eq!(sip.states.closed, PresenceState::Xa);
        assert_eq!(sip.states.activity("meeting"), Some(PresenceState::Away));
        assert_eq!(sip.states.activity("away"), None, "the table was replaced");
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].contains("'max_body' = '10'"), "{}", text[0]);
        assert!(text[1].contains("'{nobody}'") && text[1].ends_with("'{user}'"));
        assert!(text[2].contains("'grant' = 'nobody'"));
        assert!(text[3].contains("'lunch' = 'hungry'"));
    }

    #[test]
    fn templates_need_a_placeholder_and_know_only_two() {
        let t = NameTemplate::parse(b"team/{user}@{endpoint}").unwrap();
        assert_eq!(t.expand(b"u", b"e"), b"team/u@e");
        for bad in [&b"fixed"[..], b"{user", b"user}", b"{}", b"{User}", b""] {
            assert!(NameTemplate::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_minimum_above_the_maximum_is_lowered() {
        let (config, warnings) = parse_file(&[
            setting("sip_publish", "min_expires", "600", 1),
            setting("sip_publish", "max_expires", "300", 2),
        ]);
        assert_eq!(config.sip_publish.min_expires, 300);
        assert_eq!(warnings.len(), 1);
    }
}
