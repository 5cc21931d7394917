//! Scoring: one account's facts in, a score in `0..=5` with coverage and per-criterion points out.
//!
//! Score = Σ weight·points / Σ weight, first within each component, then across
//! components by component weight. Every criterion counts: one whose fact is unknown scores
//! its [`Criterion::blank_points`] (the rule's lowest, or what the value none scores), so a
//! blank never beats a known value and an account known by one component cannot score as if
//! the others were perfect. Coverage says how much of the weight rested on data.
//!
//! This is the hot loop of every run, so it compares strings ASCII-case-insensitively in
//! place, and a scorer of many accounts allocates only the score card (reusable with
//! [`Model::score_into`]) and the model's [`Weights`], worked out once
//! ([`Model::score_weighed`]; [`Model::score_into`] works them out per account).

use crate::date::Date;
use crate::fact::FactValue;
use crate::model::{Band, Criterion, FactRow, FactSource, MissingPolicy, Model, Rule, MAX_POINTS};
use crate::points::quantise;

/// What one criterion gave an account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CriterionOutcome {
    /// Points earned (an unknown fact earns the criterion's [`Criterion::blank_points`]).
    pub points: f32,
    /// Whether the fact was known (a blank under `missing = "zero"` is not, yet counts toward coverage).
    pub known: bool,
    /// This criterion's share of the total score's weight.
    pub share: f32,
}

impl CriterionOutcome {
    /// Points times share: what the criterion added to the score. Contributions sum to the score.
    pub fn contribution(&self) -> f32 {
        self.points * self.share
    }

    /// How far the criterion pulled the score above (+) or below (-) the model's neutral points.
    pub fn impact(&self, neutral: f32) -> f32 {
        (self.points - neutral) * self.share
    }
}

/// An account's score with everything needed to explain it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreCard {
    /// The score, within `0..=5`, to the thousandth ([`crate::points::quantise`]): the
    /// criteria's contributions sum to it within half a thousandth.
    pub score: f32,
    /// Share of the model's weight backed by data (or by an informative absence, for `zero` criteria), `0..=1`.
    pub coverage: f32,
    /// Estimated potential annual value, when any source had data.
    pub potential_value: Option<f64>,
    /// Sub-score of each component (`None` only for a component without criteria, which a
    /// checked model does not have).
    pub components: Vec<Option<f32>>,
    /// One outcome per criterion, in model order.
    pub criteria: Vec<CriterionOutcome>,
}

fn in_bands(bands: &[Band], x: f64) -> Option<f32> {
    bands.iter().find(|b| x >= b.min && x < b.max).map(|b| b.points)
}

fn list_contains(list: &[String], item: &str) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(item))
}

pub use crate::date::has_happened;

/// The events of `dates` that have happened by `as_of`.
pub(crate) fn happened(dates: &[Date], as_of: Date) -> impl Iterator<Item = Date> + '_ {
    dates.iter().copied().filter(move |d| has_happened(*d, as_of))
}

/// Age in days of an event that has happened on `date`, as of `as_of`.
fn age_days(date: Date, as_of: Date) -> f64 {
    f64::from(date.days_until(as_of))
}

impl Criterion {
    /// Points for a known value; `None` when the value's type does not fit the rule
    /// (cannot happen for rows built through the model's schema).
    pub fn points_for(&self, value: &FactValue, as_of: Date) -> Option<f32> {
        let otherwise = self.otherwise;
        let points = match (&self.rule, value) {
            (Rule::Bands(bands), FactValue::Number(x)) => in_bands(bands, *x).unwrap_or(otherwise),
            (Rule::Map(entries), FactValue::String(s)) => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(s))
                .map_or(otherwise, |(_, p)| *p),
            (
                Rule::AnyOf {
                    values,
                    points,
                    per_match,
                },
                FactValue::StringList(list),
            ) => {
                let matches = values.iter().filter(|v| list_contains(list, v)).count();
                match (matches, per_match) {
                    (0, _) => otherwise,
                    (n, Some(each)) => (n as f32 * each).min(*points),
                    (_, None) => *points,
                }
            }
            (Rule::AllOf { values, points }, FactValue::StringList(list)) => {
                if values.iter().all(|v| list_contains(list, v)) {
                    *points
                } else {
                    otherwise
                }
            }
            (Rule::DaysUntil(bands), FactValue::Date(d)) => {
                in_bands(bands, f64::from(as_of.days_until(*d))).unwrap_or(otherwise)
            }
            (Rule::RecencyBands(bands), FactValue::DateList(dates)) => match happened(dates, as_of).max() {
                Some(latest) => in_bands(bands, age_days(latest, as_of)).unwrap_or(otherwise),
                None => otherwise,
            },
            (
                Rule::RecencyFade {
                    per_event,
                    lifespan_days,
                },
                FactValue::DateList(dates),
            ) => {
                let lifespan = f64::from(*lifespan_days);
                let sum: f64 = happened(dates, as_of)
                    .map(|d| (1.0 - age_days(d, as_of) / lifespan).max(0.0))
                    .sum();
                (sum as f32 * per_event).min(MAX_POINTS)
            }
            (
                Rule::Bool {
                    when_true,
                    when_false,
                },
                FactValue::Bool(b),
            ) => {
                if *b {
                    *when_true
                } else {
                    *when_false
                }
            }
            _ => return None,
        };
        Some(points)
    }
}

