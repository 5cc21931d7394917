//! The store's work queue as a committing run uses it: every instance sharing the database takes
//! items ([`consume_one`] on followers, [`consume_until_done`] on the leader) and records what
//! processing each counted with it, so the run's report adds up every instance's work. A store no
//! other instance can share (SQLite) has no use for it: its items go through memory
//! ([`consume_local`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::context::RunCtx;
use crate::sink::Sink;
use crate::stage;
use crate::timings::Stage;
use crate::work::{BatchCounts, Payload, Shared};

/// Claims and processes one work item of `run`; false when none was queued. The item's counts
/// are recorded with it, so the run's report adds up every instance's work.
pub(crate) async fn consume_one<S: Sink>(ctx: &RunCtx<'_>, sink: &S) -> anyhow::Result<bool> {
    let p = ctx.p;
    let started = Instant::now();
    let items = p.store.claim_work(ctx.run, &p.instance, 1).await?;
    let Some(item) = items.into_iter().next() else {
        return Ok(false);
    };
    let outcome = match serde_json::from_str::<Payload>(item.payload.as_str()) {
        Ok(payload) => {
            let taken = started.elapsed();
            stage::process(ctx, sink, payload.accounts)
                .await
                .map(|mut counts| {
                    counts.times.add(Stage::Queue, taken, Duration::ZERO);
                    counts
                })
        }
        Err(e) => Err(anyhow::anyhow!(
            "work item {} of run {} is unreadable: {e}",
            item.id,
            ctx.run
        )),
    };
    let result = match &outcome {
        Ok(counts) => Some(serde_json::to_value(counts)?),
        Err(e) => {
            p.metrics.error("score");
            tracing::error!(run = ctx.run.0, item = item.id.0, error = %format!("{e:#}"), "work item failed");
            None
        }
    };
    p.store
        .complete_work(item.id, &p.instance, result.is_some(), result.as_ref())
        .await?;
    Ok(true)
}

/// A local consumer: processes the run's items until the pull is done and no item is left
/// (items claimed by other instances included; stale claims are requeued).
pub(crate) async fn consume_until_done<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    shared: &Shared,
) -> anyhow::Result<()> {
    let p = ctx.p;
    let stale_after = Duration::from_secs(p.settings.pipeline.stale_work_secs);
    loop {
        let notified = shared.enqueued.notified();
        if consume_one(ctx, sink).await? {
            continue;
        }
        if shared.pull_done.load(Ordering::SeqCst) {
            let progress = p.store.work_progress(ctx.run).await?;
            if progress.is_finished() {
                return Ok(());
            }
            // Items claimed elsewhere: wait for them, taking back those of a dead instance.
            p.store.requeue_stale_work(stale_after).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
    }
}

/// A worker of a run on a store no other instance shares: processes the items the pull hands
/// over in memory ([`crate::work::LocalQueue`]) until the pull is done and none is left.
pub(crate) async fn consume_local<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    shared: &Shared,
) -> anyhow::Result<()> {
    while let Some(batch) = shared.local.next().await {
        match stage::process(ctx, sink, batch).await {
            Ok(counts) => shared.merge(&counts),
            Err(e) => {
                ctx.p.metrics.error("score");
                shared.local.abandon().await;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The counts every instance recorded with the items of `run`.
pub(crate) async fn recorded_counts(ctx: &RunCtx<'_>) -> anyhow::Result<BatchCounts> {
    let mut total = BatchCounts::default();
    for result in ctx.p.store.work_results(ctx.run).await? {
        if let Ok(counts) = serde_json::from_value::<BatchCounts>(result) {
            total.add(&counts);
        }
    }
    Ok(total)
}
