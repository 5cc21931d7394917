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

mod funnel;
mod stats;
mod table;

pub use funnel::{funnel, DealIssue, Funnel, FunnelQuery, FunnelRow, IssueReason, Lift};
pub use stats::{median, ratio_interval, wilson, Interval, Rate};
pub use table::write_table;

/// The funnel over what `store` holds: its tier history and live deals.
pub async fn funnel_from_store(
    store: &tierd_store::Store,
    query: &FunnelQuery,
) -> Result<Funnel, tierd_store::StoreError> {
    // Streamed: the history is kept compactly (accounts numbered), each deal counted as its row
    // arrives and dropped; holding every row as owned strings took gigabytes at 3M deals.
    let mut timeline = funnel::Timeline::default();
    store
        .for_each_tier_event(|account, at, tier| timeline.push(account, at, tier))
        .await?;
    let mut counter = funnel::FunnelCounter::new(timeline, query);
    store.for_each_report_deal(|d| counter.count(d)).await?;
    Ok(counter.finish())
}
