//! Replicas wired through a simulated CPG: every message delivered to every member of the
//! sender's partition, in one order, the sender included, as corosync does.

use super::replica::{Replica, VersionStore};
use super::resync::Member;
use crate::core::device_state::DeviceState;
use crate::core::meta::{RecordText, Source};
use crate::core::store::tests::RecordingHost;
use crate::core::store::{Host, Store, Version};
use crate::core::value::Presence;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};

struct NoVersions;
impl VersionStore for NoVersions {
    fn save(&self, _: &[u8], _: &[u8]) {}
    fn forget(&self, _: &[u8]) {}
}

/// The store's host on one server: records, and hands local commits to the replica.
struct Wired<'a> {
    host: &'a RecordingHost,
    replica: &'a Replica,
}

impl Host for Wired<'_> {
    fn persist(&self, name: &CStr, value: &CStr) -> bool {
        self.host.persist(name, value)
    }
    fn announce(&self, name: &[u8], presence: Option<&Presence>) {
        self.host.announce(name, presence)
    }
    fn remove(&self, name: &CStr) -> bool {
        self.host.remove(name)
    }
    fn persist_meta(&self, name: &CStr, record: Option<RecordText<'_>>) -> bool {
        self.host.persist_meta(name, record)
    }
    fn announce_device(&self, name: &[u8], state: DeviceState) {
        self.host.announce_device(name, state)
    }
    fn stamp(&self) -> Option<Version> {
        Some(self.replica.local_stamp())
    }
    fn committed(
        &self,
        name: &[u8],
        value: Option<&CStr>,
        revert: Option<&[u8]>,
        version: Version,
    ) {
        self.replica
            .local_commit(name, value.map(CStr::to_bytes), revert, version)
    }
}

fn replicating_store() -> Store {
    let store = Store::default();
    store.replicate(true);
    store
}

struct Server {
    store: Store,
    host: RecordingHost,
    replica: Replica,
    me: Member,
}

impl Server {
    /// The store's host on this server: AstDB and announcements recorded, commits replicated.
    fn wired(&self) -> Wired<'_> {
        Wired {
            host: &self.host,
            replica: &self.replica,
        }
    }
}

struct Net {
    servers: Vec<Server>,
    partitions: Vec<Vec<usize>>,
}

