//! `presencestate.conf`: the options Asterisk's config parser hands us, checked and typed.
//!
//! The FFI side (`crate::ffi::config`) reads the file with Asterisk's config API and passes
//! every option as a [`Setting`]; [`parse`] gives a [`Config`] and the warnings to log. Each
//! section has its own parser function, so a new section is one match arm in [`parse`]. A
//! bad value or an unknown option keeps the default and is warned about; nothing here fails.

use super::cluster::config::{self as cluster_config, ClusterConfig};
use super::device_state::{DeviceState, DeviceStateMap};
use super::setting::{ConfigWarning, Problem, Setting};
use super::sip_publish::config::{self as sip_publish_config, SipPublishConfig};
use super::state::PresenceState;

/// Everything the file configures. `Config::default()` is what a missing file means.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub general: General,
    /// `[device_state]`: whether presence is also a device state, and which.
    pub device_state: DeviceStateConfig,
    /// `[cluster]`: sharing every state with other servers through Corosync CPG.
    pub cluster: ClusterConfig,
    /// `[sip_publish]` and `[sip_publish_activities]`: presence from the phones' PUBLISH.
    pub sip_publish: SipPublishConfig,
}

/// `[general]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct General {
    /// Keep when and by what each state last changed (AstDB family `CustomPresenceMeta`).
    pub record_changes: bool,
    /// Log every change of a custom presence state at NOTICE level.
    pub log_changes: bool,
    /// A write that changes nothing consumers see (state, subtype, message) is stored but not
    /// announced again.
    pub suppress_identical: bool,
}

impl Default for General {
    fn default() -> General {
        General {
            record_changes: true,
            log_changes: false,
            suppress_identical: false,
        }
    }
}

/// `[device_state]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStateConfig {
    /// Register the `CustomPresence` device-state provider and announce device states. Off
    /// by default: stock has no such provider, so a hint naming `CustomPresence:x` among its
    /// devices must ignore presence unless the admin asks for it.
    pub enabled: bool,
    /// The device state each presence state announces.
    pub map: DeviceStateMap,
}

