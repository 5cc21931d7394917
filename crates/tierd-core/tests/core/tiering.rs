//! Tiering policy behaviour and its invariants (proptest).

use proptest::prelude::*;
use tierd_core::tier::{
    pyramid, Cap, Decision, Engagement, Lock, RunKind, TierBasis, TierCandidate, TierMember,
};
use tierd_core::{Date, Tier, TierPolicy};

const AS_OF: Date = Date::from_days(20_000);

/// Lifted by override `by` until `as_of`.
fn engaged(by: u16) -> Option<Engagement> {
    Some(Engagement { until: AS_OF, by })
}

fn cand(id: &str, score: f32) -> TierCandidate {
    TierCandidate {
        id: id.into(),
        score,
        potential_value: 0.0,
        coverage: 1.0,
        previous: None,
        lock: Lock::Unlocked,
        engagement: None,
    }
}

fn tiers(policy: &TierPolicy, cands: &[TierCandidate], kind: RunKind) -> Vec<Tier> {
    policy
        .assign(cands, kind, AS_OF)
        .into_iter()
        .map(|a| a.tier)
        .collect()
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
    c[3].coverage = 0.7; // b beats a on coverage (both enough for Tier 1)
    let a = p.assign(&c, RunKind::Full, AS_OF);
    let got: Vec<(Tier, Option<Tier>)> = a.iter().map(|x| (x.tier, x.decision.capped_from)).collect();
    // d, c stay Tier 1; b falls to Tier 2 (room 1); a falls to Tier 2 then Tier 3.
    assert_eq!(
        got,
        [
            (Tier::Tier1, None),
            (Tier::Tier1, None),
            (Tier::Tier2, Some(Tier::Tier1)),
            (Tier::Tier3, Some(Tier::Tier1))
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
fn a_percentage_cap_above_zero_leaves_at_least_one_seat() {
    // Issue 12 #5: 3% of one account rounded down to no seat, so a lone 4.777 ended in Tier 3.
    let p = TierPolicy {
        caps: [Some(Cap::Percent(3.0)), Some(Cap::Percent(12.0))],
        ..TierPolicy::default()
    };
    assert_eq!(tiers(&p, &[cand("a", 4.777)], RunKind::Full), [Tier::Tier1]);
    // 33 accounts at 3%: one seat; 34: still one (1.02 rounds down); 0%: none.
    let many: Vec<_> = (0..33).map(|i| cand(&format!("{i:02}"), 5.0)).collect();
    assert_eq!(pyramid(&tiers(&p, &many, RunKind::Full))[0], 1);
    assert_eq!(Cap::Percent(3.0).limit(34), 1);
    assert_eq!(Cap::Percent(3.0).limit(67), 2);
    assert_eq!(Cap::Percent(0.0).limit(10), 0);
    assert_eq!(Cap::Percent(3.0).limit(0), 0);
}

#[test]
fn engagement_override_lifts_one_tier_and_caps_still_hold() {
    let p = TierPolicy {
        caps: [Some(Cap::Count(1)), None],
        ..TierPolicy::default()
    };
    let mut c = vec![cand("a", 4.6), cand("b", 4.0), cand("c", 1.0)];
    c[1].engagement = engaged(0);
    c[2].engagement = engaged(0);
    let a = p.assign(&c, RunKind::Full, AS_OF);
    assert_eq!(a[2].tier, Tier::Tier3);
    assert_eq!(a[2].decision.lifted_by, Some(0));
    // b is lifted to Tier 1, but a ranks higher for the single seat.
    assert_eq!(
        (a[0].tier, a[1].tier, a[1].decision.capped_from),
        (Tier::Tier1, Tier::Tier2, Some(Tier::Tier1))
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
    let inc = p.assign(&c, RunKind::Incremental, AS_OF);
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
fn lines_worked_out_once_tier_as_the_policy_does() {
    // A file scorer works the policy's lines out once (`lines`, `basis_on`, `before_caps_on`);
    // each account must get the tier the per-call methods give, worked out here by hand.
    let p = TierPolicy {
        hysteresis_margin: 0.2,
        min_coverage: [0.6, 0.4, 0.2],
        ..TierPolicy::default()
    };
    let lines = p.lines();
    // score, previous tier, coverage -> base tier, held, tier before the caps
    let cases = [
        (4.6, Some(Tier::Tier2), 1.0, Tier::Tier2, true, Tier::Tier2),
        (4.7, Some(Tier::Tier2), 1.0, Tier::Tier1, false, Tier::Tier1),
        (3.65, Some(Tier::Tier2), 1.0, Tier::Tier2, true, Tier::Tier2),
        (3.549, Some(Tier::Tier2), 1.0, Tier::Tier3, false, Tier::Tier3),
        (4.5, None, 0.5995, Tier::Tier1, false, Tier::Tier1),
        (4.5, None, 0.5994, Tier::Tier1, false, Tier::Tier2),
        (4.9, None, 0.1, Tier::Tier1, false, Tier::Untiered),
        (2.999, None, 1.0, Tier::Untiered, false, Tier::Untiered),
        (3.0, None, 1.0, Tier::Tier3, false, Tier::Tier3),
    ];
    for (score, previous, coverage, base, held, before) in cases {
        let c = TierCandidate {
            previous,
            coverage,
            ..cand("a", score)
        };
        let b = p.basis_on(&lines, &c, RunKind::Incremental);
        assert_eq!(b, p.basis(&c, RunKind::Incremental), "{score}");
        assert_eq!((b.base, b.held_by_hysteresis), (base, held), "{score}");
        let a = p.before_caps_on(&lines, &b, coverage, AS_OF);
        assert_eq!(a, p.before_caps_of(&b, coverage, AS_OF), "{score}");
        assert_eq!(a.tier, before, "{score} at coverage {coverage}");
    }
}

#[test]
fn locked_accounts_keep_their_tier_and_take_cap_seats_first() {
    let p = TierPolicy {
        caps: [Some(Cap::Count(2)), None],
        ..TierPolicy::default()
    };
    let mut c = vec![cand("locked", 1.0), cand("x", 4.9), cand("y", 4.8)];
    c[0].lock = Lock::At(Tier::Tier1);
    let a = p.assign(&c, RunKind::Full, AS_OF);
    assert!(a[0].decision.locked);
    assert_eq!(
        a.iter().map(|x| x.tier).collect::<Vec<_>>(),
        [Tier::Tier1, Tier::Tier1, Tier::Tier2]
    );
}

#[test]
fn a_lock_with_no_known_tier_is_untiered_in_both_steps() {
    let p = TierPolicy {
        caps: [Some(Cap::Count(1)), None],
        ..TierPolicy::default()
    };
    let mut c = vec![cand("unknown", 4.9), cand("x", 4.8)];
    c[0].lock = Lock::from_crm(true, None);
    c[0].engagement = engaged(0);
    let basis = p.basis(&c[0], RunKind::Full);
    assert_eq!((basis.base, basis.locked), (Tier::Untiered, true));
    let a = p.assign(&c, RunKind::Full, AS_OF);
    // Not lifted, and no seat taken: x keeps the one Tier 1 seat.
    assert_eq!(
        (a[0].tier, a[0].decision.locked, a[0].decision.lifted_by),
        (Tier::Untiered, true, None)
    );
    assert_eq!(a[1].tier, Tier::Tier1);
    assert_eq!(p.reason(&a[0], "fit"), "locked by a person at untiered; fit");
}

#[test]
fn an_engagement_lifts_only_while_its_window_holds() {
    let p = TierPolicy::default();
    let mut c = vec![cand("a", 3.2)];
    c[0].engagement = Some(Engagement {
        until: AS_OF.add_days(-1),
        by: 0,
    });
    assert_eq!(p.assign(&c, RunKind::Full, AS_OF)[0].tier, Tier::Tier3);
    c[0].engagement = Some(Engagement { until: AS_OF, by: 0 });
    assert_eq!(p.assign(&c, RunKind::Full, AS_OF)[0].tier, Tier::Tier2);
}

#[test]
fn reasons_name_the_cap_then_the_lift_before_the_scores_reasons() {
    let model = "name = \"m\"\nversion = \"1\"\n[components.fit]\nweight = 1\n\
        [[criteria]]\nname = \"d\"\ncomponent = \"fit\"\nweight = 1\nfact = \"engagement.demos\"\n\
        [criteria.rule]\nrecency = { bands = [{ min = 0, max = 30, points = 5 }] }\n";
    let model = tierd_core::Model::from_toml(model, "model").expect("model");
    let mut schema = model.schema().clone();
    let raw: tierd_core::tier::RawTierPolicy = toml::from_str(
        "tier_1_cap = { count = 1 }\n\
         [[overrides]]\nfact = \"engagement.webinars\"\nwithin_days = 10\nlabel = \"webinar\"\n\
         [[overrides]]\nfact = \"engagement.demos\"\nwithin_days = 30\nlabel = \"demo request\"\n",
    )
    .expect("policy toml");
    let p = TierPolicy::compile(&raw, &mut schema, "tiering").expect("policy");
    let mut c = vec![cand("a", 4.9), cand("b", 4.0)];
    c[1].engagement = engaged(1);
    let a = p.assign(&c, RunKind::Full, AS_OF);
    assert_eq!(a[1].tier, Tier::Tier2);
    assert_eq!(
        p.reason(&a[1], "uses Snowflake (+0.6)"),
        "pyramid cap: tier_1 is full; demo request (lifted one tier); uses Snowflake (+0.6)"
    );
    assert_eq!(p.reason(&a[0], "x"), "x");
}

#[test]
fn the_override_whose_window_ends_last_is_the_one_that_lifts() {
    let model = "name = \"m\"\nversion = \"1\"\n[components.fit]\nweight = 1\n\
        [[criteria]]\nname = \"s\"\ncomponent = \"fit\"\nweight = 1\nfact = \"f.size\"\n\
        [criteria.rule]\nbands = [{ min = 0, points = 5 }]\n";
    let model = tierd_core::Model::from_toml(model, "model").expect("model");
    let mut schema = model.schema().clone();
    let raw: tierd_core::tier::RawTierPolicy = toml::from_str(
        "[[overrides]]\nfact = \"engagement.webinars\"\nwithin_days = 10\n\
         [[overrides]]\nfact = \"engagement.demos\"\nwithin_days = 30\n",
    )
    .expect("policy toml");
    let p = TierPolicy::compile(&raw, &mut schema, "tiering").expect("policy");
    let as_of: Date = "2026-11-24".parse().expect("date");
    let d = |s: &str| s.parse::<Date>().expect("date");
    let mut row = schema.empty_row();
    let webinars = schema.slot("engagement.webinars").expect("slot");
    let demos = schema.slot("engagement.demos").expect("slot");
    // A webinar yesterday (window to 2026-12-03), a demo 20 days ago (window to 2026-12-04).
    row.set(
        webinars,
        Some(tierd_core::fact::FactValue::DateList(vec![d("2026-11-23")])),
    );
    row.set(
        demos,
        Some(tierd_core::fact::FactValue::DateList(vec![d("2026-11-04")])),
    );
    assert_eq!(
        p.engagement_on(&row, as_of),
        Some(Engagement {
            until: d("2026-12-04"),
            by: 1
        })
    );
    // Same last day: the first override.
    row.set(
        demos,
        Some(tierd_core::fact::FactValue::DateList(vec![d("2026-11-03")])),
    );
    assert_eq!(
        p.engagement_on(&row, as_of),
        Some(Engagement {
            until: d("2026-12-03"),
            by: 0
        })
    );
    // Outside every window: none.
    row.set(
        webinars,
        Some(tierd_core::fact::FactValue::DateList(vec![d("2026-11-01")])),
    );
    row.set(
        demos,
        Some(tierd_core::fact::FactValue::DateList(vec![d("2026-10-01")])),
    );
    assert_eq!(p.engagement_on(&row, as_of), None);
}

/// `cand` with this coverage.
fn covered(id: &str, score: f32, coverage: f32) -> TierCandidate {
    TierCandidate {
        coverage,
        ..cand(id, score)
    }
}

#[test]
fn too_little_coverage_holds_an_account_below_the_tiers_it_lacks_data_for() {
    // Defaults: Tier 1 needs 0.6, Tier 2 0.4, Tier 3 0.2.
    let p = TierPolicy::default();
    let c = [
        covered("full", 5.0, 1.0),
        covered("t1-edge", 5.0, 0.6),
        covered("t2-only", 5.0, 0.599),
        covered("t3-only", 4.0, 0.25),
        covered("none", 3.5, 0.19),
        // A low score is not raised by its coverage.
        covered("low", 3.2, 0.5),
    ];
    let a = p.assign(&c, RunKind::Full, AS_OF);
    let got: Vec<(Tier, Option<Tier>)> = a.iter().map(|x| (x.tier, x.decision.insufficient_data)).collect();
    assert_eq!(
        got,
        [
            (Tier::Tier1, None),
            (Tier::Tier1, None),
            (Tier::Tier2, Some(Tier::Tier1)),
            (Tier::Tier3, Some(Tier::Tier2)),
            (Tier::Untiered, Some(Tier::Tier3)),
            (Tier::Tier3, None),
        ]
    );
    assert_eq!(
        p.reason(&a[2], "employees unknown (-0.4)"),
        "insufficient data for tier_1 (coverage under 0.60); employees unknown (-0.4)"
    );
}

#[test]
fn a_lift_never_carries_an_account_past_its_coverage_and_locks_are_exempt() {
    let p = TierPolicy::default();
    let mut c = vec![
        // Tier 2 by score, lifted to Tier 1, but coverage allows Tier 2 only: no lift.
        covered("lifted", 4.0, 0.5),
        // Tier 3 by score, lifted to Tier 2, which coverage 0.45 allows.
        covered("lift-ok", 3.2, 0.45),
        // A person's lock stands whatever the coverage.
        covered("locked", 1.0, 0.0),
    ];
    c[0].engagement = engaged(0);
    c[1].engagement = engaged(0);
    c[2].lock = Lock::At(Tier::Tier1);
    let a = p.assign(&c, RunKind::Full, AS_OF);
    assert_eq!(
        (
            a[0].tier,
            a[0].decision.lifted_by,
            a[0].decision.insufficient_data
        ),
        (Tier::Tier2, None, Some(Tier::Tier1))
    );
    assert_eq!(
        (
            a[1].tier,
            a[1].decision.lifted_by,
            a[1].decision.insufficient_data
        ),
        (Tier::Tier2, Some(0), None)
    );
    assert_eq!((a[2].tier, a[2].decision.insufficient_data), (Tier::Tier1, None));
    // Budgets size seats for what will be placed: the held account counts in Tier 2.
    let members: Vec<TierMember> = c
        .iter()
        .map(|x| TierMember::new(x, p.basis(x, RunKind::Full)))
        .collect();
    assert_eq!(p.candidates(&members, AS_OF), [1, 2, 0]);
}

#[test]
fn held_accounts_take_no_seat_under_a_cap() {
    let p = TierPolicy {
        caps: [Some(Cap::Count(1)), None],
        ..TierPolicy::default()
    };
    // The best score lacks data for Tier 1: the one seat goes to the next, known, account.
    let c = [covered("thin", 5.0, 0.3), covered("known", 4.6, 0.9)];
    let a = p.assign(&c, RunKind::Full, AS_OF);
    assert_eq!((a[0].tier, a[1].tier), (Tier::Tier3, Tier::Tier1));
    assert_eq!(a[1].decision.capped_from, None);
}

#[test]
fn min_coverage_is_checked_with_key_paths() {
    let mut schema = tierd_core::FactSchema::default();
    let compile = |text: &str, schema: &mut tierd_core::FactSchema| {
        let raw: tierd_core::tier::RawTierPolicy = toml::from_str(text).expect("policy toml");
        TierPolicy::compile(&raw, schema, "tiering").map_err(|e| e.to_string())
    };
    let p = compile(
        "min_coverage = { tier_1 = 0.8, tier_3 = 0 }
",
        &mut schema,
    )
    .expect("policy");
    // What is not given keeps its default.
    assert_eq!(p.min_coverage, [0.8, 0.4, 0.0]);
    assert_eq!(TierPolicy::default().min_coverage, [0.6, 0.4, 0.2]);
    let err = compile(
        "min_coverage = { tier_2 = 1.5 }
",
        &mut schema,
    )
    .expect_err("above 1");
    assert!(
        err.contains("tiering.min_coverage.tier_2: must be a share within 0..=1, found 1.5"),
        "{err}"
    );
    let err = compile(
        "min_coverage = { tier_1 = 0.3, tier_2 = 0.5 }
",
        &mut schema,
    )
    .expect_err("increasing");
    assert!(
        err.contains("tiering.min_coverage: must not increase from tier_1 to tier_3"),
        "{err}"
    );
    assert!(toml::from_str::<tierd_core::tier::RawTierPolicy>(
        "min_coverage = { tier_4 = 0.1 }
"
    )
    .is_err());
}

fn tier() -> impl Strategy<Value = Tier> {
    prop::sample::select(Tier::ALL.to_vec())
}

fn lock() -> impl Strategy<Value = Lock> {
    prop_oneof![
        8 => Just(Lock::Unlocked),
        1 => tier().prop_map(Lock::At),
        1 => Just(Lock::Unknown),
    ]
}

/// A window ending within a few days of `AS_OF` (so some have ended), by one of three overrides.
fn engagement() -> impl Strategy<Value = Option<Engagement>> {
    prop::option::weighted(
        0.3,
        (-3i32..4, 0u16..3).prop_map(|(d, by)| Engagement {
            until: AS_OF.add_days(d),
            by,
        }),
    )
}

fn candidates() -> impl Strategy<Value = Vec<TierCandidate>> {
    prop::collection::vec(
        (
            0.0f32..=5.0,
            0.0f64..1e6,
            0.0f32..=1.0,
            prop::option::of(tier()),
            lock(),
            engagement(),
        ),
        0..120,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(
                |(i, (score, pv, cov, previous, lock, engagement))| TierCandidate {
                    id: format!("acc-{i:04}").into(),
                    score,
                    potential_value: pv,
                    coverage: cov,
                    previous,
                    lock,
                    engagement,
                },
            )
            .collect()
    })
}

/// Populations as the daemon keeps them: any basis, including ones no candidate would give
/// today (a stored basis from an older run).
fn members() -> impl Strategy<Value = Vec<TierMember>> {
    prop::collection::vec(
        (
            0.0f32..=5.0,
            0.0f64..1e6,
            0.0f32..=1.0,
            tier(),
            any::<bool>(),
            prop::bool::weighted(0.1),
            engagement(),
        ),
        0..120,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(
                |(i, (score, pv, cov, base, held, locked, engagement))| TierMember {
                    id: format!("acc-{i:04}").into(),
                    score,
                    potential_value: pv,
                    coverage: cov,
                    basis: TierBasis {
                        base,
                        held_by_hysteresis: held && !locked,
                        locked,
                        engagement,
                    },
                },
            )
            .collect()
    })
}

fn policy() -> impl Strategy<Value = TierPolicy> {
    let cap = prop::option::of(prop_oneof![
        (0u64..40).prop_map(Cap::Count),
        (0.0f64..=100.0).prop_map(Cap::Percent)
    ]);
    // Minimum coverage: none, the defaults, or any non-increasing three.
    let min_coverage = prop_oneof![
        Just([0.0f32; 3]),
        Just(TierPolicy::default().min_coverage),
        (0.0f32..=1.0, 0.0f32..=1.0, 0.0f32..=1.0).prop_map(|(a, b, c)| {
            let mut m = [a, b, c];
            m.sort_by(|x, y| y.total_cmp(x));
            m
        }),
    ];
    (cap.clone(), cap, 0.0f32..0.5, min_coverage).prop_map(|(c1, c2, margin, min_coverage)| TierPolicy {
        caps: [c1, c2],
        hysteresis_margin: margin,
        min_coverage,
        ..TierPolicy::default()
    })
}

/// A deterministic shuffle of `0..n` from `seed`.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    order
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn caps_are_never_exceeded_by_unlocked_accounts(c in candidates(), p in policy(), full in any::<bool>()) {
        let kind = if full { RunKind::Full } else { RunKind::Incremental };
        let a = p.assign(&c, kind, AS_OF);
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
        let a = p.assign(&c, RunKind::Incremental, AS_OF);
        for (cand, asg) in c.iter().zip(&a) {
            if let Some(lock) = cand.lock.tier() {
                prop_assert_eq!(asg.tier, lock);
                prop_assert!(asg.decision.locked);
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_input_order(c in candidates(), p in policy(), seed in any::<u64>()) {
        let a = p.assign(&c, RunKind::Incremental, AS_OF);
        let order = permutation(c.len(), seed);
        let only: Vec<TierCandidate> = order.iter().map(|&i| c[i].clone()).collect();
        let b = p.assign(&only, RunKind::Incremental, AS_OF);
        for (&orig, asg) in order.iter().zip(&b) {
            prop_assert_eq!(asg, &a[orig]);
        }
    }

    #[test]
    fn no_unlocked_account_sits_in_a_tier_its_coverage_lacks(c in candidates(), p in policy(), full in any::<bool>()) {
        let kind = if full { RunKind::Full } else { RunKind::Incremental };
        let a = p.assign(&c, kind, AS_OF);
        for (x, y) in c.iter().zip(&a) {
            if y.decision.locked {
                continue;
            }
            if let Some(i) = [Tier::Tier1, Tier::Tier2, Tier::Tier3].iter().position(|t| *t == y.tier) {
                prop_assert!(
                    tierd_core::points::MilliPoints::of(x.coverage) >= tierd_core::points::MilliPoints::of(p.min_coverage[i]),
                    "{} with coverage {} in {}", x.id, x.coverage, y.tier
                );
            }
            // Held down only from a better tier than the one it got, and said so.
            if let Some(wanted) = y.decision.insufficient_data {
                prop_assert!(wanted < y.tier);
                prop_assert_eq!(y.tier, p.coverage_allows(x.coverage).max(y.tier));
            }
        }
    }

    #[test]
    fn without_caps_or_overrides_a_higher_score_never_gets_a_worse_tier(c in candidates()) {
        let p = TierPolicy { min_coverage: [0.0; 3], ..TierPolicy::default() };
        let plain: Vec<TierCandidate> = c.into_iter().map(|mut x| { x.lock = Lock::Unlocked; x.engagement = None; x }).collect();
        let a = p.assign(&plain, RunKind::Full, AS_OF);
        for i in 0..plain.len() {
            for j in 0..plain.len() {
                if plain[i].score > plain[j].score {
                    prop_assert!(a[i].tier <= a[j].tier);
                }
            }
        }
    }

    // The population step on its own, over stored bases.

    #[test]
    fn the_population_step_does_not_depend_on_order(m in members(), p in policy(), seed in any::<u64>()) {
        let a = p.decide(&m, AS_OF);
        let order = permutation(m.len(), seed);
        let shuffled: Vec<TierMember> = order.iter().map(|&i| m[i].clone()).collect();
        let b = p.decide(&shuffled, AS_OF);
        for (&orig, asg) in order.iter().zip(&b) {
            prop_assert_eq!(asg, &a[orig]);
        }
    }

    #[test]
    fn the_population_step_never_exceeds_a_cap_with_unlocked_accounts(m in members(), p in policy()) {
        let a = p.decide(&m, AS_OF);
        for (i, cap) in p.caps.iter().enumerate() {
            let Some(cap) = cap else { continue };
            let tier = Tier::ALL[i];
            let locked = m.iter().zip(&a).filter(|(x, y)| x.basis.locked && y.tier == tier).count();
            let unlocked = m.iter().zip(&a).filter(|(x, y)| !x.basis.locked && y.tier == tier).count();
            prop_assert!(unlocked <= cap.limit(m.len()).saturating_sub(locked), "{unlocked} unlocked in {tier}");
        }
    }

    #[test]
    fn the_population_step_never_changes_a_lock(m in members(), p in policy()) {
        let a = p.decide(&m, AS_OF);
        for (x, y) in m.iter().zip(&a) {
            if x.basis.locked {
                prop_assert_eq!(y.tier, x.basis.base);
                prop_assert_eq!(y.decision, Decision { locked: true, ..Decision::default() });
            }
        }
    }

    #[test]
    fn the_population_step_lifts_at_most_one_tier_and_only_while_a_window_holds(m in members(), p in policy()) {
        let a = p.decide(&m, AS_OF);
        for (x, y) in m.iter().zip(&a) {
            // Never better than one tier above the base.
            prop_assert!(y.tier >= x.basis.base.lifted());
            let holding = x.basis.engagement.filter(|e| e.holds_on(AS_OF) && !x.basis.locked);
            // A ceiling the base already met (or passed) leaves a lift no room.
            let no_room = !x.basis.locked && p.coverage_allows(x.coverage) >= x.basis.base;
            match y.decision.lifted_by {
                Some(by) => {
                    prop_assert_eq!(Some(by), holding.map(|e| e.by));
                    prop_assert!(x.basis.base != Tier::Tier1);
                }
                None => {
                    prop_assert!(holding.is_none() || x.basis.base == Tier::Tier1 || no_room);
                    // Without a lift, a tier only ever moves down (by caps).
                    prop_assert!(y.tier >= x.basis.base);
                }
            }
            // A cap names the capped tier it demoted from, and the account ended below it.
            if let Some(from) = y.decision.capped_from {
                prop_assert!(from == Tier::Tier1 || from == Tier::Tier2);
                prop_assert!(y.tier > from);
            }
        }
    }

    #[test]
    fn bases_taken_in_work_items_then_decided_together_equal_assign(
        c in candidates(), p in policy(), full in any::<bool>(), chunk in 1usize..40,
    ) {
        let kind = if full { RunKind::Full } else { RunKind::Incremental };
        // As the daemon does it: each work item takes its accounts' bases, tiering decides later.
        let mut m = Vec::new();
        for item in c.chunks(chunk) {
            m.extend(item.iter().map(|x| TierMember::new(x, p.basis(x, kind))));
        }
        prop_assert_eq!(p.decide(&m, AS_OF), p.assign(&c, kind, AS_OF));
    }
}

#[test]
fn budget_sized_caps_are_set_per_run_from_the_candidates() {
    let mut schema = tierd_core::FactSchema::default();
    let raw: tierd_core::tier::RawTierPolicy =
        toml::from_str("tier_1_cap = { budget = true }\ntier_2_cap = { percent = 50 }\n")
            .expect("policy toml");
    let p = TierPolicy::compile(&raw, &mut schema, "tiering").expect("policy");
    assert_eq!(p.budget_caps, [true, false]);
    assert_eq!(p.caps, [None, Some(Cap::Percent(50.0))]);
    assert!(p.has_budget_caps());
    // Three accounts qualify for Tier 1, one for Tier 2 (lifted from Tier 3), one for Tier 3.
    let mut c = [
        cand("a", 4.9),
        cand("b", 4.8),
        cand("c", 4.7),
        cand("d", 3.2),
        cand("e", 3.1),
        cand("f", 1.0),
    ];
    c[3].engagement = engaged(0);
    let members: Vec<TierMember> = c
        .iter()
        .map(|x| TierMember::new(x, p.basis(x, RunKind::Full)))
        .collect();
    assert_eq!(p.candidates(&members, AS_OF), [3, 1, 1]);
    // The budget buys one Tier 1 seat: the other two fall to Tier 2 (half of six: 3 seats).
    let sized = p.with_budget_caps([Some(Cap::Count(1)), Some(Cap::Count(0))]);
    assert_eq!(
        sized.caps,
        [Some(Cap::Count(1)), Some(Cap::Percent(50.0))],
        "only budget caps change"
    );
    let got: Vec<Tier> = sized
        .decide(&members, AS_OF)
        .into_iter()
        .map(|a| a.tier)
        .collect();
    assert_eq!(
        got,
        [
            Tier::Tier1,
            Tier::Tier2,
            Tier::Tier2,
            Tier::Tier2,
            Tier::Tier3,
            Tier::Untiered
        ]
    );

    let bad: tierd_core::tier::RawTierPolicy =
        toml::from_str("tier_1_cap = { budget = true, count = 3 }\n").expect("policy toml");
    let err = TierPolicy::compile(&bad, &mut schema, "tiering")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tiering.tier_1_cap: give exactly one of `count`, `percent` or `budget = true`"),
        "{err}"
    );
}
