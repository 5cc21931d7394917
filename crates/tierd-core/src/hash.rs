//! The one non-cryptographic hash tierd uses where a value must be the same on every machine and
//! in every version (stored facts hashes, pilot sampling, generated data): 64-bit FNV-1a, with a
//! finaliser for uses that need well-mixed high bits.

/// 64-bit FNV-1a of `bytes` (the `fnv` crate's, as the rest of the workspace uses).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

/// A number in `0..1` from `bytes`, uniform enough for sampling: FNV-1a's high bits barely move
/// for inputs differing in their last bytes, so they are mixed (splitmix64's finaliser) first.
pub fn unit_interval(bytes: &[u8]) -> f64 {
    let mut x = fnv1a(bytes);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn unit_interval_stays_in_range() {
        for i in 0..1000 {
            let u = unit_interval(format!("hubspot:{i}").as_bytes());
            assert!((0.0..1.0).contains(&u));
        }
    }
}
