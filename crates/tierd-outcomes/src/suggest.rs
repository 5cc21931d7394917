//! Suggested criterion weights, fitted on the deal history: a suggestion a person reads, edits and
//! may adopt, never applied by tierd.
//!
//! Features are each criterion's points on the deal's creation day, as scoring counts them in
//! effect ([`crate::ScoredDeal::points`]), so the live score is exactly Σ shareᵢ × pointsᵢ and a
//! fitted coefficient is directly a criterion's worth. The fit is an L2-regularised logistic
//! regression ([`crate::fit_logistic`]) on a training set; a **holdout** (the deals of accounts
//! whose id hashes below the holdout share, `tierd_core::hash::unit_interval`: the same split on
//! every run, an account's deals all on one side) measures it against the live model by AUC.
//!
//! **Non-negative.** A model's weights are above 0 (a score is a weighted average of points), so
//! the suggestion is fitted under that constraint: a criterion whose coefficient comes out
//! negative is dropped, the most negative first, and the rest refitted, until none is. The
//! unconstrained fit is reported beside it, so the cost of the constraint is visible.
//!
//! Candidate weights: the coefficients normalised to shares sᵢ. A component's weight is the sum
//! of its criteria's shares, and a criterion's weight its share of that; both are rescaled so
//! component weights sum as the live ones do, and each component's criterion weights as the live
//! ones in it. The candidate then scores Σ sᵢ × pointsᵢ, ranking accounts as the fit does.
//! Weights are written to the thousandth and never below [`MIN_WRITTEN_WEIGHT`] (the model needs
//! every weight above 0); a component whose criteria all fit at 0 keeps its criteria's live
//! weights under that smallest component weight. Knows no file and no store.

use serde::Serialize;
use tierd_core::hash::unit_interval;
use tierd_core::Model;

use crate::auc::auc;
use crate::backtest::{live_shares, ScoredDeal};
use crate::fit::{fit_logistic, FitError, Logistic};

/// The smallest weight written to a candidate model: a criterion the fit finds worthless.
pub const MIN_WRITTEN_WEIGHT: f64 = 0.001;

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuggestOptions {
    /// Share of accounts (by id hash) whose deals are held out: 0.3.
    pub holdout: f64,
    /// The L2 penalty λ: 1.0 (points are all on one 0..5 scale, so one penalty treats them alike).
    pub l2: f64,
    /// The fewest won and the fewest lost deals to fit on at all: 20 each.
    pub min_each: u64,
}

impl Default for SuggestOptions {
    fn default() -> Self {
        SuggestOptions {
            holdout: 0.3,
            l2: 1.0,
            min_each: 20,
        }
    }
}

/// Why there is no suggestion.
#[derive(Debug, Clone, PartialEq)]
pub enum SuggestError {
    /// Too few outcomes to learn from.
    TooFewDeals {
        /// Won deals.
        won: u64,
        /// Lost deals.
        lost: u64,
        /// The fewest of each needed.
        needed: u64,
    },
    /// The split left a side without won or lost deals: (side, its deals).
    OneSidedSplit(&'static str, usize),
    /// No criterion has a positive coefficient.
    NothingPredicts,
    /// The regression failed.
    Fit(FitError),
}

impl std::fmt::Display for SuggestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuggestError::TooFewDeals { won, lost, needed } => write!(
                f,
                "too few closed deals to fit weights: {won} won and {lost} lost, at least {needed} of each are needed; no candidate written"
            ),
            SuggestError::OneSidedSplit(side, 0) => write!(
                f,
                "the {side} set is empty (accounts are split by a hash of their id): more accounts with closed deals, or another --holdout, are needed; no candidate written"
            ),
            SuggestError::OneSidedSplit(side, n) => write!(
                f,
                "the {side} set's {n} deals are all won or all lost (accounts are split by a hash of their id): more closed deals, or another --holdout, are needed; no candidate written"
            ),
            SuggestError::NothingPredicts => f.write_str(
                "no criterion's points raise the odds of winning in the fit; no candidate written",
            ),
            SuggestError::Fit(e) => write!(f, "the fit failed: {e}"),
        }
    }
}

