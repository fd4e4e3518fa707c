//! The module's own record about a state, kept in AstDB family [`FAMILY`] under the state's
//! name (the stock `CustomPresence` family keeps exactly the stock entries).
//!
//! A record is `key=value` fields joined by `;`, e.g.
//! `changed=1764500000;source=channel:PJSIP/100-00000001;value_fnv=8c0f5e1b9a27d3c4`.
//! Keys are lower-case letters, digits and `_`. Values are bytes with `%`, `;` and control
//! bytes written as `%XX`, so free text (a channel name) cannot break the record.
//! Fields this version does not know are kept, in order, when a record is rewritten, so older
//! and newer versions of the module can share one AstDB.

use std::borrow::Cow;
use std::fmt;

/// The AstDB family of these records. AstDB's `gettree` matches `/CustomPresence/%`, so the
/// stock module never sees it.
pub const FAMILY: &str = "CustomPresenceMeta";

/// When the state last changed, unix seconds.
pub const CHANGED: &str = "changed";
/// What changed it, as [`Source::encode`] writes it.
pub const SOURCE: &str = "source";
/// FNV-1a (64-bit, hex) of the `CustomPresence` value the record describes: a value written
/// by someone else since (the stock module, `database put`) no longer matches, and the
/// record is then not shown as that value's history.
pub const VALUE_FNV: &str = "value_fnv";

/// A record's text as AstDB is handed it: its bytes then a NUL, and no other NUL (escaping
/// leaves none), so it goes to C as it is, without a search for its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordText<'a> {
    with_nul: &'a [u8],
}

impl<'a> RecordText<'a> {
    /// `None` unless `with_nul` ends in a NUL.
    pub fn new(with_nul: &'a [u8]) -> Option<RecordText<'a>> {
        (with_nul.last() == Some(&0)).then_some(RecordText { with_nul })
    }

    /// The text and its final NUL.
    pub fn with_nul(self) -> &'a [u8] {
        self.with_nul
    }

    /// The text without its NUL.
    pub fn to_bytes(self) -> &'a [u8] {
        &self.with_nul[..self.with_nul.len() - 1]
    }
}

/// The empty record.
impl Default for RecordText<'_> {
    fn default() -> Self {
        RecordText { with_nul: b"\0" }
    }
}

/// One record: its fields in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    fields: Vec<(String, Vec<u8>)>,
}

/// Why a stored record was not understood. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum MetaError {
    NoEquals(usize),
    BadKey(Vec<u8>),
    BadEscape(usize),
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaError::NoEquals(n) => write!(f, "field {n} has no '='"),
            MetaError::BadKey(key) => write!(
                f,
                "field name '{}' is not lower-case letters, digits and '_'",
                super::shown(key)
            ),
            MetaError::BadEscape(at) => {
                write!(f, "a '%' at byte {at} is not followed by two hex digits")
            }
        }
    }
}

