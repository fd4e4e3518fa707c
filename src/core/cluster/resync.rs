//! Resynchronisation after a membership change: each server multicasts a digest of what it
//! holds (one hash per bucket of names), and once every member's digest is in, for each bucket
//! where the digests differ, one server per distinct digest sends that bucket's entries. Every
//! receiver keeps the newer version of each name, so one round leaves every member with the
//! newest version of every name any of them held. Buckets everyone agrees on cost nothing.
//!
//! CPG delivers every message in the same order to every member, so all members see the same
//! digests and decide the same way without talking further.

use super::version::Version;
use std::collections::{BTreeMap, BTreeSet};

/// Buckets per digest: a 32 KB digest; a few names changed during a partition cost a few
/// buckets' entries, not the whole table.
pub const BUCKETS: usize = 4096;
pub type Digest = [u64; BUCKETS];

/// One process in the group (corosync node id and process id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub node: u32,
    pub pid: u32,
}

/// FNV-1a, unseeded: every server must put a name in the same bucket.
fn fnv1a(bytes: &[u8], start: u64) -> u64 {
    bytes.iter().fold(start, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

pub fn bucket_of(name: &[u8]) -> usize {
    (fnv1a(name, FNV_START) % BUCKETS as u64) as usize
}

/// A hash of one held `(name, version)`; a version identifies one write, so its value is
/// implied.
fn entry_hash(name: &[u8], version: Version) -> u64 {
    let mut hash = fnv1a(name, FNV_START);
    hash = fnv1a(&version.wall_ms.to_le_bytes(), hash);
    hash = fnv1a(&version.counter.to_le_bytes(), hash);
    hash = fnv1a(&version.node.to_le_bytes(), hash);
    // A final mix, so one changed name flips about half the bucket's bits.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// The digest of everything held: per bucket, the XOR of its entries' hashes (order-free).
pub fn digest<'a>(held: impl Iterator<Item = (&'a [u8], Version)>) -> Box<Digest> {
    let mut digest = Box::new([0u64; BUCKETS]);
    for (name, version) in held {
        digest[bucket_of(name)] ^= entry_hash(name, version) | 1;
    }
    digest
}

/// The id of the round a membership starts: the same on every member, since CPG gives them
/// all the same member list.
pub fn round_id(members: &[Member]) -> u64 {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.iter().fold(FNV_START, |hash, m| {
        fnv1a(&m.pid.to_le_bytes(), fnv1a(&m.node.to_le_bytes(), hash))
    })
}

/// One resynchronisation round as this server sees it.
pub struct Round {
    pub id: u64,
    me: Member,
    expected: BTreeSet<Member>,
    digests: BTreeMap<Member, Box<Digest>>,
    sent: Vec<bool>,
    done: BTreeSet<Member>,
    evaluated: bool,
}

impl Round {
    pub fn new(me: Member, members: &[Member]) -> Round {
        Round {
            id: round_id(members),
            me,
            expected: members.iter().copied().collect(),
            digests: BTreeMap::new(),
            sent: vec![false; BUCKETS],
            done: BTreeSet::new(),
            evaluated: false,
        }
    }

    /// Records `from`'s digest. Returns the buckets this server must now send (`Some`, maybe
    /// empty: then it says it is done) once every expected digest is in, or on later digests.
    pub fn on_digest(&mut self, from: Member, digest: Box<Digest>) -> Option<Vec<usize>> {
        self.digests.insert(from, digest);
        self.ready().then(|| self.evaluate())
    }

    /// Members gone mid-round are no longer waited for.
    pub fn on_left(&mut self, gone: &[Member]) -> Option<Vec<usize>> {
        for member in gone {
            self.expected.remove(member);
            self.digests.remove(member);
        }
        (!self.evaluated && self.ready()).then(|| self.evaluate())
    }

    /// Decides with the digests received so far (a member that never answers, such as a
    /// foreign process in the group, must not stall resynchronisation forever).
    pub fn on_timeout(&mut self) -> Option<Vec<usize>> {
        if self.evaluated || !self.digests.contains_key(&self.me) {
            return None;
        }
        let digests = &self.digests;
        self.expected.retain(|m| digests.contains_key(m));
        Some(self.evaluate())
    }

    fn ready(&self) -> bool {
        self.expected.iter().all(|m| self.digests.contains_key(m))
    }

    fn evaluate(&mut self) -> Vec<usize> {
        self.evaluated = true;
        let Some(mine) = self.digests.get(&self.me) else {
            return Vec::new();
        };
        let mut send = Vec::new();
        for bucket in 0..BUCKETS {
            if self.sent[bucket] {
                continue;
            }
            let value = mine[bucket];
            if value == 0 {
                continue; // I hold nothing there: nothing to send
            }
            let all_equal = self.digests.values().all(|d| d[bucket] == value);
            // Among the members holding what I hold, the lowest sends it.
            let first_holder = self.digests.iter().find(|(_, d)| d[bucket] == value);
            if !all_equal && first_holder.map(|(m, _)| *m) == Some(self.me) {
                self.sent[bucket] = true;
                send.push(bucket);
            }
        }
        send
    }

    /// Whether the round is over: `from` said it is done, and so did every member whose
    /// digest is in (their entries were delivered before their `done`, in CPG's order).
    pub fn on_done(&mut self, from: Member) -> bool {
        self.done.insert(from);
        self.is_complete()
    }

    /// Whether every member still there said it is done (also true once the last one that
    /// had not has left).
    pub fn is_complete(&self) -> bool {
        self.evaluated && self.ready() && self.digests.keys().all(|m| self.done.contains(m))
    }

    pub fn is_evaluated(&self) -> bool {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(wall_ms: u64) -> Version {
        Version {
            wall_ms,
            counter: 0,
            node: 1,
        }
    }

    fn m(node: u32) -> Member {
        Member { node, pid: 100 }
    }

    #[test]
    fn digests_ignore_order_and_see_every_change() {
        let a = digest([(&b"a"[..], v(1)), (b"b", v(2))].into_iter());
        let b = digest([(&b"b"[..], v(2)), (b"a", v(1))].into_iter());
        assert_eq!(a, b);
        let c = digest([(&b"a"[..], v(1)), (b"b", v(3))].into_iter());
        assert_ne!(a, c);
        assert_eq!(a.iter().zip(c.iter()).filter(|(x, y)| x != y).count(), 1);
        // Holding a name at all differs from not holding it, whatever its hash.
        assert_ne!(
            digest(std::iter::empty()),
            digest([(&b"x"[..], v(0))].into_iter())
        );
    }

    #[test]
    fn round_ids_are_the_same_for_every_order_of_members() {
        assert_eq!(round_id(&[m(1), m(2)]), round_id(&[m(2), m(1)]));
        assert_ne!(round_id(&[m(1), m(2)]), round_id(&[m(1), m(3)]));
    }

    /// Three members, their tables, one round: every member ends with the newest of each name.
    #[test]
    fn one_round_converges_and_sends_each_differing_bucket_once_per_distinct_holder() {
        let members = [m(1), m(2), m(3)];
        let names: Vec<Vec<u8>> = (0..2000).map(|i| format!("n{i}").into_bytes()).collect();
        let mut tables: Vec<BTreeMap<Vec<u8>, Version>> = vec![BTreeMap::new(); 3];
        for name in &names {
            for table in tables.iter_mut().take(2) {
                table.insert(name.clone(), v(1));
            }
        }
        // Node 2 changed one name, node 3 is fresh, node 1 wrote another name alone.
        tables[1].insert(b"n7".to_vec(), v(5));
        tables[0].insert(b"solo".to_vec(), v(9));
        let digests: Vec<Box<Digest>> = tables
            .iter()
            .map(|t| digest(t.iter().map(|(n, v)| (&n[..], *v))))
            .collect();
        let mut sends = Vec::new();
        for (i, me) in members.iter().enumerate() {
            let mut round = Round::new(*me, &members);
            let mut decided = None;
            for (j, from) in members.iter().enumerate() {
                decided = round.on_digest(*from, digests[j].clone());
                assert_eq!(decided.is_some(), j == 2);
            }
            sends.push((i, decided.unwrap()));
        }
        // Apply: every member receives every sent bucket's entries, keeps the newest.
        let mut result = tables.clone();
        let mut entries_sent = 0;
        for (from, buckets) in &sends {
            for (name, version) in &tables[*from] {
                if buckets.contains(&bucket_of(name)) {
                    entries_sent += 1;
                    for table in result.iter_mut() {
                        let held = table.entry(name.clone()).or_insert(*version);
                        *held = (*held).max(*version);
                    }
                }
            }
        }
        assert_eq!(result[0], result[1]);
        assert_eq!(result[1], result[2]);
        assert_eq!(result[0][&b"n7"[..]], v(5));
        assert_eq!(result[0][&b"solo"[..]], v(9));
        assert_eq!(result[0].len(), 2001);
        // The fresh node sends nothing; nodes 1 and 2 share most buckets, so node 1 alone
        // sends those: about one table plus the two differing buckets, not two tables.
        assert!(sends[2].1.is_empty());
        assert!(entries_sent < 2000 + 10, "{entries_sent}");
    }

    #[test]
    fn a_member_that_never_answers_is_skipped_at_the_timeout() {
        let members = [m(1), m(9)];
        let mut round = Round::new(m(1), &members);
        assert!(round.on_timeout().is_none(), "my own digest is not in yet");
        assert!(round.on_digest(m(1), digest(std::iter::empty())).is_none());
        assert_eq!(round.on_timeout(), Some(vec![]));
        assert!(
            round.on_done(m(1)),
            "the round ends without the silent member"
        );
    }

    #[test]
    fn a_member_leaving_mid_round_is_not_waited_for() {
        let members = [m(1), m(2), m(3)];
        let mut round = Round::new(m(1), &members);
        assert!(round.on_digest(m(1), digest(std::iter::empty())).is_none());
        assert!(round
            .on_digest(m(2), digest([(&b"a"[..], v(1))].into_iter()))
            .is_none());
        let buckets = round.on_left(&[m(3)]).expect("decided once node 3 is gone");
        // Node 2 holds a name node 1 lacks: node 1 has nothing to send for it, node 2 will.
        assert!(buckets.is_empty());
        assert!(!round.on_done(m(1)));
        assert!(round.on_done(m(2)));
    }

    #[test]
    fn a_round_ends_when_the_last_member_it_waits_for_leaves() {
        let members = [m(1), m(2)];
        let mut round = Round::new(m(1), &members);
        round.on_digest(m(1), digest(std::iter::empty()));
        assert_eq!(
            round.on_digest(m(2), digest(std::iter::empty())),
            Some(vec![])
        );
        assert!(!round.on_done(m(1)));
        assert!(round.on_left(&[m(2)]).is_none());
        assert!(round.is_complete());
    }
}
