//! The messages servers exchange through CPG, as bytes.
//!
//! Every message starts with the format version ([`FORMAT`]) and a kind byte; integers are
//! little-endian. A receiver refuses, as a whole, any message that is not exactly one of:
//!
//! ```text
//! entries: 2 1 count:u32 then count times: wall_ms:u64 counter:u32 node:u32
//!                                          name_len:u32 name value_len:u32 value
//!                                          revert_len:u32 revert
//! digest:  2 2 round:u64 buckets:u32 (= BUCKETS) then BUCKETS times u64
//! done:    2 3 round:u64
//! ```
//!
//! A name is not empty and holds no NUL or comma; a value holds no NUL (whether it is a valid
//! presence value is the store's business; an empty value is a delete's tombstone); a revert
//! holds no NUL and is empty for a tombstone: it is the state a timed value reverts to on
//! every server (`not_set` or a presence value, held untimed; the store checks), empty for an
//! untimed one;
//! nothing follows the last field; the whole message is at most [`MAX_MESSAGE`] bytes.

use super::resync::{Digest, BUCKETS};
use super::version::Version;
use std::fmt;

/// The wire format this module speaks. Format 1 (never released) had no revert: each server
/// reverted a timed state to its own last untimed one. Its entries were laid out otherwise,
/// so the number changed rather than the layout under it: a build still speaking 1 refuses
/// every message of this one with "unknown format version", instead of reading the revert
/// as the next entry's fields. Format 1 is not read (there is nothing released to talk to).
pub const FORMAT: u8 = 2;
/// Corosync's largest atomic message is 1,047,552 bytes; ours stay below it.
pub const MAX_MESSAGE: usize = 1_000_000;
/// Entries are packed into messages of about this size (one larger entry goes alone).
pub const BATCH_BYTES: usize = 60_000;

const KIND_ENTRIES: u8 = 1;
const KIND_DIGEST: u8 = 2;
const KIND_DONE: u8 = 3;
const ENTRY_FIXED: usize = 8 + 4 + 4 + 4 + 4 + 4;

/// One state as it travels: its name (after `CustomPresence:`), stored value (empty: the name
/// was deleted), the state a timed value reverts to (empty: none) and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub revert: &'a [u8],
    pub version: Version,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// States written (live) or held (resynchronisation).
    Entries(Vec<Entry<'a>>),
    /// What a server holds, bucket by bucket, for resynchronisation round `round`.
    Digest { round: u64, digest: Box<Digest> },
    /// The sender has sent every entry it owed round `round`.
    Done { round: u64 },
}

#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    Empty,
    UnknownFormat(u8),
    UnknownKind(u8),
    TooLarge(usize),
    Truncated,
    TrailingBytes(usize),
    NoEntries,
    BadBucketCount(u32),
    BadName,
    BadValue,
    BadRevert,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Empty => write!(f, "empty message"),
            WireError::UnknownFormat(v) => {
                write!(
                    f,
                    "unknown format version {v} (this module speaks {FORMAT})"
                )
            }
            WireError::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            WireError::TooLarge(n) => write!(f, "{n} bytes, more than {MAX_MESSAGE}"),
            WireError::Truncated => write!(f, "truncated"),
            WireError::TrailingBytes(n) => write!(f, "{n} bytes after the last field"),
            WireError::NoEntries => write!(f, "an entries message with no entry"),
            WireError::BadBucketCount(n) => {
                write!(f, "a digest of {n} buckets (expected {BUCKETS})")
            }
            WireError::BadName => write!(f, "a name that is empty or holds a NUL or comma"),
            WireError::BadValue => write!(f, "a value holding a NUL byte"),
            WireError::BadRevert => {
                write!(f, "a revert holding a NUL byte, or given with a delete")
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from(self.u32()?) | (u64::from(self.u32()?) << 32))
    }
    fn sized(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.u32()? as usize;
        self.bytes(len)
    }
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.iter().any(|&b| b == 0 || b == b',')
}

