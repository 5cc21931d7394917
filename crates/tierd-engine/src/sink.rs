//! Where a run's results go: the store and the CRM (`CommitSink`, full and incremental runs), or
//! memory (`MemorySink`, dry runs and pilots, which change nothing anywhere). This module is the
//! contract; the two sinks implement it in `commit_sink.rs` and `memory_sink.rs`.
//!
//! The stages are the same for every run; what differs is only what a sink does with their
//! results: how work items are shared (the store's queue, or processed where they are pulled),
//! where scores are kept, which population tiering sees, what movements compare with, and whether
//! a push plan is sent or only counted.

use tierd_store::AccountState;

use crate::context::RunCtx;
use crate::plan::{PushPlan, View};
use crate::stage::enrich::SeenSignal;
use crate::stage::score::ScoredItem;
use crate::stage::tier::Member;
use crate::work::{BatchCounts, Shared, WorkAccount};

/// What delivering one push batch counted, and whether the push goes on after it. The push stage
/// adds the counts to the run's report.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    /// Updates the CRM took.
    pub pushed: u64,
    /// Of those, tiers written again because the CRM had lost them.
    pub repaired: u64,
    /// Updates the CRM refused.
    pub rejected: u64,
    /// Updates the CRM did not take for now (its limit): retried on the next run.
    pub deferred: u64,
    /// Why no further batch is sent, when one must not be.
    pub stop: Option<PushStop>,
}

/// Why the push stops after a batch.
#[derive(Debug)]
pub(crate) enum PushStop {
    /// The CRM did not take more updates (its reason); the rest wait for the next run.
    Deferred(String),
    /// The batch could not be sent or its outcome not committed: the run fails with this.
    Failed(anyhow::Error),
}

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
        signals: Vec<SeenSignal>,
    ) -> anyhow::Result<()>;
    /// What processing counted, every instance's included.
    async fn counts(&self, ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<BatchCounts>;
    /// The population tiering sees.
    async fn population(&self, ctx: &RunCtx<'_>) -> anyhow::Result<Vec<Member>>;
    /// What the push stage knows of an account: this run's scores, else its stored state.
    fn view(&self, ctx: &RunCtx<'_>, id: &str, state: Option<&AccountState>) -> Option<View>;
    /// Sends (or only counts) one push batch's plan, in calls of `[pipeline] push_batch_size`
    /// updates, and keeps its outcome. Several batches may be in flight at once (`[pipeline]
    /// push_concurrency`); each touches only its own accounts.
    async fn deliver(&self, ctx: &RunCtx<'_>, batch_no: usize, plan: PushPlan) -> Delivered;
    /// The run's last step: records where the next incremental run starts.
    async fn finish(&self, ctx: &RunCtx<'_>, watermark: Option<String>) -> anyhow::Result<()>;
}
