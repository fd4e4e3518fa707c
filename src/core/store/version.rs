//! The version of a write: the cluster's hybrid logical clock stamps every local change with
//! one (see `cluster::version` for the clock). Here, below both, because the store hands it
//! from [`super::Host::stamp`] to [`super::Host::committed`]: a timed state's deadline counts
//! from its wall-clock milliseconds on the writing server as on every other.

/// The version of one write. Field order is comparison order: wall clock, then counter, then
/// node id. [`Version::UNKNOWN`] (a state stored before the cluster knew it) loses to any write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub wall_ms: u64,
    pub counter: u32,
    pub node: u32,
}

impl Version {
    pub const UNKNOWN: Version = Version {
        wall_ms: 0,
        counter: 0,
        node: 0,
    };
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.wall_ms, self.counter, self.node)
    }
}

impl std::str::FromStr for Version {
    type Err = ();
    /// Parses what `Display` wrote: `wall_ms.counter.node`.
    fn from_str(text: &str) -> Result<Version, ()> {
        let mut parts = text.split('.');
        let mut next = || parts.next().ok_or(());
        let version = Version {
            wall_ms: next()?.parse().map_err(|_| ())?,
            counter: next()?.parse().map_err(|_| ())?,
            node: next()?.parse().map_err(|_| ())?,
        };
        if parts.next().is_some() {
            return Err(());
        }
        Ok(version)
    }
}
