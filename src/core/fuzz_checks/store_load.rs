//! Fuzz target `store_load`: loads, reloads and writes checked against a model of the store.
//! Its load and write checks also serve `cli_args`.

use super::{check_warning_text, entries, entry, split_lines};
use crate::core::device_state::DeviceState;
use crate::core::meta::{Meta, RecordText, Source};
use crate::core::state::PresenceState;
use crate::core::store::{name_for_write, Host, Store, WriteError};
use crate::core::value::Presence;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString};

type Seen = Option<(PresenceState, Vec<u8>, Vec<u8>)>;

/// `CustomPresenceMeta` puts (`Some`) and deletes (`None`).
type MetaPuts = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A host that records what the store asked of it; AstDB refuses writes when `refuse` is set.
#[derive(Default)]
pub(super) struct Recorder {
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
    fn persist_meta(&self, name: &CStr, record: Option<RecordText<'_>>) -> bool {
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
pub(super) fn check_load(
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
pub(super) fn check_write(
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
                check_load(&store, &mut model, entries(split_lines(round)));
            }
        }
    }
    store.clear();
    assert!(store.is_empty() && store.snapshot().is_empty());
}
