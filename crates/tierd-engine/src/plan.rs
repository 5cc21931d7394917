//! What the push stage hands a sink: one push batch's plan, and what it knows of an account.
//! Types only (and the bucket rounding they share), so the sinks and the push stage both read them
//! without depending on each other.

use tierd_connectors::connector::TierUpdate;
use tierd_connectors::plan::LastPush;
use tierd_core::tier::Assignment;
use tierd_core::{ScoreBucket, ScoreStep, Tier};
use tierd_store::{AccountState, PushRecord, RunId, ScoredAccount, Timestamp};

use crate::stage::score::{last_push_of, ScoredItem};

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
    pub(crate) refs: std::collections::HashMap<String, tierd_activation::webhooks::AccountRef>,
    /// Of `send`, the accounts already refused before (a refusal is announced once).
    pub(crate) pending_before: std::collections::HashSet<String>,
}

/// What the push stage needs of one account, from the store or from memory.
pub(crate) struct View {
    pub(crate) name: String,
    pub(crate) score: f64,
    pub(crate) coverage: f64,
    pub(crate) reason: String,
    pub(crate) model: String,
    pub(crate) scored_at: i64,
    pub(crate) locked: bool,
    pub(crate) crm_tier: Option<Tier>,
    pub(crate) pulled_now: bool,
    pub(crate) last_push: Option<LastPush>,
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

/// An account's stored state with its final tier and that tier's reason (what the history
/// records), for the push batch's commit.
pub(crate) fn final_state(s: &AccountState, tier: Tier, reason: &str) -> ScoredAccount {
    ScoredAccount {
        id: s.id.clone(),
        name: s.name.clone(),
        domain: s.domain.clone(),
        facts: (&s.facts).into(),
        facts_hash: s.facts_hash.clone(),
        score: s.score,
        coverage: s.coverage,
        potential_value: s.potential_value,
        tier,
        explanation: (&s.explanation).into(),
        reason: reason.to_string(),
        model_version: s.model_version.clone(),
        crm_tier_seen: s.crm_tier_seen,
        locked: s.locked,
    }
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
