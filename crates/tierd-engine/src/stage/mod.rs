//! The stages of one run, in order: pull (`pull.rs`), enrich (`enrich.rs`), score (`score.rs`),
//! tier (`tier.rs`), push (`push.rs`), then deals (`deals.rs`, committing runs only). Each takes the run's context and its sink; none knows which
//! kind of run it serves.

pub(crate) mod deals;
pub(crate) mod enrich;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod score;
pub(crate) mod tier;

use std::time::Instant;

use anyhow::Context as _;

use crate::timings::Stage;

use crate::context::RunCtx;
use crate::sink::Sink;
use crate::work::{BatchCounts, WorkAccount};

/// One work item: enrich, score, and hand the scores to the sink. Tiers are decided later, over
/// the whole population.
pub(crate) async fn process<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    accounts: Vec<WorkAccount>,
) -> anyhow::Result<BatchCounts> {
    let p = ctx.p;
    let mut counts = BatchCounts {
        accounts: accounts.len() as u64,
        ..BatchCounts::default()
    };
    let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let started = Instant::now();
    let previous = p
        .store
        .accounts(&ids)
        .await
        .context("read the batch's previous state")?;
    counts.times.since(Stage::Commit, started);
    let enriched = enrich::enrich(ctx, &accounts, &previous, &mut counts.times).await?;
    counts.stale = enriched.stale;
    let started = Instant::now();
    let scored = score::score(ctx, &accounts, enriched.facts, &previous, &mut counts.quarantined);
    counts.times.since(Stage::Score, started);
    let started = Instant::now();
    sink.keep(ctx, scored, enriched.signals).await?;
    counts.times.since(Stage::Commit, started);
    p.metrics.accounts_processed(counts.accounts);
    Ok(counts)
}
