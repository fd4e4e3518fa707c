//! func_presencestate_rs: `PRESENCE_STATE()` and the `CustomPresence` presence provider for
//! Asterisk, a drop-in replacement for the stock `func_presencestate.so`.
//!
//! Three rooms:
//! - `src/shim/` — C compiled against the installed Asterisk headers: `AST_MODULE_INFO`, the
//!   static Asterisk structs, one-line wrappers for macros. No logic.
//! - [`ffi`] — the only Rust that touches C: callbacks, conversions, every `unsafe` block.
//! - [`core`] — the presence logic in safe Rust, tested without Asterisk.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod core;

#[cfg(feature = "asterisk")]
mod ffi;
