//! The publications held (RFC 3903 event state), by entity tag, and which of them sets each
//! name: the most recently modified one still active. Expiry is lazy here: the store's timed
//! state of the winner is the only timer (see `super::Service::expiring`).

use super::config::StateMap;
use super::Published;
use crate::core::base64;
use crate::core::state::PresenceState;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// An endpoint holding more publications than this loses its least recently modified one
/// (a phone that restarts without removing its publication leaves one behind each time).
pub const MAX_PER_ENDPOINT: usize = 16;

/// One publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    pub etag: String,
    pub endpoint: Vec<u8>,
    /// The name after `CustomPresence:` it sets.
    pub name: Vec<u8>,
    pub contact: Vec<u8>,
    pub expires_at_ms: u64,
    /// Order of the last modification (initial or modify; a refresh keeps it).
    pub modified: u64,
    pub state: PresenceState,
    /// `state,subtype,message[,e]` as stored, without the expiry option.
    pub value: Vec<u8>,
}

impl Publication {
    /// The value to write while this publication wins, timed to end with it.
    pub fn timed_value(&self, now_ms: u64) -> Vec<u8> {
        let seconds = self
            .expires_at_ms
            .saturating_sub(now_ms)
            .div_ceil(1000)
            .max(1);
        let mut text = self.value.clone();
        if text.iter().filter(|&&b| b == b',').count() < 3 {
            text.push(b',');
        }
        text.extend_from_slice(format!("t({seconds})").as_bytes());
        text
    }

    pub fn is_active(&self, now_ms: u64) -> bool {
        self.expires_at_ms > now_ms
    }
}

/// The stored value for what a body says: `state,subtype,message`, base64-encoded with option
/// `e` when the subtype or message holds a comma (the stock format's separator). `None`: the
/// body maps to no state.
pub fn value_of(published: &Published, map: &StateMap) -> Option<(PresenceState, Vec<u8>)> {
    let activity = published.activity.as_deref();
    let state = activity.and_then(|a| map.activity(a)).or_else(|| {
        published.basic.map(|basic| match basic {
            super::Basic::Open => map.open,
            super::Basic::Closed => map.closed,
        })
    })?;
    let subtype = activity.unwrap_or_default().as_bytes();
    let message = published.note.as_deref().unwrap_or_default().as_bytes();
    let encode = subtype.contains(&b',') || message.contains(&b',');
    let mut value = state.name().as_bytes().to_vec();
    for field in [subtype, message] {
        value.push(b',');
        if encode {
            value.extend_from_slice(&base64::encode(field));
        } else {
            value.extend_from_slice(field);
        }
    }
    if encode {
        value.extend_from_slice(b",e");
    }
    Some((state, value))
}

/// What a publication last wrote to a name: whose, until when, and the text (to tell whether
/// the name still holds it: someone else may have written since).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub etag: String,
    pub expires_at_ms: u64,
    pub text: Vec<u8>,
}

/// Every publication, indexed by entity tag, name and endpoint.
pub struct Table {
    by_etag: HashMap<String, Publication>,
    by_name: HashMap<Vec<u8>, Vec<String>>,
    by_endpoint: HashMap<Vec<u8>, Vec<String>>,
    /// What a publication last wrote to each name.
    pub applied: HashMap<Vec<u8>, Applied>,
    sequence: u64,
    /// The earliest expiry held (a purge before it finds nothing).
    earliest_ms: u64,
    /// Keys the entity tags: unguessable, and not repeated after a restart.
    etags: RandomState,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            by_etag: HashMap::new(),
            by_name: HashMap::new(),
            by_endpoint: HashMap::new(),
            applied: HashMap::new(),
            sequence: 0,
            earliest_ms: u64::MAX,
            etags: RandomState::new(),
        }
    }
}

impl Table {
    pub fn len(&self) -> usize {
        self.by_etag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_etag.is_empty()
    }

    /// A new entity tag (RFC 3903: a new one on every 2xx).
    pub fn new_etag(&mut self) -> String {
        loop {
            self.sequence += 1;
            let etag = format!("{:016x}", self.etags.hash_one(self.sequence));
            if !self.by_etag.contains_key(&etag) {
                return etag;
            }
        }
    }

