//! The `[cluster]` section of presencestate.conf (one arm of `core::config::parse`).
//!
//! ```text
//! [cluster]
//! enabled = no                 ; yes: share every CustomPresence state through Corosync CPG
//! group = asterisk-presence    ; the CPG group; every server of one cluster uses the same
//! reconnect_interval = 3       ; seconds between attempts while corosync is unreachable (1-60)
//! tombstone_ttl = 604800       ; seconds a delete is remembered (60 to 31536000)
//! ```
//!
//! Any bad line gets a warning naming the option, value and line, and leaves the cluster off:
//! joining with a half-understood configuration (a wrong group) would be worse than not at all.

use super::replica::DEFAULT_TOMBSTONE_TTL;
use crate::core::setting::{ConfigWarning, Problem, Setting};
use std::time::Duration;

pub const DEFAULT_GROUP: &str = "asterisk-presence";
/// CPG group names hold at most 128 bytes.
const GROUP_MAX: usize = 128;
const DEFAULT_RECONNECT_SECONDS: u64 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    pub enabled: bool,
    pub group: String,
    pub reconnect_interval: Duration,
    /// How long a delete's tombstone is kept (a server away longer could bring the name back).
    pub tombstone_ttl: Duration,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            enabled: false,
            group: DEFAULT_GROUP.to_string(),
            reconnect_interval: Duration::from_secs(DEFAULT_RECONNECT_SECONDS),
            tombstone_ttl: DEFAULT_TOMBSTONE_TTL,
        }
    }
}

/// Parses the lines of `[cluster]`; a warning per bad line, and one more (on the `enabled`
/// line) when they leave an enabled cluster off.
pub fn parse(lines: &[&Setting<'_>], warnings: &mut Vec<ConfigWarning>) -> ClusterConfig {
    let mut config = ClusterConfig::default();
    let before = warnings.len();
    let mut enabled_line = None;
    for setting in lines {
        if setting.is("enabled") {
            config.enabled = setting.boolean(false, warnings);
            enabled_line = Some(*setting);
        } else if setting.is("group") {
            let value = setting.value.trim_ascii();
            let fits = !value.is_empty()
                && value.len() <= GROUP_MAX
                && value.iter().all(|b| b.is_ascii_graphic());
            config.group = match std::str::from_utf8(value) {
                Ok(group) if fits => group.to_string(),
                _ => {
                    warnings.push(setting.problem(Problem::BadValue {
                        expected: format!("1 to {GROUP_MAX} printable characters, no spaces"),
                        default: DEFAULT_GROUP.into(),
                    }));
                    DEFAULT_GROUP.into()
                }
            };
        } else if setting.is("reconnect_interval") {
            let seconds = setting.number(1..=60, DEFAULT_RECONNECT_SECONDS, warnings);
            config.reconnect_interval = Duration::from_secs(seconds);
        } else if setting.is("tombstone_ttl") {
            let default = DEFAULT_TOMBSTONE_TTL.as_secs();
            let seconds = setting.number(60..=31_536_000, default, warnings);
            config.tombstone_ttl = Duration::from_secs(seconds);
        } else {
            setting.unknown(warnings);
        }
    }
    if warnings.len() > before && config.enabled {
        if let Some(enabled) = enabled_line {
            warnings.push(enabled.problem(Problem::ClusterOff));
        }
        config.enabled = false;
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::{parse as parse_file, Config};

    fn setting<'a>(key: &'a str, value: &'a str, line: u32) -> Setting<'a> {
        Setting {
            section: b"cluster",
            key: key.as_bytes(),
            value: value.as_bytes(),
            line,
        }
    }

    fn parse_lines(settings: &[Setting<'_>]) -> (ClusterConfig, Vec<String>) {
        let (config, warnings) = parse_file(settings);
        let text = warnings.iter().map(ToString::to_string).collect();
        (config.cluster, text)
    }

    #[test]
    fn defaults_leave_the_cluster_off() {
        let (config, warnings) = parse_lines(&[]);
        assert_eq!(config, ClusterConfig::default());
        assert_eq!(Config::default().cluster, config);
        assert!(!config.enabled && config.group == "asterisk-presence");
        assert!(warnings.is_empty());
    }

    #[test]
    fn every_option_is_read() {
        let (config, warnings) = parse_lines(&[
            setting("enabled", "yes", 2),
            setting("Group", "site-a", 3),
            setting("reconnect_interval", "5", 4),
            setting("tombstone_ttl", "86400", 5),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config,
            ClusterConfig {
                enabled: true,
                group: "site-a".into(),
                reconnect_interval: Duration::from_secs(5),
                tombstone_ttl: Duration::from_secs(86400),
            }
        );
    }

    #[test]
    fn bad_values_are_named_and_keep_the_cluster_off() {
        let long = "g".repeat(129);
        for (key, value) in [
            ("enabled", "maybe"),
            ("group", ""),
            ("group", "two words"),
            ("group", long.as_str()),
            ("reconnect_interval", "0"),
            ("reconnect_interval", "61"),
            ("reconnect_interval", "x"),
            ("tombstone_ttl", "59"),
            ("tombstone_ttl", "31536001"),
            ("colour", "blue"),
        ] {
            let (config, warnings) =
                parse_lines(&[setting("enabled", "yes", 1), setting(key, value, 7)]);
            assert!(!config.enabled, "{key}={value}");
            assert!(
                warnings[0].contains("line 7") && warnings[0].contains(key),
                "{warnings:?}"
            );
            if key != "enabled" {
                assert_eq!(
                    warnings.last().unwrap(),
                    "presencestate.conf line 1: [cluster] has errors; the cluster stays off"
                );
            }
        }
    }
}