impl std::error::Error for SuggestError {}

/// One criterion's fitted worth and suggested weight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedCriterion {
    /// Its name.
    pub name: String,
    /// Its component.
    pub component: String,
    /// The fitted coefficient: log-odds of winning per point (0 when dropped).
    pub coefficient: f64,
    /// Dropped from the fit: its coefficient came out negative.
    pub dropped: bool,
    /// Its coefficient in the unconstrained fit (all criteria, any sign).
    pub unconstrained_coefficient: f64,
    /// Its share of the score in the live model.
    pub live_share: f64,
    /// Its share in the candidate (its coefficient's share of their sum).
    pub share: f64,
    /// Its weight in the live model.
    pub live_weight: f64,
    /// Its weight in the candidate, as written.
    pub weight: f64,
}

/// One component's suggested weight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedComponent {
    /// Its name.
    pub name: String,
    /// Its weight in the live model.
    pub live_weight: f64,
    /// Its weight in the candidate, as written.
    pub weight: f64,
}

/// `tierd calibrate --suggest-weights`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The live model's `name@version`.
    pub live_model: String,
    /// Deals fitted on.
    pub train_deals: u64,
    /// Deals held out.
    pub holdout_deals: u64,
    /// Share of accounts held out.
    pub holdout_share: f64,
    /// The penalty.
    pub l2: f64,
    /// Of all deals, scored on facts observed after their creation (or undated).
    pub scored_on_later_facts: u64,
    /// The fitted model's AUC on the deals it was fitted on.
    pub train_auc: Option<f64>,
    /// The fitted model's AUC on the holdout.
    pub holdout_auc: Option<f64>,
    /// The live score's AUC on the same holdout.
    pub live_holdout_auc: Option<f64>,
    /// The unconstrained fit's AUC on the holdout (what negative weights would add).
    pub unconstrained_holdout_auc: Option<f64>,
    /// The fitted intercept (log-odds at zero points).
    pub intercept: f64,
    /// Per criterion, in model order.
    pub criteria: Vec<SuggestedCriterion>,
    /// Per component, in name order.
    pub components: Vec<SuggestedComponent>,
}

/// A weight as the model file wrote it (`0.22`, not the `f32`'s `0.2199999988`).
fn as_written(w: f32) -> f64 {
    w.to_string().parse().unwrap_or(f64::from(w))
}

/// The fit with every coefficient at 0 or above: the most negative criterion is dropped and the
/// rest refitted until none is negative. Returns the fit over all features (dropped ones at 0)
/// and which were dropped.
fn fit_non_negative(x: &[Vec<f64>], y: &[bool], l2: f64) -> Result<(Logistic, Vec<bool>), SuggestError> {
    let k = x.first().map_or(0, Vec::len);
    let mut kept: Vec<usize> = (0..k).collect();
    loop {
        if kept.is_empty() {
            return Err(SuggestError::NothingPredicts);
        }
        let rows: Vec<Vec<f64>> = x.iter().map(|r| kept.iter().map(|&i| r[i]).collect()).collect();
        let fit = fit_logistic(&rows, y, l2).map_err(SuggestError::Fit)?;
        let most_negative = fit
            .coefficients
            .iter()
            .enumerate()
            .filter(|(_, b)| **b < 0.0)
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(j, _)| j);
        match most_negative {
            Some(j) => {
                kept.remove(j);
            }
            None => {
                let mut coefficients = vec![0.0; k];
                let mut dropped = vec![true; k];
                for (j, &i) in kept.iter().enumerate() {
                    coefficients[i] = fit.coefficients[j];
                    dropped[i] = false;
                }
                let full = Logistic { coefficients, ..fit };
                return Ok((full, dropped));
            }
        }
    }
}

