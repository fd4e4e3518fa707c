//! Presence shared between servers through Corosync CPG: versions (a hybrid logical clock,
//! last writer wins), the wire format, resynchronisation after membership changes, and the
//! `[cluster]` configuration. Safe Rust, tested without corosync; the CPG connection itself
//! is in `crate::ffi::cluster`.

pub mod config;
#[cfg(any(test, fuzzing))]
pub mod fuzz_check;
pub mod replica;
pub mod resync;
pub mod status;
pub mod version;
pub mod wire;

#[cfg(test)]
mod tests;
