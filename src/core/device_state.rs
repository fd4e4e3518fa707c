//! Presence as device state: the `CustomPresence` device-state provider's answer for each
//! presence state, so BLF keys of phones that know only device state follow presence.

use super::state::PresenceState;
use std::sync::atomic::{AtomicU8, Ordering};

/// Asterisk's device states (`enum ast_device_state`), in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    Unknown,
    NotInuse,
    Inuse,
    Busy,
    Invalid,
    Unavailable,
    Ringing,
    RingInuse,
    OnHold,
}

impl DeviceState {
    /// Every state, in Asterisk's enum order.
    pub const ALL: [DeviceState; 9] = [
        DeviceState::Unknown,
        DeviceState::NotInuse,
        DeviceState::Inuse,
        DeviceState::Busy,
        DeviceState::Invalid,
        DeviceState::Unavailable,
        DeviceState::Ringing,
        DeviceState::RingInuse,
        DeviceState::OnHold,
    ];

    /// The name Asterisk parses and prints (`ast_devstate_val` / `ast_devstate_str`).
    pub fn name(self) -> &'static str {
        match self {
            DeviceState::Unknown => "UNKNOWN",
            DeviceState::NotInuse => "NOT_INUSE",
            DeviceState::Inuse => "INUSE",
            DeviceState::Busy => "BUSY",
            DeviceState::Invalid => "INVALID",
            DeviceState::Unavailable => "UNAVAILABLE",
            DeviceState::Ringing => "RINGING",
            DeviceState::RingInuse => "RINGINUSE",
            DeviceState::OnHold => "ONHOLD",
        }
    }

    /// A device-state name in any case, as `ast_devstate_val` reads it. INVALID is refused:
    /// it tells Asterisk the device does not exist, which no presence means.
    pub fn parse_mappable(text: &[u8]) -> Option<DeviceState> {
        Self::ALL
            .into_iter()
            .filter(|&state| state != DeviceState::Invalid)
            .find(|state| state.name().as_bytes().eq_ignore_ascii_case(text))
    }

    fn index(self) -> u8 {
        Self::ALL.iter().position(|&s| s == self).unwrap_or(0) as u8
    }

    fn from_index(index: u8) -> DeviceState {
        Self::ALL
            .get(usize::from(index))
            .copied()
            .unwrap_or(DeviceState::Unknown)
    }
}

/// The device state announced for each presence state (`[device_state]` of
/// presencestate.conf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceStateMap([DeviceState; 7]);

fn slot(presence: PresenceState) -> usize {
    PresenceState::ALL
        .iter()
        .position(|&p| p == presence)
        .unwrap_or(0)
}

impl Default for DeviceStateMap {
    /// dnd shows busy, unavailable unavailable, available and chat free (the choice).
    /// away and xa show UNAVAILABLE and not_set UNKNOWN, because a hint joining the phone and
    /// the presence (`PJSIP/x&CustomPresence:x`) shows the highest of its parts in Asterisk's
    /// order INVALID < UNKNOWN < UNAVAILABLE < NOT_INUSE < ONHOLD < RINGING < INUSE < BUSY:
    /// so these never hide the phone's own state (a registered phone shows idle or its calls;
    /// NOT_INUSE would hide an unregistered phone), while a hint on the presence alone still
    /// shows "not at the desk" (configs/presencestate.conf.sample says more).
    fn default() -> DeviceStateMap {
        let mut map = DeviceStateMap([DeviceState::Unknown; 7]);
        for (presence, device) in [
            (PresenceState::NotSet, DeviceState::Unknown),
            (PresenceState::Unavailable, DeviceState::Unavailable),
            (PresenceState::Available, DeviceState::NotInuse),
            (PresenceState::Away, DeviceState::Unavailable),
            (PresenceState::Xa, DeviceState::Unavailable),
            (PresenceState::Chat, DeviceState::NotInuse),
            (PresenceState::Dnd, DeviceState::Busy),
        ] {
            map.set(presence, device);
        }
        map
    }
}

impl DeviceStateMap {
    pub fn get(&self, presence: PresenceState) -> DeviceState {
        self.0[slot(presence)]
    }

    pub fn set(&mut self, presence: PresenceState, device: DeviceState) {
        self.0[slot(presence)] = device;
    }
}

/// The map in force, read on every announcement and provider call without a lock.
pub struct LiveDeviceStateMap([AtomicU8; 7]);

impl Default for LiveDeviceStateMap {
    fn default() -> LiveDeviceStateMap {
        let live = LiveDeviceStateMap(std::array::from_fn(|_| AtomicU8::new(0)));
        live.replace(&DeviceStateMap::default());
        live
    }
}

impl LiveDeviceStateMap {
    pub fn get(&self, presence: PresenceState) -> DeviceState {
        DeviceState::from_index(self.0[slot(presence)].load(Ordering::Relaxed))
    }

    /// Puts `map` in force; returns the presence states that now map differently.
    pub fn replace(&self, map: &DeviceStateMap) -> Remapped {
        let mut remapped = Remapped::default();
        for presence in PresenceState::ALL {
            let new = map.get(presence).index();
            remapped.0[slot(presence)] = self.0[slot(presence)].swap(new, Ordering::Relaxed) != new;
        }
        remapped
    }
}

/// The presence states whose device state a new `[device_state]` table changed: only names in
/// these states need their device state announced again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remapped([bool; 7]);

impl Remapped {
    /// Every presence state: for announcing every name's device state.
    pub fn all() -> Remapped {
        Remapped([true; 7])
    }

    pub fn contains(&self, presence: PresenceState) -> bool {
        self.0[slot(presence)]
    }

    pub fn is_empty(&self) -> bool {
        !self.0.contains(&true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_except_invalid() {
        for state in DeviceState::ALL {
            let parsed = DeviceState::parse_mappable(state.name().to_lowercase().as_bytes());
            let expected = (state != DeviceState::Invalid).then_some(state);
            assert_eq!(parsed, expected, "{state:?}");
        }
        assert_eq!(
            DeviceState::parse_mappable(b"Not_InUse"),
            Some(DeviceState::NotInuse)
        );
        assert_eq!(DeviceState::parse_mappable(b"idle"), None);
        assert_eq!(DeviceState::parse_mappable(b""), None);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let map = DeviceStateMap::default();
        let expected = [
            (PresenceState::NotSet, "UNKNOWN"),
            (PresenceState::Unavailable, "UNAVAILABLE"),
            (PresenceState::Available, "NOT_INUSE"),
            (PresenceState::Away, "UNAVAILABLE"),
            (PresenceState::Xa, "UNAVAILABLE"),
            (PresenceState::Chat, "NOT_INUSE"),
            (PresenceState::Dnd, "BUSY"),
        ];
        for (presence, device) in expected {
            assert_eq!(map.get(presence).name(), device, "{presence:?}");
        }
    }

    #[test]
    fn the_live_map_says_when_a_replacement_changes_it() {
        let live = LiveDeviceStateMap::default();
        assert_eq!(live.get(PresenceState::Dnd), DeviceState::Busy);
        assert!(live.replace(&DeviceStateMap::default()).is_empty());
        let mut map = DeviceStateMap::default();
        map.set(PresenceState::Away, DeviceState::OnHold);
        map.set(PresenceState::Xa, DeviceState::Unavailable);
        let remapped = live.replace(&map);
        assert!(remapped.contains(PresenceState::Away));
        assert!(!remapped.contains(PresenceState::Xa), "xa maps as before");
        assert_eq!(live.get(PresenceState::Away), DeviceState::OnHold);
        assert!(live.replace(&map).is_empty());
    }
}
