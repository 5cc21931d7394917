//! The few statistics the reports need: Wilson intervals for rates, the Katz log interval for a
//! ratio of two rates (a lift), and a median.

use serde::Serialize;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// A proportion with its sample size and 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Successes.
    pub successes: u64,
    /// Trials (the sample size).
    pub trials: u64,
    /// successes / trials; `None` without trials.
    pub value: Option<f64>,
    /// The Wilson score interval; `None` without trials.
    pub interval: Option<Interval>,
}

impl Rate {
    /// `successes` of `trials`.
    pub fn new(successes: u64, trials: u64) -> Rate {
        Rate {
            successes,
            trials,
            value: (trials > 0).then(|| successes as f64 / trials as f64),
            interval: wilson(successes, trials),
        }
    }
}

/// The 95% Wilson score interval of `successes` in `trials`: good for small samples and for rates
/// near 0 or 1, where the normal approximation is not.
pub fn wilson(successes: u64, trials: u64) -> Option<Interval> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The 95% interval of the ratio of two rates (a/n1) / (c/n2) by the Katz log method;
/// `None` when either rate is 0 or has no trials (the ratio has no finite interval).
pub fn ratio_interval(a: u64, n1: u64, c: u64, n2: u64) -> Option<Interval> {
    if a == 0 || c == 0 || n1 == 0 || n2 == 0 {
        return None;
    }
    let (a, n1, c, n2) = (a as f64, n1 as f64, c as f64, n2 as f64);
    let ratio = (a / n1) / (c / n2);
    let se = (1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2).max(0.0).sqrt();
    Some(Interval {
        low: ratio * (-Z95 * se).exp(),
        high: ratio * (Z95 * se).exp(),
    })
}

/// The median of `values` (the mean of the middle two for an even count); sorts in place.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_hand_computation() {
        // 2 of 4, z = 1.96: centre = (0.5 + 3.8415/8) / (1 + 3.8415/4) = 0.98019/1.96037 = 0.5;
        // half = 1.96/1.96037 * sqrt(0.25/4 + 3.8415/64) = 0.99981 * sqrt(0.0625 + 0.060023)
        //      = 0.99981 * 0.350033 = 0.349967 → [0.150033, 0.849967].
        let i = wilson(2, 4).expect("interval");
        assert!((i.low - 0.150_033).abs() < 1e-5, "{i:?}");
        assert!((i.high - 0.849_967).abs() < 1e-5, "{i:?}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn ratio_interval_matches_hand_computation() {
        // (2/4) / (1/4) = 2; se = sqrt(1/2 - 1/4 + 1/1 - 1/4) = 1; 2·e^±1.96 = [0.28173, 14.1982].
        let i = ratio_interval(2, 4, 1, 4).expect("interval");
        assert!((i.low - 0.281_73).abs() < 1e-4, "{i:?}");
        assert!((i.high - 14.198_2).abs() < 1e-3, "{i:?}");
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