    /// The next modification's order.
    pub fn next_modified(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    pub fn get(&self, etag: &[u8]) -> Option<&Publication> {
        std::str::from_utf8(etag)
            .ok()
            .and_then(|e| self.by_etag.get(e))
    }

    /// Adds `publication`; returns the publication evicted to keep its endpoint within
    /// [`MAX_PER_ENDPOINT`], if any.
    pub fn insert(&mut self, publication: Publication) -> Option<Publication> {
        self.earliest_ms = self.earliest_ms.min(publication.expires_at_ms);
        let etag = publication.etag.clone();
        self.by_name
            .entry(publication.name.clone())
            .or_default()
            .push(etag.clone());
        let mine = self
            .by_endpoint
            .entry(publication.endpoint.clone())
            .or_default();
        mine.push(etag.clone());
        let evict = (mine.len() > MAX_PER_ENDPOINT).then(|| {
            mine.iter()
                .filter_map(|e| self.by_etag.get(e))
                .min_by_key(|p| p.modified)
                .map(|p| p.etag.clone())
        });
        self.by_etag.insert(etag, publication);
        evict.flatten().and_then(|etag| self.remove(&etag))
    }

    pub fn remove(&mut self, etag: &str) -> Option<Publication> {
        let publication = self.by_etag.remove(etag)?;
        for (index, key) in [
            (&mut self.by_name, &publication.name),
            (&mut self.by_endpoint, &publication.endpoint),
        ] {
            if let Some(etags) = index.get_mut(key) {
                etags.retain(|e| e != etag);
                if etags.is_empty() {
                    index.remove(key);
                }
            }
        }
        Some(publication)
    }

    /// Removes the publications of `endpoint` for `name` from `contact` (one device); returns
    /// how many. A phone that forgets its entity tag (baresip sends each status change as a
    /// new initial PUBLISH) would otherwise leave its older states behind, to come back when
    /// the newest ends.
    pub fn remove_device(&mut self, endpoint: &[u8], name: &[u8], contact: &[u8]) -> usize {
        let same: Vec<String> = self
            .by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|etag| self.by_etag.get(etag))
            .filter(|p| p.endpoint == endpoint && p.contact == contact)
            .map(|p| p.etag.clone())
            .collect();
        for etag in &same {
            self.remove(etag);
        }
        same.len()
    }

    /// Removes the publications expired at `now_ms`; returns how many.
    pub fn purge(&mut self, now_ms: u64) -> usize {
        if now_ms < self.earliest_ms {
            return 0;
        }
        let expired: Vec<String> = self
            .by_etag
            .values()
            .filter(|p| !p.is_active(now_ms))
            .map(|p| p.etag.clone())
            .collect();
        for etag in &expired {
            self.remove(etag);
        }
        self.earliest_ms = self
            .by_etag
            .values()
            .map(|p| p.expires_at_ms)
            .min()
            .unwrap_or(u64::MAX);
        expired.len()
    }

    /// The publication that sets `name` now: the most recently modified active one.
    pub fn winner(&self, name: &[u8], now_ms: u64) -> Option<&Publication> {
        self.by_name
            .get(name)?
            .iter()
            .filter_map(|etag| self.by_etag.get(etag))
            .filter(|p| p.is_active(now_ms))
            .max_by_key(|p| p.modified)
    }

    pub fn has_name(&self, name: &[u8]) -> bool {
        self.by_name.contains_key(name) || self.applied.contains_key(name)
    }

