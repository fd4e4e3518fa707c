//! The invariants the fuzz targets in `fuzz/` check, and the replay of their corpora.
//!
//! Compiled only for tests and under `--cfg fuzzing` (which `cargo fuzz` sets). Each target
//! function takes the raw fuzz input and panics when an invariant fails; libFuzzer reports the
//! panic as a crash. `fuzz/fuzz_targets/<target>.rs` is one line calling the function of the
//! same name, and the unit tests below run every file of `fuzz/corpus/<target>/` through it,
//! so `cargo test --no-default-features` replays the corpus without nightly or libFuzzer.
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

use super::base64::{self, Base64Error};
use super::cli;
use super::custom_presence_name;
use super::device_state::DeviceState;
use super::meta::{Meta, Source, CHANGED, SOURCE, VALUE_FNV};
use super::read::{parse_read, render, Field, ReadError, ReadRequest};
use super::state::PresenceState;
use super::store::{name_for_write, Host, Name, Store, WriteError};
use super::value::{ExpiryProblem, Presence, ValueError, MAX_EXPIRY_SECONDS};

pub use super::cluster::fuzz_check::cluster_wire;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString};

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

/// Splits at the first `sep`: the part before, and the part after if there is a `sep`.
fn split_once(data: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

// ---------------------------------------------------------------------------------------------
// base64

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The documented rules of `base64::decode`, with a plain bit accumulator: every byte before
/// the trailing `=` must be in the alphabet (the first one that is not is reported), at most
/// two `=`, padding only to complete the last quartet, and never one sextet left over.
fn reference_decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let padding = text.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &text[..text.len() - padding];
    if let Some(offset) = body.iter().position(|b| !ALPHABET.contains(b)) {
        return Err(Base64Error::BadByte {
            offset,
            byte: body[offset],
        });
    }
    if padding > 2 || body.len() % 4 == 1 || (padding > 0 && text.len() % 4 != 0) {
        return Err(Base64Error::BadLength);
    }
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for &byte in body {
        let value = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .expect("checked above") as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Fuzz target `base64`: encode of anything decodes back to it (padded or not); decode of
/// anything agrees with the reference, and what it yields re-encodes to text decoding the same.
pub fn base64(data: &[u8]) {
    let encoded = base64::encode(data);
    assert_eq!(encoded.len(), data.len().div_ceil(3) * 4);
    assert!(encoded.len() % 4 == 0);
    let padding = encoded.iter().rev().take_while(|&&b| b == b'=').count();
    assert!(padding <= 2);
    assert!(encoded[..encoded.len() - padding]
        .iter()
        .all(|b| ALPHABET.contains(b)));
    assert_eq!(base64::decode(&encoded).as_deref(), Ok(data));
    let unpadded = &encoded[..encoded.len() - padding];
    assert_eq!(base64::decode(unpadded).as_deref(), Ok(data));
    assert_eq!(reference_decode(&encoded).as_deref(), Ok(data));

    let decoded = base64::decode(data);
    assert_eq!(decoded, reference_decode(data), "decode({data:?})");
    match decoded {
        Ok(bytes) => {
            let again = base64::encode(&bytes);
            assert_eq!(base64::decode(&again), Ok(bytes));
        }
        Err(Base64Error::BadByte { offset, byte }) => {
            assert_eq!(data[offset], byte);
            assert!(!ALPHABET.contains(&byte));
        }
        Err(Base64Error::BadLength) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Written values

type Fields<'a> = (
    PresenceState,
    &'a [u8],
    &'a [u8],
    Option<(Vec<u8>, Vec<u8>)>,
    Option<u32>,
);

/// The options field from its definition, read left to right: `e` any number of times, and at
/// most one `t(<seconds>)` (1 to one year, decimal digits only); the first problem found
/// decides the error. Returns (base64, seconds).
fn reference_options(options: &[u8]) -> Result<(bool, Option<u32>), ValueError> {
    let bad = |reason| ValueError::BadExpiry {
        options: options.to_vec(),
        reason,
    };
    let (mut base64, mut seconds) = (false, None);
    let mut i = 0;
    while i < options.len() {
        if options[i] == b'e' {
            base64 = true;
            i += 1;
            continue;
        }
        if options[i] != b't' {
            return Err(ValueError::UnknownOptions(options.to_vec()));
        }
        if options.get(i + 1) != Some(&b'(') {
            return Err(bad(ExpiryProblem::NoArgument));
        }
        let Some(len) = options[i + 2..].iter().position(|&b| b == b')') else {
            return Err(bad(ExpiryProblem::NoArgument));
        };
        let argument = std::str::from_utf8(&options[i + 2..i + 2 + len]).unwrap_or("x");
        if seconds.is_some() {
            return Err(bad(ExpiryProblem::Repeated));
        }
        if argument.is_empty() || !argument.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(ExpiryProblem::NotANumber));
        }
        let value = argument.trim_start_matches('0');
        match value.parse::<u64>() {
            Ok(n) if (1..=u64::from(MAX_EXPIRY_SECONDS)).contains(&n) => seconds = Some(n as u32),
            _ => return Err(bad(ExpiryProblem::OutOfRange)),
        }
        i += 3 + len;
    }
    Ok((base64, seconds))
}

/// `state[,subtype[,message[,options]]]` from its definition: no NUL byte anywhere (values
/// are C strings), at most four comma-separated fields, a non-empty state name in any case,
/// options as [`reference_options`], and with `e` both subtype and message base64 without
/// NUL once decoded (the subtype checked first).
fn reference_value(text: &[u8]) -> Result<Fields<'_>, ValueError> {
    if text.contains(&0) {
        return Err(ValueError::NulByte);
    }
    let fields: Vec<&[u8]> = text.split(|&b| b == b',').collect();
    if fields.len() > 4 {
        return Err(ValueError::TooManyFields(fields.len()));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or_default();
    if field(0).is_empty() {
        return Err(ValueError::MissingState);
    }
    let lower = field(0).to_ascii_lowercase();
    let state = PresenceState::ALL
        .into_iter()
        .find(|state| state.name().as_bytes() == lower)
        .ok_or_else(|| ValueError::UnknownState(field(0).to_vec()))?;
    let (base64, seconds) = reference_options(field(3))?;
    let decoded = if !base64 {
        None
    } else {
        let mut both = Vec::new();
        for (i, name) in [(1, "subtype"), (2, "message")] {
            let bytes = base64::decode(field(i))
                .map_err(|error| ValueError::BadBase64 { field: name, error })?;
            if bytes.contains(&0) {
                return Err(ValueError::NulInDecoded { field: name });
            }
            both.push(bytes);
        }
        let message = both.pop().expect("two fields");
        Some((both.pop().expect("two fields"), message))
    };
    Ok((state, field(1), field(2), decoded, seconds))
}

fn check_warning_text(error: &dyn std::fmt::Display) {
    let text = error.to_string();
    assert!(!text.is_empty());
    assert!(
        text.len() <= MAX_WARNING_LEN,
        "{} byte warning: {text}",
        text.len()
    );
}

/// Fuzz target `value_parser`: `Presence::parse` never panics, agrees with the reference
/// field by field (or refuses with the same error), keeps the input exactly as stored, and
/// its decoded texts re-encode to a value that announces the same.
pub fn value_parser(data: &[u8]) {
    let parsed = Presence::parse(data);
    let expected = reference_value(data);
    let p = match (parsed, expected) {
        (Err(error), Err(want)) => {
            assert_eq!(error, want, "parse({data:?})");
            check_warning_text(&error);
            return;
        }
        (Ok(p), Ok((state, subtype, message, decoded, seconds))) => {
            assert_eq!(p.stored(), data);
            assert_eq!(p.expiry().map(u32::from), seconds);
            assert_eq!(p.state(), state);
            assert_eq!(p.stored_subtype(), subtype);
            assert_eq!(p.stored_message(), message);
            assert_eq!(p.base64(), decoded.is_some());
            let (want_subtype, want_message) = decoded.unwrap_or((subtype.into(), message.into()));
            assert_eq!(p.subtype(), want_subtype);
            assert_eq!(p.message(), want_message);
            p
        }
        (parsed, expected) => panic!("parse({data:?}) = {parsed:?}, expected {expected:?}"),
    };
    assert_eq!(Presence::parse(p.stored()).as_ref(), Ok(&p));
    assert!(p.announces_same(&p));

    if p.base64() {
        for (decoded, stored) in [
            (p.subtype(), p.stored_subtype()),
            (p.message(), p.stored_message()),
        ] {
            assert!(!decoded.contains(&0));
            let again = base64::encode(decoded);
            assert_eq!(base64::decode(&again).as_deref(), Ok(decoded));
            assert_eq!(base64::decode(&again), base64::decode(stored));
        }
    }

    // The same state written the other way (encoded, or plain where it holds no comma) in
    // the canonical lower-case name announces the same.
    let name = p.state().name().as_bytes();
    let encoded = [
        name,
        b",",
        &base64::encode(p.subtype()),
        b",",
        &base64::encode(p.message()),
        b",e",
    ]
    .concat();
    // A parsed value's texts never hold NUL (Asterisk takes them as C strings), so the
    // encoded form always parses.
    assert!(!p.subtype().contains(&0) && !p.message().contains(&0));
    let q = Presence::parse(&encoded)
        .unwrap_or_else(|error| panic!("re-encoded {encoded:?} refused: {error}"));
    assert!(q.base64() && q.announces_same(&p) && p.announces_same(&q));
    if !p.subtype().contains(&b',') && !p.message().contains(&b',') {
        let plain = [name, b",", p.subtype(), b",", p.message()].concat();
        let q = Presence::parse(&plain).expect("plain form parses");
        assert!(!q.base64() && q.announces_same(&p));
    }
}

// ---------------------------------------------------------------------------------------------
// The store: load, reload and writes

type Seen = Option<(PresenceState, Vec<u8>, Vec<u8>)>;

/// `CustomPresenceMeta` puts (`Some`) and deletes (`None`).
type MetaPuts = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A host that records what the store asked of it; AstDB refuses writes when `refuse` is set.
#[derive(Default)]
struct Recorder {
    refuse: bool,
    db: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    announced: RefCell<Vec<(Vec<u8>, Seen)>>,
    meta: RefCell<MetaPuts>,
}

impl Host for Recorder {
    fn persist(&self, name: &CStr, value: &CStr) -> bool {
        if !self.refuse {
            let entry = (name.to_bytes().to_vec(), value.to_bytes().to_vec());
            self.db.borrow_mut().push(entry);
        }
        !self.refuse
    }
    fn remove(&self, _name: &CStr) -> bool {
        panic!("the fuzzed store deletes nothing");
    }
    fn persist_meta(&self, name: &CStr, record: Option<&CStr>) -> bool {
        let record = record.map(|r| r.to_bytes().to_vec());
        self.meta
            .borrow_mut()
            .push((name.to_bytes().to_vec(), record));
        !self.refuse
    }
    fn announce(&self, name: &[u8], presence: Option<&Presence>) {
        self.announced
            .borrow_mut()
            .push((name.to_vec(), presence.map(seen)));
    }
    fn announce_device(&self, _: &[u8], _: DeviceState) {}
}

/// What consumers are told about a state.
fn seen(p: &Presence) -> (PresenceState, Vec<u8>, Vec<u8>) {
    (p.state(), p.subtype().to_vec(), p.message().to_vec())
}

/// The store holds exactly `model` (name → stored text), and lists it sorted by name.
fn check_store(store: &Store, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(store.len(), model.len());
    assert_eq!(store.is_empty(), model.is_empty());
    let snapshot = store.snapshot();
    let listed: Vec<(&[u8], &[u8])> = snapshot.iter().map(|(n, p)| (&**n, p.stored())).collect();
    let wanted: Vec<(&[u8], &[u8])> = model.iter().map(|(n, v)| (&**n, &**v)).collect();
    assert_eq!(listed, wanted);
    for (name, value) in model {
        assert_eq!(
            store.get(name).map(|p| p.stored().to_vec()).as_ref(),
            Some(value)
        );
    }
}

/// One load or reload of `entries`, checked against the model of the store before it.
fn check_load(
    store: &Store,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
) {
    let mut fresh = BTreeMap::new();
    let mut skipped = Vec::new();
    for (name, value) in &entries {
        match Presence::parse(value) {
            Ok(_) => {
                fresh.insert(name.clone(), value.clone());
            }
            Err(error) => skipped.push((name.clone(), value.clone(), error)),
        }
    }
    let parsed = |value: &Vec<u8>| Presence::parse(value).expect("the model holds parsed values");
    let mut changed_wanted: BTreeSet<Vec<u8>> = model
        .keys()
        .filter(|name| !fresh.contains_key(*name))
        .cloned()
        .collect();
    for (name, value) in &fresh {
        let same = model
            .get(name)
            .is_some_and(|before| parsed(before).announces_same(&parsed(value)));
        if !same {
            changed_wanted.insert(name.clone());
        }
    }

    let borrowed: Vec<(&[u8], &[u8])> = entries.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let replaced = store.replace_all(&borrowed, 0);
    let got_skipped: Vec<_> = replaced
        .skipped
        .into_iter()
        .map(|s| (s.name, s.value, s.error))
        .collect();
    assert_eq!(got_skipped, skipped);
    let changed_set: BTreeSet<Vec<u8>> = replaced.changed.iter().map(|n| n.to_vec()).collect();
    assert_eq!(
        changed_set.len(),
        replaced.changed.len(),
        "a name changed twice"
    );
    assert_eq!(changed_set, changed_wanted);
    *model = fresh;
    check_store(store, model);

    let host = Recorder::default();
    store.announce(&host, &replaced.changed);
    let wanted: Vec<(Vec<u8>, Seen)> = replaced
        .changed
        .iter()
        .map(|name| (name.to_vec(), model.get(&**name).map(|v| seen(&parsed(v)))))
        .collect();
    assert_eq!(*host.announced.borrow(), wanted);
    assert!(host.db.borrow().is_empty(), "a load wrote to AstDB");
}

/// The C string a caller holding `bytes` passes: everything before the first NUL.
fn c_string_of(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).expect("cut at the first NUL")
}

