//! `tierd calibrate`'s report: its sections as one serialisable struct ([`CalibrationReport`],
//! the JSON) and its one rendering for people ([`write_calibration_table`]). Formats the
//! sections' own figures; computes nothing, reads nothing.

use std::io::Write;

use serde::Serialize;
use tierd_core::{Date, Tier};

use crate::backtest::{BacktestIssue, ModelBacktest};
use crate::calibrate::{PyramidCalibration, TierCounts};
use crate::suggest::Suggestion;
use crate::table::{lift, num as opt, pct as rate};

/// Everything `tierd calibrate` was asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationReport {
    /// The live model's `name@version`.
    pub live_model: String,
    /// Stored accounts.
    pub accounts: u64,
    /// `--pyramid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pyramid: Option<PyramidSection>,
    /// `--backtest`, `--model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtest: Option<BacktestSection>,
    /// `--suggest-weights`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggest_weights: Option<SuggestSection>,
}

/// `--pyramid`: the calibration and the day the accounts were scored as of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PyramidSection {
    /// The scoring day.
    pub as_of: Date,
    /// The thresholds, counts and moves.
    #[serde(flatten)]
    pub calibration: PyramidCalibration,
}

/// `--backtest`, `--model`: the deals used and each model's backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestSection {
    /// Closed deals with an outcome, a creation date and a stored account.
    pub deals: u64,
    /// Deals not closed, not in the backtest.
    pub not_closed: u64,
    /// Closed deals left out, by id.
    pub left_out: Vec<BacktestIssue>,
    /// The live model first, then the candidate.
    pub models: Vec<ModelBacktest>,
}

/// `--suggest-weights`: the suggestion (and where its candidate was written), or why none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SuggestSection {
    /// Fitted.
    Fitted {
        /// The suggestion.
        #[serde(flatten)]
        suggestion: Box<Suggestion>,
        /// Where the candidate model was written, if asked.
        candidate_written: Option<String>,
    },
    /// Not fitted: too few deals, a one-sided split, nothing predicts.
    NotFitted {
        /// Why, in words.
        error: String,
    },
}

