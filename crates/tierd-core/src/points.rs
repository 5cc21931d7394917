//! Scores at the precision tierd prints, and the buckets pushes compare them in.
//!
//! A score is printed with three decimals, so scores are kept, tiered and bucketed as
//! integer thousandths of a point ([`MilliPoints`]): what is printed is what is tiered (a
//! score shown as `3.000` is Tier 3 at a 3.0 threshold), and two views of the same score can
//! never fall on two sides of a line because one kept it as `f32` and the other as `f64`.
//! The rounding is the printer's (half to even on the `f64` of the `f32`), so `{:.3}` of a
//! score and its [`MilliPoints`] agree digit for digit.

use std::fmt;

/// Thousandths of a point: `0..=5000` for scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MilliPoints(u32);

impl MilliPoints {
    /// The largest score, 5.000.
    pub const MAX: MilliPoints = MilliPoints(5000);

    /// `points` to the nearest thousandth (ties to even, as `{:.3}` prints it), within
    /// `0..=5000`. Not-a-number counts as 0.
    pub fn of(points: f32) -> MilliPoints {
        let scaled = crate::decimal::round_half_even(f64::from(points) * 1000.0);
        if scaled.is_nan() || scaled <= 0.0 {
            MilliPoints(0)
        } else {
            MilliPoints(scaled.min(f64::from(Self::MAX.0)) as u32)
        }
    }

    /// From thousandths, capped at 5000.
    pub fn from_milli(milli: u32) -> MilliPoints {
        MilliPoints(milli.min(Self::MAX.0))
    }

    /// The number of thousandths.
    pub fn get(self) -> u32 {
        self.0
    }

    /// In points: the `f32` nearest to this many thousandths, which prints back as them.
    pub fn points(self) -> f32 {
        self.0 as f32 / 1000.0
    }
}

impl fmt::Display for MilliPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// A score rounded to the nearest `f32` of the printed precision: what [`crate::Model`] puts
/// in every [`crate::ScoreCard`].
pub fn quantise(score: f32) -> f32 {
    MilliPoints::of(score).points()
}

/// How coarse "the score changed" is for pushes: a whole number of thousandths, at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScoreStep(MilliPoints);

/// Why a number is not a score step.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("must be within 0.001..=5, found {0}")]
pub struct ScoreStepError(pub f64);

impl ScoreStep {
    /// A step of `points` (e.g. 0.1), rounded to thousandths; within `0.001..=5`.
    pub fn new(points: f64) -> Result<ScoreStep, ScoreStepError> {
        let milli = (points * 1000.0).round();
        if !(1.0..=5000.0).contains(&milli) {
            return Err(ScoreStepError(points));
        }
        Ok(ScoreStep(MilliPoints(milli as u32)))
    }

    /// The step in thousandths.
    pub fn milli(self) -> u32 {
        self.0 .0
    }
}

impl Default for ScoreStep {
    /// 0.1.
    fn default() -> Self {
        ScoreStep(MilliPoints(100))
    }
}

impl<'de> serde::Deserialize<'de> for ScoreStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let points = f64::deserialize(d)?;
        ScoreStep::new(points).map_err(serde::de::Error::custom)
    }
}

/// A score rounded to a [`ScoreStep`], half up, in integers: 2.75 at step 0.1 is 2.8 on every
/// path. Pushes compare buckets with `==`; the store keeps [`ScoreBucket::points`] and reads it
/// back with [`ScoreBucket::from_points`], which gives the same bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScoreBucket(MilliPoints);

impl ScoreBucket {
    /// The bucket of `score` (quantised first, as every score is).
    pub fn of(score: f32, step: ScoreStep) -> ScoreBucket {
        let m = MilliPoints::of(score).get();
        let s = step.milli();
        ScoreBucket(MilliPoints::from_milli((m + s / 2) / s * s))
    }

    /// The bucket's score in points (a multiple of the step), as stored.
    pub fn points(self) -> f64 {
        f64::from(self.0.get()) / 1000.0
    }

    /// A stored bucket read back (a value that is no score reads as 0 or 5, so it differs
    /// from any real bucket but the end one and is pushed again rather than trusted).
    pub fn from_points(points: f64) -> ScoreBucket {
        let milli = (points * 1000.0).round();
        let milli = if milli.is_nan() {
            0.0
        } else {
            milli.clamp(0.0, 5000.0)
        };
        ScoreBucket(MilliPoints::from_milli(milli as u32))
    }

    /// The bucket's score in thousandths.
    pub fn milli(self) -> MilliPoints {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_points_round_as_the_printer_does() {
        for x in [0.0f32, 2.9999998, 3.0005, 4.4995, 4.4996, 4.9999, 5.0, 1.0 / 3.0] {
            assert_eq!(MilliPoints::of(x).to_string(), format!("{x:.3}"), "{x}");
            assert_eq!(format!("{:.3}", quantise(x)), format!("{x:.3}"), "{x}");
        }
        assert_eq!(MilliPoints::of(f32::NAN).get(), 0);
        assert_eq!(MilliPoints::of(-1.0).get(), 0);
        assert_eq!(MilliPoints::of(7.0), MilliPoints::MAX);
    }

    #[test]
    fn a_half_step_score_lands_in_one_bucket_however_it_was_kept() {
        // Issue 12 #7: 2.75/0.1 rounded to 28 in f32 and to 27 after an f64 round trip
        // (27.4999996), so a score on a half step was pushed again on every run.
        let step = ScoreStep::new(0.1).expect("step");
        let as_f32 = ScoreBucket::of(2.75, step);
        let through_f64 = ScoreBucket::of(f64::from(2.75f32) as f32, step);
        assert_eq!(as_f32, through_f64);
        assert_eq!(as_f32.milli().get(), 2800, "half up: 2.75 is in the 2.8 bucket");
        let stored = as_f32.points();
        assert_eq!(stored, 2.8);
        assert_eq!(ScoreBucket::from_points(stored), as_f32);
        // Neighbours fall on their own sides.
        assert_eq!(ScoreBucket::of(2.749, step).milli().get(), 2700);
        assert_eq!(ScoreBucket::of(2.84, step).milli().get(), 2800);
        assert_eq!(ScoreBucket::of(5.0, step).milli().get(), 5000);
    }

    #[test]
    fn score_steps_are_whole_thousandths() {
        assert_eq!(ScoreStep::new(0.1).map(ScoreStep::milli), Ok(100));
        assert_eq!(ScoreStep::new(0.25).map(ScoreStep::milli), Ok(250));
        assert!(ScoreStep::new(0.0).is_err());
        assert!(ScoreStep::new(0.0001).is_err());
        assert!(ScoreStep::new(f64::NAN).is_err());
        assert!(ScoreStep::new(6.0).is_err());
        // Buckets of an odd step round half up as well.
        let step = ScoreStep::new(0.125).expect("step");
        assert_eq!(ScoreBucket::of(0.062, step).milli().get(), 0);
        assert_eq!(ScoreBucket::of(0.063, step).milli().get(), 125);
    }
}
