//! A small, frozen pseudo-random number generator and the float maths built on it.
//!
//! The generator's output must stay byte-identical for a given seed forever, on every
//! platform, so nothing here may come from a crate whose algorithm can change or from
//! the platform's maths library (whose `ln`/`exp` may differ in the last bit between
//! systems). Everything below uses integer operations and IEEE-754 `+ - * /` and `sqrt`
//! only, which are exactly rounded everywhere (Rust never fuses them into FMA on its own).
//!
//! Changing any constant or the order of draws in this crate changes the generated data:
//! the golden test in `tests/gen.rs` pins it.

/// SplitMix64 step: advances `state` and returns a well-mixed 64-bit value.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** (Blackman & Vigna), seeded with SplitMix64.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator for one aspect (`stream`) of account number `n` under `seed`.
    ///
    /// Depends on nothing else, so account `n` is the same however many accounts are
    /// generated, in whatever order; separate streams keep one aspect's draws from
    /// shifting another's if the model ever grows.
    pub(crate) fn for_account(seed: u64, n: u64, stream: u64) -> Self {
        let mut st = seed;
        let mut key = splitmix64(&mut st);
        key ^= n.wrapping_mul(0xD1B5_4A32_D192_ED03);
        key = splitmix64(&mut key);
        key ^= stream.wrapping_mul(0xABC9_8388_FB8F_AC03);
        let mut st = key;
        let s = [
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
        ];
        Rng { s }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, 53 bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), by multiply-high (bias below 2^-40 for our `n`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in `lo..=hi`.
    pub(crate) fn range_i32(&mut self, lo: i32, hi: i32) -> i32 {
        lo + self.below((hi - lo + 1) as u64) as i32
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One item of `items`, each with probability proportional to its weight.
    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|&(_, w)| w).sum();
        let mut r = self.below(u64::from(total)) as u32;
        for &(item, w) in items {
            if r < w {
                return item;
            }
            r -= w;
        }
        items[items.len() - 1].0
    }

    /// One item of `items`, uniformly.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// Standard normal, by Marsaglia's polar method.
    pub(crate) fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * ln(s) / s).sqrt();
            }
        }
    }

    /// Log-normal with the given median and shape `sigma`.
    pub(crate) fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * exp(sigma * self.normal())
    }
}

const LN_2: f64 = std::f64::consts::LN_2;

/// Natural logarithm of a positive, normal `x`, with basic arithmetic only (error ~1e-16).
pub(crate) fn ln(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_normal());
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    // Mantissa in [1, 2), then moved to [sqrt(1/2), sqrt(2)).
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m-1)/(m+1), |s| < 0.172.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 0.0;
    for c in LN_COEFFS.iter().rev() {
        p = p * s2 + c;
    }
    e as f64 * LN_2 + 2.0 * s * p
}

/// 1/1, 1/3, 1/5, ... (enough terms for |s| < 0.172).
const LN_COEFFS: [f64; 12] = {
    let mut c = [0.0; 12];
    let mut j = 0;
    while j < 12 {
        c[j] = 1.0 / (2 * j + 1) as f64;
        j += 1;
    }
    c
};

/// 1/0!, 1/1!, 1/2!, ... (enough terms for |r| < 0.35).
const EXP_COEFFS: [f64; 16] = {
    let mut c = [1.0; 16];
    let mut i = 1;
    while i < 16 {
        c[i] = c[i - 1] / i as f64;
        i += 1;
    }
    c
};

/// `e^x` for `x` in about `-700..700`, with basic arithmetic only (error ~1e-16 relative).
pub(crate) fn exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let k = (x / LN_2).round();
    // Cody-Waite: k * LN2_HI is exact (LN2_HI has 21 trailing zero bits, |k| < 2^11).
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let r = (x - k * LN2_HI) - k * LN2_LO; // |r| <= ~0.35
    let mut sum = 0.0;
    for c in EXP_COEFFS.iter().rev() {
        sum = sum * r + c;
    }
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maths_match_the_platform_closely() {
        for &x in &[
            1e-300, 1e-9, 0.01, 0.5, 0.7, 1.0, 1.5, 2.0, 10.0, 180_000.0, 1e300,
        ] {
            let (ours, std) = (ln(x), x.ln());
            assert!(
                (ours - std).abs() <= 1e-14 * std.abs().max(1.0),
                "ln({x}): {ours} vs {std}"
            );
        }
        for &x in &[-600.0, -20.0, -1.0, -0.3, 0.0, 0.3, 1.0, 4.1, 12.4, 600.0] {
            let (ours, std) = (exp(x), x.exp());
            assert!((ours - std).abs() <= 1e-14 * std, "exp({x}): {ours} vs {std}");
        }
    }

    #[test]
    fn streams_are_frozen() {
        // Reference values: if these change, every generated data set changes.
        let mut r = Rng::for_account(42, 1, 0);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, FROZEN);
    }

    const FROZEN: [u64; 3] = [
        4_196_231_180_709_625_518,
        18_228_470_893_643_227_543,
        4_166_966_602_118_724_816,
    ];

    #[test]
    fn normal_has_unit_variance() {
        let mut r = Rng::for_account(7, 7, 7);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
    }
}
