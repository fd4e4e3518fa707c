//! Counters since load, for `presencestate stats`. Relaxed atomics: counting takes no lock and
//! costs a writer or reader one atomic add.

use super::state::PresenceState;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a write or delete was refused, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotCustomPresence,
    EmptyName,
    CommaInName,
    UnknownState,
    BadBase64,
    BadValue,
    UnknownName,
    AstdbFailure,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Refusal::NotCustomPresence,
        Refusal::EmptyName,
        Refusal::CommaInName,
        Refusal::UnknownState,
        Refusal::BadBase64,
        Refusal::BadValue,
        Refusal::UnknownName,
        Refusal::AstdbFailure,
    ];

    /// How `presencestate stats` names it.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotCustomPresence => "not a CustomPresence presentity",
            Refusal::EmptyName => "empty name",
            Refusal::CommaInName => "comma in the name",
            Refusal::UnknownState => "unknown or missing state",
            Refusal::BadBase64 => "invalid base64 (option e)",
            Refusal::BadValue => "malformed value or options",
            Refusal::UnknownName => "delete of a name never set",
            Refusal::AstdbFailure => "AstDB refused the change",
        }
    }
}

/// What the module did since it was loaded.
#[derive(Default)]
pub struct Stats {
    writes: AtomicU64,
    deletes: AtomicU64,
    reads: AtomicU64,
    provider_queries: AtomicU64,
    astdb_failures: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub writes: u64,
    pub deletes: u64,
    pub reads: u64,
    pub provider_queries: u64,
    pub astdb_failures: u64,
    pub refused: [(Refusal, u64); Refusal::ALL.len()],
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            writes: 0,
            deletes: 0,
            reads: 0,
            provider_queries: 0,
            astdb_failures: 0,
            refused: Refusal::ALL.map(|r| (r, 0)),
        }
    }
}

impl Stats {
    pub fn count_write(&self) {
        self.writes.fetch_add(1, Relaxed);
    }

    pub fn count_delete(&self) {
        self.deletes.fetch_add(1, Relaxed);
    }

    /// A `PRESENCE_STATE()` read (any provider).
    pub fn count_read(&self) {
        self.reads.fetch_add(1, Relaxed);
    }

    /// A call of the `CustomPresence` provider by Asterisk's presence core.
    pub fn count_provider_query(&self) {
        self.provider_queries.fetch_add(1, Relaxed);
    }

    /// An AstDB put or delete that failed (refused writes, and also failed bookkeeping such
    /// as a `CustomPresenceMeta` record that could not be stored).
    pub fn count_astdb_failure(&self) {
        self.astdb_failures.fetch_add(1, Relaxed);
    }

    /// A refused write or delete (the store's, or an AMI action's own checks).
    pub fn count(&self, refusal: Refusal) {
        let index = Refusal::ALL
            .iter()
            .position(|&r| r == refusal)
            .expect("ALL lists every refusal");
        self.refused[index].fetch_add(1, Relaxed);
    }

    pub fn counts(&self) -> Counts {
        Counts {
            writes: self.writes.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            reads: self.reads.load(Relaxed),
            provider_queries: self.provider_queries.load(Relaxed),
            astdb_failures: self.astdb_failures.load(Relaxed),
            refused: std::array::from_fn(|i| (Refusal::ALL[i], self.refused[i].load(Relaxed))),
        }
    }

    /// Back to zero (at load).
    pub fn reset(&self) {
        let all = [
            &self.writes,
            &self.deletes,
            &self.reads,
            &self.provider_queries,
            &self.astdb_failures,
        ];
        for counter in all.into_iter().chain(self.refused.iter()) {
            counter.store(0, Relaxed);
        }
    }
}

/// `presencestate stats`: the counters, and the states held now per value.
pub fn render(counts: &Counts, states: &[PresenceState]) -> String {
    let mut out = String::from("Custom presence statistics since the module was loaded\n\n");
    out += &format!("  {:<36} {:>12}\n", "States held", states.len());
    for value in PresenceState::ALL {
        let n = states.iter().filter(|&&s| s == value).count();
        out += &format!("    {:<34} {:>12}\n", value.name(), n);
    }
    let refused: u64 = counts.refused.iter().map(|(_, n)| n).sum();
    for (label, n) in [
        ("Writes", counts.writes),
        ("Deletes", counts.deletes),
        ("Reads (PRESENCE_STATE)", counts.reads),
        ("Provider queries (presence core)", counts.provider_queries),
        ("Refused writes and deletes", refused),
    ] {
        out += &format!("  {label:<36} {n:>12}\n");
    }
    for (refusal, n) in counts.refused {
        out += &format!("    {:<34} {:>12}\n", refusal.label(), n);
    }
    out += &format!("  {:<36} {:>12}\n", "AstDB failures", counts.astdb_failures);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_renders_every_line() {
        let stats = Stats::default();
        stats.count_write();
        stats.count_write();
        stats.count_read();
        stats.count_provider_query();
        stats.count_delete();
        stats.count_astdb_failure();
        stats.count(Refusal::EmptyName);
        stats.count(Refusal::UnknownState);
        stats.count(Refusal::UnknownState);
        stats.count(Refusal::UnknownName);
        let counts = stats.counts();
        assert_eq!((counts.writes, counts.reads, counts.deletes), (2, 1, 1));
        let text = render(
            &counts,
            &[PresenceState::Away, PresenceState::Away, PresenceState::Dnd],
        );
        for line in [
            "  States held                                     3\n",
            "    away                                          2\n",
            "    dnd                                           1\n",
            "    xa                                            0\n",
            "  Writes                                          2\n",
            "  Refused writes and deletes                      4\n",
            "    unknown or missing state                      2\n",
            "    delete of a name never set                    1\n",
            "  AstDB failures                                  1\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        stats.reset();
        assert_eq!(stats.counts(), Counts::default());
    }
}
