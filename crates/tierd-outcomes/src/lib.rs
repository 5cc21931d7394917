//! tierd-outcomes: what the tiers did. The funnel per tier against the untiered baseline
//! ([`funnel`]), computed from the rows `tierd-store` returns (deals, tier history): one pure
//! function, one serde struct ([`Funnel`]) that the CLI formats, the API returns and `/metrics`
//! takes its headline figures from.
//!
//! The computation is pure; [`funnel_from_store`] is the one place that reads its rows, so the
//! CLI, the API and `/metrics` cannot read them differently; [`write_table`] is its one rendering
//! for people (the CLI's and the demo's). Knows no connector.
//!
//! # No hindsight
//!
//! A deal counts under the tier its account held **on the day the deal was created**, from the
//! tier history, never under today's tier. A deal created before its account was first tiered
//! counts under no tier (`deals_before_tiering`): tierd had not tiered it yet.
//!
//! # Calibration (`tierd calibrate`)
//!
//! Pure as well, over accounts the caller scored with the one scorer and tiers with the one
//! `TierPolicy`: [`calibrate_pyramid`] (thresholds for a pyramid shape, and the movements they
//! cause), [`backtest_model`] (each closed deal's account scored and tiered on the day the deal
//! was created, the funnel's figures per tier, [`auc`] and Tier 1 precision), [`suggest_weights`]
//! (criterion weights from an L2 logistic regression, [`fit_logistic`], with a holdout) and
//! [`candidate_model`] (the live model file with those weights, for a person to review);
//! [`CalibrationReport`] and [`write_calibration_table`] are its report, as JSON and for people.

mod auc;
mod backtest;
mod calibrate;
mod candidate;
mod fit;
mod funnel;
mod report;
mod stats;
mod suggest;
mod table;

pub use auc::auc;
pub use backtest::{
    backtest_model, effective_points, label_deals, live_shares, score_deals, BacktestAccount, BacktestIssue,
    BacktestIssueReason, LabelledDeals, ModelBacktest, ScoredDeal,
};
pub use calibrate::{
    calibrate_pyramid, pyramid_thresholds, PyramidCalibration, PyramidShape, ShapeError, TierCounts,
    TierMoves,
};
pub use candidate::candidate_model;
pub use fit::{fit_logistic, FitError, Logistic};
pub use funnel::{
    funnel, funnel_with_target_list, DealIssue, Figures, Funnel, FunnelQuery, FunnelRow, IssueReason, Lift,
    TargetListRow,
};
pub use report::{
    write_calibration_table, BacktestSection, CalibrationReport, PyramidSection, SuggestSection,
};
pub use stats::{median, ratio_interval, wilson, Interval, Rate};
pub use suggest::{
    held_out, suggest_weights, SuggestError, SuggestOptions, SuggestedComponent, SuggestedCriterion,
    Suggestion, MIN_WRITTEN_WEIGHT,
};
pub use table::write_table;

/// The funnel over what `store` holds: its tier history (or, with `query.model == "shadow"`, the
/// shadow model's: the tiers it gave each account on each day since it began scoring), its live
/// deals and, with `query.target_list_fact`, each account's target-list flag.
pub async fn funnel_from_store(
    store: &tierd_store::Store,
    query: &FunnelQuery,
) -> Result<Funnel, tierd_store::StoreError> {
    // Streamed: the history is kept compactly (accounts numbered), each deal counted as its row
    // arrives and dropped; holding every row as owned strings took gigabytes at 3M deals. The
    // shadow model's history (one row per shadow tier change) is read whole.
    let mut timeline = funnel::Timeline::default();
    if query.model == "shadow" {
        for e in store.shadow_timeline().await? {
            timeline.push(&e.account, e.at, e.tier);
        }
    } else {
        store
            .for_each_tier_event(|account, at, tier| timeline.push(account, at, tier))
            .await?;
    }
    let mut counter = funnel::FunnelCounter::new(timeline, query);
    if let Some(fact) = &query.target_list_fact {
        store
            .for_each_account_flag(fact, |account, flag| counter.list_account(account, flag))
            .await?;
    }
    store.for_each_report_deal(|d| counter.count(d)).await?;
    Ok(counter.finish())
}