/// One write, as the dialplan and `presencestate change` do it, checked against the model.
fn check_write(
    store: &Store,
    host: &Recorder,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    provider: &[u8],
    value: &[u8],
) -> Result<(), WriteError> {
    let (provider_c, value_c) = (c_string_of(provider), c_string_of(value));
    let (provider, value) = (provider_c.to_bytes(), value_c.to_bytes());
    let (db_before, announced_before) = (host.db.borrow().len(), host.announced.borrow().len());
    let result = store.write(host, &provider_c, &value_c, &Source::Cli);
    let expected = name_for_write(provider).and_then(|name| {
        let presence = Presence::parse(value).map_err(WriteError::Value)?;
        if host.refuse {
            Err(WriteError::PersistFailed(name.to_vec()))
        } else {
            Ok((name, presence))
        }
    });
    match (&result, expected) {
        (Ok(()), Ok((name, presence))) => {
            assert_eq!(
                host.db.borrow()[db_before..],
                [(name.to_vec(), value.to_vec())]
            );
            assert_eq!(
                host.announced.borrow()[announced_before..],
                [(name.to_vec(), Some(seen(&presence)))]
            );
            let meta = host.meta.borrow();
            let (meta_name, record) = meta.last().expect("a write records its change");
            assert_eq!(meta_name, name);
            let record = Meta::parse(record.as_deref().expect("a record, not a delete"));
            assert!(matches!(
                record.expect("a record it wrote parses").change_of(value),
                Some((_, Source::Cli))
            ));
            assert_eq!(store.change_of(name).map(|c| c.1), Some(Source::Cli));
            model.insert(name.to_vec(), value.to_vec());
        }
        (Err(error), Err(want)) => {
            assert_eq!(*error, want);
            check_warning_text(error);
            assert_eq!(host.db.borrow().len(), db_before);
            assert_eq!(host.announced.borrow().len(), announced_before);
        }
        (result, expected) => {
            panic!("write({provider:?}, {value:?}) = {result:?}, expected {expected:?}")
        }
    }
    check_store(store, model);
    result
}

