//! The tier stage, in two steps.
//!
//! Per account, when it is scored ([`basis`]): its base tier (thresholds, hysteresis against its
//! previous base tier in incremental jobs, a person's lock) and until when an engagement override
//! lifts it, stored with the account. Over the whole population, every run ([`decide`]): the lift
//! if it still holds on the run's date, then the pyramid caps. So an expired lift ends on the
//! first run after it expires, rescored or not, and a freed cap seat goes to the next account at
//! once. Both steps are `tierd_core::tier`'s; this module only feeds them.

use tierd_core::model::FactRow;
use tierd_core::tier::{RunKind as TierRunKind, TierCandidate};
use tierd_core::{ScoreCard, Tier};
use tierd_store::{AccountState, Engagement};

use crate::context::RunCtx;
use crate::work::WorkAccount;
use crate::Job;

/// An account's tiering basis.
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

/// The per-account step.
pub(crate) fn basis(
    ctx: &RunCtx<'_>,
    account: &WorkAccount,
    row: &FactRow,
    card: &ScoreCard,
    crm_tier: Option<Tier>,
    prev: Option<&AccountState>,
) -> Basis {
    let scorer = ctx.scorer;
    let lock = account
        .locked
        .then(|| crm_tier.or(prev.map(|p| p.tier)))
        .flatten();
    let candidate = TierCandidate {
        id: account.id.as_str().into(),
        score: card.score,
        potential_value: card.potential_value.unwrap_or(0.0),
        coverage: card.coverage,
        // Hysteresis compares tiers earned by score: the lift and the caps are decided anew.
        previous: prev.map(|p| p.base_tier),
        lock,
        engaged: None,
    };
    let base = scorer
        .per_account
        .assign(std::slice::from_ref(&candidate), tier_run_kind(ctx.job))[0]
        .tier;
    Basis {
        base,
        engagement: engagement_on(&scorer.policy, row, scorer.as_of),
    }
}

/// The engagement that lifts an account on `as_of`, with the last day it keeps lifting it (the
/// latest window of any override that fired; the first override on ties).
fn engagement_on(
    policy: &tierd_core::TierPolicy,
    row: &FactRow,
    as_of: tierd_core::Date,
) -> Option<Engagement> {
    let mut best: Option<Engagement> = None;
    for (i, o) in policy.overrides.iter().enumerate() {
        let Some(tierd_core::fact::FactValue::DateList(dates)) = row.get(o.slot) else {
            continue;
        };
        let within = i32::try_from(o.within_days).unwrap_or(i32::MAX);
        for d in dates {
            if !(0..=within).contains(&d.days_until(as_of)) {
                continue;
            }
            let until = d.add_days(within);
            if best.is_none_or(|b| until > b.until) {
                best = Some(Engagement {
                    until,
                    by: u16::try_from(i).unwrap_or(u16::MAX),
                });
            }
        }
    }
    best
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

/// How tiering decided one account's tier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decided {
    pub(crate) tier: Tier,
    /// The override that lifted it one tier.
    pub(crate) lifted_by: Option<u16>,
    /// The tier a pyramid cap demoted it from.
    pub(crate) capped_from: Option<Tier>,
    /// Kept a person's lock.
    pub(crate) locked: bool,
}

/// The population step: every account's final tier on the run's date.
pub(crate) fn decide(ctx: &RunCtx<'_>, population: &[Member]) -> Vec<Decided> {
    let scorer = ctx.scorer;
    let as_of = scorer.as_of;
    let mut out: Vec<Decided> = population
        .iter()
        .map(|m| {
            let lifting = m.engagement.filter(|e| e.until >= as_of).map(|e| e.by);
            match lifting {
                Some(by) if !m.locked && m.base.lifted() != m.base => Decided {
                    tier: m.base.lifted(),
                    lifted_by: Some(by),
                    capped_from: None,
                    locked: false,
                },
                _ => Decided {
                    tier: m.base,
                    lifted_by: None,
                    capped_from: None,
                    locked: m.locked,
                },
            }
        })
        .collect();
    let n = population.len();
    let candidate = |m: &Member| TierCandidate {
        id: m.id.as_str().into(),
        score: m.score as f32,
        potential_value: m.potential_value,
        coverage: m.coverage as f32,
        previous: None,
        lock: None,
        engaged: None,
    };
    for (i, cap) in scorer.policy.caps.iter().enumerate() {
        let Some(cap) = cap else { continue };
        let capped = Tier::ALL[i];
        let locked_in = (0..n)
            .filter(|&j| population[j].locked && out[j].tier == capped)
            .count();
        let room = cap.limit(n).saturating_sub(locked_in);
        let mut members: Vec<usize> = (0..n)
            .filter(|&j| !population[j].locked && out[j].tier == capped)
            .collect();
        if members.len() <= room {
            continue;
        }
        members.sort_unstable_by(|&a, &b| {
            tierd_core::tier::rank_order(&candidate(&population[a]), &candidate(&population[b]))
        });
        for &j in &members[room..] {
            out[j].capped_from.get_or_insert(capped);
            out[j].tier = capped.demoted();
        }
    }
    out
}

/// An account's reason in a seller's words: what decided its tier (a lock, a cap, a lift), then
/// the score's reasons.
pub(crate) fn final_reason(ctx: &RunCtx<'_>, score_reasons: &str, d: &Decided) -> String {
    let mut out = String::new();
    if d.locked {
        out.push_str(&format!("locked by a person at {}; ", d.tier));
    }
    if let Some(from) = d.capped_from {
        out.push_str(&format!("pyramid cap: {from} is full; "));
    }
    if let Some(by) = d.lifted_by {
        let label = ctx
            .scorer
            .policy
            .overrides
            .get(usize::from(by))
            .map_or("engagement", |o| o.label.as_str());
        out.push_str(&format!("{label} (lifted one tier); "));
    }
    out.push_str(score_reasons);
    out
}