    /// Every publication, by name, then most recently modified first.
    pub fn all(&self) -> Vec<&Publication> {
        let mut all: Vec<&Publication> = self.by_etag.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(b.modified.cmp(&a.modified)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::super::Basic;
    use super::*;

    fn publication(table: &mut Table, endpoint: &str, name: &str, expires_at_ms: u64) -> String {
        let etag = table.new_etag();
        let modified = table.next_modified();
        table.insert(Publication {
            etag: etag.clone(),
            endpoint: endpoint.into(),
            name: name.into(),
            contact: b"sip:x".to_vec(),
            expires_at_ms,
            modified,
            state: PresenceState::Away,
            value: format!("away,,{endpoint}").into_bytes(),
        });
        etag
    }

    #[test]
    fn the_most_recently_modified_active_publication_wins() {
        let mut table = Table::default();
        let desk = publication(&mut table, "desk", "alice", 10_000);
        let soft = publication(&mut table, "soft", "alice", 5_000);
        assert_eq!(table.winner(b"alice", 0).unwrap().etag, soft);
        assert_eq!(
            table.winner(b"alice", 5_000).unwrap().etag,
            desk,
            "soft expired"
        );
        assert!(table.winner(b"alice", 10_000).is_none());
        assert_eq!(table.purge(4_999), 0);
        assert_eq!(table.purge(5_000), 1);
        assert_eq!(table.len(), 1);
        assert_eq!(table.remove(&desk).unwrap().endpoint, b"desk");
        assert!(table.is_empty() && !table.has_name(b"alice"));
    }

    #[test]
    fn a_devices_new_publication_replaces_its_older_ones_only() {
        let mut table = Table::default();
        publication(&mut table, "alice", "alice", 10_000);
        publication(&mut table, "alice", "bob", 10_000);
        publication(&mut table, "desk", "alice", 10_000);
        assert_eq!(table.remove_device(b"alice", b"alice", b"sip:x"), 1);
        assert_eq!(table.len(), 2);
        assert_eq!(table.winner(b"alice", 0).unwrap().endpoint, b"desk");
    }

    #[test]
    fn an_endpoint_past_its_limit_loses_its_oldest_publication() {
        let mut table = Table::default();
        let first = publication(&mut table, "e", "n0", 1_000);
        for i in 1..MAX_PER_ENDPOINT {
            publication(&mut table, "e", &format!("n{i}"), 1_000);
        }
        assert_eq!(table.len(), MAX_PER_ENDPOINT);
        let etag = table.new_etag();
        let evicted = table.insert(Publication {
            etag,
            endpoint: b"e".to_vec(),
            name: b"last".to_vec(),
            contact: Vec::new(),
            expires_at_ms: 1_000,
            modified: table.sequence + 1,
            state: PresenceState::Away,
            value: b"away".to_vec(),
        });
        assert_eq!(evicted.unwrap().etag, first);
        assert_eq!(table.len(), MAX_PER_ENDPOINT);
        assert!(table.get(first.as_bytes()).is_none());
    }

    #[test]
    fn etags_are_unique_and_values_carry_the_remaining_time() {
        let mut table = Table::default();
        let a = table.new_etag();
        let b = table.new_etag();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        let p = Publication {
            etag: a,
            endpoint: Vec::new(),
            name: Vec::new(),
            contact: Vec::new(),
            expires_at_ms: 61_500,
            modified: 1,
            state: PresenceState::Dnd,
            value: b"dnd,busy,".to_vec(),
        };
        assert_eq!(p.timed_value(1_000), b"dnd,busy,,t(61)");
        assert_eq!(p.timed_value(61_499), b"dnd,busy,,t(1)");
        let encoded = Publication {
            value: b"dnd,Yg==,Yw==,e".to_vec(),
            ..p
        };
        assert_eq!(encoded.timed_value(0), b"dnd,Yg==,Yw==,et(62)");
    }

    #[test]
    fn a_body_maps_to_a_state_activity_first() {
        let map = StateMap::default();
        let of = |basic, activity: Option<&str>, note: Option<&str>| {
            value_of(
                &Published {
                    basic,
                    activity: activity.map(str::to_string),
                    note: note.map(str::to_string),
                },
                &map,
            )
            .map(|(state, value)| (state, String::from_utf8(value).unwrap()))
        };
        assert_eq!(
            of(Some(Basic::Closed), None, None),
            Some((PresenceState::Unavailable, "unavailable,,".into()))
        );
        assert_eq!(
            of(Some(Basic::Open), None, Some("At my desk")),
            Some((PresenceState::Available, "available,,At my desk".into()))
        );
        assert_eq!(
            of(Some(Basic::Open), Some("on-the-phone"), None),
            Some((PresenceState::Dnd, "dnd,on-the-phone,".into()))
        );
        assert_eq!(
            of(
                Some(Basic::Closed),
                Some("vacation"),
                Some("Back Monday, 9am")
            ),
            Some((
                PresenceState::Xa,
                "xa,dmFjYXRpb24=,QmFjayBNb25kYXksIDlhbQ==,e".into()
            ))
        );
        assert_eq!(
            of(None, Some("lunch"), None),
            Some((PresenceState::Away, "away,lunch,".into()))
        );
        assert_eq!(
            of(Some(Basic::Open), Some("tv"), None),
            Some((PresenceState::Available, "available,tv,".into())),
            "an unmapped activity leaves it to the basic status, and is the subtype"
        );
        assert_eq!(of(None, Some("tv"), None), None);
        assert_eq!(of(None, None, Some("hello")), None);
    }
}
