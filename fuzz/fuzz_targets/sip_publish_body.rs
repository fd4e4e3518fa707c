#![no_main]
// The invariants are in src/core/fuzz_checks/sip_publish_body.rs; `cargo test` also replays the corpus.
libfuzzer_sys::fuzz_target!(|data: &[u8]| func_presencestate_rs::core::fuzz_checks::sip_publish_body(data));
