//! The store's unit tests: recording hosts, interleaved writes, records and deletes.

use super::records::unix_now;
use super::*;
use crate::core::meta::{Meta, MetaError, RecordText, Source};
use crate::core::state::PresenceState;

/// The `CustomPresenceMeta` puts (`Some`) and deletes (`None`) asked for.
pub(crate) type MetaPuts = Vec<(Vec<u8>, Option<Vec<u8>>)>;
type Announced = Vec<(Vec<u8>, Option<(PresenceState, Vec<u8>, Vec<u8>)>)>;

/// A host that records what the store asked of it; AstDB refuses writes when `fail` is set.
#[derive(Default)]
pub(crate) struct RecordingHost {
    pub db: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    pub announced: Mutex<Announced>,
    pub devices: Mutex<Vec<(Vec<u8>, DeviceState)>>,
    pub now: std::sync::atomic::AtomicU64,
    pub removed: Mutex<Vec<Vec<u8>>>,
    pub meta: Mutex<MetaPuts>,
    pub fail: bool,
}

impl Host for RecordingHost {
    fn persist(&self, name: &CStr, value: &CStr) -> bool {
        if !self.fail {
            self.db
                .lock()
                .unwrap()
                .push((name.to_bytes().to_vec(), value.to_bytes().to_vec()));
        }
        !self.fail
    }
    fn remove(&self, name: &CStr) -> bool {
        if !self.fail {
            self.removed.lock().unwrap().push(name.to_bytes().to_vec());
        }
        !self.fail
    }
    fn persist_meta(&self, name: &CStr, record: Option<RecordText<'_>>) -> bool {
        let record = record.map(|r| r.to_bytes().to_vec());
        self.meta
            .lock()
            .unwrap()
            .push((name.to_bytes().to_vec(), record));
        true
    }
    fn announce(&self, name: &[u8], presence: Option<&Presence>) {
        let seen = presence.map(|p| (p.state(), p.subtype().to_vec(), p.message().to_vec()));
        self.announced.lock().unwrap().push((name.to_vec(), seen));
    }
    fn announce_device(&self, name: &[u8], state: DeviceState) {
        self.devices.lock().unwrap().push((name.to_vec(), state));
    }
    fn now_ms(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[test]
fn a_write_persists_stores_and_announces_decoded() {
    let (host, store) = (RecordingHost::default(), Store::default());
    store
        .write(
            &host,
            c"CustomPresence:lamp3",
            c"xa,T24gdmFjYXRpb24=,,e",
            &Source::Cli,
        )
        .unwrap();
    assert_eq!(
        *host.db.lock().unwrap(),
        vec![(b"lamp3".to_vec(), b"xa,T24gdmFjYXRpb24=,,e".to_vec())]
    );
    let announced = host.announced.lock().unwrap();
    assert_eq!(
        announced[0],
        (
            b"lamp3".to_vec(),
            Some((PresenceState::Xa, b"On vacation".to_vec(), vec![]))
        )
    );
    assert_eq!(
        store.get(b"lamp3").unwrap().stored(),
        b"xa,T24gdmFjYXRpb24=,,e"
    );
}

/// Stock section 7, defect 7: the prefix case leaked into the published name.
#[test]
fn any_prefix_case_writes_the_same_name() {
    let (host, store) = (RecordingHost::default(), Store::default());
    store
        .write(&host, c"custompresence:Alice", c"away", &Source::Cli)
        .unwrap();
    store
        .write(&host, c"CUSTOMPRESENCE:Alice", c"dnd", &Source::Cli)
        .unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(store.get(b"Alice").unwrap().state(), PresenceState::Dnd);
    assert!(host
        .announced
        .lock()
        .unwrap()
        .iter()
        .all(|(name, _)| name == b"Alice"));
}

/// Stock section 7, defect 8: AstDB write failures were ignored.
#[test]
fn a_refused_persist_changes_nothing() {
    let store = Store::default();
    store
        .write(
            &RecordingHost::default(),
            c"CustomPresence:a",
            c"away",
            &Source::Cli,
        )
        .unwrap();
    let failing = RecordingHost {
        fail: true,
        ..Default::default()
    };
    let err = store
        .write(&failing, c"CustomPresence:a", c"dnd", &Source::Cli)
        .unwrap_err();
    assert_eq!(err, WriteError::PersistFailed(b"a".to_vec()));
    assert_eq!(store.get(b"a").unwrap().state(), PresenceState::Away);
    assert!(failing.announced.lock().unwrap().is_empty());
}

#[test]
fn a_write_records_when_and_by_what_and_keeps_unknown_fields() {
    let (host, store) = (RecordingHost::default(), Store::default());
    store.replace_meta(&[(b"a", b"expires=99;changed=1;source=cli")]);
    let before = unix_now();
    let panel = Source::Ami;
    store
        .write(&host, c"CustomPresence:a", c"away,,Lunch", &panel)
        .unwrap();
    let (changed, source) = store.change_of(b"a").unwrap();
    assert!(changed >= before && changed <= unix_now() + 1);
    assert_eq!(source, panel);
    let meta = host.meta.lock().unwrap();
    let (name, record) = &meta[0];
    let record = String::from_utf8(record.clone().unwrap()).unwrap();
    assert_eq!(name, b"a");
    assert!(
        record.starts_with(&format!("expires=99;changed={changed};source=ami;")),
        "{record}"
    );
}

#[test]
fn with_record_changes_off_nothing_is_recorded_and_old_records_do_not_apply() {
    let (host, store) = (RecordingHost::default(), Store::default());
    store
        .write(&host, c"CustomPresence:a", c"away", &Source::Cli)
        .unwrap();
    store.set_record_changes(false);
    store
        .write(&host, c"CustomPresence:a", c"dnd", &Source::Cli)
        .unwrap();
    assert_eq!(host.meta.lock().unwrap().len(), 1);
    assert_eq!(store.change_of(b"a"), None);
}

#[test]
fn delete_removes_everywhere_and_announces_not_set() {
    let (host, store) = (RecordingHost::default(), Store::default());
    store
        .write(&host, c"CustomPresence:team/a", c"away", &Source::Cli)
        .unwrap();
    store
        .delete(&host, c"custompresence:team/a", &Source::Cli)
        .unwrap();
    assert!(store.get(b"team/a").is_none() && store.change_of(b"team/a").is_none());
    assert_eq!(*host.removed.lock().unwrap(), vec![b"team/a".to_vec()]);
    assert_eq!(
        host.meta.lock().unwrap().last().unwrap(),
        &(b"team/a".to_vec(), None)
    );
    assert_eq!(
        host.announced.lock().unwrap().last().unwrap(),
        &(b"team/a".to_vec(), None)
    );
    let counts = store.stats.counts();
    assert_eq!((counts.writes, counts.deletes), (1, 1));
}

#[test]
fn delete_of_an_unknown_or_bad_name_or_refused_by_astdb_changes_nothing() {
    let (host, store) = (RecordingHost::default(), Store::default());
    store
        .write(&host, c"CustomPresence:a", c"away", &Source::Cli)
        .unwrap();
    let announced = host.announced.lock().unwrap().len();
    for (provider, error) in [
        (c"CustomPresence:b", WriteError::NotSet(b"b".to_vec())),
        (c"CustomPresence:", WriteError::EmptyName),
        (
            c"PJSIP/a",
            WriteError::NotCustomPresence(b"PJSIP/a".to_vec()),
        ),
    ] {
        assert_eq!(store.delete(&host, provider, &Source::Cli), Err(error));
    }
    let failing = RecordingHost {
        fail: true,
        ..Default::default()
    };
    assert_eq!(
        store.delete(&failing, c"CustomPresence:a", &Source::Cli),
        Err(WriteError::PersistFailed(b"a".to_vec()))
    );
    assert_eq!(store.get(b"a").unwrap().stored(), b"away");
    assert!(store.change_of(b"a").is_some());
    assert!(host.removed.lock().unwrap().is_empty());
    assert_eq!(host.announced.lock().unwrap().len(), announced);
    let counts = store.stats.counts();
    assert_eq!((counts.deletes, counts.astdb_failures), (0, 1));
    let refused: u64 = counts.refused.iter().map(|(_, n)| n).sum();
    assert_eq!(refused, 4);
}

#[test]
fn load_keeps_records_and_reload_records_hand_edits() {
    let (host, store) = (RecordingHost::default(), Store::default());
    let mut meta = Meta::default();
    meta.record_change(1000, &Source::Cli, b"away");
    let record = meta.encode();
    store.replace_all(&[(b"a", b"away"), (b"stock", b"dnd")], 0);
    let broken = store.replace_meta(&[(b"a", &record), (b"x", b"no equals")]);
    assert_eq!(broken, vec![(b"x".to_vec(), MetaError::NoEquals(1))]);
    assert_eq!(store.change_of(b"a"), Some((1000, Source::Cli)));
    // Written by the stock module: no record.
    assert_eq!(store.change_of(b"stock"), None);
    let replaced = store.replace_all(&[(b"a", b"xa"), (b"stock", b"dnd")], 0);
    store.record_reloaded(&host, &replaced.changed);
    assert_eq!(store.change_of(b"a").unwrap().1, Source::Reload);
    assert_eq!(store.change_of(b"stock"), None);
    assert_eq!(host.meta.lock().unwrap().len(), 1);
}

#[test]
fn a_loaded_revert_is_checked_and_one_holding_t_as_text_is_kept_untimed() {
    use crate::core::expiry::{RevertError, TimingError, EXPIRES_MS, EXPIRES_VALUE_FNV, REVERT};
    let store = Store::default();
    let record = |revert: &[u8]| {
        let mut meta = Meta::parse(b"changed=1;source=cli").unwrap();
        meta.set(EXPIRES_MS, b"90000");
        meta.set(REVERT, revert);
        let fnv = crate::core::meta::value_fnv(b"away,,,t(60)");
        meta.set(EXPIRES_VALUE_FNV, fnv.as_bytes());
        meta.encode()
    };
    let (good, as_text, bad) = (
        record(b"available"),
        record(b"dnd,,,t(60)"),
        record(b"bored"),
    );
    assert!(store
        .replace_meta(&[(b"good", &good), (b"as_text", &as_text), (b"bad", &bad)])
        .is_empty());
    let replaced = store.replace_all(
        &[
            (b"good", b"away,,,t(60)"),
            (b"as_text", b"away,,,t(60)"),
            (b"bad", b"away,,,t(60)"),
        ],
        50_000,
    );
    assert_eq!(replaced.bad_timings.len(), 1);
    assert_eq!(&*replaced.bad_timings[0].0, b"bad");
    assert!(matches!(
        &replaced.bad_timings[0].1,
        TimingError::BadRevert(RevertError::Invalid(text, _)) if text == b"bored"
    ));
    assert!(replaced.reverted.is_empty());
    let timing_of = |name: &[u8]| store.get(name).unwrap().timing().cloned();
    assert_eq!(timing_of(b"good").unwrap().revert_text(), b"available");
    let as_text = timing_of(b"as_text").unwrap();
    assert_eq!(as_text.revert_text(), b"dnd,,,t(60)");
    assert!(
        as_text.revert.unwrap().timing().is_none(),
        "reverts to it untimed"
    );
    assert_eq!(timing_of(b"bad"), None, "kept, untimed");
    assert_eq!(store.get(b"bad").unwrap().stored(), b"away,,,t(60)");
    assert_eq!(store.pending_expiries(), 2);
}

#[test]
fn bad_writes_change_nothing() {
    let (host, store) = (RecordingHost::default(), Store::default());
    let bad: [(&CStr, &CStr); 6] = [
        (c"PJSIP/100", c"away"),
        (c"CustomPresence:", c"away"),
        (c"CustomPresence:a,b", c"away"),
        (c"CustomPresence:a", c"bored"),
        (c"CustomPresence:a", c"away,,Lunch, see you"),
        (c"CustomPresence:a", c"away,%%%,,e"),
    ];
    for (provider, value) in bad {
        assert!(
            store.write(&host, provider, value, &Source::Cli).is_err(),
            "{provider:?} {value:?}"
        );
    }
    assert!(store.is_empty());
    assert!(host.db.lock().unwrap().is_empty() && host.announced.lock().unwrap().is_empty());
}

/// Stock section 7, defects 5 and 6: names with `/` and long names were cut at load.
#[test]
fn load_keeps_full_names_and_skips_bad_entries() {
    let (host, store) = (RecordingHost::default(), Store::default());
    let long_name = vec![b'n'; 300];
    let replaced = store.replace_all(
        &[
            (b"team/alice", b"away,,In a meeting"),
            (&long_name, b"dnd"),
            (b"broken", b"bored,x"),
        ],
        0,
    );
    assert_eq!(replaced.skipped.len(), 1);
    assert_eq!(replaced.skipped[0].name, b"broken");
    store.announce(&host, &replaced.changed);
    assert!(store.get(b"team/alice").is_some() && store.get(&long_name).is_some());
    let mut announced: Vec<_> = host
        .announced
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    announced.sort();
    assert_eq!(announced, vec![long_name, b"team/alice".to_vec()]);
}

#[test]
fn reload_announces_only_what_changed() {
    let (host, store) = (RecordingHost::default(), Store::default());
    store.replace_all(&[(b"a", b"away"), (b"b", b"dnd")], 0);
    let replaced = store.replace_all(&[(b"a", b"away,,,"), (b"c", b"chat")], 0);
    store.announce(&host, &replaced.changed);
    let mut announced: Vec<_> = host
        .announced
        .lock()
        .unwrap()
        .iter()
        .map(|(n, p)| (n.clone(), p.is_some()))
        .collect();
    announced.sort();
    assert_eq!(
        announced,
        vec![(b"b".to_vec(), false), (b"c".to_vec(), true)]
    );
}

type Writes = Mutex<Vec<(&'static CStr, &'static CStr)>>;

/// Records like [`RecordingHost`], and makes other writes while AstDB takes its first put
/// (`during_persist`) or while the first announcement is made (`during_announce`), as
/// other channels writing at that moment do.
struct Interleaving<'a> {
    recorded: RecordingHost,
    store: &'a Store,
    during_persist: Writes,
    during_announce: Writes,
}

impl Interleaving<'_> {
    fn run(&self, writes: &Writes) {
        let writes = std::mem::take(&mut *writes.lock().unwrap());
        for (provider, value) in writes {
            self.store
                .write(self, provider, value, &Source::Cli)
                .unwrap();
        }
    }
}

