//! tierd-outcomes: what the tiers did. The funnel per tier against the untiered baseline
//! ([`funnel`]), computed from the rows `tierd-store` returns (deals, tier history): one pure
//! function, one serde struct ([`Funnel`]) that the CLI formats, the API returns and `/metrics`
//! takes its headline figures from.
//!
//! Must not know where rows come from (no database, no connector) nor how the report is shown.
//!
//! # No hindsight
//!
//! A deal counts under the tier its account held **on the day the deal was created**, from the
//! tier history, never under today's tier. A deal created before its account was first tiered
//! counts under no tier (`deals_before_tiering`): tierd had not tiered it yet.

mod funnel;
mod stats;

pub use funnel::{funnel, DealIssue, Funnel, FunnelQuery, FunnelRow, IssueReason, Lift};
pub use stats::{median, ratio_interval, wilson, Interval, Rate};
