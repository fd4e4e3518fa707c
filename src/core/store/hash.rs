//! The store's hashing: the seeded hasher of its maps, and the fixed FNV-1a that picks a
//! name's stripe.

use std::hash::{BuildHasher, Hasher};

/// The map's hasher: FNV-1a from a per-process random seed, with a final mix. Names are short,
/// so a lookup costs a fraction of std's SipHash (a write makes two or three); they are chosen
/// by the PBX's own dialplan, AMI and CLI users, and the seed keeps colliding names from being
/// worked out in advance.
#[derive(Clone)]
pub(super) struct SeededFnv(u64);

impl Default for SeededFnv {
    fn default() -> SeededFnv {
        SeededFnv(std::collections::hash_map::RandomState::new().hash_one(0_u8))
    }
}

impl BuildHasher for SeededFnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(self.0)
    }
}

pub(super) struct FnvHasher(u64);

impl Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a_from(self.0, bytes);
    }
    /// A name's length, which `Hash` for a slice writes before its bytes: one step, not eight.
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x0100_0000_01b3);
    }
    fn finish(&self) -> u64 {
        // murmur3's fmix64: FNV-1a's low bits depend only on the inputs' low bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

fn fnv1a_from(start: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(start, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// FNV-1a: a cheap, fixed hash of a name, for its stripe and to spot overlapping writes.
pub(super) fn fnv1a(name: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, name)
}