impl Host for Interleaving<'_> {
    fn persist(&self, name: &CStr, value: &CStr) -> bool {
        let accepted = self.recorded.persist(name, value);
        self.run(&self.during_persist);
        accepted
    }
    fn remove(&self, name: &CStr) -> bool {
        self.recorded.remove(name)
    }
    fn persist_meta(&self, name: &CStr, record: Option<RecordText<'_>>) -> bool {
        self.recorded.persist_meta(name, record)
    }
    fn announce(&self, name: &[u8], presence: Option<&Presence>) {
        self.recorded.announce(name, presence);
        self.run(&self.during_announce);
    }
    fn announce_device(&self, name: &[u8], state: DeviceState) {
        self.recorded.announce_device(name, state);
    }
}

#[test]
fn writes_during_an_announcement_are_queued_coalesced_and_announced_newest() {
    let store = Store::default();
    let host = Interleaving {
        recorded: RecordingHost::default(),
        store: &store,
        during_persist: Writes::default(),
        during_announce: Mutex::new(vec![
            (c"CustomPresence:a", c"dnd,,second"),
            (c"CustomPresence:a", c"xa,,third"),
        ]),
    };
    store
        .write(&host, c"CustomPresence:a", c"away,,first", &Source::Cli)
        .unwrap();
    let announced = host.recorded.announced.lock().unwrap();
    let messages: Vec<&[u8]> = announced
        .iter()
        .map(|(_, seen)| &seen.as_ref().unwrap().2[..])
        .collect();
    // "second" was overtaken by "third" before its turn came: only the newest is announced.
    assert_eq!(messages, [&b"first"[..], b"third"]);
    assert_eq!(host.recorded.db.lock().unwrap().len(), 3);
    assert_eq!(store.get(b"a").unwrap().stored(), b"xa,,third");
}

