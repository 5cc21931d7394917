//! Push planning: which tier updates to send, and which to hold back and why.
//!
//! Pure: it takes the new results, what the CRM holds now (from the pull) and what
//! tierd last pushed (supplied by the caller; the store keeps it), and decides. Two
//! rules, both from the design:
//! - **Manual overrides are sacred.** A locked account, or one whose CRM tier differs
//!   from what tierd last pushed (a person changed it), is never overwritten; it is
//!   reported as skipped.
//! - **Push only what changed.** An update goes out only when the tier, the score bucket
//!   (score rounded to a step, 0.1 by default) or the reason differs from the last push,
//!   so a run that changes nothing sends nothing and scores jittering in the third
//!   decimal do not burn API calls.

use std::collections::HashMap;

use tierd_core::tier::Tier;

use crate::connector::{PushOutcome, TierUpdate};

/// What the CRM holds for an account, as the pull saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CrmTierState {
    /// The tier field's value, whoever set it.
    pub crm_tier: Option<Tier>,
    /// Whether the tier is locked by a person.
    pub locked: bool,
}

/// What tierd pushed for an account last time it pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct LastPush {
    /// The tier.
    pub tier: Tier,
    /// The score.
    pub score: f32,
    /// The reason text.
    pub reason: String,
}

impl From<&TierUpdate> for LastPush {
    fn from(u: &TierUpdate) -> LastPush {
        LastPush {
            tier: u.tier,
            score: u.score,
            reason: u.reason.clone(),
        }
    }
}

/// How coarse "the score changed" is.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanOptions {
    /// Scores are compared rounded to this step (0.1: 3.84 and 3.76 are both 3.8).
    pub score_step: f32,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { score_step: 0.1 }
    }
}

impl PlanOptions {
    fn bucket(&self, score: f32) -> i64 {
        let step = if self.score_step > 0.0 {
            self.score_step
        } else {
            0.1
        };
        (score / step).round() as i64
    }
}

/// The outcome of planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushPlan {
    /// Updates to send, in input order.
    pub send: Vec<TierUpdate>,
    /// Updates not sent: (account id, `Unchanged`, `SkippedLocked` or `SkippedOverridden`).
    pub held: Vec<(String, PushOutcome)>,
}

/// Decides what to push. `crm` holds the accounts seen by the pull (an incremental pull
/// sees only some; for the others the CRM's state is unknown and only `last` counts).
pub fn plan_push(
    results: impl IntoIterator<Item = TierUpdate>,
    crm: &HashMap<String, CrmTierState>,
    last: &HashMap<String, LastPush>,
    options: PlanOptions,
) -> PushPlan {
    let mut plan = PushPlan::default();
    for update in results {
        match decide(&update, crm.get(&update.id), last.get(&update.id), options) {
            None => plan.send.push(update),
            Some(outcome) => plan.held.push((update.id, outcome)),
        }
    }
    plan
}

