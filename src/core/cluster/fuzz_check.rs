//! The invariants of the `cluster_wire` fuzz target (see `core::fuzz_checks`): whatever a
//! peer sends, decoding never panics; what decodes re-encodes to the same messages; and a
//! replica given it either applies valid entries (a timed one with its writer's revert and
//! deadline) or changes nothing.

use super::replica::{Replica, VersionStore, MAX_AHEAD_MS};
use super::resync::Member;
use super::version::wall_clock_ms;
use super::wire::{self, Batcher, Message};
use crate::core::device_state::DeviceState;
use crate::core::meta::RecordText;
use crate::core::store::{Host, Store};
use crate::core::value::Presence;
use std::cell::Cell;
use std::ffi::CStr;

struct NoVersions;
impl VersionStore for NoVersions {
    fn save(&self, _: &[u8], _: &[u8]) {}
    fn forget(&self, _: &[u8]) {}
}

/// Counts what the store asks of Asterisk.
#[derive(Default)]
struct Counting {
    puts: Cell<usize>,
    announcements: Cell<usize>,
}

impl Host for Counting {
    fn persist(&self, _: &CStr, _: &CStr) -> bool {
        self.puts.set(self.puts.get() + 1);
        true
    }
    fn remove(&self, _: &CStr) -> bool {
        self.puts.set(self.puts.get() + 1);
        true
    }
    fn persist_meta(&self, _: &CStr, _: Option<RecordText<'_>>) -> bool {
        self.puts.set(self.puts.get() + 1);
        true
    }
    fn announce(&self, _: &[u8], _: Option<&Presence>) {
        self.announcements.set(self.announcements.get() + 1);
    }
    fn announce_device(&self, _: &[u8], _: DeviceState) {
        self.announcements.set(self.announcements.get() + 1);
    }
}

pub fn cluster_wire(data: &[u8]) {
    let decoded = wire::decode(data);
    match &decoded {
        Ok(Message::Entries(entries)) => {
            let mut batcher = Batcher::default();
            for entry in entries {
                assert!(batcher.push(entry), "a received entry must fit a message");
            }
            let again: Vec<_> = batcher
                .into_messages()
                .iter()
                .flat_map(|m| match wire::decode(m) {
                    Ok(Message::Entries(e)) => e
                        .into_iter()
                        .map(|e| {
                            (
                                e.name.to_vec(),
                                e.value.to_vec(),
                                e.revert.to_vec(),
                                e.version,
                            )
                        })
                        .collect::<Vec<_>>(),
                    other => panic!("re-encoded entries decode to {other:?}"),
                })
                .collect();
            let original: Vec<_> = entries
                .iter()
                .map(|e| {
                    (
                        e.name.to_vec(),
                        e.value.to_vec(),
                        e.revert.to_vec(),
                        e.version,
                    )
                })
                .collect();
            assert_eq!(again, original);
        }
        Ok(Message::Digest { round, digest }) => {
            assert_eq!(wire::encode_digest(*round, digest), data);
        }
        Ok(Message::Done { round }) => assert_eq!(wire::encode_done(*round), data),
        Err(error) => assert!(error.to_string().len() < 200),
    }

    let (store, host, replica) = (Store::default(), Counting::default(), Replica::new(1));
    replica.joined(Member { node: 1, pid: 1 });
    store.replace_all(&[(b"held", b"away,,before")], wall_clock_ms());
    let stranger = Member { node: 2, pid: 2 };
    let result = replica.receive(stranger, data, &store, &host, &NoVersions);
    let latest = wall_clock_ms().saturating_add(MAX_AHEAD_MS);
    let all_valid = match &decoded {
        Ok(Message::Entries(entries)) => entries.iter().all(|e| {
            let valid = match Presence::parse(e.value) {
                _ if e.value.is_empty() => true,
                Ok(value) => valid_revert(value.expiry().is_some(), e.revert),
                Err(_) => false,
            };
            valid && e.version.wall_ms <= latest
        }),
        Ok(_) => true,
        Err(_) => false,
    };
    assert_eq!(result.is_ok(), all_valid, "{result:?}");
    if result.is_err() {
        assert_eq!(store.len(), 1);
        assert_eq!(store.get(b"held").unwrap().stored(), b"away,,before");
        assert_eq!((host.puts.get(), host.announcements.get()), (0, 0));
    } else if let Ok(Message::Entries(entries)) = &decoded {
        // Every name ends on the newest of the versions it was sent with.
        for entry in entries {
            let newest = entries
                .iter()
                .filter(|e| e.name == entry.name)
                .map(|e| (e.version, e.value))
                .max()
                .unwrap();
            // An empty value is a tombstone: the name is gone.
            let held = store.get(entry.name);
            assert_eq!(held.as_ref().map_or(&b""[..], |p| p.stored()), newest.1);
            // A timed state expires at its version's time plus its seconds, to the state its
            // writer sent (one of the newest entries' reverts, should several tie).
            let Some(held) = held else { continue };
            let timing = held.timing();
            let expected: Vec<_> = entries
                .iter()
                .filter(|e| e.name == entry.name && (e.version, e.value) == newest)
                .map(|e| {
                    let seconds = held.expiry().map(|s| u64::from(s.get()));
                    let deadline = seconds.map(|s| e.version.wall_ms.saturating_add(s * 1000));
                    (deadline.filter(|_| !e.revert.is_empty()), e.revert)
                })
                .collect();
            let got = (
                timing.map(|t| t.deadline_ms),
                timing.map_or(&b""[..], |t| t.revert_text()),
            );
            assert!(expected.contains(&got), "{got:?} not in {expected:?}");
        }
    }
}

/// The documented rule (wire and store): an untimed value comes with no revert; a timed one
/// with none, `not_set`, or a presence value (held untimed, whatever its options say).
fn valid_revert(timed: bool, revert: &[u8]) -> bool {
    revert.is_empty() || (timed && (revert == b"not_set" || Presence::parse(revert).is_ok()))
}
