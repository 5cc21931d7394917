//! Pyramid calibration: the thresholds that give a population the shape asked for (`--pyramid
//! 5,15,30`: percent in Tier 1, 2 and 3), and what tiering with them would change.
//!
//! Thresholds are score quantiles of the population, in thousandths of a point (scores are kept
//! and tiered at that precision, `tierd_core::points`). Tier *i*'s threshold aims at the top
//! `round(n × cumulative percent / 100)` accounts (half up). **Ties**: accounts with the same
//! score always share a tier, so at a boundary the tied group is either all in or all out: in
//! when that leaves the count as close to the target as out or closer, else out (the threshold
//! then sits one thousandth above their score). The resulting counts are reported, never assumed.
//!
//! The counts and movements come from `TierPolicy::assign` itself (the live policy, then the
//! same policy with the new thresholds: same caps, engagement lift and locks), so what is shown is
//! what a full run would do. Owns no I/O and knows nothing of the store: the caller scores the
//! population with the one scorer and passes the candidates.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use tierd_core::diff::Movements;
use tierd_core::tier::{pyramid, RunKind, TierCandidate};
use tierd_core::{Date, MilliPoints, Tier, TierPolicy};

/// The shape asked for: percent of the population in Tier 1, 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PyramidShape(pub [f64; 3]);

/// Why a shape cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(String);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

impl FromStr for PyramidShape {
    type Err = ShapeError;

    /// `5,15,30`: three percentages, each within 0..=100, summing to at most 100.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let wrong = || {
            ShapeError(format!(
                "'{s}' is not a pyramid: give the percent in Tier 1, 2 and 3, e.g. 5,15,30"
            ))
        };
        if parts.len() != 3 {
            return Err(wrong());
        }
        let mut out = [0.0; 3];
        for (slot, p) in out.iter_mut().zip(&parts) {
            *slot = p.parse::<f64>().map_err(|_| wrong())?;
            if !(0.0..=100.0).contains(slot) {
                return Err(ShapeError(format!(
                    "'{p}' in '{s}': each percentage must be within 0..=100"
                )));
            }
        }
        if out.iter().sum::<f64>() > 100.0 {
            return Err(ShapeError(format!(
                "'{s}' asks for more than 100% of the accounts in Tiers 1 to 3"
            )));
        }
        Ok(PyramidShape(out))
    }
}

/// Accounts per tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct TierCounts {
    /// Tier 1.
    pub tier_1: u64,
    /// Tier 2.
    pub tier_2: u64,
    /// Tier 3.
    pub tier_3: u64,
    /// Below Tier 3.
    pub untiered: u64,
}

impl TierCounts {
    fn of<'a>(tiers: impl IntoIterator<Item = &'a Tier>) -> TierCounts {
        let [tier_1, tier_2, tier_3, untiered] = pyramid(tiers).map(|n| n as u64);
        TierCounts {
            tier_1,
            tier_2,
            tier_3,
            untiered,
        }
    }

    /// The counts best first.
    pub fn as_array(&self) -> [u64; 4] {
        [self.tier_1, self.tier_2, self.tier_3, self.untiered]
    }
}

/// Accounts moving from the live tiering to the calibrated one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierMoves {
    /// `matrix[from][to]`, tiers best first (tier_1, tier_2, tier_3, untiered): from the live
    /// thresholds' tier to the new thresholds' tier.
    pub matrix: [[u64; 4]; 4],
    /// Accounts moving to a better tier.
    pub up: u64,
    /// Accounts moving to a worse tier.
    pub down: u64,
    /// Accounts keeping their tier.
    pub unchanged: u64,
}

/// `tierd calibrate --pyramid`: the thresholds for a shape and what they change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PyramidCalibration {
    /// Percent asked for in Tier 1, 2 and 3.
    pub target_percent: [f64; 3],
    /// Accounts asked for in Tier 1, 2 and 3 (of `accounts`, rounded half up, cumulatively).
    pub target_counts: [u64; 3],
    /// The population's size.
    pub accounts: u64,
    /// The new minimum scores for Tier 1, 2 and 3 (`[tiering] tier_1`, `tier_2`, `tier_3`).
    pub thresholds: [f64; 3],
    /// The configured ones.
    pub live_thresholds: [f64; 3],
    /// Accounts per tier by the new thresholds alone (the shape asked for, up to ties).
    pub by_thresholds: TierCounts,
    /// Accounts per tier as the live policy tiers them today (thresholds, caps, lift, locks).
    pub live: TierCounts,
    /// Accounts per tier with the new thresholds and everything else as configured.
    pub calibrated: TierCounts,
    /// From `live` to `calibrated`, account by account.
    pub moves: TierMoves,
}