/// Fuzz target `store_load`: after each load the store holds exactly the entries that parse
/// (the last of duplicates wins), the others are reported skipped with their error, and the
/// announcements are exactly the changed names with their new state (`None` when gone);
/// writes in between persist, store and announce once, or change nothing.
pub fn store_load(data: &[u8]) {
    let store = Store::default();
    let mut model = BTreeMap::new();
    for round in data.split(|&b| b == 0) {
        match round.first() {
            Some(&mode @ (1 | 2)) => {
                let host = Recorder {
                    refuse: mode == 2,
                    ..Recorder::default()
                };
                for line in split_lines(&round[1..]) {
                    let (provider, value) = entry(line);
                    let _ = check_write(&store, &host, &mut model, provider, value);
                }
            }
            _ => {
                let entries = split_lines(round)
                    .filter(|line| !line.is_empty())
                    .map(|line| {
                        let (name, value) = entry(line);
                        (name.to_vec(), value.to_vec())
                    })
                    .collect();
                check_load(&store, &mut model, entries);
            }
        }
    }
    store.clear();
    assert!(store.is_empty() && store.snapshot().is_empty());
}

// ---------------------------------------------------------------------------------------------
// CLI arguments

/// The state names `presencestate change` completion offers, upper case, in Asterisk's order.
const COMPLETIONS: [&str; 7] = [
    "NOT_SET",
    "UNAVAILABLE",
    "AVAILABLE",
    "AWAY",
    "XA",
    "CHAT",
    "DND",
];

