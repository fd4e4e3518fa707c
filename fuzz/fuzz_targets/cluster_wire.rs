#![no_main]
// The invariants are in src/core/cluster/fuzz_check.rs, where `cargo test` also replays the corpus.
libfuzzer_sys::fuzz_target!(
    |data: &[u8]| func_presencestate_rs::core::fuzz_checks::cluster_wire(data)
);
