//! Work items: the unit a run's accounts are processed in (enrich, score, keep), and the loops
//! that take them from the store's queue.
//!
//! A committing run puts its items in the store's work queue so every instance sharing the
//! database can take part ([`consume_one`] on followers, [`consume_until_done`] on the leader);
//! runs that keep nothing process their items where they are pulled (see `sink.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tierd_connectors::connector::CrmAccount;
use tierd_core::codec::{self, StoredFacts};
use tierd_core::FactSchema;
use tierd_store::AccountState;

use crate::context::RunCtx;
use crate::sink::Sink;
use crate::stage;

/// One account in a work item, as the queue carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkAccount {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) crm_tier: Option<String>,
    pub(crate) locked: bool,
    /// The account's own facts (the CRM's or the file's), in the stored form of `tierd_core::codec`.
    pub(crate) facts: Value,
    /// Pulled from the CRM in this run (else restored from the store: CRM state unknown).
    pub(crate) pulled: bool,
}

impl WorkAccount {
    pub(crate) fn from_crm(a: &CrmAccount) -> Self {
        let facts: StoredFacts = a
            .facts
            .iter()
            .map(|(n, f)| (n.clone(), codec::StoredFact::new(f.clone())))
            .collect();
        WorkAccount {
            id: a.id.clone(),
            name: a.name.clone(),
            domain: a.domain.clone(),
            crm_tier: a.crm_tier.map(|t| t.to_string()),
            locked: a.locked,
            facts: codec::encode(&facts),
            pulled: true,
        }
    }

    /// An account restored from the store to be processed again: its own facts as the CRM last
    /// gave them, plugin answers taken out and the values they replaced put back, so plugins
    /// answer from the same input as when it was pulled.
    pub(crate) fn from_state(s: &AccountState, schema: &FactSchema, is_own: impl Fn(&str) -> bool) -> Self {
        let (stored, _) = codec::decode(schema, &s.facts);
        WorkAccount {
            id: s.id.clone(),
            name: Some(s.name.clone()),
            domain: s.domain.clone(),
            crm_tier: s.crm_tier_seen.map(|t| t.to_string()),
            locked: s.locked,
            facts: codec::encode(&codec::own_facts(&stored, is_own)),
            pulled: false,
        }
    }
}

/// A work item's payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) accounts: Vec<WorkAccount>,
}

/// What processing items found, for the run's report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchCounts {
    pub(crate) accounts: u64,
    pub(crate) stale: u64,
    pub(crate) quarantined: u64,
}

impl BatchCounts {
    pub(crate) fn add(&mut self, other: BatchCounts) {
        self.accounts += other.accounts;
        self.stale += other.stale;
        self.quarantined += other.quarantined;
    }
}

/// Shared between the pull, the enqueuer and the local consumers of one run.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) pull_done: AtomicBool,
    pub(crate) enqueued: tokio::sync::Notify,
    pub(crate) counts: Mutex<BatchCounts>,
}

impl Shared {
    pub(crate) fn merge(&self, counts: BatchCounts) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).add(counts);
    }
}

/// Claims and processes one work item of `run`; false when none was queued. The item's counts
/// are recorded with it, so the run's report adds up every instance's work.
pub(crate) async fn consume_one<S: Sink>(ctx: &RunCtx<'_>, sink: &S) -> anyhow::Result<bool> {
    let p = ctx.p;
    let items = p.store.claim_work(ctx.run, &p.instance, 1).await?;
    let Some(item) = items.into_iter().next() else {
        return Ok(false);
    };
    let outcome = match serde_json::from_value::<Payload>(item.payload) {
        Ok(payload) => stage::process(ctx, sink, payload.accounts).await,
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

/// The counts every instance recorded with the items of `run`.
pub(crate) async fn recorded_counts(ctx: &RunCtx<'_>) -> anyhow::Result<BatchCounts> {
    let mut total = BatchCounts::default();
    for result in ctx.p.store.work_results(ctx.run).await? {
        if let Ok(counts) = serde_json::from_value::<BatchCounts>(result) {
            total.add(counts);
        }
    }
    Ok(total)
}