pub fn decode(message: &[u8]) -> Result<Message<'_>, WireError> {
    if message.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge(message.len()));
    }
    let mut r = Reader(message);
    let format = *r
        .bytes(1)
        .map_err(|_| WireError::Empty)?
        .first()
        .unwrap_or(&0);
    if format != FORMAT {
        return Err(WireError::UnknownFormat(format));
    }
    let kind = r.bytes(1)?[0];
    let decoded = match kind {
        KIND_ENTRIES => {
            let count = r.u32()? as usize;
            if count == 0 {
                return Err(WireError::NoEntries);
            }
            // Each entry takes at least ENTRY_FIXED + 1 bytes: a count beyond that is a lie.
            if count > r.0.len() / (ENTRY_FIXED + 1) {
                return Err(WireError::Truncated);
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let version = Version {
                    wall_ms: r.u64()?,
                    counter: r.u32()?,
                    node: r.u32()?,
                };
                let name = r.sized()?;
                if !valid_name(name) {
                    return Err(WireError::BadName);
                }
                let value = r.sized()?;
                if value.contains(&0) {
                    return Err(WireError::BadValue);
                }
                let revert = r.sized()?;
                if revert.contains(&0) || (value.is_empty() && !revert.is_empty()) {
                    return Err(WireError::BadRevert);
                }
                entries.push(Entry {
                    name,
                    value,
                    revert,
                    version,
                });
            }
            Message::Entries(entries)
        }
        KIND_DIGEST => {
            let round = r.u64()?;
            let count = r.u32()?;
            if count as usize != BUCKETS {
                return Err(WireError::BadBucketCount(count));
            }
            let mut digest = Box::new([0u64; BUCKETS]);
            for bucket in digest.iter_mut() {
                *bucket = r.u64()?;
            }
            Message::Digest { round, digest }
        }
        KIND_DONE => Message::Done { round: r.u64()? },
        other => return Err(WireError::UnknownKind(other)),
    };
    if !r.0.is_empty() {
        return Err(WireError::TrailingBytes(r.0.len()));
    }
    Ok(decoded)
}

fn header(kind: u8, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&[FORMAT, kind]);
    out
}

pub fn encode_digest(round: u64, digest: &Digest) -> Vec<u8> {
    let mut out = header(KIND_DIGEST, 14 + 8 * BUCKETS);
    out.extend_from_slice(&round.to_le_bytes());
    out.extend_from_slice(&(BUCKETS as u32).to_le_bytes());
    for bucket in digest {
        out.extend_from_slice(&bucket.to_le_bytes());
    }
    out
}

pub fn encode_done(round: u64) -> Vec<u8> {
    let mut out = header(KIND_DONE, 10);
    out.extend_from_slice(&round.to_le_bytes());
    out
}

/// The encoded size of one entry.
pub fn entry_size(entry: &Entry<'_>) -> usize {
    ENTRY_FIXED + entry.name.len() + entry.value.len() + entry.revert.len()
}

/// Packs entries into messages of about [`BATCH_BYTES`]; an entry that cannot fit in any
/// message ([`MAX_MESSAGE`]) is refused.
#[derive(Default)]
pub struct Batcher {
    done: Vec<Vec<u8>>,
    current: Vec<u8>,
    count: u32,
}

impl Batcher {
    /// Adds `entry`; false (and nothing added) when it is too large for any message.
    pub fn push(&mut self, entry: &Entry<'_>) -> bool {
        let size = entry_size(entry);
        if size + 6 > MAX_MESSAGE {
            return false;
        }
        if self.count > 0 && self.current.len() + size > BATCH_BYTES {
            self.finish();
        }
        if self.count == 0 {
            self.current = header(KIND_ENTRIES, BATCH_BYTES.max(size + 6));
            self.current.extend_from_slice(&[0; 4]);
        }
        let out = &mut self.current;
        out.extend_from_slice(&entry.version.wall_ms.to_le_bytes());
        out.extend_from_slice(&entry.version.counter.to_le_bytes());
        out.extend_from_slice(&entry.version.node.to_le_bytes());
        out.extend_from_slice(&(entry.name.len() as u32).to_le_bytes());
        out.extend_from_slice(entry.name);
        out.extend_from_slice(&(entry.value.len() as u32).to_le_bytes());
        out.extend_from_slice(entry.value);
        out.extend_from_slice(&(entry.revert.len() as u32).to_le_bytes());
        out.extend_from_slice(entry.revert);
        self.count += 1;
        true
    }

    fn finish(&mut self) {
        if self.count > 0 {
            let mut message = std::mem::take(&mut self.current);
            message[2..6].copy_from_slice(&self.count.to_le_bytes());
            self.done.push(message);
            self.count = 0;
        }
    }

    /// The messages, in the order the entries were pushed.
    pub fn into_messages(mut self) -> Vec<Vec<u8>> {
        self.finish();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(name: &'a [u8], value: &'a [u8], wall_ms: u64) -> Entry<'a> {
        timed(name, value, b"", wall_ms)
    }

