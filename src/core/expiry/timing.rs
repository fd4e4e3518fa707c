//! A timed state's timing: its deadline and the state it reverts to, as kept in memory, in
//! its `CustomPresenceMeta` record, and as another server sends it.

use crate::core::meta::{value_fnv, Meta};
use crate::core::shown;
use crate::core::value::{Presence, ValueError, NOT_SET};
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

pub use crate::core::value::Timing;

/// The state a timed write over `current` reverts to: the last one written without an expiry.
pub fn revert_target(current: Option<&Arc<Presence>>) -> Option<Arc<Presence>> {
    let current = current?;
    match current.timing() {
        Some(timing) => timing.revert.clone(),
        None => Some(Arc::clone(current)),
    }
}

/// Why the revert a timed state came with from another server is refused. `Display` gives
/// the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum RevertError {
    /// Not `not_set` nor a presence value.
    Invalid(Vec<u8>, ValueError),
    /// An untimed state (or a delete) came with one.
    Unexpected(Vec<u8>),
}

impl fmt::Display for RevertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevertError::Invalid(text, error) => write!(
                f,
                "the state it reverts to, '{}', is not usable: {error}",
                shown(text)
            ),
            RevertError::Unexpected(text) => write!(
                f,
                "it is not timed but names a state to revert to, '{}'",
                shown(text)
            ),
        }
    }
}

/// The state a timed state reverts to, from its text (sent by its writer, or recorded in
/// AstDB): `not_set` (`None`) or a presence value, held without an expiry. Its text may still
/// hold a `t(N)`: a state the stock module or `database put` wrote, or one whose expiry record
/// was lost, is held untimed, and a timed write over it reverts to it as it was.
pub fn parse_revert(text: &[u8]) -> Result<Option<Arc<Presence>>, RevertError> {
    if text == NOT_SET {
        return Ok(None);
    }
    let revert = Presence::parse(text).map_err(|e| RevertError::Invalid(text.to_vec(), e))?;
    Ok(Some(Arc::new(revert)))
}

/// The timing of `presence` written on another server at `written_ms` (its version's clock)
/// with `revert` (empty: none), so that it expires on every server at the same moment, to the
/// same state, without a message. A timed state sent without a revert is held as its writer
/// holds it: with no expiry (its expiry record was lost there, see [`stored_timing`]).
pub fn remote_timing(
    presence: &Presence,
    revert: &[u8],
    written_ms: u64,
) -> Result<Option<Timing>, RevertError> {
    match presence.expiry() {
        None if revert.is_empty() => Ok(None),
        None => Err(RevertError::Unexpected(revert.to_vec())),
        Some(_) if revert.is_empty() => Ok(None),
        Some(seconds) => Ok(Some(Timing {
            deadline_ms: deadline_after(written_ms, seconds),
            revert: parse_revert(revert)?,
        })),
    }
}

/// The deadline of a state written at `written_ms` (unix milliseconds) with `t(seconds)`.
pub fn deadline_after(written_ms: u64, seconds: NonZeroU32) -> u64 {
    written_ms.saturating_add(u64::from(seconds.get()) * 1000)
}

/// CustomPresenceMeta field: the deadline of a timed state, unix milliseconds.
pub const EXPIRES_MS: &str = "expires_ms";
/// CustomPresenceMeta field: the stored text the timed state reverts to.
pub const REVERT: &str = "revert";
/// CustomPresenceMeta field: FNV-1a of the timed value, as `value_fnv` writes it. The expiry's
/// own, so a record of a later change (which rewrites `value_fnv`) never carries it over.
pub const EXPIRES_VALUE_FNV: &str = "expires_value_fnv";

/// Writes `timing` of the state stored as `stored_value` into `meta`, or removes the fields
/// when the state is not timed. The fields name the value they describe, so an expiry is never
/// applied to a value someone else wrote since (the stock module, `database put`).
pub fn record_timing(meta: &mut Meta, stored_value: &[u8], timing: Option<&Timing>) {
    match timing {
        Some(timing) => {
            meta.set(EXPIRES_MS, timing.deadline_ms.to_string().as_bytes());
            meta.set(REVERT, timing.revert_text());
            meta.set(EXPIRES_VALUE_FNV, value_fnv(stored_value).as_bytes());
        }
        None => {
            meta.remove(EXPIRES_MS);
            meta.remove(REVERT);
            meta.remove(EXPIRES_VALUE_FNV);
        }
    }
}