fn written(w: f64) -> f64 {
    ((w * 1000.0).round() / 1000.0).max(MIN_WRITTEN_WEIGHT)
}

/// Whether an account's deals are held out.
pub fn held_out(account: &str, share: f64) -> bool {
    unit_interval(account.as_bytes()) < share
}

/// Fits weights on `scored` (the live model's [`crate::score_deals`]) as the module doc says.
pub fn suggest_weights(
    model: &Model,
    scored: &[ScoredDeal],
    opts: SuggestOptions,
) -> Result<Suggestion, SuggestError> {
    let won = scored.iter().filter(|s| s.won).count() as u64;
    let lost = scored.len() as u64 - won;
    if won < opts.min_each || lost < opts.min_each {
        return Err(SuggestError::TooFewDeals {
            won,
            lost,
            needed: opts.min_each,
        });
    }
    let (holdout, train): (Vec<&ScoredDeal>, Vec<&ScoredDeal>) =
        scored.iter().partition(|s| held_out(&s.account, opts.holdout));
    for (side, set) in [("training", &train), ("holdout", &holdout)] {
        let w = set.iter().filter(|s| s.won).count();
        if w == 0 || w == set.len() {
            return Err(SuggestError::OneSidedSplit(side, set.len()));
        }
    }
    let x: Vec<Vec<f64>> = train.iter().map(|s| s.points.clone()).collect();
    let y: Vec<bool> = train.iter().map(|s| s.won).collect();
    let unconstrained = fit_logistic(&x, &y, opts.l2).map_err(SuggestError::Fit)?;
    let (fit, dropped) = fit_non_negative(&x, &y, opts.l2)?;
    let total: f64 = fit.coefficients.iter().sum();
    if total <= 0.0 {
        return Err(SuggestError::NothingPredicts);
    }
    let shares: Vec<f64> = fit.coefficients.iter().map(|b| b / total).collect();
    let live = live_shares(model);
    let live_component_total: f64 = model.components.iter().map(|c| f64::from(c.weight)).sum();
    let mut components = Vec::new();
    let mut weights = vec![0.0; model.criteria.len()];
    for (ci, comp) in model.components.iter().enumerate() {
        let members: Vec<usize> = (0..model.criteria.len())
            .filter(|&i| model.criteria[i].component == ci)
            .collect();
        let live_within: f64 = members.iter().map(|&i| f64::from(model.criteria[i].weight)).sum();
        let share: f64 = members.iter().map(|&i| shares[i]).sum();
        for &i in &members {
            weights[i] = if share > 0.0 {
                written(shares[i] / share * live_within)
            } else {
                written(as_written(model.criteria[i].weight))
            };
        }
        components.push(SuggestedComponent {
            name: comp.name.clone(),
            live_weight: as_written(comp.weight),
            weight: written(share * live_component_total),
        });
    }
    let criteria = model
        .criteria
        .iter()
        .enumerate()
        .map(|(i, c)| SuggestedCriterion {
            name: c.name.clone(),
            component: model.components[c.component].name.clone(),
            coefficient: fit.coefficients[i],
            dropped: dropped[i],
            unconstrained_coefficient: unconstrained.coefficients[i],
            live_share: live[i],
            share: shares[i],
            live_weight: as_written(c.weight),
            weight: weights[i],
        })
        .collect();
    let ranked = |set: &[&ScoredDeal], by: &dyn Fn(&ScoredDeal) -> f64| {
        auc(&set.iter().map(|s| (by(s), s.won)).collect::<Vec<_>>())
    };
    Ok(Suggestion {
        live_model: model.id(),
        train_deals: train.len() as u64,
        holdout_deals: holdout.len() as u64,
        holdout_share: opts.holdout,
        l2: opts.l2,
        scored_on_later_facts: scored.iter().filter(|s| s.hindsight).count() as u64,
        train_auc: ranked(&train, &|s| fit.log_odds(&s.points)),
        holdout_auc: ranked(&holdout, &|s| fit.log_odds(&s.points)),
        live_holdout_auc: ranked(&holdout, &|s| f64::from(s.score)),
        unconstrained_holdout_auc: ranked(&holdout, &|s| unconstrained.log_odds(&s.points)),
        intercept: fit.intercept,
        criteria,
        components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::{score_deals, BacktestAccount};
    use crate::candidate::candidate_model;
    use crate::fit::fit_logistic;
    use tierd_core::fact::{Fact, FactName, FactValue, Facts};
    use tierd_core::{Date, TierPolicy};
    use tierd_store::StoredDeal;

    /// Two criteria in two components: `driver` (its points are its value, 0..5) decides the
    /// outcome, `noise` (0..5) does not, yet holds three quarters of the live score.
    const MODEL: &str = r#"# A model a person wrote.
name = "synthetic"
version = "7"

[components.a]
weight = 1

[components.b]
weight = 3

# What decides.
[[criteria]]
name = "driver"
component = "a"
weight = 2
fact = "x.driver"
[criteria.rule]
bands = [{ max = 1, points = 0 }, { min = 1, max = 2, points = 1 }, { min = 2, max = 3, points = 2 }, { min = 3, max = 4, points = 3 }, { min = 4, max = 5, points = 4 }, { min = 5, points = 5 }]

[[criteria]]
name = "noise"
component = "b"
weight = 2
fact = "x.noise"
[criteria.rule]
bands = [{ max = 1, points = 0 }, { min = 1, max = 2, points = 1 }, { min = 2, max = 3, points = 2 }, { min = 3, max = 4, points = 3 }, { min = 4, max = 5, points = 4 }, { min = 5, points = 5 }]
"#;

    /// 240 accounts, one closed deal each: won when the driver is 3 or more, except every
    /// seventh account's deal, flipped. The noise cycles independently of the driver.
    fn synthetic(model: &Model) -> (Vec<BacktestAccount>, Vec<StoredDeal>) {
        let mut accounts = Vec::new();
        let mut deals = Vec::new();
        let day0: Date = "2026-01-01".parse().expect("date");
        for i in 0..240u32 {
            let driver = f64::from(i % 6);
            let noise = f64::from((i * 10) % 11 / 2);
            let mut facts = Facts::new();
            for (name, v) in [("x.driver", driver), ("x.noise", noise)] {
                let fact = Fact {
                    value: FactValue::Number(v),
                    source: "crm".into(),
                    observed_at: None,
                };
                facts.insert(FactName::new(name).expect("name"), fact);
            }
            let id = format!("acc-{i:03}");
            accounts.push(BacktestAccount::new(&id, model.schema(), &facts).expect("account"));
            let won = (driver >= 3.0) != (i % 7 == 0);
            deals.push(StoredDeal {
                id: format!("deal-{i:03}"),
                account: Some(id),
                pipeline: None,
                stage: None,
                amount: Some(1000.0),
                currency: None,
                created_at: Some(i64::from(day0.days() + (i % 30) as i32) * 86_400_000),
                close_date: None,
                closed: Some(true),
                won: Some(won),
            });
        }
        (accounts, deals)
    }

    #[test]
    fn the_fit_finds_the_driver_and_beats_the_live_weights_on_the_holdout() {
        let model = Model::from_toml(MODEL, "model").expect("model");
        let (accounts, deals) = synthetic(&model);
        let scored = score_deals(&model, &TierPolicy::default(), &accounts, &deals);
        let s = suggest_weights(&model, &scored, SuggestOptions::default()).expect("suggestion");
        assert_eq!(s.train_deals + s.holdout_deals, 240);
        assert!(s.holdout_deals > 40 && s.holdout_deals < 110, "{s:?}");
        let [driver, noise] = [&s.criteria[0], &s.criteria[1]];
        assert!(driver.coefficient > 0.5, "{s:?}");
        assert!(noise.coefficient.abs() < driver.coefficient / 5.0, "{s:?}");
        assert!(driver.share > 0.8, "{s:?}");
        // A random model ranks at 0.5; the live model gives the noise three times the driver's weight.
        let holdout = s.holdout_auc.expect("auc");
        let live = s.live_holdout_auc.expect("auc");
        assert!(holdout > 0.8, "{s:?}");
        assert!(holdout > live + 0.1, "{s:?}");
        assert!(s.unconstrained_holdout_auc.expect("auc") > live, "{s:?}");
        // Component weights sum as the live ones (4), criterion weights within each as live (2).
        let a = s.components.iter().find(|c| c.name == "a").expect("a");
        let b = s.components.iter().find(|c| c.name == "b").expect("b");
        assert!((a.weight + b.weight - 4.0).abs() < 0.002, "{s:?}");
        assert!(a.weight > 3.2, "{s:?}");
        assert_eq!((driver.weight, noise.weight), (2.0, 2.0));

        // The candidate file: the live text with these weights, comments kept, and it loads.
        let text = candidate_model(MODEL, &s, &["a suggestion".to_string()]).expect("candidate");
        assert!(text.starts_with("# a suggestion\n"), "{text}");
        assert!(text.contains("# A model a person wrote."), "{text}");
        assert!(text.contains("# What decides."), "{text}");
        assert!(text.contains("log-odds per point"), "{text}");
        let candidate = Model::from_toml(&text, "model").expect("the candidate loads");
        assert_eq!(candidate.version, "7-suggested");
        let weight = |m: &Model, c: &str| m.components.iter().find(|k| k.name == c).expect("c").weight;
        assert!((f64::from(weight(&candidate, "a")) - a.weight).abs() < 1e-6);
        assert!((f64::from(weight(&candidate, "b")) - b.weight).abs() < 1e-6);
        assert_eq!(candidate.criteria.len(), 2);
    }

    #[test]
    fn a_criterion_that_lowers_the_odds_is_dropped_and_the_rest_refitted() {
        // Won when a ≥ b (one in seven flipped): a raises the odds, b lowers them.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..300u32 {
            let (a, b) = (f64::from(i % 6), f64::from((i * 10) % 11 / 2));
            x.push(vec![a, b]);
            y.push((a >= b) != (i % 7 == 0));
        }
        let unconstrained = fit_logistic(&x, &y, 1.0).expect("fit");
        assert!(unconstrained.coefficients[1] < 0.0, "{unconstrained:?}");
        let (fit, dropped) = fit_non_negative(&x, &y, 1.0).expect("fit");
        assert_eq!(dropped, vec![false, true]);
        assert_eq!(fit.coefficients[1], 0.0);
        assert!(fit.coefficients[0] > 0.0, "{fit:?}");
        // The same as fitting on a alone.
        let alone: Vec<Vec<f64>> = x.iter().map(|r| vec![r[0]]).collect();
        let refit = fit_logistic(&alone, &y, 1.0).expect("fit");
        assert_eq!(fit.coefficients[0], refit.coefficients[0]);
        assert_eq!(fit.intercept, refit.intercept);
    }

    #[test]
    fn too_few_deals_is_a_message_not_a_fit() {
        let model = Model::from_toml(MODEL, "model").expect("model");
        let (accounts, deals) = synthetic(&model);
        let scored = score_deals(&model, &TierPolicy::default(), &accounts, &deals[..30]);
        let e = suggest_weights(&model, &scored, SuggestOptions::default()).expect_err("too few");
        // 30 accounts: drivers 0..5 five times, 3+ in 15; flipped at 0, 7, 14 (drivers 0, 1, 2:
        // now won) and 21, 28 (drivers 3, 4: now lost): 15 + 3 - 2 = 16 won, 14 lost.
        assert_eq!(
            e.to_string(),
            "too few closed deals to fit weights: 16 won and 14 lost, at least 20 of each are needed; no candidate written"
        );
    }
}
