//! The push stage: final tiers to push plans, batch by batch, each handed to the run's sink
//! (which sends and commits it, or only counts it).
//!
//! Only what changed is sent (`tierd_connectors::plan::plan_push`), never over a person's lock or
//! edit. The adoption rule closes the one crash window left (see the crate doc): when the CRM
//! already holds exactly the tier tierd is about to push for an account pulled in this run, the
//! value is recorded as pushed without writing it again.

use std::collections::HashMap;

use futures_util::stream::{FuturesOrdered, StreamExt as _};
use tierd_connectors::connector::{PushOutcome, TierUpdate, Watermark};
use tierd_connectors::plan::{plan_push, CrmTierState, LastPush, PlanOptions};
use tierd_core::tier::Assignment;
use tierd_core::ScoreStep;
use tierd_store::{AccountState, PushRecord, Timestamp};

use crate::context::RunCtx;
use crate::events;
use crate::plan::{bucket, final_state, Ending, Final, PushPlan, View};
use crate::shutdown::ShutdownSignal;
use crate::sink::{Delivered, PushStop, Sink};
use crate::stage::tier::final_reason;
use crate::timings::Stage;
use crate::{MovementLine, Progress, RunReport};

/// Plans and delivers the final tiers, batch by batch.
pub(crate) async fn push<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    to_finalize: Vec<Final>,
    report: &mut RunReport,
    shutdown: &ShutdownSignal,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<Ending> {
    let p = ctx.p;
    let options = PlanOptions {
        // `PipelineSettings::problems` keeps the step within (0, 5].
        score_step: ScoreStep::new(f64::from(p.settings.pipeline.score_step)).unwrap_or_default(),
        respect_cleared: p.settings.pipeline.respect_cleared,
    };
    let pending: HashMap<String, tierd_store::PendingPush> = p
        .store
        .pending_pushes(true)
        .await?
        .into_iter()
        .map(|pp| (pp.account.clone(), pp))
        .collect();
    if let Some(pr) = progress {
        pr.stage("push", Some(to_finalize.len() as u64));
    }
    let top = p.settings.pipeline.top_movements;
    let now = Timestamp::now();
    // A batch is several push calls whose outcomes commit together (`Sink::deliver`).
    let batch_size =
        p.settings.pipeline.push_batch_size.max(1) * p.settings.pipeline.push_calls_per_commit.max(1);
    let batches: Vec<&[Final]> = to_finalize.chunks(batch_size).collect();
    // Runs that keep nothing read the accounts too: those they did not rescore may still move.
    // The next batch's are read while this one is delivered (a batch's delivery writes only its
    // own accounts, and an account is in one batch), so the store's reads and writes overlap.
    let read_states = |batch: Option<&&[Final]>| {
        let ids: Vec<String> = batch.map_or_else(Vec::new, |b| b.iter().map(|f| f.id.clone()).collect());
        async move {
            if ids.is_empty() {
                Ok(HashMap::new())
            } else {
                p.store.accounts_for_push(&ids).await
            }
        }
    };
    let concurrency = p.settings.pipeline.push_concurrency.max(1);
    // Batches in flight, settled in batch order so the report and the error do not depend on
    // which commit the store finished first.
    let mut in_flight = FuturesOrdered::new();
    let mut stop: Option<PushStop> = None;
    let mut ending = Ending::Done;
    let mut states = read_states(batches.first()).await?;
    for (batch_no, &chunk) in batches.iter().enumerate() {
        if stop.is_some() {
            break;
        }
        if *shutdown.borrow() {
            ending = Ending::Stopped;
            break;
        }
        let planning = std::time::Instant::now();
        let mut updates = Vec::new();
        let mut crm: HashMap<String, CrmTierState> = HashMap::new();
        let mut last: HashMap<String, LastPush> = HashMap::new();
        let mut plan = PushPlan {
            send: Vec::new(),
            adopted: Vec::new(),
            scored: Vec::new(),
            cleared: Vec::new(),
            repaired: Default::default(),
            events: Vec::new(),
            refs: HashMap::new(),
            pending_before: Default::default(),
        };
        let mut held_rejected = 0u64;
        for Final { id, compare, decided } in chunk {
            let tier = decided.tier;
            let Some(mut view) = sink.view(ctx, id, states.get(id)) else {
                continue;
            };
            view.reason = final_reason(ctx, &view.reason, decided);
            if *compare != Some(tier) && report.top_movements.len() < top {
                report.top_movements.push(MovementLine {
                    id: id.clone(),
                    name: view.name.clone(),
                    from: *compare,
                    to: tier,
                    reason: view.reason.clone(),
                });
            }
            if let Some(state) = states.get(id) {
                if state.tier != tier || !state.tiered {
                    plan.scored.push(final_state(state, tier, &view.reason));
                    plan.events.extend(committed_events(ctx, state, decided, &view));
                }
            }
            if let Some(l) = &view.last_push {
                last.insert(id.clone(), l.clone());
            }
            // The adoption rule (crate doc): the CRM already holds what tierd is about to write.
            if view.pulled_now
                && !view.locked
                && view.crm_tier == Some(tier)
                && view.last_push.as_ref().map(|l| l.tier) != Some(tier)
            {
                plan.adopted.push(PushRecord {
                    account: id.clone(),
                    tier,
                    score_bucket: bucket(view.score, options.score_step),
                    reason: view.reason.clone(),
                });
                continue;
            }
            if let Some(pp) = pending.get(id) {
                if pp.tier == tier && (pp.permanent || pp.next_attempt_at > now) {
                    held_rejected += 1;
                    continue;
                }
            }
            if pending.contains_key(id) {
                plan.pending_before.insert(id.clone());
            }
            if let Some(state) = states.get(id) {
                plan.refs.insert(
                    id.clone(),
                    events::account(&state.id, &state.name, state.domain.as_deref(), tier),
                );
            }
            crm.insert(
                id.clone(),
                CrmTierState {
                    crm_tier: if view.pulled_now { view.crm_tier } else { None },
                    locked: view.locked,
                },
            );
            updates.push(TierUpdate {
                id: id.clone(),
                tier,
                score: view.score as f32,
                coverage: view.coverage as f32,
                reason: view.reason,
                model: view.model,
                scored_at: Watermark(view.scored_at),
            });
        }
        report.rejected += held_rejected;
        let planned = plan_push(updates, &crm, &last, options);
        for (id, outcome) in &planned.held {
            match outcome {
                PushOutcome::Unchanged => {
                    report.unchanged += 1;
                    if pending.contains_key(id) {
                        plan.cleared.push(id.clone());
                    }
                }
                PushOutcome::SkippedLocked => report.skipped_locked += 1,
                PushOutcome::SkippedOverridden { .. } => report.skipped_overridden += 1,
                _ => {}
            }
        }
        plan.send = planned.send;
        plan.repaired = planned.repaired.into_iter().collect();
        ctx.time_since(Stage::Push, planning);
        in_flight.push_back(async move { (sink.deliver(ctx, batch_no, plan).await, chunk.len()) });
        // The next batch's accounts are read while batches are delivered; it is planned once a
        // batch in flight has settled, if `concurrency` are.
        let read = read_states(batches.get(batch_no + 1));
        tokio::pin!(read);
        let mut next = None;
        while next.is_none() || in_flight.len() >= concurrency {
            tokio::select! {
                r = &mut read, if next.is_none() => next = Some(r),
                Some((delivered, n)) = in_flight.next() => settle(report, delivered, n, &mut stop, progress),
            }
        }
        match next {
            Some(Ok(read)) => states = read,
            Some(Err(e)) => {
                stop.get_or_insert(PushStop::Failed(e.into()));
            }
            None => {}
        }
    }
    // What is in flight is sent and committed before the stage ends, whatever stopped it.
    while let Some((delivered, n)) = in_flight.next().await {
        settle(report, delivered, n, &mut stop, progress);
    }
    for (outcome, n) in [
        ("unchanged", report.unchanged),
        ("skipped_locked", report.skipped_locked),
        ("skipped_overridden", report.skipped_overridden),
        ("deferred", report.deferred),
    ] {
        p.metrics.pushes(outcome, n);
    }
    match stop {
        Some(PushStop::Failed(e)) => Err(e),
        Some(PushStop::Deferred(reason)) => Err(anyhow::anyhow!(
            "the CRM did not take more updates ({reason}); {} deferred to the next run",
            report.deferred
        )),
        None => Ok(ending),
    }
}

