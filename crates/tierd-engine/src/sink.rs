//! Where a run's results go: the store and the CRM ([`CommitSink`], full and incremental runs), or
//! memory ([`MemorySink`], dry runs and pilots, which change nothing anywhere).
//!
//! The stages are the same for every run; what differs is only what a sink does with their
//! results: how work items are shared (the store's queue, or processed where they are pulled),
//! where scores are kept, which population tiering sees, what movements compare with, and whether
//! a push plan is sent or only counted.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Context as _;
use tierd_connectors::connector::PushOutcome;
use tierd_core::Tier;
use tierd_store::{AccountState, BatchCommit, NewSignal, PushRecord, RejectedPush, ScoredAccount};

use crate::context::RunCtx;
use crate::stage::push::{PushPlan, View};
use crate::stage::score::ScoredItem;
use crate::stage::tier::Member;
use crate::stage::{self};
use crate::work::{self, BatchCounts, Payload, Shared, WorkAccount};
use crate::RunReport;

/// What a run does with its results.
pub(crate) trait Sink: Sync {
    /// Checks made before anything is pulled.
    async fn prepare(&self, ctx: &RunCtx<'_>) -> anyhow::Result<()>;
    /// A batch of pulled accounts: queued for any instance, or processed here.
    async fn hand_over(
        &self,
        ctx: &RunCtx<'_>,
        batch: Vec<WorkAccount>,
        shared: &Shared,
    ) -> anyhow::Result<()>;
    /// This instance's share of processing queued items, until the run's items are all done.
    async fn consume(&self, ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<()>;
    /// Keeps one processed item's scores and signals.
    async fn keep(
        &self,
        ctx: &RunCtx<'_>,
        scored: Vec<ScoredItem>,
        signals: Vec<NewSignal>,
    ) -> anyhow::Result<()>;
    /// What processing counted, every instance's included.
    async fn counts(&self, ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<BatchCounts>;
    /// The population tiering sees.
    async fn population(&self, ctx: &RunCtx<'_>) -> anyhow::Result<Vec<Member>>;
    /// What the push stage knows of an account: this run's scores, else its stored state.
    fn view(&self, ctx: &RunCtx<'_>, id: &str, state: Option<&AccountState>) -> Option<View>;
    /// Sends (or only counts) one push batch's plan, and keeps its outcome.
    async fn deliver(
        &self,
        ctx: &RunCtx<'_>,
        batch_no: usize,
        plan: PushPlan,
        report: &mut RunReport,
    ) -> anyhow::Result<()>;
    /// The run's last step: records where the next incremental run starts.
    async fn finish(&self, ctx: &RunCtx<'_>, watermark: Option<String>) -> anyhow::Result<()>;
}

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
        let payload = serde_json::to_value(Payload { accounts: batch })?;
        ctx.p.store.enqueue_work(ctx.run, &[payload]).await?;
        shared.enqueued.notify_waiters();
        Ok(())
    }

    async fn consume(&self, ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<()> {
        let workers =
            (0..ctx.p.settings.pipeline.workers).map(|_| work::consume_until_done(ctx, self, shared));
        for r in futures_util::future::join_all(workers).await {
            r?;
        }
        Ok(())
    }

    async fn keep(
        &self,
        ctx: &RunCtx<'_>,
        scored: Vec<ScoredItem>,
        signals: Vec<NewSignal>,
    ) -> anyhow::Result<()> {
        let store = &ctx.p.store;
        let rescored: Vec<_> = scored.into_iter().map(|s| s.rescored).collect();
        store
            .commit_scores(ctx.run, &rescored)
            .await
            .context("commit the batch's scores")?;
        if !signals.is_empty() {
            store
                .insert_signals(Some(ctx.run), &signals)
                .await
                .context("record signals")?;
        }
        Ok(())
    }

    async fn counts(&self, ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<BatchCounts> {
        // Queued items counted by whichever instance took them, plus accounts processed here
        // directly (restored for their signals).
        let mut total = work::recorded_counts(ctx).await?;
        total.add(*shared.counts.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(total)
    }

    async fn population(&self, ctx: &RunCtx<'_>) -> anyhow::Result<Vec<Member>> {
        population_from_store(ctx, &HashMap::new()).await
    }

    fn view(&self, ctx: &RunCtx<'_>, _id: &str, state: Option<&AccountState>) -> Option<View> {
        state.map(|s| View::from_state(s, ctx.run))
    }

    async fn deliver(
        &self,
        ctx: &RunCtx<'_>,
        batch_no: usize,
        plan: PushPlan,
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        let p = ctx.p;
        let step = tierd_core::ScoreStep::new(f64::from(p.settings.pipeline.score_step)).unwrap_or_default();
        let adopted_here = plan.adopted.len() as u64;
        let mut pushed = plan.adopted;
        let mut rejected = Vec::new();
        let mut deferred_reason = None;
        let mut deferred_here = 0u64;
        let mut stop_error = None;
        for batch in plan.send.chunks(p.settings.pipeline.push_batch_size.max(1)) {
            match p.connector.push(batch).await {
                Ok(outcomes) => {
                    for (u, o) in batch.iter().zip(outcomes) {
                        match o {
                            PushOutcome::Written => {
                                if plan.repaired.contains(&u.id) {
                                    report.repaired += 1;
                                }
                                pushed.push(PushRecord {
                                    account: u.id.clone(),
                                    tier: u.tier,
                                    score_bucket: crate::stage::push::bucket(f64::from(u.score), step),
                                    reason: u.reason.clone(),
                                })
                            }
                            PushOutcome::Rejected { reason, permanent } => {
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
        }
        let written = pushed.len() as u64 - adopted_here;
        let refused = rejected.len() as u64 - deferred_here;
        report.deferred += deferred_here;
        report.pushed += written;
        report.rejected += refused;
        p.store
            .commit_batch(&BatchCommit {
                run: ctx.run,
                scored: plan.scored,
                pushed,
                rejected,
                cleared: plan.cleared,
                checkpoint: Some(("push".into(), batch_no.to_string())),
                events: Vec::new(),
            })
            .await
            .inspect_err(|_| p.metrics.error("store"))
            .context("commit a pushed batch")?;
        p.metrics.pushes("written", written);
        p.metrics.pushes("rejected", refused);
        if let Some(e) = stop_error {
            anyhow::bail!("the push stopped: {e}; what was pushed is recorded, the next run resumes");
        }
        if let Some(reason) = deferred_reason {
            anyhow::bail!(
                "the CRM did not take more updates ({reason}); {} deferred to the next run",
                report.deferred
            );
        }
        Ok(())
    }

    async fn finish(&self, ctx: &RunCtx<'_>, watermark: Option<String>) -> anyhow::Result<()> {
        if let Some(w) = watermark {
            ctx.p.store.set_watermark(ctx.run, &w).await?;
        }
        Ok(())
    }
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
        score_bucket: crate::stage::push::bucket(f64::from(u.score), step),
        reason: u.reason.clone(),
        error,
        permanent,
        retry_after: None,
    }
}

/// Dry runs and pilots: items processed where they are pulled, scores kept in memory, nothing
/// stored or pushed; the push plan is only counted.
pub(crate) struct MemorySink {
    /// Pilots tier their own population only; dry runs tier the stored one with their scores
    /// laid over it.
    pilot: bool,
    scored: Mutex<HashMap<String, ScoredItem>>,
}

impl MemorySink {
    pub(crate) fn dry_run() -> Self {
        MemorySink {
            pilot: false,
            scored: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn pilot() -> Self {
        MemorySink {
            pilot: true,
            scored: Mutex::new(HashMap::new()),
        }
    }

    fn scored(&self) -> std::sync::MutexGuard<'_, HashMap<String, ScoredItem>> {
        self.scored.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink for MemorySink {
    async fn prepare(&self, _ctx: &RunCtx<'_>) -> anyhow::Result<()> {
        Ok(())
    }

    async fn hand_over(
        &self,
        ctx: &RunCtx<'_>,
        batch: Vec<WorkAccount>,
        shared: &Shared,
    ) -> anyhow::Result<()> {
        let counts = stage::process(ctx, self, batch).await?;
        shared.merge(counts);
        Ok(())
    }

    async fn consume(&self, _ctx: &RunCtx<'_>, _shared: &Shared) -> anyhow::Result<()> {
        Ok(())
    }

    async fn keep(
        &self,
        _ctx: &RunCtx<'_>,
        scored: Vec<ScoredItem>,
        _signals: Vec<NewSignal>,
    ) -> anyhow::Result<()> {
        let mut kept = self.scored();
        for s in scored {
            kept.insert(s.rescored.account.id.clone(), s);
        }
        Ok(())
    }

    async fn counts(&self, _ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<BatchCounts> {
        Ok(*shared.counts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    async fn population(&self, ctx: &RunCtx<'_>) -> anyhow::Result<Vec<Member>> {
        let overlay: HashMap<String, Member> = self
            .scored()
            .values()
            .map(|s| {
                let a = &s.rescored.account;
                let member = Member {
                    id: a.id.clone(),
                    score: a.score,
                    coverage: a.coverage,
                    potential_value: a.potential_value,
                    base: a.tier,
                    engagement: s.rescored.engagement,
                    stored: s.live,
                    compare: s.live,
                    locked: a.locked,
                };
                (a.id.clone(), member)
            })
            .collect();
        if self.pilot {
            let mut members: Vec<Member> = overlay.into_values().collect();
            members.sort_by(|a, b| a.id.cmp(&b.id));
            return Ok(members);
        }
        population_from_store(ctx, &overlay).await
    }

    fn view(&self, ctx: &RunCtx<'_>, id: &str, state: Option<&AccountState>) -> Option<View> {
        match self.scored().get(id) {
            Some(s) => Some(View::from_scored(s)),
            None => state.map(|s| View::from_state(s, ctx.run)),
        }
    }

    async fn deliver(
        &self,
        _ctx: &RunCtx<'_>,
        _batch_no: usize,
        plan: PushPlan,
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        report.pushed += plan.send.len() as u64;
        report.repaired += plan.repaired.len() as u64;
        Ok(())
    }

    async fn finish(&self, _ctx: &RunCtx<'_>, _watermark: Option<String>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The whole population from the store, paged; `overlay` replaces the accounts a run that keeps
/// nothing scored in memory.
async fn population_from_store(
    ctx: &RunCtx<'_>,
    overlay: &HashMap<String, Member>,
) -> anyhow::Result<Vec<Member>> {
    const PAGE: u32 = 5_000;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let page = ctx.p.store.account_summaries(after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for s in page {
            let stored = s.tiered.then_some(s.tier);
            let member = match overlay.get(&s.id) {
                Some(o) => {
                    seen.insert(o.id.clone());
                    Member {
                        stored,
                        compare: stored,
                        ..o.clone()
                    }
                }
                None => Member {
                    // Committing runs compare with what the CRM was given, except for a person's
                    // lock, which tierd never pushes: it is reported once, when it first decides
                    // the tier. Dry runs compare with the live tier.
                    compare: if overlay.is_empty() && !s.locked {
                        s.pushed_tier
                    } else {
                        stored
                    },
                    engagement: s.engagement,
                    stored,
                    id: s.id,
                    score: s.score,
                    coverage: s.coverage,
                    potential_value: s.potential_value,
                    base: s.base_tier,
                    locked: s.locked,
                },
            };
            out.push(member);
        }
    }
    if seen.len() < overlay.len() {
        let mut fresh: Vec<&Member> = overlay.values().filter(|m| !seen.contains(&m.id)).collect();
        fresh.sort_by(|a, b| a.id.cmp(&b.id));
        out.extend(fresh.into_iter().map(|m| Member {
            stored: None,
            compare: None,
            ..m.clone()
        }));
    }
    Ok(out)
}

/// An account's stored state with its final tier and that tier's reason (what the history
/// records), for the push batch's commit.
pub(crate) fn final_state(s: &AccountState, tier: Tier, reason: &str) -> ScoredAccount {
    ScoredAccount {
        id: s.id.clone(),
        name: s.name.clone(),
        domain: s.domain.clone(),
        facts: s.facts.clone(),
        facts_hash: s.facts_hash.clone(),
        score: s.score,
        coverage: s.coverage,
        potential_value: s.potential_value,
        tier,
        explanation: s.explanation.clone(),
        reason: reason.to_string(),
        model_version: s.model_version.clone(),
        crm_tier_seen: s.crm_tier_seen,
        locked: s.locked,
    }
}
