//! The sink of full and incremental runs: work through the store's queue (every instance takes
//! part), scores committed, tiers pushed to the CRM with each batch's outcome committed with it.

use std::collections::HashMap;

use anyhow::Context as _;
use tierd_activation::webhooks::{AccountRef, Event};
use tierd_connectors::connector::PushOutcome;
use tierd_store::{AccountState, BatchCommit, NewEvent, NewSignal, PushRecord, RejectedPush};

use crate::context::RunCtx;
use crate::events;
use crate::plan::{PushPlan, View};
use crate::queue;
use crate::sink::{Delivered, PushStop, Sink};
use crate::stage::enrich::SeenSignal;
use crate::stage::score::ScoredItem;
use crate::stage::tier::{self, Member};
use crate::timings::Stage;
use crate::work::{BatchCounts, Payload, Shared, WorkAccount};

/// Full and incremental runs: work through the store's queue, scores committed, tiers pushed.
pub(crate) struct CommitSink;

impl Sink for CommitSink {
    async fn prepare(&self, ctx: &RunCtx<'_>) -> anyhow::Result<()> {
        let p = ctx.p;
        let schema = p
            .connector
            .ensure_schema()
            .await
            .inspect_err(|_| p.metrics.error("push"))
            .context("check tierd's fields in the CRM")?;
        if !schema.is_complete() {
            anyhow::bail!(
                "{}: tierd's fields are missing in the CRM: {}; create them, then run again",
                p.connector.kind(),
                schema.missing.join(", ")
            );
        }
        if !schema.created.is_empty() {
            p.retry_permanent_rejections("tierd's fields were created in the CRM")
                .await;
        }
        Ok(())
    }

    async fn hand_over(
        &self,
        ctx: &RunCtx<'_>,
        batch: Vec<WorkAccount>,
        shared: &Shared,
    ) -> anyhow::Result<()> {
        if !ctx.p.store.is_shared() {
            return shared.local.send(batch).await;
        }
        let started = std::time::Instant::now();
        // Written straight to text: a `Value` tree in between cost as much again.
        let payload = tierd_store::JsonText::of(&Payload { accounts: batch });
        ctx.p.store.enqueue_work(ctx.run, &[payload]).await?;
        ctx.time_since(Stage::Queue, started);
        shared.enqueued.notify_waiters();
        Ok(())
    }