/// Round half up of `n × percent / 100`.
fn share_of(n: usize, percent: f64) -> usize {
    ((n as f64) * percent / 100.0 + 0.5).floor() as usize
}

/// The threshold (thousandths) that puts as close to `k` of `desc` (scores in thousandths, best
/// first) at or above it as ties allow.
fn cut(desc: &[u32], k: usize) -> u32 {
    let Some(&top) = desc.first() else {
        return MilliPoints::MAX.get();
    };
    if k == 0 {
        return (top + 1).min(MilliPoints::MAX.get());
    }
    let k = k.min(desc.len());
    let s = desc[k - 1];
    let with_ties = desc.partition_point(|&x| x >= s);
    let without = desc.partition_point(|&x| x > s);
    if with_ties - k <= k - without {
        s
    } else {
        s + 1
    }
}

/// The thresholds (thousandths) giving `shape` on a population with these scores: see the module
/// doc for the rounding and the ties.
pub fn pyramid_thresholds(scores: &[f32], shape: PyramidShape) -> [u32; 3] {
    let mut desc: Vec<u32> = scores.iter().map(|s| MilliPoints::of(*s).get()).collect();
    desc.sort_unstable_by(|a, b| b.cmp(a));
    let [p1, p2, p3] = shape.0;
    let cumulative = [p1, p1 + p2, p1 + p2 + p3];
    let mut out = cumulative.map(|p| cut(&desc, share_of(desc.len(), p)));
    // Never increasing from Tier 1 to Tier 3 (cannot happen by the ties rule; kept true anyway).
    out[1] = out[1].min(out[0]);
    out[2] = out[2].min(out[1]);
    out
}

fn points(milli: u32) -> f64 {
    f64::from(milli) / 1000.0
}

