//! One line of `presencestate.conf` as Asterisk's config parser hands it to us, the typed
//! readings every section's parser shares (a boolean, a bounded number), and the warning a bad
//! line gives. `cluster::config` and `sip_publish::config` read their sections with this
//! alone; `config` gathers every section into one `Config` (it used to hold these types, so
//! it and `cluster::config` imported each other).

use super::shown;
use std::fmt;
use std::ops::RangeInclusive;

/// The file's name in Asterisk's configuration directory.
pub const FILE_NAME: &str = "presencestate.conf";

/// One `key = value` line of the file, with its section and line number.
#[derive(Clone, Copy, Debug)]
pub struct Setting<'a> {
    pub section: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub line: u32,
}

/// Something wrong in the file. `Display` gives the WARNING text (file, line, section,
/// option, value and what happens instead).
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub line: u32,
    pub section: Vec<u8>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub problem: Problem,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    UnknownSection,
    UnknownOption,
    /// The value is not what the option takes (`expected`); `default` is used instead.
    BadValue {
        expected: String,
        default: String,
    },
    /// Something in `[cluster]` was wrong, so the cluster stays off (on the `enabled` line).
    ClusterOff,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (section, key, value) = (shown(&self.section), shown(&self.key), shown(&self.value));
        write!(f, "{FILE_NAME} line {}: ", self.line)?;
        match &self.problem {
            Problem::UnknownSection => write!(
                f,
                "unknown section [{section}]; its option '{key}' = '{value}' is ignored"
            ),
            Problem::UnknownOption => write!(
                f,
                "[{section}] unknown option '{key}' = '{value}' is ignored"
            ),
            Problem::BadValue { expected, default } => write!(
                f,
                "[{section}] option '{key}' = '{value}' is not {expected}; using the default \
                 '{default}'"
            ),
            Problem::ClusterOff => write!(f, "[{section}] has errors; the cluster stays off"),
        }
    }
}

impl<'a> Setting<'a> {
    /// Whether this is option `name` (option names ignore case, as Asterisk's do).
    pub fn is(&self, name: &str) -> bool {
        self.key.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The warning `problem` about this line.
    pub fn problem(&self, problem: Problem) -> ConfigWarning {
        ConfigWarning {
            line: self.line,
            section: self.section.to_vec(),
            key: self.key.to_vec(),
            value: self.value.to_vec(),
            problem,
        }
    }

    /// Records that no option of the section has this name.
    pub fn unknown(&self, warnings: &mut Vec<ConfigWarning>) {
        warnings.push(self.problem(Problem::UnknownOption));
    }

    /// A boolean as Asterisk's `ast_true`/`ast_false` read it, or `default` with a warning.
    pub fn boolean(&self, default: bool, warnings: &mut Vec<ConfigWarning>) -> bool {
        let value = trimmed(self.value);
        let any = |words: &[&str]| {
            words
                .iter()
                .any(|w| value.eq_ignore_ascii_case(w.as_bytes()))
        };
        if any(&["yes", "true", "y", "t", "1", "on"]) {
            true
        } else if any(&["no", "false", "n", "f", "0", "off"]) {
            false
        } else {
            warnings.push(self.problem(Problem::BadValue {
                expected: "a boolean (yes or no)".into(),
                default: if default { "yes" } else { "no" }.into(),
            }));
            default
        }
    }

    /// A whole number within `range`, or `default` with a warning.
    pub fn number(
        &self,
        range: RangeInclusive<u64>,
        default: u64,
        warnings: &mut Vec<ConfigWarning>,
    ) -> u64 {
        let parsed = std::str::from_utf8(trimmed(self.value))
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        match parsed {
            Some(number) if range.contains(&number) => number,
            _ => {
                warnings.push(self.problem(Problem::BadValue {
                    expected: format!("a whole number from {} to {}", range.start(), range.end()),
                    default: default.to_string(),
                }));
                default
            }
        }
    }
}

fn trimmed(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// A setting of the file at `line`, for the tests of each section's parser.
#[cfg(test)]
pub(crate) fn setting<'a>(
    section: &'a str,
    key: &'a str,
    value: &'a str,
    line: u32,
) -> Setting<'a> {
    Setting {
        section: section.as_bytes(),
        key: key.as_bytes(),
        value: value.as_bytes(),
        line,
    }
}