/// `presencestate list` read back in order: the fixed header, one block per state with the
/// full name and the subtype and message as stored, and the footer (or the empty notice).
fn check_list(text: &[u8], states: &[(Name, std::sync::Arc<Presence>)]) {
    let mut rest = text;
    let mut take = |expected: &[u8]| {
        assert!(
            rest.starts_with(expected),
            "list: expected {:?} at {:?}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&rest[..rest.len().min(80)])
        );
        rest = &rest[expected.len()..];
    };
    let rule: &[u8] = &[b'-'; 69];
    take(b"\n");
    let header: [&[u8]; 4] = [
        rule,
        b"--- Custom Presence States ------------------------------------------",
        rule,
        b"---",
    ];
    for line in header {
        take(line);
        take(b"\n");
    }
    if states.is_empty() {
        take(b"No custom presence states defined\n");
    } else {
        for (name, p) in states {
            let flag: &[u8] = if p.base64() { b"Yes" } else { b"No" };
            let fields: [(&[u8], &[u8]); 5] = [
                (b"--- Name: 'CustomPresence:", name),
                (b"    --- State: '", p.state().name().as_bytes()),
                (b"    --- Subtype: '", p.stored_subtype()),
                (b"    --- Message: '", p.stored_message()),
                (b"    --- Base64 Encoded: '", flag),
            ];
            for (label, value) in fields {
                take(label);
                take(value);
                take(b"'\n");
            }
            take(b"---\n");
        }
        let footer: [&[u8]; 3] = [rule, rule, b""];
        for line in footer {
            take(line);
            take(b"\n");
        }
    }
    let plural = if states.len() == 1 { "state" } else { "states" };
    let n = states.len();
    take(format!("{n} custom presence {plural} ({n} shown)\n").as_bytes());
    assert!(rest.is_empty(), "list: trailing {rest:?}");
}