impl Model {
    /// Scores one account. `row` must come from this model's schema (or an extension of it).
    pub fn score(&self, row: &FactRow, as_of: Date) -> ScoreCard {
        let mut card = ScoreCard::default();
        self.score_into(row, as_of, &mut card);
        card
    }

    /// The potential annual value: the first source with data wins.
    pub fn potential_value(&self, row: &FactRow) -> Option<f64> {
        self.potential_value.iter().find_map(|s| match row.get(s.slot) {
            Some(FactValue::Number(x)) if s.bands.is_empty() => Some(x * s.ratio),
            Some(FactValue::Number(x)) => in_bands(&s.bands, *x).map(f64::from),
            _ => None,
        })
    }

    /// Scores one account into `card`, reusing its buffers.
    pub fn score_into(&self, row: &FactRow, as_of: Date, card: &mut ScoreCard) {
        self.score_weighed(row, as_of, &Weights::of(self), card);
    }

    /// [`Model::score_into`] with `weights`, which must be [`Weights::of`] this model: a
    /// scorer of many accounts works them out once.
    pub fn score_weighed(&self, row: &FactRow, as_of: Date, weights: &Weights, card: &mut ScoreCard) {
        self.score_with(row, card, weights, |_, c, value| c.points_for(value, as_of));
    }

    /// [`Model::score_into`] with the points of each known value from `points_for(criterion
    /// index, criterion, value)`, which must give what [`Criterion::points_for`] gives (a memo
    /// in front of it, [`crate::memo::ScoreMemo`]), and `weights`, which must be
    /// [`Weights::of`] this model. One aggregation for every scorer.
    pub(crate) fn score_with(
        &self,
        row: &FactRow,
        card: &mut ScoreCard,
        weights: &Weights,
        mut points_for: impl FnMut(usize, &Criterion, &FactValue) -> Option<f32>,
    ) {
        card.potential_value = self.potential_value(row);
        let potential = card.potential_value.map(FactValue::Number);
        card.criteria.clear();
        card.components.clear();
        card.components.resize(self.components.len(), None);

        // Per component: Σw·p, Σw covered.
        const N: usize = 8;
        let mut small = [[0f32; 2]; N];
        let mut large;
        let sums: &mut [[f32; 2]] = if self.components.len() <= N {
            &mut small[..self.components.len()]
        } else {
            large = vec![[0f32; 2]; self.components.len()];
            &mut large
        };
        for ((i, c), &share) in self.criteria.iter().enumerate().zip(&weights.shares) {
            let value = match c.source {
                FactSource::Slot(slot) => row.get(slot),
                FactSource::PotentialValue => potential.as_ref(),
            };
            let known_points = value.and_then(|v| points_for(i, c, v));
            let known = known_points.is_some();
            let points = known_points.unwrap_or(c.blank_points);
            let s = &mut sums[c.component];
            s[0] += c.weight * points;
            if known || c.missing == MissingPolicy::Zero {
                s[1] += c.weight;
            }
            card.criteria.push(CriterionOutcome { points, known, share });
        }

        let (mut total, mut covered) = (0f32, 0f32);
        for (i, (comp, &w)) in self.components.iter().zip(&weights.components).enumerate() {
            let [wp, w_cov] = sums[i];
            // Every criterion counts, so a component's weight scored is all of its weight.
            if w > 0.0 {
                covered += comp.weight * w_cov / w;
                let sub = wp / w;
                card.components[i] = Some(sub);
                total += comp.weight * sub;
            }
        }
        // Kept at the printed precision, so what is printed is what is tiered and bucketed.
        card.score = if weights.scored > 0.0 {
            quantise(total / weights.scored)
        } else {
            0.0
        };
        card.coverage = if weights.all > 0.0 {
            (covered / weights.all).clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
}

/// What scoring needs of a model's weights that no account changes: each component's weight
/// within it, the components' weights in the total, and each criterion's share of the score.
/// Worked out once by a scorer of many accounts ([`crate::memo::ScoreMemo`]), per account by
/// [`Model::score_into`]; sums are taken in model order, as the aggregation took them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    /// Per component: the sum of its criteria's weights.
    components: Vec<f32>,
    /// The sum of the weights of the components with criteria.
    scored: f32,
    /// The sum of every component's weight.
    all: f32,
    /// Per criterion: its share of the score.
    shares: Vec<f32>,
}

impl Weights {
    /// `model`'s weights.
    pub fn of(model: &Model) -> Weights {
        let mut components = vec![0f32; model.components.len()];
        for c in &model.criteria {
            components[c.component] += c.weight;
        }
        let (mut scored, mut all) = (0f32, 0f32);
        for (comp, &w) in model.components.iter().zip(&components) {
            all += comp.weight;
            if w > 0.0 {
                scored += comp.weight;
            }
        }
        let shares = model
            .criteria
            .iter()
            .map(|c| {
                let comp_weight = components[c.component];
                if scored > 0.0 && comp_weight > 0.0 {
                    model.components[c.component].weight / scored * c.weight / comp_weight
                } else {
                    0.0
                }
            })
            .collect();
        Weights {
            components,
            scored,
            all,
            shares,
        }
    }
}