    async fn consume(&self, ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<()> {
        let shared_store = ctx.p.store.is_shared();
        let workers = (0..ctx.p.settings.pipeline.workers).map(|_| async move {
            if shared_store {
                queue::consume_until_done(ctx, self, shared).await
            } else {
                queue::consume_local(ctx, self, shared).await
            }
        });
        for r in futures_util::future::join_all(workers).await {
            r?;
        }
        Ok(())
    }

    async fn keep(
        &self,
        ctx: &RunCtx<'_>,
        scored: Vec<ScoredItem>,
        signals: Vec<SeenSignal>,
    ) -> anyhow::Result<()> {
        // Signal events show the account with the tier it holds now (the run has not tiered yet).
        let refs: HashMap<String, AccountRef> = scored
            .iter()
            .map(|s| {
                let a = &s.rescored.account;
                let tier = s.live.unwrap_or(a.tier);
                (
                    a.id.clone(),
                    events::account(&a.id, &a.name, a.domain.as_deref(), tier),
                )
            })
            .collect();
        let mut shadows = Vec::new();
        let rescored: Vec<_> = scored
            .into_iter()
            .map(|s| {
                shadows.extend(s.shadow);
                s.rescored
            })
            .collect();
        let shadow = ctx
            .scorer
            .shadow
            .as_ref()
            .map(|sh| (sh.model.id(), history_at(ctx)));
        let with_events: Vec<(NewSignal, Vec<NewEvent>)> = signals
            .into_iter()
            .map(|seen| {
                let s = seen.signal;
                let event = refs.get(&s.account).and_then(|account| {
                    Event::from_signal(
                        account.clone(),
                        &s.kind,
                        &s.subject,
                        s.date,
                        &s.source,
                        &seen.detail,
                    )
                });
                let events = event
                    .and_then(|e| events::outbox(&ctx.p.webhooks, &e))
                    .into_iter()
                    .collect();
                (s, events)
            })
            .collect();
        let (store, run) = (ctx.p.store.clone(), ctx.run);
        own_task(async move {
            store
                .commit_scores(run, &rescored)
                .await
                .context("commit the batch's scores")?;
            // The shadow model's scores after the live ones: a crash between the two loses only
            // shadow rows, which the next run writes again.
            if let Some((model, at)) = shadow {
                store
                    .record_shadow(run, &model, &shadows, at)
                    .await
                    .context("record the shadow model's scores")?;
            }
            if !with_events.is_empty() {
                store
                    .insert_signals_with_events(Some(run), &with_events)
                    .await
                    .context("record signals")?;
            }
            anyhow::Ok(())
        })
        .await?
    }

    async fn counts(&self, ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<BatchCounts> {
        // Queued items counted by whichever instance took them, plus accounts processed here
        // directly (restored for their signals).
        let mut total = queue::recorded_counts(ctx).await?;
        total.add(&shared.counts.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(total)
    }

    async fn population(&self, ctx: &RunCtx<'_>) -> anyhow::Result<Vec<Member>> {
        tier::population(ctx, &std::collections::HashMap::new()).await
    }

    fn view(&self, ctx: &RunCtx<'_>, _id: &str, state: Option<&AccountState>) -> Option<View> {
        state.map(|s| View::from_state(s, ctx.run))
    }

    async fn deliver(&self, ctx: &RunCtx<'_>, batch_no: usize, plan: PushPlan) -> Delivered {
        let p = ctx.p;
        let step = tierd_core::ScoreStep::new(f64::from(p.settings.pipeline.score_step)).unwrap_or_default();
        let adopted_here = plan.adopted.len() as u64;
        let mut pushed = plan.adopted;
        let mut events = plan.events;
        let mut rejected = Vec::new();
        let mut deferred_reason = None;
        let mut deferred_here = 0u64;
        let mut stop_error = None;
        let mut repaired = 0u64;
        for batch in plan.send.chunks(p.settings.pipeline.push_batch_size.max(1)) {
            match p.connector.push(batch).await {
                Ok(outcomes) => {
                    for (u, o) in batch.iter().zip(outcomes) {
                        match o {
                            PushOutcome::Written => {
                                if plan.repaired.contains(&u.id) {
                                    repaired += 1;
                                }
                                pushed.push(PushRecord {
                                    account: u.id.clone(),
                                    tier: u.tier,
                                    score_bucket: crate::plan::bucket(f64::from(u.score), step),
                                    reason: u.reason.clone(),
                                })
                            }
                            PushOutcome::Rejected { reason, permanent } => {
                                // A refusal is announced once, not again while it stays pending.
                                if !plan.pending_before.contains(&u.id) {
                                    let event = plan.refs.get(&u.id).map(|account| Event::PushRejected {
                                        account: account.clone(),
                                        error: reason.clone(),
                                        permanent,
                                    });
                                    events.extend(event.and_then(|e| events::outbox(&p.webhooks, &e)));
                                }
                                rejected.push(rejection(u, reason, permanent, step))
                            }
                            PushOutcome::Deferred { reason } => {
                                rejected.push(rejection(u, reason.clone(), false, step));
                                deferred_reason = Some(reason);
                                deferred_here += 1;
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => {
                    p.metrics.error("push");
                    stop_error = Some(format!("{}: {e}", p.connector.kind()));
                    break;
                }
            }
            // The CRM takes no more for now: the batch's later calls stay unsent (and unrecorded,
            // so the next run's diff sends them), as the later batches do.
            if deferred_reason.is_some() {
                break;
            }
        }
        let mut delivered = Delivered {
            pushed: pushed.len() as u64 - adopted_here,
            repaired,
            rejected: rejected.len() as u64 - deferred_here,
            deferred: deferred_here,
            stop: None,
        };
        let committing = std::time::Instant::now();
        let commit = BatchCommit {
            run: ctx.run,
            scored: plan.scored,
            pushed,
            rejected,
            cleared: plan.cleared,
            checkpoint: Some(("push".into(), batch_no.to_string())),
            events,
            history_at: history_at(ctx),
        };
        let store = p.store.clone();
        let committed = own_task(async move { store.commit_batch(&commit).await })
            .await
            .and_then(|r| {
                r.inspect_err(|_| p.metrics.error("store"))
                    .map_err(anyhow::Error::from)
            })
            .context("commit a pushed batch");
        ctx.time_since(Stage::Commit, committing);
        if let Err(e) = committed {
            delivered.stop = Some(PushStop::Failed(e));
            return delivered;
        }
        p.metrics.pushes("written", delivered.pushed);
        p.metrics.pushes("rejected", delivered.rejected);
        delivered.stop = match (stop_error, deferred_reason) {
            (Some(e), _) => Some(PushStop::Failed(anyhow::anyhow!(
                "the push stopped: {e}; what was pushed is recorded, the next run resumes"
            ))),
            (None, Some(reason)) => Some(PushStop::Deferred(reason)),
            (None, None) => None,
        };
        delivered
    }

    async fn finish(&self, ctx: &RunCtx<'_>, watermark: Option<String>) -> anyhow::Result<()> {
        if let Some(w) = watermark {
            ctx.p.store.set_watermark(ctx.run, &w).await?;
        }
        Ok(())
    }
}

/// Runs a batch's store writes to their end on a task of their own. The run's workers are
/// futures of one task: while one scores a batch, on that task's thread, a write the other
/// awaits could not send its next statement, and SQLite's write lock stayed held, idle, until
/// the scoring was done. On their own task the writes go on (on another of the runtime's
/// threads). A run that stops waiting (a shutdown) leaves them to finish: each is one
/// transaction, whole or not at all, as before.
async fn own_task<T: Send + 'static>(
    write: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::spawn(write)
        .await
        .map_err(|e| anyhow::anyhow!("a store write stopped before it ended: {e}"))
}

/// When this run's tier changes take effect in the history: on its scoring date when that is
/// pinned (`[pipeline] as_of`: a backfill or a simulation, like the demo's quarter), at the time
/// of day it runs, so the history says which tier each account held on that day and successive
/// runs keep their order; `None` (now) otherwise.
fn history_at(ctx: &RunCtx<'_>) -> Option<tierd_store::Timestamp> {
    const DAY_MS: i64 = 86_400_000;
    ctx.p.settings.pipeline.as_of.as_ref()?;
    let time_of_day = tierd_store::Timestamp::now().millis().rem_euclid(DAY_MS);
    Some(tierd_store::Timestamp::from_millis(
        i64::from(ctx.scorer.as_of.days()) * DAY_MS + time_of_day,
    ))
}

fn rejection(
    u: &tierd_connectors::connector::TierUpdate,
    error: String,
    permanent: bool,
    step: tierd_core::ScoreStep,
) -> RejectedPush {
    RejectedPush {
        account: u.id.clone(),
        tier: u.tier,
        score_bucket: crate::plan::bucket(f64::from(u.score), step),
        reason: u.reason.clone(),
        error,
        permanent,
        retry_after: None,
    }
}