/// A deadline and revert text read back from AstDB.
#[derive(Debug, PartialEq, Eq)]
pub struct StoredTiming {
    pub deadline_ms: u64,
    pub revert: Vec<u8>,
}

/// Why a stored expiry was not used. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum TimingError {
    BadDeadline(Vec<u8>),
    /// The revert text is refused as [`parse_revert`] refuses one from another server (never
    /// [`RevertError::Unexpected`]): a state reverts to one written without an expiry.
    BadRevert(RevertError),
}

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimingError::BadDeadline(text) => {
                write!(f, "its {EXPIRES_MS} '{}' is not a time", shown(text))
            }
            TimingError::BadRevert(error) => write!(f, "{error}"),
        }
    }
}

/// The expiry `meta` records for the state stored as `stored_value`: `None` when it records
/// none, or records one for another value (written since by someone who keeps no record).
pub fn stored_timing(
    meta: &Meta,
    stored_value: &[u8],
) -> Option<Result<StoredTiming, TimingError>> {
    let deadline = meta.get(EXPIRES_MS)?;
    if meta.get(EXPIRES_VALUE_FNV)? != value_fnv(stored_value).as_bytes() {
        return None;
    }
    let parsed = std::str::from_utf8(deadline)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok());
    Some(match parsed {
        Some(deadline_ms) => Ok(StoredTiming {
            deadline_ms,
            revert: meta.get(REVERT).unwrap_or(NOT_SET).to_vec(),
        }),
        None => Err(TimingError::BadDeadline(deadline.to_vec())),
    })
}

