//! Fuzz target `meta_record`: `CustomPresenceMeta` records parse, encode and record changes
//! without losing fields.

use super::split_once;
use crate::core::meta::{self, Meta, Source, CHANGED, SOURCE, VALUE_FNV};

/// Fuzz target `meta_record`: a record that parses encodes to one that parses to the same
/// fields and holds no NUL or unescaped `;`; recording a change with any channel name keeps
/// every other field and reads back as that change (through both the field-by-field way and
/// the store's one-pass rewrite); a record that does not parse is refused, never a panic.
pub fn meta_record(data: &[u8]) {
    let (record, channel) = split_once(data, 0);
    let Ok(meta) = Meta::parse(record) else {
        return;
    };
    let encoded = meta.encode();
    assert!(!encoded.contains(&0), "{encoded:?}");
    assert_eq!(Meta::parse(&encoded).as_ref(), Ok(&meta));
    let source = Source::Channel(channel.unwrap_or_default().into());
    let value = b"away,,fuzz";
    let mut changed = meta.clone();
    changed.record_change(1_764_500_000, &source, value);
    let rewritten = meta::rewrite_for_change(record, 1_764_500_000, &source, value);
    for candidate in [changed.encode(), rewritten] {
        let back = Meta::parse(&candidate).expect("a recorded change parses");
        assert_eq!(back.change_of(value), Some((1_764_500_000, source.clone())));
        assert_eq!(back.change_of(b"dnd"), None);
        for field in record.split(|&b| b == b';').filter(|f| !f.is_empty()) {
            let key =
                String::from_utf8_lossy(field.split(|&b| b == b'=').next().unwrap_or_default());
            if ![CHANGED, SOURCE, VALUE_FNV].contains(&&*key) {
                assert_eq!(back.get(&key), meta.get(&key), "field {key} lost");
            }
        }
    }
}
