//! The score stage: one work item's enriched facts to scores, reasons and each account's tiering
//! basis (its base tier and engagement window, see `stage::tier`), ready for the run's sink.

use std::collections::HashMap;

use tierd_connectors::plan::LastPush;
use tierd_core::codec::{self, StoredFacts};
use tierd_core::Tier;
use tierd_store::{AccountState, JsonText, Rescored, ScoredAccount, ShadowScore};

use crate::context::RunCtx;
use crate::stage::tier;
use crate::work::WorkAccount;
use crate::Scorer;

/// One account scored by this run, before tiering.
#[derive(Debug, Clone)]
pub(crate) struct ScoredItem {
    /// Its new state: `account.tier` is its base tier (before the lift and the caps).
    pub(crate) rescored: Rescored,
    /// Its tier before this run, if it had one.
    pub(crate) live: Option<Tier>,
    /// What was last pushed for it.
    pub(crate) last_push: Option<LastPush>,
    /// The shadow model's score and tier (`[shadow]`), never pushed.
    pub(crate) shadow: Option<ShadowScore>,
}

/// The shadow model's score and tier of one account: thresholds and the engagement lift of the
/// live policy; no caps, hysteresis or locks (those are decisions about the live population and
/// people's choices, not the model's). `None` when the account's facts do not fit the shadow
/// model (logged; the live score goes on).
fn shadow_of(shadow: &Scorer, id: &str, current: &tierd_core::fact::Facts) -> Option<ShadowScore> {
    let row = match shadow.schema.row_from(current) {
        Ok(row) => row,
        Err(e) => {
            tracing::warn!(account = %id, error = %e, "account left out of the shadow model");
            return None;
        }
    };
    let card = shadow.model.score(&row, shadow.as_of);
    let base = shadow.policy.tier_for(card.score);
    let tier = match shadow.policy.engagement_on(&row, shadow.as_of) {
        Some(_) => base.lifted(),
        None => base,
    };
    Some(ShadowScore {
        account: id.to_owned(),
        score: f64::from(card.score),
        tier,
    })
}

/// What tierd last pushed for an account, as the push planner compares it.
pub(crate) fn last_push_of(s: &AccountState) -> Option<LastPush> {
    s.pushed.as_ref().map(|p| LastPush {
        tier: p.tier,
        score: p.score_bucket as f32,
        reason: p.reason.clone(),
    })
}

/// Scores `accounts` with their enriched `facts`; an account whose facts do not fit the model is
/// left out and counted in `quarantined`.
pub(crate) fn score(
    ctx: &RunCtx<'_>,
    accounts: &[WorkAccount],
    facts: Vec<StoredFacts>,
    previous: &HashMap<String, AccountState>,
    quarantined: &mut u64,
) -> Vec<ScoredItem> {
    let scorer = ctx.scorer;
    let model_version = scorer.model.id();
    let mut out = Vec::with_capacity(accounts.len());
    for (account, stored) in accounts.iter().zip(facts) {
        let current = codec::current(&stored);
        let row = match scorer.schema.row_from(&current) {
            Ok(row) => row,
            Err(e) => {
                *quarantined += 1;
                tracing::warn!(account = %account.id, error = %e, "account left out of the run");
                continue;
            }
        };
        // An event dated after the scoring date has not happened: it neither scores nor lifts.
        for future in scorer.schema.future_events(&row, scorer.as_of) {
            tracing::warn!(account = %account.id, fact = %future.fact, "{future}");
        }
        let card = scorer.model.score(&row, scorer.as_of);
        let mut reason = String::new();
        scorer.model.compact_reasons(
            &row,
            &card,
            scorer.as_of,
            scorer.reasons.0,
            scorer.reasons.1,
            &mut reason,
        );
        let prev = previous.get(&account.id);
        let crm_tier: Option<Tier> = account.crm_tier.as_deref().and_then(|t| t.parse().ok());
        let basis = tier::basis(ctx, account, &row, &card, crm_tier, prev);
        let name = account
            .name
            .clone()
            .or_else(|| prev.map(|p| p.name.clone()))
            .unwrap_or_else(|| account.id.clone());
        let explanation = scorer.model.explain(&row, &card, scorer.as_of);
        let shadow = scorer
            .shadow
            .as_deref()
            .and_then(|sh| shadow_of(sh, &account.id, &current));
        let facts = JsonText::of(&codec::Encoded(&stored));
        let facts_hash = format!("{:016x}", tierd_core::hash::fnv1a(facts.as_str().as_bytes()));
        out.push(ScoredItem {
            rescored: Rescored {
                account: ScoredAccount {
                    id: account.id.clone(),
                    name,
                    domain: account.domain.clone(),
                    facts,
                    facts_hash,
                    score: f64::from(card.score),
                    coverage: f64::from(card.coverage),
                    potential_value: card.potential_value.unwrap_or(0.0),
                    tier: basis.base,
                    explanation: JsonText::explanation(
                        &StoredExplanation {
                            as_of: scorer.as_of,
                            detail: &explanation,
                        },
                        &reason,
                    ),
                    reason,
                    model_version: model_version.clone(),
                    crm_tier_seen: crm_tier,
                    locked: account.locked,
                },
                engagement: basis.engagement,
            },
            live: prev.map(|p| p.tier),
            last_push: prev.and_then(last_push_of),
            shadow,
        });
    }
    out
}

/// An account's stored explanation but its reasons: the scoring date and the scorer's detail.
/// [`JsonText::explanation`] writes it straight to text and adds the reasons, in a seller's
/// words, last (keys in the order `json!` gave them).
#[derive(serde::Serialize)]
struct StoredExplanation<'a> {
    as_of: tierd_core::Date,
    detail: &'a tierd_core::explain::Explanation,
}