impl Net {
    /// Messages sent by every server so far.
    fn messages_sent(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| {
                s.replica
                    .stats
                    .messages_sent
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum()
    }

    fn new(count: u32) -> Net {
        let servers = (1..=count)
            .map(|node| Server {
                store: replicating_store(),
                host: RecordingHost::default(),
                replica: Replica::new(0),
                me: Member {
                    node,
                    pid: 1000 + node,
                },
            })
            .collect();
        Net {
            servers,
            partitions: Vec::new(),
        }
    }

    fn write(&self, i: usize, name: &str, value: &str) {
        let s = &self.servers[i];
        let wired = s.wired();
        let provider = CString::new(format!("CustomPresence:{name}")).unwrap();
        s.store
            .write(
                &wired,
                &provider,
                &CString::new(value).unwrap(),
                &Source::Cli,
            )
            .unwrap();
    }

    /// Sets the partitions; each member of a partition that gained someone sees a join.
    fn split(&mut self, partitions: Vec<Vec<usize>>) {
        for part in &partitions {
            let members: Vec<Member> = part.iter().map(|&i| self.servers[i].me).collect();
            for &i in part {
                let s = &self.servers[i];
                if !s.replica.is_joined() {
                    s.replica.joined(s.me);
                }
                let before: Vec<usize> = self
                    .partitions
                    .iter()
                    .find(|p| p.contains(&i))
                    .cloned()
                    .unwrap_or_default();
                let gained = part.iter().any(|j| !before.contains(j));
                let left: Vec<Member> = before
                    .iter()
                    .filter(|j| !part.contains(j))
                    .map(|&j| self.servers[j].me)
                    .collect();
                s.replica.membership(&s.store, &members, &left, gained);
            }
        }
        self.partitions = partitions;
    }

    /// Delivers until nobody has anything left to send.
    fn pump(&self) {
        loop {
            let mut any = false;
            for part in &self.partitions {
                for &i in part {
                    let sender = &self.servers[i];
                    while let Some(message) = sender.replica.next_message(&NoVersions) {
                        any = true;
                        sender.replica.sent();
                        for &j in part {
                            let s = &self.servers[j];
                            let wired = s.wired();
                            s.replica
                                .receive(sender.me, &message, &s.store, &wired, &NoVersions)
                                .unwrap();
                        }
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    fn delete(&self, i: usize, name: &str) {
        let s = &self.servers[i];
        let wired = s.wired();
        let provider = CString::new(format!("CustomPresence:{name}")).unwrap();
        s.store.delete(&wired, &provider, &Source::Cli).unwrap();
    }

    fn table(&self, i: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.servers[i]
            .store
            .snapshot()
            .into_iter()
            .map(|(n, p)| (n.to_vec(), p.stored().to_vec()))
            .collect()
    }
}

/// Two joined servers that both hold `a` (away), for feeding the second one messages.
fn two_servers_holding_a() -> Net {
    let mut net = Net::new(2);
    net.split(vec![vec![0, 1]]);
    net.write(0, "a", "away");
    net.pump();
    net
}

#[test]
fn a_write_reaches_every_member_and_is_announced_there() {
    let mut net = Net::new(3);
    net.split(vec![vec![0, 1, 2]]);
    net.pump();
    net.write(0, "alice", "away,,Lunch");
    net.pump();
    for i in 1..3 {
        let s = &net.servers[i];
        assert_eq!(s.store.get(b"alice").unwrap().stored(), b"away,,Lunch");
        assert_eq!(s.host.announced.lock().unwrap().len(), 1);
        assert_eq!(s.host.db.lock().unwrap()[0].0, b"alice");
    }
    // Nobody sends it on again: one entries message in all.
    let sent: u64 = net
        .servers
        .iter()
        .map(|s| {
            s.replica
                .stats
                .entries_sent
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert_eq!(sent, 1);
}

#[test]
fn concurrent_writes_end_equal_everywhere_on_the_last_writer() {
    let mut net = Net::new(3);
    net.split(vec![vec![0, 1, 2]]);
    net.pump();
    for round in 0..50 {
        net.write(0, "x", &format!("away,,one {round}"));
        net.write(1, "x", &format!("dnd,,two {round}"));
        if round % 7 == 0 {
            net.pump();
        }
    }
    net.pump();
    assert_eq!(net.table(0), net.table(1));
    assert_eq!(net.table(1), net.table(2));
}

#[test]
fn a_partition_heals_to_the_last_writer_of_each_name_with_nothing_lost() {
    let mut net = Net::new(3);
    net.split(vec![vec![0, 1, 2]]);
    for i in 0..300 {
        net.write(i % 3, &format!("old{i}"), "available");
    }
    net.pump();
    net.split(vec![vec![0, 1], vec![2]]);
    net.pump();
    net.write(0, "left-only", "away");
    net.write(2, "right-only", "dnd");
    net.write(2, "both", "xa,,right first");
    std::thread::sleep(std::time::Duration::from_millis(3));
    net.write(1, "both", "chat,,left later");
    net.write(2, "old5", "dnd,,changed right");
    net.pump();
    net.split(vec![vec![0, 1, 2]]);
    net.pump();
    let table = net.table(0);
    assert_eq!(table, net.table(1));
    assert_eq!(table, net.table(2));
    assert_eq!(table.len(), 303);
    assert_eq!(table[&b"both"[..]], b"chat,,left later");
    assert_eq!(table[&b"old5"[..]], b"dnd,,changed right");
    assert_eq!(table[&b"left-only"[..]], b"away");
    assert_eq!(table[&b"right-only"[..]], b"dnd");
    let report = net.servers[2]
        .replica
        .last_resync()
        .expect("a resync report");
    assert_eq!(report.members, 3);
    assert!(report.names_applied >= 2, "{report:?}");
}

#[test]
fn a_fresh_server_gets_every_state_and_only_one_server_sends_them() {
    let mut net = Net::new(3);
    net.split(vec![vec![0, 1]]);
    for i in 0..2000 {
        net.write(i % 2, &format!("n{i}"), "away");
    }
    net.pump();
    net.split(vec![vec![0, 1, 2]]);
    net.pump();
    assert_eq!(net.table(2).len(), 2000);
    assert_eq!(net.table(2), net.table(0));
    let resent = net.servers[2]
        .replica
        .last_resync()
        .map(|r| r.names_applied)
        .unwrap();
    assert_eq!(resent, 2000);
}

#[test]
fn garbage_is_dropped_and_changes_nothing() {
    let net = two_servers_holding_a();
    let s = &net.servers[1];
    let wired = s.wired();
    let stranger = Member { node: 9, pid: 9 };
    let mut bad_value = vec![1u8, 1, 1, 0, 0, 0];
    bad_value.extend_from_slice(&[0; 16]);
    bad_value.extend_from_slice(&1u32.to_le_bytes());
    bad_value.push(b'a');
    bad_value.extend_from_slice(&5u32.to_le_bytes());
    bad_value.extend_from_slice(b"bored");
    for garbage in [&b"hello"[..], b"", &[1, 1, 255, 255], &bad_value] {
        let result = s
            .replica
            .receive(stranger, garbage, &s.store, &wired, &NoVersions);
        assert!(result.is_err(), "{garbage:?}");
    }
    assert_eq!(s.store.get(b"a").unwrap().stored(), b"away");
    assert_eq!(
        s.replica
            .stats
            .messages_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
}

#[test]
fn a_state_too_large_for_a_message_stays_local_and_is_reported() {
    let mut net = Net::new(2);
    net.split(vec![vec![0, 1]]);
    net.pump();
    let huge = format!("away,,{}", "x".repeat(super::wire::MAX_MESSAGE));
    net.write(0, "huge", &huge);
    net.write(0, "small", "dnd");
    net.pump();
    assert_eq!(
        net.servers[0].replica.take_too_large(),
        vec![b"huge".to_vec()]
    );
    assert!(net.servers[0].replica.take_too_large().is_empty());
    assert_eq!(
        net.table(1).keys().collect::<Vec<_>>(),
        [&b"small".to_vec()]
    );
}

#[test]
fn a_version_from_the_far_future_is_refused_and_does_not_move_the_clock() {
    use super::version::wall_clock_ms;
    use super::wire::{Batcher, Entry};
    let net = two_servers_holding_a();
    let s = &net.servers[1];
    let wired = s.wired();
    let mut batcher = Batcher::default();
    let far = super::version::Version {
        wall_ms: wall_clock_ms() + 2 * super::replica::MAX_AHEAD_MS,
        counter: 0,
        node: 9,
    };
    batcher.push(&Entry {
        name: b"a",
        value: b"dnd",
        revert: b"",
        version: far,
    });
    let message = batcher.into_messages().remove(0);
    let stranger = Member { node: 9, pid: 9 };
    let refused = s
        .replica
        .receive(stranger, &message, &s.store, &wired, &NoVersions);
    assert!(refused.unwrap_err().contains("ahead"));
    assert_eq!(s.store.get(b"a").unwrap().stored(), b"away");
    // Server 2's clock did not jump: its write loses to server 1's write made after it.
    net.write(1, "a", "xa");
    std::thread::sleep(std::time::Duration::from_millis(3));
    net.write(0, "a", "chat");
    net.pump();
    assert_eq!(net.table(0)[&b"a"[..]], b"chat");
    assert_eq!(net.table(1)[&b"a"[..]], b"chat");
}

#[test]
fn a_delete_reaches_every_member_and_survives_a_partition_that_kept_the_name() {
    let mut net = Net::new(3);
    net.split(vec![vec![0, 1, 2]]);
    net.write(0, "gone", "away");
    net.write(0, "gone-there", "away");
    net.write(0, "rewritten", "away");
    net.pump();
    net.delete(1, "gone");
    net.pump();
    for i in 0..3 {
        assert!(net.servers[i].store.get(b"gone").is_none(), "server {i}");
        assert_eq!(net.servers[i].replica.tombstones(), 1);
    }
    // Node 3 away: a delete on one side while node 3 still holds the name, and a delete on
    // one side of a name the other side then writes again (later: the write wins).
    net.split(vec![vec![0, 1], vec![2]]);
    net.pump();
    net.delete(0, "gone-there");
    net.delete(2, "rewritten");
    std::thread::sleep(std::time::Duration::from_millis(3));
    net.write(1, "rewritten", "dnd,,back");
    net.pump();
    assert!(net.servers[2].store.get(b"gone-there").is_some());
    net.split(vec![vec![0, 1, 2]]);
    net.pump();
    for i in 0..3 {
        let table = net.table(i);
        assert_eq!(table.len(), 1, "server {i}: {table:?}");
        assert_eq!(table[&b"rewritten"[..]], b"dnd,,back");
        assert_eq!(net.servers[i].replica.tombstones(), 2, "server {i}");
    }
    // Past their time, tombstones are forgotten.
    let later =
        super::version::wall_clock_ms() + super::replica::DEFAULT_TOMBSTONE_TTL.as_millis() as u64;
    assert_eq!(
        net.servers[0].replica.purge_tombstones(later, &NoVersions),
        2
    );
    assert_eq!(net.servers[0].replica.tombstones(), 0);
}

#[test]
fn a_timed_write_reverts_on_every_server_by_itself_at_one_deadline() {
    let mut net = Net::new(2);
    net.split(vec![vec![0, 1]]);
    net.write(0, "t", "available");
    net.pump();
    net.write(0, "t", "away,,,t(60)");
    net.pump();
    let deadline = |i: usize| {
        net.servers[i]
            .store
            .get(b"t")
            .unwrap()
            .timing()
            .unwrap()
            .deadline_ms
    };
    // Within the few milliseconds between the write and its version's clock reading.
    assert!(
        deadline(1).abs_diff(deadline(0)) <= 5,
        "{} {}",
        deadline(0),
        deadline(1)
    );
    let sent_before = net.messages_sent();
    let due_at = deadline(0).max(deadline(1));
    for s in &net.servers {
        let due = s.store.expiries().take_due(due_at);
        assert_eq!(due.len(), 1);
        let wired = s.wired();
        s.store.expire_all(&wired, due, &mut |_| {});
        assert_eq!(s.store.get(b"t").unwrap().stored(), b"available");
    }
    net.pump();
    let sent_after = net.messages_sent();
    assert_eq!(sent_before, sent_after, "an expiry sends nothing");
}

/// Expires every timed state of every server at `due_at`, as each server's expiry thread does.
fn expire_everywhere(net: &Net, due_at: u64) {
    for s in &net.servers {
        let due = s.store.expiries().take_due(due_at);
        let wired = s.wired();
        s.store.expire_all(&wired, due, &mut |_| {});
    }
}

#[test]
fn a_server_that_missed_the_untimed_write_reverts_to_the_writers_state_after_a_resync() {
    let mut net = Net::new(3);
    net.split(vec![vec![0, 1, 2]]);
    net.write(0, "t", "away,,before the split");
    net.pump();
    net.split(vec![vec![0, 1], vec![2]]);
    net.pump();
    net.write(0, "t", "available");
    net.write(0, "t", "dnd,,,t(60)");
    net.pump();
    assert_eq!(net.table(2)[&b"t"[..]], b"away,,before the split");
    net.split(vec![vec![0, 1, 2]]);
    net.pump();
    let timing = |i: usize| net.servers[i].store.get(b"t").unwrap().timing().cloned();
    let deadline = timing(0).unwrap().deadline_ms;
    for i in 0..3 {
        let timing = timing(i).unwrap_or_else(|| panic!("server {i} holds no timed state"));
        assert_eq!(timing.revert_text(), b"available", "server {i}");
        assert_eq!(timing.deadline_ms, deadline, "server {i}");
    }
    expire_everywhere(&net, deadline);
    for i in 0..3 {
        assert_eq!(net.table(i)[&b"t"[..]], b"available", "server {i}");
    }
}

#[test]
fn a_live_timed_write_carries_the_writers_revert() {
    let mut net = Net::new(2);
    net.split(vec![vec![0, 1]]);
    net.write(0, "t", "available");
    net.pump();
    // Server 2 holds another untimed state, unknown to the cluster (written past its replica).
    let s = &net.servers[1];
    s.store
        .write(&s.host, c"CustomPresence:t", c"xa,,only here", &Source::Cli)
        .unwrap();
    net.write(0, "t", "dnd,,,t(60)");
    net.pump();
    let timing = net.servers[1].store.get(b"t").unwrap().timing().cloned();
    assert_eq!(timing.unwrap().revert_text(), b"available");
    // A timed write over a timed state keeps the first revert, on the writer and so everywhere.
    net.write(0, "t", "away,,,t(90)");
    net.pump();
    let deadline = net.servers[0]
        .store
        .get(b"t")
        .unwrap()
        .timing()
        .unwrap()
        .deadline_ms;
    expire_everywhere(&net, deadline);
    assert_eq!(net.table(0)[&b"t"[..]], b"available");
    assert_eq!(net.table(1)[&b"t"[..]], b"available");
}

#[test]
fn a_timed_entry_with_a_bad_revert_drops_the_message_and_changes_nothing() {
    use super::version::{wall_clock_ms, Version};
    use super::wire::{Batcher, Entry};
    let net = two_servers_holding_a();
    let s = &net.servers[1];
    let wired = s.wired();
    let version = Version {
        wall_ms: wall_clock_ms(),
        counter: 0,
        node: 9,
    };
    let before = s.host.db.lock().unwrap().len();
    for (value, revert) in [
        (&b"dnd,,,t(5)"[..], &b"bored"[..]),
        (b"dnd,,,t(5)", b"dnd,!!,,e"),
        (b"dnd", b"available"),
    ] {
        let mut batcher = Batcher::default();
        // A good entry first: the whole message is dropped, not only the bad entry.
        for (name, value, revert) in [(&b"b"[..], &b"chat"[..], &b""[..]), (b"a", value, revert)] {
            batcher.push(&Entry {
                name,
                value,
                revert,
                version,
            });
        }
        let message = batcher.into_messages().remove(0);
        let stranger = Member { node: 9, pid: 9 };
        let refused = s
            .replica
            .receive(stranger, &message, &s.store, &wired, &NoVersions);
        assert!(
            refused.unwrap_err().contains("revert"),
            "{value:?} {revert:?}"
        );
    }
    assert_eq!(net.table(1).len(), 1);
    assert_eq!(s.store.get(b"a").unwrap().stored(), b"away");
    assert_eq!(s.host.db.lock().unwrap().len(), before);
}
