//! The `[cluster]` section of presencestate.conf.
//!
//! ```text
//! [cluster]
//! enabled = no                 ; yes: share every CustomPresence state through Corosync CPG
//! group = asterisk-presence    ; the CPG group; every server of one cluster uses the same
//! reconnect_interval = 3       ; seconds between attempts while corosync is unreachable (1-60)
//! ```
//!
//! Any bad line gets a warning naming the option, value and line, and leaves the cluster off:
//! joining with a half-understood configuration (a wrong group) would be worse than not at all.

use std::time::Duration;

pub const DEFAULT_GROUP: &str = "asterisk-presence";
/// CPG group names hold at most 128 bytes.
const GROUP_MAX: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    pub enabled: bool,
    pub group: String,
    pub reconnect_interval: Duration,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            enabled: false,
            group: DEFAULT_GROUP.to_string(),
            reconnect_interval: Duration::from_secs(3),
        }
    }
}

fn boolean(value: &str) -> Option<bool> {
    // Asterisk's ast_true / ast_false words.
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "y" | "t" | "1" | "on" => Some(true),
        "no" | "false" | "n" | "f" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Parses the `(option, value, line)` items of `[cluster]`; returns the configuration and a
/// warning per bad item.
pub fn parse(items: &[(&str, &str, u32)]) -> (ClusterConfig, Vec<String>) {
    let mut config = ClusterConfig::default();
    let mut warnings = Vec::new();
    for &(key, value, line) in items {
        let ok = match key.to_ascii_lowercase().as_str() {
            "enabled" => boolean(value).map(|on| config.enabled = on).is_some(),
            "group" => {
                let fits = !value.is_empty()
                    && value.len() <= GROUP_MAX
                    && value.bytes().all(|b| b.is_ascii_graphic());
                if fits {
                    config.group = value.to_string();
                }
                fits
            }
            "reconnect_interval" => match value.parse::<u64>() {
                Ok(seconds @ 1..=60) => {
                    config.reconnect_interval = Duration::from_secs(seconds);
                    true
                }
                _ => false,
            },
            _ => {
                warnings.push(format!(
                    "presencestate.conf line {line}: [cluster] has no option '{key}' \
                     (options: enabled, group, reconnect_interval)"
                ));
                continue;
            }
        };
        if !ok {
            warnings.push(format!(
                "presencestate.conf line {line}: [cluster] {key} = '{value}' is not valid \
                 ({})",
                match key.to_ascii_lowercase().as_str() {
                    "enabled" => "yes or no",
                    "group" => "1 to 128 printable characters, no spaces",
                    _ => "whole seconds from 1 to 60",
                }
            ));
        }
    }
    if !warnings.is_empty() && config.enabled {
        warnings.push("presencestate.conf: [cluster] has errors; the cluster stays off".into());
        config.enabled = false;
    }
    (config, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_leave_the_cluster_off() {
        let (config, warnings) = parse(&[]);
        assert_eq!(config, ClusterConfig::default());
        assert!(!config.enabled && config.group == "asterisk-presence");
        assert!(warnings.is_empty());
    }

    #[test]
    fn every_option_is_read() {
        let (config, warnings) = parse(&[
            ("enabled", "yes", 2),
            ("group", "site-a", 3),
            ("reconnect_interval", "5", 4),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config,
            ClusterConfig {
                enabled: true,
                group: "site-a".into(),
                reconnect_interval: Duration::from_secs(5),
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
            ("colour", "blue"),
        ] {
            let (config, warnings) = parse(&[("enabled", "yes", 1), (key, value, 7)]);
            assert!(!config.enabled, "{key}={value}");
            assert!(
                warnings[0].contains("line 7") && warnings[0].contains(key),
                "{warnings:?}"
            );
            assert!(warnings.last().unwrap().contains("stays off"));
        }
    }
}