/// `None` to send, or why not.
fn decide(
    update: &TierUpdate,
    crm: Option<&CrmTierState>,
    last: Option<&LastPush>,
    options: PlanOptions,
) -> Option<PushOutcome> {
    if let Some(state) = crm {
        if state.locked {
            return Some(PushOutcome::SkippedLocked);
        }
        if let Some(crm_tier) = state.crm_tier {
            // tierd never pushed here, or pushed something else: the value is a person's.
            if last.is_none_or(|l| l.tier != crm_tier) {
                return Some(PushOutcome::SkippedOverridden { crm_tier });
            }
        }
    }
    match last {
        Some(l)
            if l.tier == update.tier
                && options.bucket(l.score) == options.bucket(update.score)
                && l.reason == update.reason =>
        {
            Some(PushOutcome::Unchanged)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::Watermark;
    use proptest::prelude::*;

    fn update(id: &str, tier: Tier, score: f32, reason: &str) -> TierUpdate {
        TierUpdate {
            id: id.into(),
            tier,
            score,
            coverage: 1.0,
            reason: reason.into(),
            model: "default@1".into(),
            scored_at: Watermark(0),
        }
    }

    fn last(tier: Tier, score: f32, reason: &str) -> LastPush {
        LastPush {
            tier,
            score,
            reason: reason.into(),
        }
    }

    #[test]
    fn skips_locked_and_overridden_and_unchanged() {
        let results = vec![
            update("a", Tier::Tier1, 4.6, "fit"),
            update("b", Tier::Tier2, 3.9, "fit"),
            update("c", Tier::Tier3, 3.1, "fit"),
            update("d", Tier::Tier3, 3.13, "fit"),
            update("e", Tier::Tier2, 3.8, "new"),
        ];
        let crm: HashMap<_, _> = [
            ("a", None, true),
            ("b", Some(Tier::Tier1), false),
            ("c", Some(Tier::Tier3), false),
            ("d", Some(Tier::Tier3), false),
        ]
        .into_iter()
        .map(|(id, t, locked)| {
            let state = CrmTierState { crm_tier: t, locked };
            (id.to_string(), state)
        })
        .collect();
        let last: HashMap<_, _> = [
            ("b", last(Tier::Tier2, 3.9, "fit")),
            ("c", last(Tier::Tier3, 3.2, "fit")),
            ("d", last(Tier::Tier3, 3.12, "fit")),
        ]
        .into_iter()
        .map(|(id, l)| (id.to_string(), l))
        .collect();
        let plan = plan_push(results, &crm, &last, PlanOptions::default());
        let sent: Vec<&str> = plan.send.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(sent, ["c", "e"], "c moved a score bucket, e was never pushed");
        assert_eq!(
            plan.held,
            vec![
                ("a".to_string(), PushOutcome::SkippedLocked),
                (
                    "b".to_string(),
                    PushOutcome::SkippedOverridden {
                        crm_tier: Tier::Tier1
                    }
                ),
                ("d".to_string(), PushOutcome::Unchanged),
            ]
        );
    }

    #[test]
    fn a_tier_set_before_tierd_ever_pushed_is_a_persons() {
        let crm = HashMap::from([(
            "a".to_string(),
            CrmTierState {
                crm_tier: Some(Tier::Tier2),
                locked: false,
            },
        )]);
        let plan = plan_push(
            [update("a", Tier::Tier1, 4.7, "fit")],
            &crm,
            &HashMap::new(),
            PlanOptions::default(),
        );
        assert!(plan.send.is_empty());
    }

    fn tier() -> impl Strategy<Value = Tier> {
        prop::sample::select(Tier::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn never_overwrites_a_person_and_replanning_sends_nothing(
            rows in prop::collection::vec(
                (tier(), 0.0f32..5.0, 0u8..3, any::<bool>(), prop::option::of(tier()),
                 prop::option::of((tier(), 0.0f32..5.0, 0u8..3)), any::<bool>()),
                0..40)
        ) {
            let mut results = Vec::new();
            let mut crm = HashMap::new();
            let mut last = HashMap::new();
            for (i, (t, s, r, locked, crm_tier, prev, pulled)) in rows.iter().enumerate() {
                let id = format!("acc-{i}");
                results.push(update(&id, *t, *s, &format!("reason {r}")));
                if *pulled {
                    crm.insert(id.clone(), CrmTierState { crm_tier: *crm_tier, locked: *locked });
                }
                if let Some((pt, ps, pr)) = prev {
                    last.insert(id.clone(), last_push(*pt, *ps, *pr));
                }
            }
            let plan = plan_push(results.clone(), &crm, &last, PlanOptions::default());
            prop_assert_eq!(plan.send.len() + plan.held.len(), results.len());
            for u in &plan.send {
                if let Some(state) = crm.get(&u.id) {
                    prop_assert!(!state.locked, "locked {} sent", u.id);
                    if let Some(t) = state.crm_tier {
                        let pushed = last.get(&u.id).map(|l| l.tier);
                        prop_assert_eq!(Some(t), pushed, "overridden {} sent", &u.id);
                    }
                }
            }
            // After a successful push the CRM holds what was sent and the store remembers it.
            for u in &plan.send {
                last.insert(u.id.clone(), LastPush::from(u));
                if let Some(state) = crm.get_mut(&u.id) {
                    state.crm_tier = Some(u.tier);
                }
            }
            let again = plan_push(results, &crm, &last, PlanOptions::default());
            prop_assert!(again.send.is_empty(), "second plan sends {:?}", again.send);
        }
    }

    fn last_push(tier: Tier, score: f32, reason: u8) -> LastPush {
        last(tier, score, &format!("reason {reason}"))
    }
}
