//! Push planning: which tier updates to send, and which to hold back and why.
//!
//! Pure: it takes the new results, what the CRM holds now (from the pull) and what
//! tierd last pushed (supplied by the caller; the store keeps it), and decides. Two
//! rules, both from the design:
//! - **Manual overrides are sacred.** A locked account, or one whose CRM tier differs
//!   from what tierd last pushed (a person changed it), is never overwritten; it is
//!   reported as skipped.
//! - **Push only what changed.** An update goes out only when the tier, the score bucket
//!   (score rounded to a step, 0.1 by default) or the reason's substance differs from the last
//!   push (which criteria, in which order and direction; not the counts inside them, so "renewal
//!   in 70 days" becoming "69 days" is no news), so a run that changes nothing sends nothing and
//!   scores jittering in the third decimal do not burn API calls.
//! - **What the CRM lost is written again.** When the pull shows the tier field empty although
//!   tierd pushed a tier there (cleared by hand, a restored or new CRM), the update is sent again
//!   and counted as a repair, unless `respect_cleared` says an emptied field is a person's choice;
//!   then it is held as overridden.

use std::collections::HashMap;

use tierd_core::tier::Tier;
use tierd_core::{ScoreBucket, ScoreStep};

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
    /// The score pushed, or its bucket's score ([`ScoreBucket::points`], as the store keeps
    /// it): either falls in the same bucket.
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
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanOptions {
    /// Scores are compared in buckets of this step (0.1: 3.84 and 3.76 are both 3.8).
    pub score_step: ScoreStep,
    /// An emptied tier field is a person's choice: hold it as overridden instead of writing the
    /// tier again.
    pub respect_cleared: bool,
}

impl PlanOptions {
    fn bucket(&self, score: f32) -> ScoreBucket {
        ScoreBucket::of(score, self.score_step)
    }
}

/// The outcome of planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushPlan {
    /// Updates to send, in input order.
    pub send: Vec<TierUpdate>,
    /// Updates not sent: (account id, `Unchanged`, `SkippedLocked` or `SkippedOverridden`).
    pub held: Vec<(String, PushOutcome)>,
    /// Of `send`, the accounts whose tier the CRM had lost (an emptied field).
    pub repaired: Vec<String>,
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
        let state = crm.get(&update.id);
        let prior = last.get(&update.id);
        match decide(&update, state, prior, options) {
            None => {
                if lost(state, prior) {
                    plan.repaired.push(update.id.clone());
                }
                plan.send.push(update);
            }
            Some(outcome) => plan.held.push((update.id, outcome)),
        }
    }
    plan
}

/// The pull saw the tier field empty where tierd had pushed a tier.
fn lost(crm: Option<&CrmTierState>, last: Option<&LastPush>) -> bool {
    let empty = crm.is_some_and(|s| s.crm_tier.is_none());
    empty && last.is_some()
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
                return Some(PushOutcome::SkippedOverridden {
                    crm_tier: Some(crm_tier),
                });
            }
        }
        if lost(Some(state), last) {
            return if options.respect_cleared {
                Some(PushOutcome::SkippedOverridden { crm_tier: None })
            } else {
                None
            };
        }
    }
    match last {
        Some(l)
            if l.tier == update.tier
                && options.bucket(l.score) == options.bucket(update.score)
                && tierd_core::explain::same_in_substance(&l.reason, &update.reason) =>
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
                        crm_tier: Some(Tier::Tier1)
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

    #[test]
    fn a_tier_the_crm_lost_is_written_again_unless_emptying_is_a_persons_choice() {
        let crm = HashMap::from([
            (
                "cleared".to_string(),
                CrmTierState {
                    crm_tier: None,
                    locked: false,
                },
            ),
            (
                "missing".to_string(),
                CrmTierState {
                    crm_tier: None,
                    locked: false,
                },
            ),
            (
                "kept".to_string(),
                CrmTierState {
                    crm_tier: Some(Tier::Tier2),
                    locked: false,
                },
            ),
        ]);
        let last: HashMap<_, _> = ["cleared", "missing", "kept", "unseen"]
            .into_iter()
            .map(|id| (id.to_string(), last(Tier::Tier2, 3.9, "fit")))
            .collect();
        let updates =
            || ["cleared", "missing", "kept", "unseen"].map(|id| update(id, Tier::Tier2, 3.9, "fit"));
        let plan = plan_push(updates(), &crm, &last, PlanOptions::default());
        let sent: Vec<&str> = plan.send.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(sent, ["cleared", "missing"]);
        assert_eq!(plan.repaired, ["cleared", "missing"]);
        let respect = PlanOptions {
            respect_cleared: true,
            ..PlanOptions::default()
        };
        let plan = plan_push(updates(), &crm, &last, respect);
        assert!(plan.send.is_empty() && plan.repaired.is_empty());
        assert_eq!(
            plan.held[0],
            (
                "cleared".to_string(),
                PushOutcome::SkippedOverridden { crm_tier: None }
            )
        );
    }

    #[test]
    fn a_count_changing_inside_a_reason_is_no_news_but_another_criterion_is() {
        let last = HashMap::from([(
            "a".to_string(),
            last(
                Tier::Tier3,
                3.1,
                "uses dbt (+0.4); contract renewal in 70 days (+0.3)",
            ),
        )]);
        let plan = plan_push(
            [update(
                "a",
                Tier::Tier3,
                3.1,
                "uses dbt (+0.4); contract renewal in 69 days (+0.3)",
            )],
            &HashMap::new(),
            &last,
            PlanOptions::default(),
        );
        assert!(plan.send.is_empty(), "a day count is not news");
        let plan = plan_push(
            [update(
                "a",
                Tier::Tier3,
                3.1,
                "demo request (lifted one tier); uses dbt (+0.4)",
            )],
            &HashMap::new(),
            &last,
            PlanOptions::default(),
        );
        assert_eq!(plan.send.len(), 1, "a lift is news");
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
