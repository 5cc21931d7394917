//! Tiering policy behaviour and its invariants (proptest).

use proptest::prelude::*;
use tierd_core::tier::{pyramid, Cap, RunKind, TierCandidate};
use tierd_core::{Tier, TierPolicy};

fn cand(id: &str, score: f32) -> TierCandidate {
    TierCandidate {
        id: id.into(),
        score,
        potential_value: 0.0,
        coverage: 1.0,
        previous: None,
        lock: None,
        engaged: None,
    }
}

fn tiers(policy: &TierPolicy, cands: &[TierCandidate], kind: RunKind) -> Vec<Tier> {
    policy.assign(cands, kind).into_iter().map(|a| a.tier).collect()
}

#[test]
fn default_thresholds_are_4_5_3_75_and_3() {
    let p = TierPolicy::default();
    let c = [
        cand("a", 4.5),
        cand("b", 4.49),
        cand("c", 3.75),
        cand("d", 3.0),
        cand("e", 2.99),
    ];
    assert_eq!(
        tiers(&p, &c, RunKind::Full),
        [Tier::Tier1, Tier::Tier2, Tier::Tier2, Tier::Tier3, Tier::Untiered]
    );
}

#[test]
fn tier_names_round_trip() {
    for t in Tier::ALL {
        assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
    }
    assert!("Tier 1".parse::<Tier>().is_err());
}

#[test]
fn caps_demote_overflow_by_score_then_value_then_coverage_then_id() {
    let p = TierPolicy {
        caps: [Some(Cap::Count(2)), Some(Cap::Count(1))],
        ..TierPolicy::default()
    };
    let mut c = vec![cand("d", 4.9), cand("c", 4.8), cand("b", 4.8), cand("a", 4.8)];
    c[1].potential_value = 10.0; // c wins the tie on value
    c[3].coverage = 0.5; // b beats a on coverage
    let a = p.assign(&c, RunKind::Full);
    let got: Vec<(Tier, u8)> = a.iter().map(|x| (x.tier, x.decision.capped)).collect();
    // d, c stay Tier 1; b falls to Tier 2 (room 1); a falls to Tier 2 then Tier 3.
    assert_eq!(
        got,
        [
            (Tier::Tier1, 0),
            (Tier::Tier1, 0),
            (Tier::Tier2, 1),
            (Tier::Tier3, 2)
        ]
    );
}

#[test]
fn percentage_caps_round_down() {
    let p = TierPolicy {
        caps: [Some(Cap::Percent(10.0)), None],
        ..TierPolicy::default()
    };
    let c: Vec<_> = (0..25).map(|i| cand(&format!("{i:02}"), 5.0)).collect();
    let counts = pyramid(&tiers(&p, &c, RunKind::Full));
    assert_eq!(counts, [2, 23, 0, 0]);
}

#[test]
fn engagement_override_lifts_one_tier_and_caps_still_hold() {
    let p = TierPolicy {
        caps: [Some(Cap::Count(1)), None],
        ..TierPolicy::default()
    };
    let mut c = vec![cand("a", 4.6), cand("b", 4.0), cand("c", 1.0)];
    c[1].engaged = Some(0);
    c[2].engaged = Some(0);
    let a = p.assign(&c, RunKind::Full);
    assert_eq!(a[2].tier, Tier::Tier3);
    assert_eq!(a[2].decision.lifted_by, Some(0));
    // b is lifted to Tier 1, but a ranks higher for the single seat.
    assert_eq!(
        (a[0].tier, a[1].tier, a[1].decision.capped),
        (Tier::Tier1, Tier::Tier2, 1)
    );
}

#[test]
fn hysteresis_holds_small_moves_on_incremental_runs_only() {
    let p = TierPolicy {
        hysteresis_margin: 0.2,
        ..TierPolicy::default()
    };
    let mut c = vec![
        cand("up", 4.6),
        cand("down", 3.65),
        cand("big", 4.8),
        cand("fall", 2.0),
    ];
    c[0].previous = Some(Tier::Tier2);
    c[1].previous = Some(Tier::Tier2);
    c[2].previous = Some(Tier::Tier3);
    c[3].previous = Some(Tier::Tier1);
    let inc = p.assign(&c, RunKind::Incremental);
    let got: Vec<Tier> = inc.iter().map(|a| a.tier).collect();
    assert_eq!(got, [Tier::Tier2, Tier::Tier2, Tier::Tier1, Tier::Untiered]);
    assert!(inc[0].decision.held_by_hysteresis && inc[1].decision.held_by_hysteresis);
    assert!(!inc[2].decision.held_by_hysteresis);
    assert_eq!(
        tiers(&p, &c, RunKind::Full),
        [Tier::Tier1, Tier::Tier3, Tier::Tier1, Tier::Untiered]
    );
}