/// Fuzz target `cli_args`: `name_for_write` accepts exactly a `CustomPresence:` prefix in any
/// case followed by a non-empty comma-free name (and returns that name); completion offers
/// exactly the state names starting with the word, ignoring case, each of which parses; a
/// `presencestate change` onto a loaded store does what the write checks say, and
/// `presencestate list` shows every state whole, sorted by name.
pub fn cli_args(data: &[u8]) {
    let mut lines = split_lines(data);
    let word = lines.next().unwrap_or_default();
    let value = lines.next().unwrap_or_default();

    const PREFIX: &[u8] = b"custompresence:";
    let has_prefix =
        word.len() >= PREFIX.len() && word[..PREFIX.len()].to_ascii_lowercase() == PREFIX;
    let after = has_prefix.then(|| &word[PREFIX.len()..]);
    assert_eq!(custom_presence_name(word), after);
    let wanted = match after {
        None => Err(WriteError::NotCustomPresence(word.to_vec())),
        Some([]) => Err(WriteError::EmptyName),
        Some(name) if name.contains(&b',') => Err(WriteError::CommaInName(name.to_vec())),
        Some(name) => Ok(name),
    };
    let got = name_for_write(word);
    match &got {
        Ok(name) => assert_eq!(name.as_ptr(), word[PREFIX.len()..].as_ptr()),
        Err(error) => check_warning_text(error),
    }
    assert_eq!(got, wanted);

    let lower = word.to_ascii_lowercase();
    let offered: Vec<&str> = COMPLETIONS
        .into_iter()
        .filter(|name| name.to_ascii_lowercase().as_bytes().starts_with(&lower))
        .collect();
    for n in (0..=COMPLETIONS.len()).chain([usize::MAX]) {
        let completion = cli::complete_state(word, n);
        assert_eq!(
            completion.as_deref(),
            offered.get(n).copied(),
            "complete({word:?}, {n})"
        );
        if let Some(name) = completion {
            assert!(PresenceState::parse(name.as_bytes()).is_some());
        }
    }

    let store = Store::default();
    let mut model = BTreeMap::new();
    let entries = lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = entry(line);
            (name.to_vec(), value.to_vec())
        })
        .collect();
    check_load(&store, &mut model, entries);
    let _ = check_write(&store, &Recorder::default(), &mut model, word, value);
    let states = store.snapshot();
    check_list(&cli::list(&states, None), &states);
}

