//! A timed state's timing as its state holds it. (Here, with the state, rather than in
//! `expiry`, which builds and serves timings: a state and its timing refer to each other.)

use super::Presence;
use std::sync::Arc;

/// A timed state's expiry: when, and the state it then reverts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Unix time in milliseconds.
    pub deadline_ms: u64,
    /// The last state of the name written without an expiry; `None` for not_set.
    pub revert: Option<Arc<Presence>>,
}

/// The stored text of `not_set`, what a timed state with no earlier state reverts to.
pub const NOT_SET: &[u8] = b"not_set";

impl Timing {
    /// The stored text the state reverts to.
    pub fn revert_text(&self) -> &[u8] {
        self.revert.as_deref().map_or(NOT_SET, Presence::stored)
    }
}
