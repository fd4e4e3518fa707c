//! Why the store refused a write, for the WARNING and for `presencestate stats`.

use crate::core::expiry::RevertError;
use crate::core::stats::Refusal;
use crate::core::value::ValueError;
use crate::core::{shown, PROVIDER_PREFIX};
use std::fmt;

/// Why a write was refused. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteError {
    NotCustomPresence(Vec<u8>),
    EmptyName,
    CommaInName(Vec<u8>),
    Value(ValueError),
    /// A delete of a name that holds no state.
    NotSet(Vec<u8>),
    PersistFailed(Vec<u8>),
    /// A timed state from another server came with an unusable state to revert to.
    Revert(RevertError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotCustomPresence(provider) => write!(
                f,
                "only {PROVIDER_PREFIX} presence can be set, not '{}'",
                shown(provider)
            ),
            WriteError::EmptyName => write!(f, "the name after {PROVIDER_PREFIX} is empty"),
            WriteError::CommaInName(name) => write!(
                f,
                "the name '{}' holds a comma, so it could never be read back",
                shown(name)
            ),
            WriteError::Value(error) => write!(f, "{error}"),
            WriteError::NotSet(name) => write!(
                f,
                "there is no custom presence state {PROVIDER_PREFIX}{} (never set, or already \
                 deleted)",
                shown(name)
            ),
            WriteError::PersistFailed(name) => write!(
                f,
                "AstDB refused to store CustomPresence/{}; the state is unchanged",
                shown(name)
            ),
            WriteError::Revert(error) => write!(f, "{error}"),
        }
    }
}

impl WriteError {
    /// How `presencestate stats` counts it.
    pub fn refusal(&self) -> Refusal {
        match self {
            WriteError::NotCustomPresence(_) => Refusal::NotCustomPresence,
            WriteError::EmptyName => Refusal::EmptyName,
            WriteError::CommaInName(_) => Refusal::CommaInName,
            WriteError::Value(ValueError::UnknownState(_) | ValueError::MissingState) => {
                Refusal::UnknownState
            }
            WriteError::Value(ValueError::BadBase64 { .. } | ValueError::NulInDecoded { .. }) => {
                Refusal::BadBase64
            }
            WriteError::Value(_) | WriteError::Revert(_) => Refusal::BadValue,
            WriteError::NotSet(_) => Refusal::UnknownName,
            WriteError::PersistFailed(_) => Refusal::AstdbFailure,
        }
    }
}
