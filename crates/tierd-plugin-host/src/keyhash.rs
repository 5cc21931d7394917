//! A fast hasher for account keys (domains, ids), for the maps an enrich pass fills per account:
//! the per-pass deduplication and the in-memory cache. std's SipHash was a visible share of the
//! per-account cost for keys of ~20 bytes; this folds 8 bytes per multiply. It is seeded per map
//! from std's random keys, so which keys collide is not predictable from outside.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Builds [`KeyHasher`]s with one random seed.
#[derive(Clone, Debug)]
pub(crate) struct KeyHashState {
    seed: u64,
}

impl Default for KeyHashState {
    fn default() -> Self {
        KeyHashState {
            seed: RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for KeyHashState {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.seed)
    }
}

/// A multiply-fold hasher; see the module doc.
pub(crate) struct KeyHasher(u64);

/// The 64x64 -> 128-bit product, high and low halves folded: every input bit reaches every
/// output bit, which the hash table's index (low bits) and tag (high bits) both need.
fn fold(x: u64) -> u64 {
    let product = u128::from(x) * 0x9e37_79b9_7f4a_7c15_u128;
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            hash = fold(hash ^ u64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            hash = fold(hash ^ u64::from_le_bytes(last));
        }
        self.0 = fold(hash ^ bytes.len() as u64);
    }

    fn write_u8(&mut self, byte: u8) {
        self.0 = fold(self.0 ^ u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_near_keys_apart() {
        let state = KeyHashState::default();
        assert_eq!(state.hash_one("acme.com"), state.hash_one("acme.com"));
        let hashes: std::collections::HashSet<u64> = (0..10_000)
            .map(|i| state.hash_one(format!("company-{i}.example")))
            .collect();
        assert_eq!(hashes.len(), 10_000);
        // Lengths that differ only by trailing zero bytes still differ.
        assert_ne!(state.hash_one(&b"ab"[..]), state.hash_one(&b"ab\0"[..]));
    }
}