    fn timed<'a>(name: &'a [u8], value: &'a [u8], revert: &'a [u8], wall_ms: u64) -> Entry<'a> {
        Entry {
            name,
            value,
            revert,
            version: Version {
                wall_ms,
                counter: 7,
                node: 2,
            },
        }
    }

    fn one(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut batcher = Batcher::default();
        for e in entries {
            assert!(batcher.push(e));
        }
        let mut messages = batcher.into_messages();
        assert_eq!(messages.len(), 1);
        messages.remove(0)
    }

    #[test]
    fn entries_round_trip() {
        let sent = [
            entry(b"alice", b"away,,Lunch", 1),
            entry(b"bob", b"", 2),
            timed(b"carol", b"dnd,,,t(60)", b"available", 3),
        ];
        let bytes = one(&sent);
        assert_eq!(bytes[..2], [FORMAT, KIND_ENTRIES]);
        assert_eq!(decode(&bytes), Ok(Message::Entries(sent.to_vec())));
    }

    /// The layout of the module doc, written out by hand.
    #[test]
    fn an_entry_is_laid_out_as_documented() {
        let bytes = one(&[timed(b"c", b"dnd,,,t(9)", b"not_set", 0x0102)]);
        let mut expected = vec![2, 1, 1, 0, 0, 0];
        expected.extend_from_slice(&[2, 1, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0]);
        expected.extend_from_slice(b"\x01\0\0\0c\x0a\0\0\0dnd,,,t(9)\x07\0\0\0not_set");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn digest_and_done_round_trip() {
        let mut digest = Box::new([0u64; BUCKETS]);
        digest[5] = 0xdead_beef_0000_0001;
        let bytes = encode_digest(42, &digest);
        assert_eq!(
            decode(&bytes),
            Ok(Message::Digest {
                round: 42,
                digest: digest.clone()
            })
        );
        assert_eq!(decode(&encode_done(9)), Ok(Message::Done { round: 9 }));
    }

    #[test]
    fn batches_split_near_the_batch_size_and_keep_order() {
        let value = vec![b'x'; 1000];
        let names: Vec<Vec<u8>> = (0..200).map(|i| format!("n{i}").into_bytes()).collect();
        let mut batcher = Batcher::default();
        for name in &names {
            assert!(batcher.push(&entry(name, &value, 1)));
        }
        let messages = batcher.into_messages();
        assert!(messages.len() >= 4, "{}", messages.len());
        let mut seen = Vec::new();
        for m in &messages {
            assert!(m.len() <= BATCH_BYTES + 1100);
            let Ok(Message::Entries(entries)) = decode(m) else {
                panic!("bad batch")
            };
            seen.extend(entries.iter().map(|e| e.name.to_vec()));
        }
        assert_eq!(seen, names);
    }

    #[test]
    fn an_entry_too_large_for_any_message_is_refused() {
        let mut batcher = Batcher::default();
        let huge = vec![b'x'; MAX_MESSAGE];
        assert!(!batcher.push(&entry(b"a", &huge, 1)));
        let big = vec![b'x'; BATCH_BYTES * 3];
        assert!(batcher.push(&entry(b"b", &big, 1)));
        let messages = batcher.into_messages();
        assert_eq!(messages.len(), 1);
        assert!(decode(&messages[0]).is_ok());
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = one(&[entry(b"alice", b"away", 1)]);
        assert_eq!(decode(b""), Err(WireError::Empty));
        assert_eq!(decode(&[1, 1]), Err(WireError::UnknownFormat(1)));
        assert_eq!(decode(&[3, 1]), Err(WireError::UnknownFormat(3)));
        assert_eq!(decode(&[FORMAT, 9]), Err(WireError::UnknownKind(9)));
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(WireError::TrailingBytes(1)));
        let mut lying_count = good.clone();
        lying_count[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&lying_count), Err(WireError::Truncated));
        let mut none = good[..6].to_vec();
        none[2..6].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode(&none), Err(WireError::NoEntries));
        assert_eq!(
            decode(&vec![FORMAT; MAX_MESSAGE + 1]),
            Err(WireError::TooLarge(MAX_MESSAGE + 1))
        );
        let mut short_digest = encode_digest(1, &[0; BUCKETS]);
        short_digest[10..14].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(decode(&short_digest), Err(WireError::BadBucketCount(3)));
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        for name in [&b""[..], b"a,b", b"a\0b"] {
            let bytes = one(&[entry(name, b"away", 1)]);
            assert_eq!(decode(&bytes), Err(WireError::BadName), "{name:?}");
        }
        let bytes = one(&[entry(b"a", b"away\0", 1)]);
        assert_eq!(decode(&bytes), Err(WireError::BadValue));
        let bytes = one(&[timed(b"a", b"away,,,t(5)", b"available\0", 1)]);
        assert_eq!(decode(&bytes), Err(WireError::BadRevert));
        // A delete reverts to nothing.
        let bytes = one(&[timed(b"a", b"", b"available", 1)]);
        assert_eq!(decode(&bytes), Err(WireError::BadRevert));
    }

    #[test]
    fn a_format_1_entry_is_refused() {
        // Format 1's layout: no revert after the value.
        let mut old = vec![1, 1, 1, 0, 0, 0];
        old.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0]);
        old.extend_from_slice(b"\x01\0\0\0a\x04\0\0\0away");
        assert_eq!(decode(&old), Err(WireError::UnknownFormat(1)));
        old[0] = FORMAT;
        assert_eq!(decode(&old), Err(WireError::Truncated));
    }
}