/// What made a change. Borrows the channel name on a write (no copy unless it is recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// `Set(PRESENCE_STATE(...))` on this channel (its name).
    Channel(Cow<'a, [u8]>),
    /// `PRESENCE_STATE()` written with no channel (AMI `SetVar` without `Channel`, ...).
    NoChannel,
    /// An AMI action (Asterisk does not tell a module which manager user sent it).
    Ami,
    /// `presencestate change` / `delete` at the CLI.
    Cli,
    /// A `module reload` that found the AstDB entry edited.
    Reload,
    /// The expiry of a timed state (option `t(...)`) reverted it.
    Expiry,
    /// Another server of the cluster (`[cluster]`), replicated here.
    Cluster,
    /// A SIP PUBLISH (`[sip_publish]`) from this endpoint (its id), or its publication's end.
    SipPublish(Cow<'a, [u8]>),
    /// `PUT` or `DELETE /ari/presenceStates/{name}` by this ARI user (empty if unnamed).
    AriUser(Cow<'a, [u8]>),
    /// A source a newer version wrote, shown as stored.
    Other(Cow<'a, [u8]>),
}

/// A source is stored as its kind, or `<kind>:<detail>` for a source that names who made the
/// change (`channel:<name>`, `ari:<user>`); a kind this version does not know is kept and shown
/// as stored ([`Source::Other`]), so another version's new kinds do not break a record.
impl Source<'_> {
    /// Writes the field's value, escaped.
    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Source::Channel(name) => {
                out.extend_from_slice(b"channel:");
                escape_into(name, out);
            }
            Source::SipPublish(endpoint) => {
                out.extend_from_slice(b"sip_publish:");
                escape_into(endpoint, out);
            }
            Source::AriUser(user) => {
                out.extend_from_slice(b"ari:");
                escape_into(user, out);
            }
            Source::Other(text) => escape_into(text, out),
            other => out.extend_from_slice(&other.encode()),
        }
    }

    /// The same source, owning its text.
    pub fn to_owned_source(&self) -> Source<'static> {
        let owned = |text: &Cow<'_, [u8]>| Cow::Owned(text.to_vec());
        match self {
            Source::Channel(name) => Source::Channel(owned(name)),
            Source::SipPublish(endpoint) => Source::SipPublish(owned(endpoint)),
            Source::AriUser(user) => Source::AriUser(owned(user)),
            Source::Other(text) => Source::Other(owned(text)),
            Source::NoChannel => Source::NoChannel,
            Source::Ami => Source::Ami,
            Source::Cli => Source::Cli,
            Source::Reload => Source::Reload,
            Source::Expiry => Source::Expiry,
            Source::Cluster => Source::Cluster,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Source::Channel(name) => [&b"channel:"[..], name].concat(),
            Source::Ami => b"ami".to_vec(),
            Source::NoChannel => b"function".to_vec(),
            Source::Cli => b"cli".to_vec(),
            Source::Reload => b"reload".to_vec(),
            Source::Expiry => b"expiry".to_vec(),
            Source::Cluster => b"cluster".to_vec(),
            Source::SipPublish(endpoint) => [&b"sip_publish:"[..], endpoint].concat(),
            Source::AriUser(user) => [&b"ari:"[..], user].concat(),
            Source::Other(text) => text.to_vec(),
        }
    }

    pub fn decode(text: &[u8]) -> Source<'static> {
        if let Some(name) = text.strip_prefix(b"channel:") {
            Source::Channel(name.to_vec().into())
        } else if let Some(endpoint) = text.strip_prefix(b"sip_publish:") {
            Source::SipPublish(endpoint.to_vec().into())
        } else if let Some(user) = text.strip_prefix(b"ari:") {
            Source::AriUser(user.to_vec().into())
        } else if text == b"ami" {
            Source::Ami
        } else if text == b"function" {
            Source::NoChannel
        } else if text == b"cli" {
            Source::Cli
        } else if text == b"reload" {
            Source::Reload
        } else if text == b"expiry" {
            Source::Expiry
        } else if text == b"cluster" {
            Source::Cluster
        } else {
            Source::Other(text.to_vec().into())
        }
    }
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Channel(name) => write!(f, "channel {}", super::shown(name)),
            Source::Ami => write!(f, "AMI action"),
            Source::NoChannel => write!(f, "PRESENCE_STATE() with no channel (AMI SetVar)"),
            Source::Cli => write!(f, "CLI"),
            Source::Reload => write!(f, "reload from AstDB"),
            Source::Expiry => write!(f, "expiry of a timed state"),
            Source::Cluster => write!(f, "another server of the cluster"),
            Source::SipPublish(endpoint) => {
                write!(f, "sip publish from endpoint {}", super::shown(endpoint))
            }
            Source::AriUser(user) => write!(f, "ARI user {}", super::shown(user)),
            Source::Other(text) => write!(f, "{}", super::shown(text)),
        }
    }
}

fn valid_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

const fn needs_escape(byte: u8) -> bool {
    byte == b'%' || byte == b';' || byte < 0x20 || byte == 0x7f
}

/// [`needs_escape`] of every byte, looked up rather than computed: a record's free text is
/// scanned on every write.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = needs_escape(byte as u8);
        byte += 1;
    }
    table
};

fn escape_into(value: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(value.len());
    let mut rest = value;
    // Copies the runs that need no escape whole: free text is mostly plain.
    while let Some(at) = rest.iter().position(|&b| ESCAPED[usize::from(b)]) {
        let byte = rest[at];
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(&[
            b'%',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 15)],
        ]);
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// Writes `n` in decimal.
fn decimal_into(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn fnv1a64(value: &[u8]) -> u64 {
    let step = |hash: u64, byte: u8| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    // Four bytes a turn: a record hashes its value on every write.
    let mut quads = value.chunks_exact(4);
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for quad in &mut quads {
        hash = step(step(step(step(hash, quad[0]), quad[1]), quad[2]), quad[3]);
    }
    quads
        .remainder()
        .iter()
        .fold(hash, |hash, &byte| step(hash, byte))
}

/// Each byte as two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [HEX[byte >> 4], HEX[byte & 15]];
        byte += 1;
    }
    pairs
};