/// Calibrates `policy`'s thresholds to `shape` over `population` (scored as of `as_of`), and
/// tiers the population with both for the counts and movements.
pub fn calibrate_pyramid(
    population: &[TierCandidate],
    policy: &TierPolicy,
    shape: PyramidShape,
    as_of: Date,
) -> PyramidCalibration {
    let scores: Vec<f32> = population.iter().map(|c| c.score).collect();
    let milli = pyramid_thresholds(&scores, shape);
    let mut calibrated_policy = policy.clone();
    calibrated_policy.thresholds = milli.map(|m| MilliPoints::from_milli(m).points());
    let by_thresholds: Vec<Tier> = scores.iter().map(|s| calibrated_policy.tier_for(*s)).collect();
    let live = policy.assign(population, RunKind::Full, as_of);
    let calibrated = calibrated_policy.assign(population, RunKind::Full, as_of);
    let mut movements = Movements::default();
    for (l, c) in live.iter().zip(&calibrated) {
        movements.record(Some(l.tier), c.tier);
    }
    let n = population.len();
    let [p1, p2, p3] = shape.0;
    let cumulative = [p1, p1 + p2, p1 + p2 + p3].map(|p| share_of(n, p));
    PyramidCalibration {
        target_percent: shape.0,
        target_counts: [
            cumulative[0] as u64,
            (cumulative[1] - cumulative[0]) as u64,
            (cumulative[2] - cumulative[1]) as u64,
        ],
        accounts: n as u64,
        thresholds: milli.map(points),
        live_thresholds: policy.thresholds.map(|t| points(MilliPoints::of(t).get())),
        by_thresholds: TierCounts::of(&by_thresholds),
        live: TierCounts::of(live.iter().map(|a| &a.tier)),
        calibrated: TierCounts::of(calibrated.iter().map(|a| &a.tier)),
        moves: TierMoves {
            matrix: movements.matrix.map(|row| row.map(|n| n as u64)),
            up: movements.upgrades() as u64,
            down: movements.downgrades() as u64,
            unchanged: movements.unchanged() as u64,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierd_core::tier::Lock;

    /// 20 scores, best first: 4.9, 4.7, 4.6, 4.4, 4.4, 4.4, 4.1, 3.9, 3.8, 3.8, 3.5, 3.3, 3.1,
    /// 3.0, 2.8, 2.5, 2.2, 2.0, 1.5, 0.9.
    const SCORES: [f32; 20] = [
        2.5, 4.4, 3.8, 0.9, 4.9, 3.0, 2.0, 4.4, 3.3, 4.1, 1.5, 3.8, 4.6, 2.8, 3.5, 4.4, 3.9, 3.1, 2.2, 4.7,
    ];

    fn candidates(scores: &[f32]) -> Vec<TierCandidate> {
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| TierCandidate {
                id: format!("a{i:02}").into(),
                score: *s,
                potential_value: 0.0,
                coverage: 1.0,
                previous: None,
                lock: Lock::Unlocked,
                engagement: None,
            })
            .collect()
    }

    #[test]
    fn thresholds_are_quantiles_of_the_population() {
        // 10/20/30 of 20 accounts: the top 2, 6 and 12. Top 2 end at 4.7 (4.6 next): 4.700.
        // The 6th best is 4.4, tied with the 4th and 5th: all three in gives 6, exactly: 4.400.
        // The 12th best is 3.3 (3.1 next): 3.300.
        let t = pyramid_thresholds(&SCORES, PyramidShape([10.0, 20.0, 30.0]));
        assert_eq!(t, [4700, 4400, 3300]);
    }

    #[test]
    fn ties_at_a_boundary_go_to_the_nearer_count() {
        // 20/10/10: the top 4, 6 and 8. The 4th best is 4.4, tied 4th to 6th: in gives 6 (2
        // over), out gives 3 (1 under): out, so Tier 1 starts at 4.401. The 6th is 4.4 again: in
        // gives 6 (exact): 4.400. The 8th is 3.9 (3.8 next): 3.900.
        let t = pyramid_thresholds(&SCORES, PyramidShape([20.0, 10.0, 10.0]));
        assert_eq!(t, [4401, 4400, 3900]);
        // 25% = the top 5: in gives 6, out 3; 1 over beats 2 under: in, 4.400 (Tier 2 empty at
        // 5% = the top 6, which the same tie group already fills).
        let t = pyramid_thresholds(&SCORES, PyramidShape([25.0, 5.0, 0.0]));
        assert_eq!(t, [4400, 4400, 4400]);
        // An equal distance includes: 4 accounts tied, the 2nd asked for: in 4 (2 over), out 0
        // (2 under): in.
        assert_eq!(
            pyramid_thresholds(&[3.0, 3.0, 3.0, 3.0], PyramidShape([50.0, 0.0, 0.0])),
            [3000, 3000, 3000]
        );
    }

    #[test]
    fn empty_tiers_sit_above_the_best_score() {
        // 0% in Tier 1: one thousandth above the best score (4.9).
        let t = pyramid_thresholds(&SCORES, PyramidShape([0.0, 10.0, 0.0]));
        assert_eq!(t, [4901, 4700, 4700]);
    }

    #[test]
    fn counts_and_moves_come_from_the_policy() {
        let population = candidates(&SCORES);
        let policy = TierPolicy::default(); // 4.5 / 3.75 / 3.0, no caps
        let as_of = Date::from_days(20_000);
        let c = calibrate_pyramid(&population, &policy, PyramidShape([10.0, 20.0, 30.0]), as_of);
        assert_eq!(c.target_counts, [2, 4, 6]);
        assert_eq!(c.thresholds, [4.7, 4.4, 3.3]);
        // Live: Tier 1 = 4.9, 4.7, 4.6 (3); Tier 2 = 4.4 ×3, 4.1, 3.9, 3.8 ×2 (7); Tier 3 = 3.5,
        // 3.3, 3.1, 3.0 (4); untiered 6.
        assert_eq!(c.live.as_array(), [3, 7, 4, 6]);
        assert_eq!(c.by_thresholds.as_array(), [2, 4, 6, 8]);
        assert_eq!(c.calibrated, c.by_thresholds);
        // Moves: 4.6 T1→T2; 4.1, 3.9, 3.8, 3.8 T2→T3; 3.1, 3.0 T3→untiered: 7 down, none up.
        assert_eq!(c.moves.matrix[0], [2, 1, 0, 0]);
        assert_eq!(c.moves.matrix[1], [0, 3, 4, 0]);
        assert_eq!(c.moves.matrix[2], [0, 0, 2, 2]);
        assert_eq!(c.moves.matrix[3], [0, 0, 0, 6]);
        assert_eq!((c.moves.up, c.moves.down, c.moves.unchanged), (0, 7, 13));
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(
            "5, 15,30".parse::<PyramidShape>(),
            Ok(PyramidShape([5.0, 15.0, 30.0]))
        );
        assert!("5,15".parse::<PyramidShape>().is_err());
        assert!("5,15,x".parse::<PyramidShape>().is_err());
        assert!("50,40,20".parse::<PyramidShape>().is_err());
        assert!("-1,15,30".parse::<PyramidShape>().is_err());
    }
}
