//! The FFI layer: the only Rust that touches C. Every `extern "C"` entry point runs its body
//! through [`boundary::guard`], so a panic becomes a logged ERROR and a failed call, never an
//! unwound C frame. Every `unsafe` block says why it is sound.

mod bindings;
#[macro_use]
mod log;
mod ari;
mod ari_events;
mod boundary;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "cluster")]
mod cluster_cli;
#[cfg(feature = "cluster")]
mod cluster_cpg;
mod config;
mod devstate;
mod expiry;
mod function;
mod host;
mod json;
mod manager;
mod module;
mod selftest;
#[cfg(feature = "sip")]
mod sip;
mod thread;
