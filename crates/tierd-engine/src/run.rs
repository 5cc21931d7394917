//! One run from start to end: the stages in order, over one sink. See the crate doc for the
//! rules (streaming, work queue, tiers in two steps, crash safety).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tierd_connectors::connector::Watermark;
use tierd_core::diff::Movements;
use tierd_store::{RunKind, RunStatus};

use crate::context::RunCtx;
use crate::plan::{Ending, Final};
use crate::shutdown::ShutdownSignal;
use crate::sink::Sink;
use crate::stage::push;
use crate::stage::{deals, pull, tier};
use crate::timings::Stage;
use crate::work::Shared;
use crate::{pyramid_of, Job, Progress, RunReport};

/// The whole run after `begin_run`.
pub(crate) async fn execute<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    report: &mut RunReport,
    shutdown: ShutdownSignal,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<Ending> {
    let p = ctx.p;
    sink.prepare(ctx).await?;
    // A committing run into a store with no account yet is its first load: the search indexes
    // are built once its accounts are in, from sorted keys, not account by account.
    let committing = matches!(ctx.kind, RunKind::Full | RunKind::Incremental);
    if committing && p.store.defer_search_indexes().await? {
        tracing::info!(run = %ctx.run, "first load: the search indexes are built once the accounts are in");
    }
    let last_success = last_successful(ctx).await?;
    let since = match (ctx.job, &last_success) {
        (Job::Incremental, Some(r)) => r.watermark.as_deref().and_then(Watermark::parse),
        _ => None,
    };

    // Pull -> work items -> enriched, scored, kept.
    if let Some(pr) = progress {
        pr.stage("pull", None);
    }
    let shared = Shared::default();
    let incremental = ctx.job == Job::Incremental;
    let clock = ctx.clock();
    let pulled = pull::pull(ctx, sink, since, incremental, &shared, &shutdown, progress).await;
    // The pull measures its own time (its wait for the workers is theirs): only the vendor's here.
    clock.stop(ctx, Stage::Pull, Duration::MAX);
    // The accounts are in (or the pull failed): the search indexes a first load put off are
    // built, as are those an earlier one that failed left missing. A store write: `commit` time.
    let built = if committing {
        let started = Instant::now();
        let built = p.store.build_search_indexes().await;
        ctx.time_since(Stage::Commit, started);
        built
    } else {
        Ok(())
    };
    let pulled = pulled?;
    built?;
    report.quarantined += pulled.quarantined;
    p.metrics.quarantined(pulled.quarantined);
    if pulled.stopped {
        return Ok(Ending::Stopped);
    }
    if let (true, Some(last)) = (incremental, &last_success) {
        pull::restore_signalled(ctx, sink, last.started_at, &pulled.ids, &shared).await?;
    }
    let work = p.store.work_progress(ctx.run).await?;
    if work.failed > 0 {
        p.metrics.error("score");
        anyhow::bail!(
            "{} work item(s) of run {} failed (see the log); the next run processes those accounts again",
            work.failed,
            ctx.run
        );
    }
    let counts = sink.counts(ctx, &shared).await?;
    report.accounts = counts.accounts;
    report.stale_plugin_results = counts.stale;
    report.quarantined += counts.quarantined;
    report.stages.merge(&counts.times);

    // Tier the whole population.
    if let Some(pr) = progress {
        pr.stage("tier", None);
    }
    let started = Instant::now();
    let population = sink.population(ctx).await?;
    let decided = tier::decide(ctx, &population);
    ctx.time_since(Stage::Tier, started);
    report.pyramid = pyramid_of(decided.iter().map(|d| d.tier));
    let mut movements = Movements::default();
    for (m, d) in population.iter().zip(&decided) {
        movements.record(m.compare, d.tier);
    }
    report.movements = Some(movements);

    // Diff and push. An incremental job looks at what it pulled, what tiering changed, and what
    // is pending; a full one at everything.
    let pending: HashSet<String> = p
        .store
        .pending_pushes(false)
        .await?
        .into_iter()
        .map(|pp| pp.account)
        .collect();
    let to_finalize: Vec<Final> = population
        .into_iter()
        .zip(decided)
        .filter(|(m, d)| {
            !incremental
                || Some(d.tier) != m.stored
                || Some(d.tier) != m.compare
                || pulled.ids.contains(&m.id)
                || pending.contains(&m.id)
        })
        .map(|(m, d)| Final {
            id: m.id,
            compare: m.compare,
            decided: d,
        })
        .collect();
    let all_ids: Vec<String> = if incremental {
        Vec::new()
    } else {
        to_finalize.iter().map(|f| f.id.clone()).collect()
    };
    let clock = ctx.clock();
    let ending = push::push(ctx, sink, to_finalize, report, &shutdown, progress).await;
    // The push times its planning as it goes; its sending is the time some batch was with the
    // CRM (batches in flight side by side count once); their commits are `commit`'s.
    clock.stop_waiting(ctx, Stage::Push);
    let ending = ending?;
    if let Ending::Done = ending {
        // Deals, for the funnel: only committing runs keep them (a dry run or pilot stores nothing).
        if committing {
            if let Some(pr) = progress {
                pr.stage("deals", None);
            }
            let mut accounts = if incremental {
                pulled.ids.iter().cloned().collect()
            } else {
                all_ids
            };
            accounts.sort();
            let clock = ctx.clock();
            let deals = deals::pull(p, Some(ctx.run), &accounts).await;
            clock.stop(ctx, Stage::Deals, Duration::ZERO);
            report.deals = Some(deals?);
        }
        sink.finish(ctx, pulled.watermark.map(|w| w.millis().to_string()))
            .await?;
    }
    Ok(ending)
}

/// The last successful committing run.
async fn last_successful(ctx: &RunCtx<'_>) -> anyhow::Result<Option<tierd_store::Run>> {
    let store = &ctx.p.store;
    let full = store
        .last_run(Some(RunKind::Full), Some(RunStatus::Succeeded))
        .await?;
    let incr = store
        .last_run(Some(RunKind::Incremental), Some(RunStatus::Succeeded))
        .await?;
    Ok(match (full, incr) {
        (Some(a), Some(b)) => Some(if a.id > b.id { a } else { b }),
        (a, b) => a.or(b),
    })
}