/// Adds a settled batch of `n` accounts to the report; the first reason to stop is kept.
fn settle(
    report: &mut RunReport,
    delivered: Delivered,
    n: usize,
    stop: &mut Option<PushStop>,
    progress: Option<&dyn Progress>,
) {
    report.pushed += delivered.pushed;
    report.repaired += delivered.repaired;
    report.rejected += delivered.rejected;
    report.deferred += delivered.deferred;
    if let Some(s) = delivered.stop {
        stop.get_or_insert(s);
    }
    if let Some(pr) = progress {
        pr.advance(n as u64);
    }
}

/// The events of committing an account's final `decided` tier over its stored `state`:
/// `tier.changed` for a real move (not a first tiering), `account.locked` when a person's lock
/// decided the tier.
fn committed_events(
    ctx: &RunCtx<'_>,
    state: &AccountState,
    decided: &Assignment,
    view: &View,
) -> Vec<tierd_store::NewEvent> {
    let webhooks = &ctx.p.webhooks;
    let tier = decided.tier;
    let account = events::account(&state.id, &state.name, state.domain.as_deref(), tier);
    let mut out = Vec::new();
    if state.tiered && state.tier != tier {
        let event = tierd_activation::webhooks::Event::TierChanged {
            account: account.clone(),
            from: Some(state.tier),
            score: (view.score * 1000.0).round() / 1000.0,
            reason: view.reason.clone(),
            run: Some(ctx.run.0),
        };
        out.extend(events::outbox(webhooks, &event));
    }
    if decided.decision.locked {
        let event = tierd_activation::webhooks::Event::AccountLocked {
            account,
            tierd_tier: crate::stage::tier::unlocked_tier(ctx, state),
        };
        out.extend(events::outbox(webhooks, &event));
    }
    out
}