#[test]
fn overlapping_writes_of_a_name_leave_astdb_equal_to_memory() {
    let store = Store::default();
    let host = Interleaving {
        recorded: RecordingHost::default(),
        store: &store,
        during_persist: Mutex::new(vec![(c"CustomPresence:a", c"dnd,,second")]),
        during_announce: Writes::default(),
    };
    // AstDB takes "first" then "second"; "second" finishes first, so memory ends on
    // "first", the write that finished last, and AstDB must be set to it again.
    store
        .write(&host, c"CustomPresence:a", c"away,,first", &Source::Cli)
        .unwrap();
    let in_memory = store.get(b"a").unwrap();
    assert_eq!(in_memory.stored(), b"away,,first");
    let db = host.recorded.db.lock().unwrap();
    assert_eq!(db.last().unwrap().1, in_memory.stored(), "{db:?}");
    let announced = host.recorded.announced.lock().unwrap();
    assert_eq!(announced.last().unwrap().1.as_ref().unwrap().2, b"first");
}

#[test]
fn concurrent_writes_end_on_the_last_write_everywhere() {
    let (host, store) = (RecordingHost::default(), Store::default());
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (host, store) = (&host, &store);
            scope.spawn(move || {
                for i in 0..500 {
                    let provider = CString::new(format!("CustomPresence:n{}", i % 10));
                    let value = CString::new(format!("away,t{t},m{i}"));
                    store
                        .write(host, &provider.unwrap(), &value.unwrap(), &Source::Cli)
                        .unwrap();
                }
            });
        }
    });
    for n in 0..10 {
        let name = format!("n{n}").into_bytes();
        let last_db = host
            .db
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .unwrap()
            .1
            .clone();
        let announced = host.announced.lock().unwrap();
        let last_announced = announced
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .unwrap()
            .1
            .clone()
            .unwrap();
        let stored = store.get(&name).unwrap();
        assert_eq!(stored.stored(), &last_db[..]);
        assert_eq!(
            (stored.subtype().to_vec(), stored.message().to_vec()),
            (last_announced.1, last_announced.2)
        );
    }
}
