//! The sink of dry runs and pilots: items processed where they are pulled, scores kept in memory,
//! nothing stored or pushed; the push plan is only counted.

use std::collections::HashMap;
use std::sync::Mutex;

use tierd_store::AccountState;

use crate::context::RunCtx;
use crate::plan::{PushPlan, View};
use crate::sink::{Delivered, Sink};
use crate::stage;
use crate::stage::enrich::SeenSignal;
use crate::stage::score::ScoredItem;
use crate::stage::tier::{self, Member};
use crate::work::{BatchCounts, Shared, WorkAccount};

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
        shared.merge(&counts);
        Ok(())
    }

    async fn consume(&self, _ctx: &RunCtx<'_>, _shared: &Shared) -> anyhow::Result<()> {
        Ok(())
    }

    async fn keep(
        &self,
        _ctx: &RunCtx<'_>,
        scored: Vec<ScoredItem>,
        _signals: Vec<SeenSignal>,
    ) -> anyhow::Result<()> {
        let mut kept = self.scored();
        for s in scored {
            kept.insert(s.rescored.account.id.clone(), s);
        }
        Ok(())
    }

    async fn counts(&self, _ctx: &RunCtx<'_>, shared: &Shared) -> anyhow::Result<BatchCounts> {
        Ok(shared.counts.lock().unwrap_or_else(|e| e.into_inner()).clone())
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
        tier::population(ctx, &overlay).await
    }

    fn view(&self, ctx: &RunCtx<'_>, id: &str, state: Option<&AccountState>) -> Option<View> {
        match self.scored().get(id) {
            Some(s) => Some(View::from_scored(s)),
            None => state.map(|s| View::from_state(s, ctx.run)),
        }
    }

    async fn deliver(&self, _ctx: &RunCtx<'_>, _batch_no: usize, plan: PushPlan) -> Delivered {
        Delivered {
            pushed: plan.send.len() as u64,
            repaired: plan.repaired.len() as u64,
            ..Delivered::default()
        }
    }

    async fn finish(&self, _ctx: &RunCtx<'_>, _watermark: Option<String>) -> anyhow::Result<()> {
        Ok(())
    }
}