#[test]
fn locked_accounts_keep_their_tier_and_take_cap_seats_first() {
    let p = TierPolicy {
        caps: [Some(Cap::Count(2)), None],
        ..TierPolicy::default()
    };
    let mut c = vec![cand("locked", 1.0), cand("x", 4.9), cand("y", 4.8)];
    c[0].lock = Some(Tier::Tier1);
    let a = p.assign(&c, RunKind::Full);
    assert!(a[0].decision.locked);
    assert_eq!(
        a.iter().map(|x| x.tier).collect::<Vec<_>>(),
        [Tier::Tier1, Tier::Tier1, Tier::Tier2]
    );
}

fn candidates() -> impl Strategy<Value = Vec<TierCandidate>> {
    let tier = prop_oneof![
        Just(Tier::Tier1),
        Just(Tier::Tier2),
        Just(Tier::Tier3),
        Just(Tier::Untiered)
    ];
    prop::collection::vec(
        (
            0.0f32..=5.0,
            0.0f64..1e6,
            0.0f32..=1.0,
            prop::option::of(tier.clone()),
            prop::option::weighted(0.1, tier),
            prop::option::weighted(0.2, Just(0u16)),
        ),
        0..120,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (score, pv, cov, previous, lock, engaged))| TierCandidate {
                id: format!("acc-{i:04}").into(),
                score,
                potential_value: pv,
                coverage: cov,
                previous,
                lock,
                engaged,
            })
            .collect()
    })
}

fn policy() -> impl Strategy<Value = TierPolicy> {
    let cap = prop::option::of(prop_oneof![
        (0u64..40).prop_map(Cap::Count),
        (0.0f64..=100.0).prop_map(Cap::Percent)
    ]);
    (cap.clone(), cap, 0.0f32..0.5).prop_map(|(c1, c2, margin)| TierPolicy {
        caps: [c1, c2],
        hysteresis_margin: margin,
        ..TierPolicy::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn caps_are_never_exceeded_by_unlocked_accounts(c in candidates(), p in policy(), full in any::<bool>()) {
        let kind = if full { RunKind::Full } else { RunKind::Incremental };
        let a = p.assign(&c, kind);
        for (i, cap) in p.caps.iter().enumerate() {
            let Some(cap) = cap else { continue };
            let tier = Tier::ALL[i];
            let locked = a.iter().filter(|x| x.decision.locked && x.tier == tier).count();
            let unlocked = a.iter().filter(|x| !x.decision.locked && x.tier == tier).count();
            prop_assert!(unlocked <= cap.limit(c.len()).saturating_sub(locked));
        }
    }

    #[test]
    fn locked_accounts_are_unchanged(c in candidates(), p in policy()) {
        let a = p.assign(&c, RunKind::Incremental);
        for (cand, asg) in c.iter().zip(&a) {
            if let Some(lock) = cand.lock {
                prop_assert_eq!(asg.tier, lock);
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_input_order(c in candidates(), p in policy(), seed in any::<u64>()) {
        let a = p.assign(&c, RunKind::Incremental);
        let mut shuffled: Vec<(usize, TierCandidate)> = c.iter().cloned().enumerate().collect();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let only: Vec<TierCandidate> = shuffled.iter().map(|(_, c)| c.clone()).collect();
        let b = p.assign(&only, RunKind::Incremental);
        for ((orig, _), asg) in shuffled.iter().zip(&b) {
            prop_assert_eq!(asg, &a[*orig]);
        }
    }

    #[test]
    fn without_caps_or_overrides_a_higher_score_never_gets_a_worse_tier(c in candidates()) {
        let p = TierPolicy::default();
        let plain: Vec<TierCandidate> = c.into_iter().map(|mut x| { x.lock = None; x.engaged = None; x }).collect();
        let a = p.assign(&plain, RunKind::Full);
        for i in 0..plain.len() {
            for j in 0..plain.len() {
                if plain[i].score > plain[j].score {
                    prop_assert!(a[i].tier <= a[j].tier);
                }
            }
        }
    }
}
