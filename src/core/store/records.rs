//! The store's `CustomPresenceMeta` records: one per name that has one, kept by stripe beside
//! the writes of that name, rewritten on each change and handed to AstDB by the writer.

use super::timed::{record_to_store, Put};
use super::{fnv1a, lock_ignoring_poison, stripe_of, Host, Name, Store, Writing, STRIPES};
use crate::core::meta::{self, Meta, MetaError, RecordText, Source};
use std::ffi::CString;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

/// A `CustomPresenceMeta` record as stored, NUL-terminated (escaping leaves no other NUL), and
/// whether it holds only the fields a change writes (then the next change writes its record
/// anew, in the same buffer, instead of rewriting this one field by field).
#[derive(Clone, Debug)]
pub(super) struct Record {
    with_nul: Vec<u8>,
    only_change: bool,
}

impl Record {
    /// The record's text, without its NUL.
    pub(super) fn to_bytes(&self) -> &[u8] {
        &self.with_nul[..self.with_nul.len() - 1]
    }

    pub(super) fn text(&self) -> RecordText<'_> {
        RecordText::new(&self.with_nul).unwrap_or_default()
    }
}

impl From<CString> for Record {
    fn from(text: CString) -> Record {
        Record {
            only_change: meta::only_change_fields(text.to_bytes()),
            with_nul: text.into_bytes_with_nul(),
        }
    }
}

/// How long a record may be to leave its stripe on the stack (a channel's name of 80 bytes
/// fits).
const SHORT: usize = 160;

/// A record on its way to AstDB: copied out of its stripe, so the put runs outside the lock;
/// on the stack when short, so a write allocates nothing for it.
pub(super) enum Outgoing {
    Short { len: u8, bytes: [u8; SHORT] },
    Long(Record),
}

impl Outgoing {
    fn copy_of(record: &Record) -> Outgoing {
        let with_nul = &record.with_nul[..];
        if with_nul.len() > SHORT {
            return Outgoing::Long(record.clone());
        }
        let mut bytes = [0; SHORT];
        bytes[..with_nul.len()].copy_from_slice(with_nul);
        Outgoing::Short {
            len: with_nul.len() as u8,
            bytes,
        }
    }

    pub(super) fn text(&self) -> RecordText<'_> {
        match self {
            Outgoing::Short { len, bytes } => {
                RecordText::new(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Outgoing::Long(record) => record.text(),
        }
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl Store {
    /// Updates the meta record of `name` for the change `put` made by `source`; returns what
    /// to store: `None` nothing, `Some(None)` delete the record, `Some(Some(record))`. The
    /// record kept in memory never holds the expiry of a timed state: that is added from the
    /// state each time the record is stored (`timed::record_to_store`), so any later change
    /// drops it; and it is stored even with `record_changes = no`.
    pub(super) fn note_change(
        &self,
        writing: &mut Writing,
        name: &[u8],
        put: &Put,
        source: &Source,
    ) -> Option<Option<Outgoing>> {
        let Some(presence) = put.new.as_deref() else {
            writing.meta.remove(name);
            return Some(None);
        };
        let recording = self.record_changes.load(Relaxed);
        if !recording && !put.changes_timing() {
            return None;
        }
        if !recording {
            return Some(
                record_to_store(writing.meta.get(name), Some(presence)).map(Outgoing::Long),
            );
        }
        let Writing {
            meta,
            scratch,
            fields,
            ..
        } = writing;
        let record = match meta.get_mut(name) {
            Some(record) => record,
            None => {
                let key = put.inserted.clone().unwrap_or_else(|| Name::from(name));
                meta.entry(key).or_insert(Record {
                    with_nul: Vec::new(),
                    only_change: true,
                })
            }
        };
        if record.only_change {
            // Written anew in place: the buffer is the last record's, as long as it.
            record.with_nul.clear();
            fields.record_into(unix_now(), source, presence.stored(), &mut record.with_nul);
        } else {
            scratch.clear();
            meta::rewrite_for_change_into(
                record.to_bytes(),
                unix_now(),
                source,
                presence.stored(),
                scratch,
            );
            record.only_change = meta::only_change_fields(scratch);
            std::mem::swap(scratch, &mut record.with_nul);
        }
        record.with_nul.push(0);
        if presence.timing().is_none() {
            return Some(Some(Outgoing::copy_of(record)));
        }
        Some(record_to_store(Some(record), Some(presence)).map(Outgoing::Long))
    }

    /// Replaces every `CustomPresenceMeta` record with the stored `(name, record)` entries.
    /// Returns the records that do not parse: they are not used (their state shows no
    /// history) and stay in AstDB until that state changes.
    pub fn replace_meta(&self, records: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, MetaError)> {
        let mut broken = Vec::new();
        let mut per_stripe: Vec<Vec<(Name, Record)>> = vec![Vec::new(); STRIPES];
        for &(name, record) in records {
            match (Meta::parse(record), CString::new(record)) {
                (Ok(_), Ok(record)) => {
                    per_stripe[stripe_of(fnv1a(name))].push((Name::from(name), record.into()))
                }
                (Err(error), _) => broken.push((name.to_vec(), error)),
                // AstDB values are C strings: they hold no NUL.
                (Ok(_), Err(_)) => {}
            }
        }
        for (stripe, records) in self.stripes.iter().zip(per_stripe) {
            let mut writing = lock_ignoring_poison(&stripe.writing);
            writing.meta = records.into_iter().collect();
        }
        broken
    }

    /// When `name`'s current state was set and by what, if its record describes it.
    pub fn change_of(&self, name: &[u8]) -> Option<(u64, Source<'static>)> {
        let presence = self.get(name)?;
        let stripe = &self.stripes[stripe_of(fnv1a(name))];
        let record = lock_ignoring_poison(&stripe.writing)
            .meta
            .get(name)?
            .clone();
        Meta::parse(record.to_bytes())
            .ok()?
            .change_of(presence.stored())
    }

    /// After a reload: records [`Source::Reload`] for each of `names` whose state in memory
    /// has no record describing it (its AstDB entry was edited by hand, or by a server that
    /// keeps no record).
    pub fn record_reloaded(&self, host: &dyn Host, names: &[Name]) {
        for name in names {
            let Some(presence) = self.get(name) else {
                continue;
            };
            if self.change_of(name).is_some() {
                continue;
            }
            let stripe = &self.stripes[stripe_of(fnv1a(name))];
            let record = {
                let mut writing = lock_ignoring_poison(&stripe.writing);
                let put = Put {
                    timed_name: None,
                    inserted: None,
                    new: Some(presence),
                    replaced: None,
                };
                self.note_change(&mut writing, name, &put, &Source::Reload)
            };
            if let (Some(Some(record)), Ok(name_c)) = (record, CString::new(&name[..])) {
                if !host.persist_meta(&name_c, Some(record.text())) {
                    self.stats.count_astdb_failure();
                }
            }
        }
    }

    /// presencestate.conf `record_changes`.
    pub fn set_record_changes(&self, on: bool) {
        self.record_changes.store(on, Relaxed);
    }
}
