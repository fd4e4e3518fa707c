//! The invariants the fuzz targets in `fuzz/` check, and the replay of their corpora.
//!
//! Compiled only for tests and under `--cfg fuzzing` (which `cargo fuzz` sets). Each target
//! function takes the raw fuzz input and panics when an invariant fails; libFuzzer reports the
//! panic as a crash. `fuzz/fuzz_targets/<target>.rs` is one line calling the function of the
//! same name, and the unit tests below run every file of `fuzz/corpus/<target>/` through it,
//! so `cargo test --no-default-features` replays the corpus without nightly or libFuzzer.
//! The checks of each target are in `fuzz_checks/<target>.rs` (`cluster_wire`'s in
//! `core::cluster::fuzz_check`), re-exported here under the path the fuzz targets call; this
//! file keeps the input splitting they share.
//!
//! Where practical a check compares with a reference written from the documented format
//! (README, doc comments), not from the code under test.
//!
//! Input layouts (bytes, split as described; nothing else is special):
//! - `value_parser`, `base64`: the whole input.
//! - `store_load`: rounds separated by NUL. A round starting with `\x01` is a series of
//!   `presencestate change`-style writes (AstDB accepts them), `\x02` the same with an AstDB
//!   that refuses every write; any other round is one load or reload: `Store::replace_all` of
//!   its entries, then `Store::announce` of the changed names. Lines are split on `\n`; a line
//!   is `name<TAB>value` (`provider<TAB>value` in a write round); without a tab the whole line
//!   is the name and the value is empty.
//! - `cli_args`: line 1 is the provider of `presencestate change` and also the word being
//!   completed, line 2 the value it writes, the remaining lines are stored `name<TAB>value`
//!   entries loaded before the change; `presencestate list` is then checked.
//! - `cluster_wire`: one message from another server, as received (see `core::cluster::wire`);
//!   its checks are in `core::cluster::fuzz_check`.
//! - `meta_record`: a `CustomPresenceMeta` record, then (after the first NUL, if any) the
//!   channel name a change is recorded with.
//! - `read_args`: line 1 is the read's arguments (`provider,field[,options]`), the rest (after
//!   the first `\n`) is the stored value of the state being read.
//! - `sip_publish_body`: byte 1 chooses the format (even: PIDF, odd: XPIDF), the rest is the
//!   body of a PUBLISH.

mod base64;
mod cli_args;
mod meta_record;
mod read_args;
mod sip_publish_body;
mod store_load;
mod value_parser;

pub use self::base64::base64;
pub use cli_args::cli_args;
pub use meta_record::meta_record;
pub use read_args::read_args;
pub use sip_publish_body::sip_publish_body;
pub use store_load::store_load;
pub use value_parser::value_parser;

pub use super::cluster::fuzz_check::cluster_wire;

/// An error's WARNING text quotes user text through `shown`, so a long input never makes a
/// long log line: 200 quoted bytes (3 bytes each when not UTF-8), plus the fixed wording.
const MAX_WARNING_LEN: usize = 1024;

fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
}

/// `name<TAB>value`, or the whole line as the name with an empty value.
fn entry(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b'\t') {
        Some(tab) => (&line[..tab], &line[tab + 1..]),
        None => (line, b""),
    }
}

/// The AstDB entries of non-empty `lines`, as a load reads them.
fn entries<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = entry(line);
            (name.to_vec(), value.to_vec())
        })
        .collect()
}

/// Splits at the first `sep`: the part before, and the part after if there is a `sep`.
fn split_once(data: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

/// An error's WARNING text is never empty, nor longer than [`MAX_WARNING_LEN`].
fn check_warning_text(error: &dyn std::fmt::Display) {
    let text = error.to_string();
    assert!(!text.is_empty());
    assert!(
        text.len() <= MAX_WARNING_LEN,
        "{} byte warning: {text}",
        text.len()
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs every file of `fuzz/corpus/<target>/` through `check`, naming the file that fails.
    fn replay(target: &str, check: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                panic!("{} fails its checks (message above)", file.display());
            }
        }
    }

    #[test]
    fn value_parser_corpus() {
        replay("value_parser", super::value_parser);
    }

    #[test]
    fn base64_corpus() {
        replay("base64", super::base64);
    }

    #[test]
    fn store_load_corpus() {
        replay("store_load", super::store_load);
    }

    #[test]
    fn cli_args_corpus() {
        replay("cli_args", super::cli_args);
    }

    #[test]
    fn cluster_wire_corpus() {
        replay("cluster_wire", super::cluster_wire);
    }

    #[test]
    fn meta_record_corpus() {
        replay("meta_record", super::meta_record);
    }

    #[test]
    fn read_args_corpus() {
        replay("read_args", super::read_args);
    }

    #[test]
    fn sip_publish_body_corpus() {
        replay("sip_publish_body", super::sip_publish_body);
    }
}