/// Writes [`value_fnv`] of `value` (16 lower-case hex digits).
fn value_fnv_into(value: &[u8], out: &mut Vec<u8>) {
    let mut digits = [0u8; 16];
    for (pair, byte) in digits.chunks_exact_mut(2).zip(fnv1a64(value).to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    out.extend_from_slice(&digits);
}

/// Writes the field `key` of a change (`changed`, `source` or `value_fnv`), escaped.
fn change_field_into(
    key: &str,
    changed: u64,
    source: &Source,
    stored_value: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    match key {
        CHANGED => decimal_into(changed, out),
        SOURCE => source.encode_into(out),
        _ => value_fnv_into(stored_value, out),
    }
}

/// The parts of a change record a writer may keep between changes: `changed` and `source`
/// as they are written (a channel writing many states, or many writes in one second, need not
/// format them again).
#[derive(Debug, Default)]
pub struct ChangeFields {
    /// The `changed` the prefix holds.
    changed: Option<u64>,
    /// The source the prefix holds, and its text as written (escaped).
    source: Option<Source<'static>>,
    source_text: Vec<u8>,
    /// `changed=<changed>;source=<source>;value_fnv=`: the last record up to its hash.
    prefix: Vec<u8>,
}

impl ChangeFields {
    fn update(&mut self, changed: u64, source: &Source) {
        if self.changed == Some(changed) && self.source.as_ref() == Some(source) {
            return;
        }
        if self.source.as_ref() != Some(source) {
            self.source_text.clear();
            source.encode_into(&mut self.source_text);
            self.source = Some(source.to_owned_source());
        }
        self.prefix.clear();
        self.prefix.extend_from_slice(b"changed=");
        decimal_into(changed, &mut self.prefix);
        self.prefix.extend_from_slice(b";source=");
        self.prefix.extend_from_slice(&self.source_text);
        self.prefix.extend_from_slice(b";value_fnv=");
        self.changed = Some(changed);
    }

    /// Appends the record of a change and nothing else, `changed=...;source=...;value_fnv=...`:
    /// what [`rewrite_for_change`] gives for an empty record or one for which
    /// [`only_change_fields`] holds, written without reading the old one.
    pub fn record_into(
        &mut self,
        changed: u64,
        source: &Source,
        stored_value: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.update(changed, source);
        // One reservation for the whole record and the NUL the store adds.
        out.reserve(self.prefix.len() + 17);
        out.extend_from_slice(&self.prefix);
        value_fnv_into(stored_value, out);
    }
}

/// Whether `record` holds exactly the fields [`ChangeFields::record_into`] writes, in its
/// order.
pub fn only_change_fields(record: &[u8]) -> bool {
    let mut keys = record
        .split(|&b| b == b';')
        .map(|field| field.split(|&b| b == b'=').next().unwrap_or_default());
    [CHANGED, SOURCE, VALUE_FNV]
        .iter()
        .all(|key| keys.next() == Some(key.as_bytes()))
        && keys.next().is_none()
}

/// The stored record `old` rewritten for a change: what [`Meta::record_change`] then
/// [`Meta::encode`] give, without unescaping and escaping the fields it keeps. `old` must be
/// a record that parses (the store keeps only those); empty means none.
pub fn rewrite_for_change(
    old: &[u8],
    changed: u64,
    source: &Source,
    stored_value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(old.len() + 96);
    rewrite_for_change_into(old, changed, source, stored_value, &mut out);
    out
}

/// [`rewrite_for_change`], appended to `out`.
pub fn rewrite_for_change_into(
    old: &[u8],
    changed: u64,
    source: &Source,
    stored_value: &[u8],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let mut written = [false; 3];
    let keys = [CHANGED, SOURCE, VALUE_FNV];
    for field in old.split(|&b| b == b';').filter(|field| !field.is_empty()) {
        if out.len() > start {
            out.push(b';');
        }
        let key = field.split(|&b| b == b'=').next().unwrap_or_default();
        match keys.iter().position(|k| k.as_bytes() == key) {
            Some(i) => {
                change_field_into(keys[i], changed, source, stored_value, out);
                written[i] = true;
            }
            None => out.extend_from_slice(field),
        }
    }
    for (i, key) in keys.iter().enumerate() {
        if !written[i] {
            if out.len() > start {
                out.push(b';');
            }
            change_field_into(key, changed, source, stored_value, out);
        }
    }
}

fn unescape(value: &[u8], offset: usize) -> Result<Vec<u8>, MetaError> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            match (
                value.get(i + 1).and_then(|&b| hex(b)),
                value.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
                _ => return Err(MetaError::BadEscape(offset + i)),
            }
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// FNV-1a (64-bit) of a stored value, as [`VALUE_FNV`] holds it.
pub fn value_fnv(value: &[u8]) -> String {
    format!("{:016x}", fnv1a64(value))
}

impl Meta {
    /// Parses a stored record. An empty record has no fields.
    pub fn parse(record: &[u8]) -> Result<Meta, MetaError> {
        let mut fields = Vec::new();
        let mut offset = 0;
        for (n, field) in record.split(|&b| b == b';').enumerate() {
            if !(field.is_empty() && record.is_empty()) {
                let equals = field
                    .iter()
                    .position(|&b| b == b'=')
                    .ok_or(MetaError::NoEquals(n + 1))?;
                let key = &field[..equals];
                if !valid_key(key) {
                    return Err(MetaError::BadKey(key.to_vec()));
                }
                let value = unescape(&field[equals + 1..], offset + equals + 1)?;
                // Keys are checked ASCII above.
                fields.push((String::from_utf8_lossy(key).into_owned(), value));
            }
            offset += field.len() + 1;
        }
        Ok(Meta { fields })
    }

    /// The record as stored.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, (key, value)) in self.fields.iter().enumerate() {
            if n > 0 {
                out.push(b';');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            escape_into(value, &mut out);
        }
        out
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &v[..])
    }

    /// Sets `key` (a valid field name: lower-case letters, digits, `_`), in place if present.
    pub fn set(&mut self, key: &str, value: &[u8]) {
        debug_assert!(valid_key(key.as_bytes()), "{key}");
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_vec(),
            None => self.fields.push((key.to_string(), value.to_vec())),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.fields.retain(|(k, _)| k != key);
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Records a change of the state to `stored_value` at `changed` (unix seconds) by `source`.
    pub fn record_change(&mut self, changed: u64, source: &Source, stored_value: &[u8]) {
        self.set(CHANGED, changed.to_string().as_bytes());
        self.set(SOURCE, &source.encode());
        self.set(VALUE_FNV, value_fnv(stored_value).as_bytes());
    }

    /// When and by what `stored_value` was written, if this record describes it: `None` when
    /// the record has no change, or describes another value (written since by someone who
    /// keeps no record, such as the stock module).
    pub fn change_of(&self, stored_value: &[u8]) -> Option<(u64, Source<'static>)> {
        let changed = std::str::from_utf8(self.get(CHANGED)?).ok()?.parse().ok()?;
        let source = Source::decode(self.get(SOURCE)?);
        (self.get(VALUE_FNV)? == value_fnv(stored_value).as_bytes()).then_some((changed, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_round_trips_with_escaped_free_text() {
        let mut meta = Meta::default();
        let odd = b"PJSIP/a;b%c=d\ne".to_vec();
        meta.record_change(
            1_764_500_000,
            &Source::Channel(odd.clone().into()),
            b"away,,x",
        );
        let record = meta.encode();
        assert_eq!(
            String::from_utf8(record.clone()).unwrap(),
            format!(
                "changed=1764500000;source=channel:PJSIP/a%3Bb%25c=d%0Ae;value_fnv={}",
                value_fnv(b"away,,x")
            )
        );
        let back = Meta::parse(&record).unwrap();
        assert_eq!(back, meta);
        assert_eq!(
            back.change_of(b"away,,x"),
            Some((1_764_500_000, Source::Channel(odd.into())))
        );
    }

    #[test]
    fn a_record_of_another_value_is_not_its_history() {
        let mut meta = Meta::default();
        meta.record_change(5, &Source::Cli, b"away");
        assert_eq!(meta.change_of(b"away"), Some((5, Source::Cli)));
        assert_eq!(meta.change_of(b"dnd"), None);
        assert_eq!(Meta::default().change_of(b"away"), None);
    }

    #[test]
    fn unknown_fields_are_kept_in_order_on_rewrite() {
        let mut meta = Meta::parse(b"expires=99;changed=1;hlc=7.3;source=cli").unwrap();
        meta.record_change(2, &Source::Ami, b"dnd");
        let text = String::from_utf8(meta.encode()).unwrap();
        assert!(
            text.starts_with("expires=99;changed=2;hlc=7.3;source=ami;value_fnv="),
            "{text}"
        );
        meta.remove("hlc");
        assert_eq!(meta.get("hlc"), None);
        assert_eq!(meta.get("expires"), Some(&b"99"[..]));
    }

    #[test]
    fn sources_read_back_and_print_for_people() {
        for (source, shown) in [
            (
                Source::Channel(b"PJSIP/100-0001".to_vec().into()),
                "channel PJSIP/100-0001",
            ),
            (Source::Ami, "AMI action"),
            (Source::Cli, "CLI"),
            (
                Source::NoChannel,
                "PRESENCE_STATE() with no channel (AMI SetVar)",
            ),
            (Source::Reload, "reload from AstDB"),
            (Source::Expiry, "expiry of a timed state"),
            (
                Source::SipPublish(b"alice".to_vec().into()),
                "sip publish from endpoint alice",
            ),
            (
                Source::AriUser(b"reception".to_vec().into()),
                "ARI user reception",
            ),
            (
                Source::Other(b"cluster:node2".to_vec().into()),
                "cluster:node2",
            ),
        ] {
            assert_eq!(Source::decode(&source.encode()), source);
            assert_eq!(source.to_string(), shown);
        }
    }

    #[test]
    fn broken_records_are_refused_with_a_reason() {
        assert_eq!(Meta::parse(b"").unwrap(), Meta::default());
        assert_eq!(Meta::parse(b"changed=1;junk"), Err(MetaError::NoEquals(2)));
        assert_eq!(
            Meta::parse(b"Changed=1"),
            Err(MetaError::BadKey(b"Changed".to_vec()))
        );
        assert_eq!(Meta::parse(b"=1"), Err(MetaError::BadKey(vec![])));
        assert_eq!(
            Meta::parse(b"a=1;source=x%4"),
            Err(MetaError::BadEscape(12))
        );
        assert_eq!(Meta::parse(b"a=%zz"), Err(MetaError::BadEscape(2)));
        assert!(MetaError::BadEscape(3).to_string().contains("byte 3"));
    }

    #[test]
    fn a_rewrite_equals_a_parse_record_and_encode() {
        let odd = Source::Channel(b"PJSIP/a;b%c\x01".to_vec().into());
        let odd_endpoint = Source::SipPublish(b"desk;1%".to_vec().into());
        for old in [
            &b""[..],
            b"changed=1;source=cli;value_fnv=00",
            b"expires=99;changed=1;hlc=7.3%3B1;source=cli",
            b"x=%25;y=",
            b"value_fnv=1;z=2",
        ] {
            for source in [
                odd.clone(),
                odd_endpoint.clone(),
                Source::Cli,
                Source::Other(b"n;1".to_vec().into()),
            ] {
                let mut meta = Meta::parse(old).unwrap();
                meta.record_change(1_764_500_000, &source, b"away,,x");
                let rewritten = rewrite_for_change(old, 1_764_500_000, &source, b"away,,x");
                assert_eq!(
                    String::from_utf8_lossy(&rewritten),
                    String::from_utf8_lossy(&meta.encode()),
                    "{old:?}"
                );
            }
        }
        for old in [&b""[..], b"changed=1;source=cli;value_fnv=00"] {
            assert!(old.is_empty() || only_change_fields(old));
            let mut fields = ChangeFields::default();
            for (changed, source) in [(9, &odd), (9, &odd), (10, &odd), (10, &Source::Cli)] {
                let mut fresh = Vec::new();
                fields.record_into(changed, source, b"away", &mut fresh);
                assert_eq!(fresh, rewrite_for_change(old, changed, source, b"away"));
                assert!(only_change_fields(&fresh));
            }
        }
        for other in [
            &b"changed=1;source=cli"[..],
            b"source=cli;changed=1;value_fnv=00",
            b"changed=1;source=cli;value_fnv=00;hlc=7",
            b"expires=99;changed=1;source=cli;value_fnv=00",
        ] {
            assert!(!only_change_fields(other), "{other:?}");
        }
        let mut digits = Vec::new();
        for n in [0, 7, 10, u64::MAX] {
            digits.clear();
            decimal_into(n, &mut digits);
            assert_eq!(digits, n.to_string().as_bytes());
        }
    }

    #[test]
    fn every_byte_survives_a_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        let mut meta = Meta::default();
        meta.set("x", &all);
        assert_eq!(
            Meta::parse(&meta.encode()).unwrap().get("x"),
            Some(&all[..])
        );
    }
}