/// The report for people.
pub fn write_calibration_table(out: &mut impl Write, r: &CalibrationReport) -> std::io::Result<()> {
    writeln!(
        out,
        "Calibration of {} over {} stored accounts",
        r.live_model, r.accounts
    )?;
    if let Some(p) = &r.pyramid {
        let c = &p.calibration;
        writeln!(
            out,
            "\nPyramid {}% / {}% / {}% (scores as of {}; accounts tied on a score share a tier)",
            c.target_percent[0], c.target_percent[1], c.target_percent[2], p.as_of
        )?;
        writeln!(
            out,
            "  thresholds  tier_1 {:.3}  tier_2 {:.3}  tier_3 {:.3}   (configured {:.3} / {:.3} / {:.3})",
            c.thresholds[0],
            c.thresholds[1],
            c.thresholds[2],
            c.live_thresholds[0],
            c.live_thresholds[1],
            c.live_thresholds[2]
        )?;
        let row = |t: &TierCounts| t.as_array().map(|n| format!("{n:>9}")).join("");
        writeln!(
            out,
            "  {:<34}{:>9}{:>9}{:>9}{:>9}",
            "accounts", "tier_1", "tier_2", "tier_3", "untiered"
        )?;
        writeln!(
            out,
            "  {:<34}{}",
            "asked",
            c.target_counts.map(|n| format!("{n:>9}")).join("")
        )?;
        writeln!(out, "  {:<34}{}", "by the new thresholds", row(&c.by_thresholds))?;
        writeln!(
            out,
            "  {:<34}{}",
            "live tiering (caps, lift, locks)",
            row(&c.live)
        )?;
        writeln!(
            out,
            "  {:<34}{}",
            "new thresholds (caps, lift, locks)",
            row(&c.calibrated)
        )?;
        writeln!(
            out,
            "  moves: {} up, {} down, {} unchanged; from (rows) to (columns):",
            c.moves.up, c.moves.down, c.moves.unchanged
        )?;
        for (from, counts) in Tier::ALL.iter().zip(&c.moves.matrix) {
            writeln!(
                out,
                "  {:<34}{}",
                from.as_str(),
                counts.map(|n| format!("{n:>9}")).join("")
            )?;
        }
    }
    if let Some(b) = &r.backtest {
        writeln!(
            out,
            "\nBacktest on {} closed deals ({} not closed); each account scored and tiered on the day its deal was created",
            b.deals, b.not_closed
        )?;
        for m in &b.models {
            writeln!(
                out,
                "  {} ({}): {} won, {} lost; AUC {}; Tier 1 precision {}; {} deals scored on facts observed after they were created",
                m.label,
                m.model,
                m.won,
                m.lost,
                opt(m.auc, 3),
                rate(&m.tier_1_precision),
                m.scored_on_later_facts
            )?;
            writeln!(
                out,
                "    {:<9} {:>6} {:>26} {:>20} {:>11} {:>14}",
                "tier", "closed", "win rate", "win-rate lift", "velocity/d", "vel/acct lift"
            )?;
            for row in &m.funnel.rows {
                let lift = lift(&row.win_rate_lift);
                let label = if row.tier == Tier::Untiered {
                    "baseline"
                } else {
                    row.tier.as_str()
                };
                writeln!(
                    out,
                    "    {label:<9} {:>6} {:>26} {lift:>20} {:>11} {:>14}",
                    row.win_rate.trials,
                    rate(&row.win_rate),
                    opt(row.velocity, 1),
                    opt(row.velocity_per_account_lift.value, 2)
                )?;
            }
        }
        if !b.left_out.is_empty() {
            writeln!(out, "  {} closed deals left out:", b.left_out.len())?;
            for i in &b.left_out {
                writeln!(out, "    {}: {}", i.deal, i.reason.describe())?;
            }
        }
    }
    match &r.suggest_weights {
        Some(SuggestSection::Fitted {
            suggestion: s,
            candidate_written,
        }) => {
            writeln!(
                out,
                "\nSuggested weights (a suggestion, never applied): {} deals fitted, {} held out; holdout AUC: fitted (the candidate) {}, unconstrained {}, live {}; training {}",
                s.train_deals, s.holdout_deals, opt(s.holdout_auc, 3), opt(s.unconstrained_holdout_auc, 3),
                opt(s.live_holdout_auc, 3), opt(s.train_auc, 3)
            )?;
            writeln!(
                out,
                "  {:<28} {:<12} {:>17} {:>10} {:>8} {:>10} {:>8}",
                "criterion", "component", "coefficient", "live share", "share", "live wt", "weight"
            )?;
            for c in &s.criteria {
                let coefficient = if c.dropped {
                    format!("dropped ({:+.3})", c.unconstrained_coefficient)
                } else {
                    format!("{:+.3}", c.coefficient)
                };
                writeln!(
                    out,
                    "  {:<28} {:<12} {coefficient:>17} {:>9.1}% {:>7.1}% {:>10} {:>8}",
                    c.name,
                    c.component,
                    c.live_share * 100.0,
                    c.share * 100.0,
                    c.live_weight,
                    c.weight
                )?;
            }
            for c in &s.components {
                writeln!(
                    out,
                    "  component {:<18} live weight {} -> {}",
                    c.name, c.live_weight, c.weight
                )?;
            }
            match candidate_written {
                Some(path) => writeln!(out, "  Wrote the candidate model to {path}")?,
                None => writeln!(out, "  (--output FILE writes these weights as a candidate model)")?,
            }
        }
        Some(SuggestSection::NotFitted { error }) => writeln!(out, "\nSuggested weights: {error}")?,
        None => {}
    }
    Ok(())
}
