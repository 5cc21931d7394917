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
        signals: Vec<SeenSignal>,
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
