//! Counters of SIP PUBLISH since load, for `presencestate stats` (relaxed atomics, as
//! `core::stats`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a PUBLISH was refused, as counted (and which status answered it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Forbidden,
    UnknownEtag,
    TooBrief,
    BadRequest,
    BadBody,
    TooLarge,
    UnsupportedType,
    NoState,
    StoreRefused,
}

impl Refused {
    pub const ALL: [Refused; 9] = [
        Refused::Forbidden,
        Refused::UnknownEtag,
        Refused::TooBrief,
        Refused::BadRequest,
        Refused::BadBody,
        Refused::TooLarge,
        Refused::UnsupportedType,
        Refused::NoState,
        Refused::StoreRefused,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refused::Forbidden => "another endpoint's name (403)",
            Refused::UnknownEtag => "unknown entity tag (412)",
            Refused::TooBrief => "Expires below min_expires (423)",
            Refused::BadRequest => "malformed request (400, 416)",
            Refused::BadBody => "malformed body (400)",
            Refused::TooLarge => "body over max_body (413)",
            Refused::UnsupportedType => "unsupported Content-Type (415)",
            Refused::NoState => "body maps to no state (488)",
            Refused::StoreRefused => "store refused the state (500)",
        }
    }
}

/// What one PUBLISH came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Initial,
    Refreshed,
    Modified,
    Removed,
    Refused(Refused),
}

#[derive(Default)]
pub struct PublishStats {
    initial: AtomicU64,
    refreshed: AtomicU64,
    modified: AtomicU64,
    removed: AtomicU64,
    expired: AtomicU64,
    refused: [AtomicU64; Refused::ALL.len()],
}

/// A copy of the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishCounts {
    pub initial: u64,
    pub refreshed: u64,
    pub modified: u64,
    pub removed: u64,
    pub expired: u64,
    pub refused: Vec<(Refused, u64)>,
}

impl PublishCounts {
    pub fn accepted(&self) -> u64 {
        self.initial + self.refreshed + self.modified + self.removed
    }

    pub fn refused_total(&self) -> u64 {
        self.refused.iter().map(|&(_, n)| n).sum()
    }
}

impl PublishStats {
    pub fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Initial => &self.initial,
            Outcome::Refreshed => &self.refreshed,
            Outcome::Modified => &self.modified,
            Outcome::Removed => &self.removed,
            Outcome::Refused(reason) => {
                let index = Refused::ALL
                    .iter()
                    .position(|&r| r == reason)
                    .expect("every reason is in ALL");
                &self.refused[index]
            }
        };
        counter.fetch_add(1, Relaxed);
    }

    pub fn count_expired(&self, n: usize) {
        if n > 0 {
            self.expired.fetch_add(n as u64, Relaxed);
        }
    }

    pub fn counts(&self) -> PublishCounts {
        PublishCounts {
            initial: self.initial.load(Relaxed),
            refreshed: self.refreshed.load(Relaxed),
            modified: self.modified.load(Relaxed),
            removed: self.removed.load(Relaxed),
            expired: self.expired.load(Relaxed),
            refused: Refused::ALL
                .iter()
                .zip(&self.refused)
                .map(|(&reason, n)| (reason, n.load(Relaxed)))
                .collect(),
        }
    }

    pub fn reset(&self) {
        for counter in [
            &self.initial,
            &self.refreshed,
            &self.modified,
            &self.removed,
            &self.expired,
        ]
        .into_iter()
        .chain(&self.refused)
        {
            counter.store(0, Relaxed);
        }
    }
}

/// The SIP PUBLISH lines of `presencestate stats`.
pub fn render(counts: &PublishCounts) -> String {
    let mut out = String::from("  SIP PUBLISH ([sip_publish])\n");
    for (label, n) in [
        ("Publications accepted", counts.accepted()),
        ("  initial", counts.initial),
        ("  refreshed", counts.refreshed),
        ("  modified", counts.modified),
        ("  removed", counts.removed),
        ("Publications expired", counts.expired),
        ("PUBLISH refused", counts.refused_total()),
    ] {
        out += &format!("    {label:<34} {n:>12}\n");
    }
    for (reason, n) in &counts.refused {
        out += &format!("      {:<32} {:>12}\n", reason.label(), n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_and_rendered() {
        let stats = PublishStats::default();
        stats.count(Outcome::Initial);
        stats.count(Outcome::Refused(Refused::Forbidden));
        stats.count(Outcome::Refused(Refused::UnknownEtag));
        stats.count_expired(2);
        let text = render(&stats.counts());
        let line = |label: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(label))
                .and_then(|l| l.split_whitespace().last())
        };
        assert_eq!(line("Publications accepted"), Some("1"), "{text}");
        assert_eq!(line("another endpoint's name (403)"), Some("1"));
        assert_eq!(line("Publications expired"), Some("2"));
        assert_eq!(line("PUBLISH refused"), Some("2"));
        stats.reset();
        assert_eq!(stats.counts().refused_total(), 0);
    }
}