impl StoredTiming {
    /// The timing of a state loaded from AstDB, its revert refused as one from another server
    /// would be (see [`TimingError::BadRevert`]). States reverting to the same text share its
    /// parsed form through `shared` (a load of many timed states, most of them reverting to
    /// `available`, keeps one).
    pub fn resolve(
        &self,
        shared: &mut HashMap<Vec<u8>, Arc<Presence>>,
    ) -> Result<Timing, TimingError> {
        let revert = match shared.get(&self.revert) {
            Some(revert) => Some(Arc::clone(revert)),
            None => {
                let revert = parse_revert(&self.revert).map_err(TimingError::BadRevert)?;
                if let Some(revert) = &revert {
                    shared.insert(self.revert.clone(), Arc::clone(revert));
                }
                revert
            }
        };
        Ok(Timing {
            deadline_ms: self.deadline_ms,
            revert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_round_trips_through_the_meta_record_of_its_value() {
        let revert = Arc::new(Presence::parse(b"away,,Lunch; back at 2").unwrap());
        let timing = Timing {
            deadline_ms: 1_764_500_000_123,
            revert: Some(revert),
        };
        let mut meta = Meta::parse(b"changed=5;hlc=1").unwrap();
        record_timing(&mut meta, b"dnd,,,t(60)", Some(&timing));
        let meta = Meta::parse(&meta.encode()).unwrap();
        let stored = stored_timing(&meta, b"dnd,,,t(60)").unwrap().unwrap();
        assert_eq!(stored.resolve(&mut HashMap::new()).unwrap(), timing);
        // A value written since by someone keeping no record has no expiry.
        assert_eq!(stored_timing(&meta, b"available"), None);
        let mut cleared = meta.clone();
        record_timing(&mut cleared, b"available", None);
        assert_eq!(stored_timing(&cleared, b"dnd,,,t(60)"), None);
        assert_eq!(cleared.get("hlc"), Some(&b"1"[..]), "other fields stay");
    }

    #[test]
    fn a_loaded_revert_is_checked_like_a_replicated_one() {
        // The record AstDB holds for the timed `away,,,t(60)`, reverting to `revert`.
        let record = |revert: &[u8]| {
            let mut meta = Meta::default();
            meta.set(EXPIRES_MS, b"90000");
            meta.set(REVERT, revert);
            meta.set(EXPIRES_VALUE_FNV, value_fnv(b"away,,,t(60)").as_bytes());
            let meta = Meta::parse(&meta.encode()).unwrap();
            stored_timing(&meta, b"away,,,t(60)").unwrap().unwrap()
        };
        let mut shared = HashMap::new();
        let timing = record(b"available").resolve(&mut shared).unwrap();
        assert_eq!(timing.deadline_ms, 90_000);
        assert_eq!(timing.revert_text(), b"available");

        // A state held untimed whose text holds t(60) (the stock module wrote it): reverted
        // to as it was, untimed.
        let timing = record(b"dnd,,,t(60)").resolve(&mut shared).unwrap();
        assert_eq!(timing.revert_text(), b"dnd,,,t(60)");
        assert!(timing.revert.unwrap().timing().is_none());
        let error = record(b"bored").resolve(&mut shared).unwrap_err();
        assert!(matches!(
            &error,
            TimingError::BadRevert(RevertError::Invalid(text, ValueError::UnknownState(_)))
                if text == b"bored"
        ));
        assert!(
            error.to_string().contains("'bored', is not usable"),
            "{error}"
        );
        // Only the accepted reverts are shared with the states loaded after.
        let mut kept: Vec<_> = shared.keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, [b"available".to_vec(), b"dnd,,,t(60)".to_vec()]);
    }

    #[test]
    fn a_timing_without_an_untimed_state_before_reverts_to_not_set() {
        let timing = Timing {
            deadline_ms: 7,
            revert: revert_target(None),
        };
        assert_eq!(timing.revert_text(), b"not_set");
        let mut meta = Meta::default();
        record_timing(&mut meta, b"dnd,,,t(1)", Some(&timing));
        let stored = stored_timing(&meta, b"dnd,,,t(1)").unwrap().unwrap();
        assert_eq!(stored.resolve(&mut HashMap::new()).unwrap(), timing);
        meta.set(EXPIRES_MS, b"soon");
        let error = stored_timing(&meta, b"dnd,,,t(1)").unwrap().unwrap_err();
        assert!(
            error.to_string().contains("'soon' is not a time"),
            "{error}"
        );
    }

    #[test]
    fn a_timed_state_over_a_timed_state_keeps_the_first_revert() {
        let untimed = Arc::new(Presence::parse(b"available").unwrap());
        let mut timed = Presence::parse(b"dnd,,,t(60)").unwrap();
        timed.set_timing(Timing {
            deadline_ms: 1,
            revert: revert_target(Some(&untimed)),
        });
        let timed = Arc::new(timed);
        let again = revert_target(Some(&timed)).unwrap();
        assert!(Arc::ptr_eq(&again, &untimed));
    }

    #[test]
    fn a_remote_timed_state_takes_its_writers_revert_and_deadline() {
        let timed = Presence::parse(b"dnd,,,t(30)").unwrap();
        let timing = remote_timing(&timed, b"available", 1_000).unwrap().unwrap();
        assert_eq!(timing.deadline_ms, 31_000);
        assert_eq!(timing.revert_text(), b"available");
        let to_not_set = remote_timing(&timed, b"not_set", 1_000).unwrap().unwrap();
        assert_eq!((to_not_set.revert, to_not_set.deadline_ms), (None, 31_000));
        // Sent without one, it is held as its writer holds it: without an expiry.
        assert_eq!(remote_timing(&timed, b"", 1_000), Ok(None));
        let untimed = Presence::parse(b"away").unwrap();
        assert_eq!(remote_timing(&untimed, b"", 1_000), Ok(None));
    }

    #[test]
    fn a_bad_remote_revert_is_refused() {
        let timed = Presence::parse(b"dnd,,,t(30)").unwrap();
        let untimed = Presence::parse(b"away").unwrap();
        assert!(matches!(
            remote_timing(&timed, b"bored", 1),
            Err(RevertError::Invalid(text, ValueError::UnknownState(_))) if text == b"bored"
        ));
        let as_written = remote_timing(&timed, b"away,,,t(5)", 1).unwrap().unwrap();
        assert_eq!(
            as_written.revert_text(),
            b"away,,,t(5)",
            "held untimed by its writer"
        );
        let error = remote_timing(&untimed, b"available", 1).unwrap_err();
        assert_eq!(error, RevertError::Unexpected(b"available".to_vec()));
        assert!(error.to_string().contains("'available'"), "{error}");
    }
}
