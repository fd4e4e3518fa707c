//! The seven presence states of `asterisk/presencestate.h`.

/// A presence state. Asterisk's INVALID has no name and is not a state: parsing gives `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PresenceState {
    NotSet,
    Unavailable,
    Available,
    Away,
    Xa,
    Chat,
    Dnd,
}

impl PresenceState {
    /// Every state, in Asterisk's enum order.
    pub const ALL: [PresenceState; 7] = [
        PresenceState::NotSet,
        PresenceState::Unavailable,
        PresenceState::Available,
        PresenceState::Away,
        PresenceState::Xa,
        PresenceState::Chat,
        PresenceState::Dnd,
    ];

    /// The lower-case name Asterisk prints.
    pub fn name(self) -> &'static str {
        match self {
            PresenceState::NotSet => "not_set",
            PresenceState::Unavailable => "unavailable",
            PresenceState::Available => "available",
            PresenceState::Away => "away",
            PresenceState::Xa => "xa",
            PresenceState::Chat => "chat",
            PresenceState::Dnd => "dnd",
        }
    }

    /// Parses a state name, case-insensitively, as `ast_presence_state_val` does.
    pub fn parse(text: &[u8]) -> Option<PresenceState> {
        Self::ALL
            .into_iter()
            .find(|state| state.name().as_bytes().eq_ignore_ascii_case(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_in_any_case() {
        for state in PresenceState::ALL {
            assert_eq!(PresenceState::parse(state.name().as_bytes()), Some(state));
            let upper = state.name().to_ascii_uppercase();
            assert_eq!(PresenceState::parse(upper.as_bytes()), Some(state));
        }
        assert_eq!(PresenceState::parse(b"Away"), Some(PresenceState::Away));
    }

    #[test]
    fn unknown_names_are_not_states() {
        for text in [
            &b""[..],
            b"bored",
            b"away ",
            b" away",
            b"invalid",
            b"not set",
        ] {
            assert_eq!(PresenceState::parse(text), None, "{text:?}");
        }
    }
}
