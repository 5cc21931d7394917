//! The push stage: final tiers to push plans, batch by batch, each handed to the run's sink
//! (which sends and commits it, or only counts it).
//!
//! Only what changed is sent (`tierd_connectors::plan::plan_push`), never over a person's lock or
//! edit. The adoption rule closes the one crash window left (see the crate doc): when the CRM
//! already holds exactly the tier tierd is about to push for an account pulled in this run, the
//! value is recorded as pushed without writing it again.

use std::collections::HashMap;

use tierd_connectors::connector::{PushOutcome, TierUpdate, Watermark};
use tierd_connectors::plan::{plan_push, CrmTierState, LastPush, PlanOptions};
use tierd_core::{ScoreBucket, ScoreStep, Tier};
use tierd_store::{AccountState, PushRecord, RunId, ScoredAccount, Timestamp};

use crate::context::RunCtx;
use crate::events;
use crate::shutdown::ShutdownSignal;
use crate::sink::{final_state, Sink};
use crate::stage::score::{last_push_of, ScoredItem};
use crate::stage::tier::final_reason;
use crate::{MovementLine, Progress, RunReport};
use tierd_core::tier::Assignment;

/// The score bucket the store keeps for a push (`ScoreBucket`: one rounding for every path).
pub(crate) fn bucket(score: f64, step: ScoreStep) -> f64 {
    ScoreBucket::of(score as f32, step).points()
}

/// One account the push stage looks at.
pub(crate) struct Final {
    pub(crate) id: String,
    pub(crate) compare: Option<Tier>,
    pub(crate) decided: Assignment,
}

/// One push batch's plan, for the sink.
pub(crate) struct PushPlan {
    /// Updates to write.
    pub(crate) send: Vec<TierUpdate>,
    /// Recorded as pushed without a write (the adoption rule).
    pub(crate) adopted: Vec<PushRecord>,
    /// Accounts whose final tier or reason is new, to store with the outcome.
    pub(crate) scored: Vec<ScoredAccount>,
    /// Pending pushes no longer wanted.
    pub(crate) cleared: Vec<String>,
    /// Of `send`, the accounts whose tier the CRM had lost.
    pub(crate) repaired: std::collections::HashSet<String>,
    /// Webhook events of this batch's commit (`tier.changed`, `account.locked`), committed with
    /// it; the sink adds `push.rejected` for first refusals.
    pub(crate) events: Vec<tierd_store::NewEvent>,
    /// Of `send`, each account as events show it (with the tier to be written).
    pub(crate) refs: HashMap<String, tierd_activation::webhooks::AccountRef>,
    /// Of `send`, the accounts already refused before (a refusal is announced once).
    pub(crate) pending_before: std::collections::HashSet<String>,
}

/// What the push stage needs of one account, from the store or from memory.
pub(crate) struct View {
    name: String,
    score: f64,
    coverage: f64,
    reason: String,
    model: String,
    scored_at: i64,
    locked: bool,
    crm_tier: Option<Tier>,
    pulled_now: bool,
    last_push: Option<LastPush>,
}

impl View {
    pub(crate) fn from_state(s: &AccountState, run: RunId) -> View {
        View {
            name: s.name.clone(),
            score: s.score,
            coverage: s.coverage,
            reason: s.explanation["reasons"].as_str().unwrap_or_default().to_string(),
            model: s.model_version.clone(),
            scored_at: s.scored_at.millis(),
            locked: s.locked,
            crm_tier: s.crm_tier_seen,
            pulled_now: s.updated_run == Some(run),
            last_push: last_push_of(s),
        }
    }

    pub(crate) fn from_scored(s: &ScoredItem) -> View {
        let a = &s.rescored.account;
        View {
            name: a.name.clone(),
            score: a.score,
            coverage: a.coverage,
            reason: a.reason.clone(),
            model: a.model_version.clone(),
            scored_at: Timestamp::now().millis(),
            locked: a.locked,
            crm_tier: a.crm_tier_seen,
            pulled_now: true,
            last_push: s.last_push.clone(),
        }
    }
}

/// How the push stage ended.
pub(crate) enum Ending {
    Done,
    Stopped,
}

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
    for (batch_no, chunk) in to_finalize
        .chunks(p.settings.pipeline.push_batch_size.max(1))
        .enumerate()
    {
        if *shutdown.borrow() {
            return Ok(Ending::Stopped);
        }
        let ids: Vec<String> = chunk.iter().map(|f| f.id.clone()).collect();
        // Runs that keep nothing read them too: accounts they did not rescore may still move.
        let states = p.store.accounts(&ids).await?;
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
        sink.deliver(ctx, batch_no, plan, report).await?;
        if let Some(pr) = progress {
            pr.advance(chunk.len() as u64);
        }
    }
    for (outcome, n) in [
        ("unchanged", report.unchanged),
        ("skipped_locked", report.skipped_locked),
        ("skipped_overridden", report.skipped_overridden),
        ("deferred", report.deferred),
    ] {
        p.metrics.pushes(outcome, n);
    }
    Ok(Ending::Done)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_buckets_round_to_the_step() {
        let step = ScoreStep::new(0.1).expect("step");
        assert!((bucket(3.84, step) - 3.8).abs() < 1e-6);
        assert!((bucket(3.86, step) - 3.9).abs() < 1e-6);
        // Regression (issue 12 #7): a score on a half step is one bucket on every path.
        assert!((bucket(2.75, step) - 2.8).abs() < 1e-6);
    }
}
