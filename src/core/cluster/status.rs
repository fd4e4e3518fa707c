//! The text of `presencestate cluster`.

use super::replica::{ResyncReport, Stats};
use super::resync::Member;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// What `presencestate cluster` shows of a running cluster.
pub struct Status<'a> {
    pub group: &'a str,
    pub node: u32,
    pub connected: bool,
    pub members: &'a [Member],
    pub stats: &'a Stats,
    pub last_resync: Option<&'a ResyncReport>,
    pub now_unix_ms: u64,
    /// Deleted names whose tombstone is kept, and for how long.
    pub tombstones: usize,
    pub tombstone_ttl: std::time::Duration,
}

pub fn disabled() -> String {
    "Presence cluster: disabled ([cluster] enabled = no in presencestate.conf)\n".into()
}

pub fn render(status: &Status<'_>) -> String {
    let mut out = String::new();
    let n = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let s = status.stats;
    let _ = writeln!(out, "Presence cluster: enabled");
    let _ = writeln!(out, "Group: {}", status.group);
    let _ = writeln!(
        out,
        "Connection: {}",
        if status.connected {
            "joined"
        } else {
            "not connected to corosync (working alone, retrying)"
        }
    );
    let _ = writeln!(out, "Node id: {}", status.node);
    let members: Vec<String> = status
        .members
        .iter()
        .map(|m| format!("node {} (pid {})", m.node, m.pid))
        .collect();
    let _ = writeln!(
        out,
        "Members: {}{}{}",
        status.members.len(),
        if members.is_empty() { "" } else { ": " },
        members.join(", ")
    );
    let _ = writeln!(
        out,
        "Messages: sent {}, received {}, dropped {}",
        n(&s.messages_sent),
        n(&s.messages_received),
        n(&s.messages_dropped)
    );
    let _ = writeln!(
        out,
        "States: sent {}, applied {}, conflicts resolved {}",
        n(&s.entries_sent),
        n(&s.entries_applied),
        n(&s.conflicts)
    );
    let _ = writeln!(
        out,
        "Tombstones: {} (deletes kept {} s)",
        status.tombstones,
        status.tombstone_ttl.as_secs()
    );
    match status.last_resync {
        None => {
            let _ = writeln!(out, "Last resynchronisation: none yet");
        }
        Some(r) => {
            let ago = status.now_unix_ms.saturating_sub(r.finished_unix_ms) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "Last resynchronisation: {ago:.1} s ago, {} members, {} names applied, {} sent, took {} ms",
                r.members,
                r.names_applied,
                r.names_sent,
                r.took.as_millis()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shows_every_field() {
        let stats = Stats::default();
        stats.messages_sent.store(5, Ordering::Relaxed);
        let report = ResyncReport {
            finished_unix_ms: 1_000,
            members: 3,
            names_applied: 10,
            names_sent: 2,
            took: Duration::from_millis(40),
        };
        let members = [Member { node: 1, pid: 7 }, Member { node: 2, pid: 8 }];
        let text = render(&Status {
            group: "g",
            node: 1,
            connected: true,
            members: &members,
            stats: &stats,
            last_resync: Some(&report),
            now_unix_ms: 3_500,
            tombstones: 4,
            tombstone_ttl: Duration::from_secs(60),
        });
        for line in [
            "Group: g\n",
            "Node id: 1\n",
            "Members: 2: node 1 (pid 7), node 2 (pid 8)\n",
            "Messages: sent 5, received 0, dropped 0\n",
            "Tombstones: 4 (deletes kept 60 s)\n",
            "Last resynchronisation: 2.5 s ago, 3 members, 10 names applied, 2 sent, took 40 ms\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
    }
}
