//! The tier stage, in two steps.
//!
//! Per account, when it is scored ([`basis`]): its base tier (thresholds, hysteresis against its
//! previous base tier in incremental jobs, a person's lock) and until when an engagement override
//! lifts it, stored with the account. Over the whole population, every run ([`decide`]): the lift
//! if it still holds on the run's date, then the pyramid caps. So an expired lift ends on the
//! first run after it expires, rescored or not, and a freed cap seat goes to the next account at
//! once. Both steps are `tierd_core::tier`'s; this module only feeds them.

use std::collections::HashMap;

use tierd_core::model::FactRow;
use tierd_core::tier::{Assignment, Lock, RunKind as TierRunKind, TierBasis, TierCandidate, TierMember};
use tierd_core::{ScoreCard, Tier};
use tierd_store::{AccountState, Engagement};

use crate::context::RunCtx;
use crate::work::WorkAccount;
use crate::Job;

/// An account's tiering basis, as the store keeps it.
pub(crate) struct Basis {
    pub(crate) base: Tier,
    pub(crate) engagement: Option<Engagement>,
}

fn tier_run_kind(job: Job) -> TierRunKind {
    match job {
        Job::Full => TierRunKind::Full,
        Job::Incremental => TierRunKind::Incremental,
    }
}

/// The store's engagement window as tiering reads it.
fn window(e: Option<Engagement>) -> Option<tierd_core::tier::Engagement> {
    e.map(|e| tierd_core::tier::Engagement {
        until: e.until,
        by: e.by,
    })
}

/// The per-account step (`TierPolicy::basis`).
pub(crate) fn basis(
    ctx: &RunCtx<'_>,
    account: &WorkAccount,
    row: &FactRow,
    card: &ScoreCard,
    crm_tier: Option<Tier>,
    prev: Option<&AccountState>,
) -> Basis {
    let policy = &ctx.scorer.policy;
    let engagement = policy.engagement_on(row, ctx.scorer.as_of);
    let candidate = TierCandidate {
        id: account.id.as_str().into(),
        score: card.score,
        potential_value: card.potential_value.unwrap_or(0.0),
        coverage: card.coverage,
        // Hysteresis compares tiers earned by score: the lift and the caps are decided anew.
        previous: prev.map(|p| p.base_tier),
        lock: Lock::from_crm(account.locked, crm_tier.or(prev.map(|p| p.tier))),
        engagement,
    };
    let b = policy.basis(&candidate, tier_run_kind(ctx.job));
    Basis {
        base: b.base,
        engagement: b.engagement.map(|e| Engagement {
            until: e.until,
            by: e.by,
        }),
    }
}

/// What tiering needs of one account.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) score: f64,
    pub(crate) coverage: f64,
    pub(crate) potential_value: f64,
    /// Its tier by thresholds, hysteresis and lock (as of its last scoring).
    pub(crate) base: Tier,
    /// Its engagement window.
    pub(crate) engagement: Option<Engagement>,
    /// Its tier before this run (`None`: never tiered).
    pub(crate) stored: Option<Tier>,
    /// What movements compare with (see the sinks).
    pub(crate) compare: Option<Tier>,
    pub(crate) locked: bool,
}

/// The population step (`TierPolicy::decide`): every account's final tier on the run's date.
pub(crate) fn decide(ctx: &RunCtx<'_>, population: &[Member]) -> Vec<Assignment> {
    let members: Vec<TierMember> = population
        .iter()
        .map(|m| TierMember {
            id: m.id.as_str().into(),
            score: m.score as f32,
            potential_value: m.potential_value,
            coverage: m.coverage as f32,
            basis: TierBasis {
                base: m.base,
                held_by_hysteresis: false,
                locked: m.locked,
                engagement: window(m.engagement),
            },
        })
        .collect();
    let policy = &ctx.scorer.policy;
    if !policy.has_budget_caps() {
        return policy.decide(&members, ctx.scorer.as_of);
    }
    // Caps sized from the budget: the seats its total buys for this run's candidates.
    let candidates = policy.candidates(&members, ctx.scorer.as_of);
    let seats = ctx.p.settings.budget.as_ref().and_then(|b| b.seats(candidates));
    match seats {
        Some(plan) => {
            tracing::info!(
                tier_1_seats = plan.tier_1_seats,
                tier_2_seats = plan.tier_2_seats,
                shortfall = plan.shortfall,
                "pyramid caps sized from the budget"
            );
            policy
                .with_budget_caps(plan.caps())
                .decide(&members, ctx.scorer.as_of)
        }
        // Configuration checks refuse budget caps without a total; never reached.
        None => policy.decide(&members, ctx.scorer.as_of),
    }
}

/// An account's reason in a seller's words: what decided its tier, then the score's reasons.
pub(crate) fn final_reason(ctx: &RunCtx<'_>, score_reasons: &str, d: &Assignment) -> String {
    ctx.scorer.policy.reason(d, score_reasons)
}

/// The whole population from the store, paged; `overlay` replaces the accounts a run that keeps
/// nothing scored in memory.
pub(crate) async fn population(
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

/// The tier tierd would give a locked account by its score (thresholds and hysteresis, before
/// the lift and the caps): what `account.locked` reports beside the person's tier.
pub(crate) fn unlocked_tier(ctx: &RunCtx<'_>, state: &AccountState) -> Tier {
    let candidate = TierCandidate {
        id: state.id.as_str().into(),
        score: state.score as f32,
        potential_value: state.potential_value,
        coverage: state.coverage as f32,
        previous: None,
        lock: Lock::Unlocked,
        engagement: None,
    };
    ctx.scorer.policy.basis(&candidate, TierRunKind::Full).base
}