// ---------------------------------------------------------------------------------------------
// Read arguments

/// `provider,field[,options]` from its definition: both non-empty, the field one of three
/// names in any case, and everything after the second comma the options (so a third comma is
/// an unknown option), which may hold only `e`.
fn reference_read(data: &[u8]) -> Result<ReadRequest<'_>, ReadError> {
    if data.is_empty() {
        return Err(ReadError::NoArgument);
    }
    let (provider, rest) = split_once(data, b',');
    let (field, options) = split_once(rest.unwrap_or_default(), b',');
    let options = options.unwrap_or_default();
    if provider.is_empty() || field.is_empty() {
        return Err(ReadError::MissingProviderOrField);
    }
    let field = match &*field.to_ascii_lowercase() {
        b"value" => Field::Value,
        b"subtype" => Field::Subtype,
        b"message" => Field::Message,
        _ => return Err(ReadError::UnknownField(field.to_vec())),
    };
    if options.iter().any(|&b| b != b'e') {
        return Err(ReadError::UnknownOptions(options.to_vec()));
    }
    Ok(ReadRequest {
        provider,
        field,
        base64: !options.is_empty(),
    })
}

/// Fuzz target `read_args`: `parse_read` agrees with the reference; `render` of `value` is
/// the state's name, and of a subtype or message the text itself, or base64 that decodes to
/// it with `e`, for every state, for the stored value's decoded texts and for raw bytes.
pub fn read_args(data: &[u8]) {
    let (args, stored) = split_once(data, b'\n');
    let parsed = parse_read(args);
    assert_eq!(parsed, reference_read(args), "parse_read({args:?})");
    let request = match parsed {
        Ok(request) => request,
        Err(error) => return check_warning_text(&error),
    };
    assert_eq!(request.provider.as_ptr(), args.as_ptr());

    let stored = stored.unwrap_or_default();
    // What the module reads: a stored state, or `not_set` for a name never written.
    let (state, subtype, message) = match Presence::parse(stored) {
        Ok(p) => (p.state(), p.subtype().to_vec(), p.message().to_vec()),
        Err(_) => (PresenceState::NotSet, Vec::new(), Vec::new()),
    };
    let (raw_subtype, raw_message) = split_once(stored, b',');
    let raw_message = raw_message.unwrap_or_default();
    let mut cases = vec![(state, &subtype[..], &message[..])];
    cases.extend(
        PresenceState::ALL
            .into_iter()
            .map(|state| (state, raw_subtype, raw_message)),
    );
    for (state, subtype, message) in cases {
        let text = render(&request, state, subtype, message);
        let source = match request.field {
            Field::Value => {
                assert_eq!(&*text, state.name().as_bytes());
                assert_eq!(PresenceState::parse(&text), Some(state));
                continue;
            }
            Field::Subtype => subtype,
            Field::Message => message,
        };
        if request.base64 {
            assert_eq!(text.len(), source.len().div_ceil(3) * 4);
            assert_eq!(base64::decode(&text).as_deref(), Ok(source));
        } else {
            assert_eq!(&*text, source);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CustomPresenceMeta records

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
    let rewritten = super::meta::rewrite_for_change(record, 1_764_500_000, &source, value);
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
}