/// Types the file's settings, in file order (a repeated option: the last one counts).
pub fn parse(settings: &[Setting<'_>]) -> (Config, Vec<ConfigWarning>) {
    let mut config = Config::default();
    let mut warnings = Vec::new();
    let mut sections: Vec<(&[u8], Vec<&Setting<'_>>)> = Vec::new();
    for setting in settings {
        match sections
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(setting.section))
        {
            Some((_, lines)) => lines.push(setting),
            None => sections.push((setting.section, vec![setting])),
        }
    }
    for (name, lines) in sections {
        match name.to_ascii_lowercase().as_slice() {
            b"general" => config.general = parse_general(&lines, &mut warnings),
            b"device_state" => config.device_state = parse_device_state(&lines, &mut warnings),
            b"cluster" => config.cluster = cluster_config::parse(&lines, &mut warnings),
            b"sip_publish" => {
                sip_publish_config::parse(&lines, &mut config.sip_publish, &mut warnings)
            }
            b"sip_publish_activities" => {
                sip_publish_config::parse_activities(&lines, &mut config.sip_publish, &mut warnings)
            }
            _ => warnings.extend(
                lines
                    .iter()
                    .map(|setting| setting.problem(Problem::UnknownSection)),
            ),
        }
    }
    (config, warnings)
}

fn parse_general(lines: &[&Setting<'_>], warnings: &mut Vec<ConfigWarning>) -> General {
    let mut general = General::default();
    let defaults = General::default();
    for setting in lines {
        if setting.is("record_changes") {
            general.record_changes = setting.boolean(defaults.record_changes, warnings);
        } else if setting.is("log_changes") {
            general.log_changes = setting.boolean(defaults.log_changes, warnings);
        } else if setting.is("suppress_identical") {
            general.suppress_identical = setting.boolean(defaults.suppress_identical, warnings);
        } else {
            setting.unknown(warnings);
        }
    }
    general
}

const DEVICE_STATE_NAMES: &str =
    "a device state (NOT_INUSE, INUSE, BUSY, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD or UNKNOWN)";

/// `[device_state]`: `enabled` and `<presence state> = <device state>` lines; a state not
/// named keeps its default, and so does one given a value that is not a device state.
fn parse_device_state(
    lines: &[&Setting<'_>],
    warnings: &mut Vec<ConfigWarning>,
) -> DeviceStateConfig {
    let mut config = DeviceStateConfig::default();
    let defaults = DeviceStateMap::default();
    let map = &mut config.map;
    for setting in lines {
        if setting.is("enabled") {
            config.enabled = setting.boolean(false, warnings);
            continue;
        }
        let Some(presence) = PresenceState::parse(setting.key.trim_ascii()) else {
            setting.unknown(warnings);
            continue;
        };
        match DeviceState::parse_mappable(setting.value.trim_ascii()) {
            Some(device) => map.set(presence, device),
            None => {
                let default = defaults.get(presence);
                warnings.push(setting.problem(Problem::BadValue {
                    expected: DEVICE_STATE_NAMES.into(),
                    default: default.name().into(),
                }));
                map.set(presence, default);
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::setting::setting;

    #[test]
    fn no_settings_means_defaults() {
        let (config, warnings) = parse(&[]);
        assert_eq!(config, Config::default());
        assert!(config.general.record_changes && !config.general.log_changes);
        assert!(warnings.is_empty());
    }

    #[test]
    fn general_options_are_read_in_any_case_last_one_counting() {
        let (config, warnings) = parse(&[
            setting("general", "record_changes", "no", 2),
            setting("General", "LOG_CHANGES", " On ", 3),
            setting("general", "record_changes", "0", 4),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!config.general.record_changes && config.general.log_changes);
    }

    #[test]
    fn bad_values_keep_the_default_and_say_so() {
        let (config, warnings) = parse(&[
            setting("general", "log_changes", "yes", 2),
            setting("general", "record_changes", "maybe", 3),
        ]);
        assert!(config.general.record_changes && config.general.log_changes);
        assert_eq!(
            warnings[0].to_string(),
            "presencestate.conf line 3: [general] option 'record_changes' = 'maybe' is not a \
             boolean (yes or no); using the default 'yes'"
        );
    }

    #[test]
    fn unknown_options_and_sections_are_named_and_ignored() {
        let (config, warnings) = parse(&[
            setting("general", "colour", "blue", 2),
            setting("nonsense", "a", "b", 5),
            setting("nonsense", "c", "d", 6),
        ]);
        assert_eq!(config, Config::default());
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "presencestate.conf line 2: [general] unknown option 'colour' = 'blue' is ignored",
                "presencestate.conf line 5: unknown section [nonsense]; its option 'a' = 'b' is ignored",
                "presencestate.conf line 6: unknown section [nonsense]; its option 'c' = 'd' is ignored",
            ]
        );
    }

    #[test]
    fn the_device_state_table_maps_each_presence_state() {
        let (config, warnings) = parse(&[
            setting("device_state", "away", "onhold", 2),
            setting("device_state", "XA", " BUSY ", 3),
            setting("general", "suppress_identical", "yes", 4),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(
            !config.device_state.enabled,
            "a table alone does not switch it on"
        );
        let map = config.device_state.map;
        assert_eq!(map.get(PresenceState::Away), DeviceState::OnHold);
        assert_eq!(map.get(PresenceState::Xa), DeviceState::Busy);
        assert_eq!(
            map.get(PresenceState::Dnd),
            DeviceState::Busy,
            "default kept"
        );
        assert!(config.general.suppress_identical);
    }

    #[test]
    fn bad_device_state_lines_keep_the_default_and_say_so() {
        let (config, warnings) = parse(&[
            setting("device_state", "dnd", "INUSE", 2),
            setting("device_state", "dnd", "sleepy", 3),
            setting("device_state", "lunch", "BUSY", 4),
            setting("device_state", "away", "INVALID", 5),
        ]);
        assert_eq!(config.device_state, DeviceStateConfig::default());
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with(
                "presencestate.conf line 3: [device_state] option 'dnd' = 'sleepy' is not a \
                 device state"
            ) && text[0].ends_with("using the default 'BUSY'"),
            "{}",
            text[0]
        );
        assert_eq!(
            text[1],
            "presencestate.conf line 4: [device_state] unknown option 'lunch' = 'BUSY' is ignored"
        );
        assert!(text[2].contains("'away' = 'INVALID'") && text[2].ends_with("'UNAVAILABLE'"));
    }

    #[test]
    fn the_device_state_provider_is_off_unless_enabled() {
        assert!(!Config::default().device_state.enabled);
        let (config, warnings) = parse(&[setting("device_state", "Enabled", "yes", 2)]);
        assert!(
            warnings.is_empty() && config.device_state.enabled,
            "{warnings:?}"
        );
        let (config, warnings) = parse(&[setting("device_state", "enabled", "sometimes", 2)]);
        assert!(!config.device_state.enabled);
        assert!(warnings[0].to_string().ends_with("using the default 'no'"));
    }

    #[test]
    fn numbers_are_checked_against_their_range() {
        let mut warnings = Vec::new();
        let s = |v| setting("x", "n", v, 1);
        assert_eq!(s("42").number(1..=100, 7, &mut warnings), 42);
        assert_eq!(s(" 100 ").number(1..=100, 7, &mut warnings), 100);
        assert!(warnings.is_empty());
        for bad in ["0", "101", "-3", "4x", "", "99999999999999999999999"] {
            assert_eq!(s(bad).number(1..=100, 7, &mut warnings), 7, "{bad}");
        }
        assert_eq!(warnings.len(), 6);
        assert!(warnings[0]
            .to_string()
            .ends_with("is not a whole number from 1 to 100; using the default '7'"));
    }

    #[test]
    fn odd_bytes_in_values_are_quoted_lossily() {
        let (_, warnings) = parse(&[Setting {
            section: b"general",
            key: b"log_changes",
            value: b"\xff\xfe",
            line: 9,
        }]);
        assert!(warnings[0].to_string().contains("'\u{fffd}\u{fffd}'"));
    }
}
