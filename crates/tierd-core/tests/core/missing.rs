//! Unknown facts (issue 13 #6): an unknown fact scores the lowest points its rule gives any
//! known value (`missing = "lowest"`, the default), or, where a blank means none, exactly what
//! the value none scores (`missing = "zero"`). Nothing is dropped from the weighted average, so
//! a little knowledge cannot score high and a blank never beats a known value.
//!
//! Expected scores are worked out by hand from [`MODEL`] in each test's comments.

use tierd_core::fact::FactType;
use tierd_core::{Date, FactRow, Model, Tier, TierPolicy};

fn date(s: &str) -> Date {
    s.parse().expect("test date")
}

const AS_OF: &str = "2026-11-24";

/// The default model's shape in miniature: fit (weight 2), engagement (1), value (1).
const MODEL: &str = r#"
name = "mini"
version = "1"
[components.fit]
weight = 2
[components.engagement]
weight = 1
[components.value]
weight = 1
[potential_value]
sources = [{ fact = "firmographic.employee_count", bands = [{ max = 20, value = 6000 }, { min = 20, value = 50000 }] }]
[[criteria]]
name = "industry"
component = "fit"
weight = 1
fact = "firmographic.industry"
[criteria.rule]
map = { Software = 5 }
otherwise = 1.5
[[criteria]]
name = "size"
component = "fit"
weight = 1
fact = "firmographic.employee_count"
label = "employees"
[criteria.rule]
bands = [{ max = 20, points = 0.5 }, { min = 20, max = 200, points = 3 }, { min = 200, points = 5 }]
[[criteria]]
name = "visits"
component = "engagement"
weight = 1
fact = "engagement.site_visits_30d"
label = "site visits in 30 days"
missing = "zero"
[criteria.rule]
bands = [{ max = 1, points = 2 }, { min = 1, max = 50, points = 3 }, { min = 50, points = 5 }]
[[criteria]]
name = "demo"
component = "engagement"
weight = 1
fact = "engagement.demo_requests"
label = "demo request"
missing = "zero"
[criteria.rule.recency]
per_event = 5
lifespan_days = 90
[[criteria]]
name = "value"
component = "value"
weight = 1
fact = "derived.potential_value"
[criteria.rule]
bands = [{ max = 10000, points = 0.5 }, { min = 10000, points = 5 }]
"#;

fn model() -> Model {
    Model::from_toml(MODEL, "model").unwrap_or_else(|e| panic!("model: {e}"))
}

fn row(model: &Model, cells: &[(&str, &str)]) -> FactRow {
    let schema = model.schema();
    let mut row = schema.empty_row();
    for (name, raw) in cells {
        let slot = schema
            .slot(name)
            .unwrap_or_else(|| panic!("{name} not in schema"));
        let ty: FactType = schema.fact_type(slot);
        row.set(slot, ty.parse(raw).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    row
}

#[test]
fn an_account_known_only_by_engagement_is_not_tier_1() {
    // Issue 13 #6: known only by engagement (coverage 0.22), it scored 5.0 and Tier 1, as the
    // unknown fit and value were dropped from the average.
    let m = model();
    let card = m.score(
        &row(
            &m,
            &[
                ("engagement.demo_requests", AS_OF),
                ("engagement.site_visits_30d", "200"),
            ],
        ),
        date(AS_OF),
    );
    // fit: industry unknown → its lowest, otherwise 1.5 (below Software's 5); size unknown →
    // 0.5, the lowest band: (1.5 + 0.5) / 2 = 1. engagement: (5 + 5) / 2 = 5. value: the
    // potential value is unknown → 0.5. Score (2·1 + 1·5 + 1·0.5) / 4 = 7.5 / 4 = 1.875.
    assert_eq!(card.score, 1.875);
    assert_eq!(card.components, vec![Some(5.0), Some(1.0), Some(0.5)]);
    // Coverage: only engagement (1 of 4) rests on data.
    assert_eq!(card.coverage, 0.25);
    assert_eq!(TierPolicy::default().tier_for(card.score), Tier::Untiered);
}

#[test]
fn a_blank_employee_count_never_beats_a_known_one() {
    // Issue 13 #6: a blank employee count scored 3.792 (tier_2), a known 10 scored 2.758.
    let m = model();
    let base = [
        ("firmographic.industry", "Software"),
        ("engagement.site_visits_30d", "0"),
    ];
    let blank = m.score(&row(&m, &base), date(AS_OF));
    let mut ten = base.to_vec();
    ten.push(("firmographic.employee_count", "10"));
    let ten = m.score(&row(&m, &ten), date(AS_OF));
    // Known 10: fit (5 + 0.5) / 2 = 2.75; engagement (2 + 0) / 2 = 1; value 6000 → 0.5.
    // (2·2.75 + 1 + 0.5) / 4 = 7 / 4 = 1.75. Blank: size and value at their lowest, 0.5 each,
    // the same 1.75 (before: fit 5 and value dropped, (2·5 + 1) / 3 = 3.667).
    assert_eq!(ten.score, 1.75);
    assert_eq!(blank.score, 1.75);
    // Only the blank's coverage shows what is not known: fit half known, value unknown.
    // Known 10: 1. Blank: (2·0.5 + 1 + 0) / 4 = 0.5.
    assert_eq!((ten.coverage, blank.coverage), (1.0, 0.5));
    let e = m.explain(&row(&m, &base), &blank, date(AS_OF));
    assert_eq!(e.criteria[1].reason, "employees unknown");
    assert_eq!(e.criteria[1].points, 0.5);
}

#[test]
fn a_blank_visit_count_scores_as_a_known_zero() {
    // Issue 13 #6: with `missing = "zero"`, a blank visit count scored 0 points, below the 2 a
    // known 0 earns. A blank now means none: 0 visits.
    let m = model();
    let base = [
        ("firmographic.industry", "Software"),
        ("firmographic.employee_count", "500"),
    ];
    let blank = m.score(&row(&m, &base), date(AS_OF));
    let mut zero = base.to_vec();
    zero.push(("engagement.site_visits_30d", "0"));
    let zero = m.score(&row(&m, &zero), date(AS_OF));
    // fit 5, value 50000 → 5, engagement (2 + 0) / 2 = 1: (2·5 + 1 + 5) / 4 = 16 / 4 = 4.
    // (Before: the blank's engagement was 0, (10 + 0 + 5) / 4 = 3.75.)
    assert_eq!(zero.score, 4.0);
    assert_eq!(blank.score, 4.0);
    // A blank that means none is knowledge, as a known 0 is.
    assert_eq!((zero.coverage, blank.coverage), (1.0, 1.0));
}

#[test]
fn the_default_model_keeps_blanks_consistent() {
    let m = Model::from_toml(include_str!("../../../../config/model.toml"), "model").expect("default model");
    let score = |cells: &[(&str, &str)]| m.score(&row(&m, cells), date(AS_OF));
    // Known only by engagement, however strongly: untiered.
    let engaged = score(&[
        ("engagement.demo_requests", "2026-11-24;2026-11-20"),
        ("engagement.site_visits_30d", "500"),
        ("engagement.webinars", "2026-11-23"),
        ("engagement.content_downloads", "2026-11-22;2026-11-21"),
    ]);
    assert_eq!(
        TierPolicy::default().tier_for(engaged.score),
        Tier::Untiered,
        "{}",
        engaged.score
    );
    // A blank employee count scores no higher than any known count.
    let base = [
        ("firmographic.industry", "Software"),
        ("firmographic.region", "EMEA"),
        ("engagement.site_visits_30d", "0"),
    ];
    let blank = score(&base).score;
    for count in ["1", "10", "50", "150", "500", "50000"] {
        let mut known = base.to_vec();
        known.push(("firmographic.employee_count", count));
        assert!(blank <= score(&known).score, "blank {blank} beats {count}");
    }
    // A blank visit count scores as a known 0.
    let mut zero = base.to_vec();
    zero.retain(|c| c.0 != "engagement.site_visits_30d");
    let no_cell = score(&zero).score;
    assert_eq!(no_cell, blank);
}

#[test]
fn the_worked_example_in_docs_scoring_md() {
    // docs/scoring.md works this account through the default model by hand.
    let m = Model::from_toml(include_str!("../../../../config/model.toml"), "model").expect("default model");
    let base = [
        ("firmographic.industry", "Software"),
        ("firmographic.region", "EMEA"),
        ("engagement.site_visits_30d", "0"),
    ];
    let card = m.score(&row(&m, &base), date(AS_OF));
    // fit (weights 3, 2.5, 1, 1, 2.5, 1.5, 0.5, 1 = 13): industry 5, size unknown 0.5, region
    // 5, org type unknown 0, warehouse unknown 1.5, complementary unknown 2.5, modern stack
    // unknown 3, competitor unknown 1: 31.25 / 13 = 2.4038.
    // engagement (2, 5, 1, 1 = 9): 2.5, 1.2, 2.5, 2.5: 16 / 9 = 1.7778.
    // timing (2, 1): renewal unknown 2.5, competitor contract unknown 3: 8 / 3 = 2.6667.
    // value: unknown 0.5.
    // 0.35·2.4038 + 0.25·1.7778 + 0.05·2.6667 + 0.35·0.5 = 1.5941.
    assert_eq!(card.score, 1.594);
    // Coverage: 0.35·4/13 + 0.25 = 0.3577.
    assert!((card.coverage - 0.3577).abs() < 1e-4, "{}", card.coverage);
    // A known 10 employees: size 0.5 and value 6,000 → 0.5, the same score; coverage
    // 0.35·6.5/13 + 0.25 + 0.35 = 0.775.
    let mut ten = base.to_vec();
    ten.push(("firmographic.employee_count", "10"));
    let ten = m.score(&row(&m, &ten), date(AS_OF));
    assert_eq!(ten.score, 1.594);
    assert!((ten.coverage - 0.775).abs() < 1e-4, "{}", ten.coverage);
}

#[test]
fn the_default_model_needs_intent_for_tier_1() {
    // The default model's comment: a perfect fit of the highest value with no engagement is
    // Tier 2 (4.08); visits this month make it Tier 1 (4.61).
    let m = Model::from_toml(include_str!("../../../../config/model.toml"), "model").expect("default model");
    let fit = [
        ("firmographic.industry", "Software"),
        ("firmographic.employee_count", "3000"),
        ("firmographic.region", "North America"),
        ("firmographic.org_type", "private"),
        ("technographic.technologies", "Snowflake;dbt;Fivetran"),
        ("engagement.site_visits_30d", "0"),
    ];
    // fit 5, value (3000 employees: 120,000) 5, engagement 16 / 9, timing unknown 8 / 3:
    // 0.35·5 + 0.35·5 + 0.25·16/9 + 0.05·8/3 = 4.0778.
    let p = TierPolicy::default();
    let cold = m.score(&row(&m, &fit), date(AS_OF)).score;
    assert_eq!((cold, p.tier_for(cold)), (4.078, Tier::Tier2));
    let mut warm = fit.to_vec();
    warm[5] = ("engagement.site_visits_30d", "12");
    // engagement (2·2.5 + 5·5 + 2.5 + 2.5) / 9 = 35 / 9: 3.5 + 0.25·35/9 + 0.05·8/3 = 4.6056.
    let warm = m.score(&row(&m, &warm), date(AS_OF)).score;
    assert_eq!((warm, p.tier_for(warm)), (4.606, Tier::Tier1));
}

#[test]
fn skip_is_refused_with_what_to_write_instead() {
    let text = MODEL.replacen("missing = \"zero\"", "missing = \"skip\"", 1);
    let errors = Model::from_toml(&text, "model")
        .expect_err("skip is refused")
        .to_string();
    assert!(errors.contains("model.criteria[2].missing: \"skip\""), "{errors}");
}

#[test]
fn zero_needs_a_rule_with_a_value_none() {
    // A blank industry or renewal date cannot mean none: there is no such value to score.
    let text = MODEL.replacen("map = { Software = 5 }", "map = { Software = 5 }\n", 1);
    let text = text.replacen(
        "fact = \"firmographic.industry\"\n",
        "fact = \"firmographic.industry\"\nmissing = \"zero\"\n",
        1,
    );
    let errors = Model::from_toml(&text, "model")
        .expect_err("zero on a map")
        .to_string();
    assert!(errors.contains("model.criteria[0].missing"), "{errors}");
}

mod invariants {
    use super::*;
    use proptest::prelude::*;
    use tierd_core::fact::FactValue;

    /// A one-criterion model over `f.n` with these bands (`None` bounds open) and `otherwise`.
    fn bands_model(bands: &[(Option<i32>, Option<i32>, f64)], otherwise: f64) -> Model {
        let bands: Vec<String> = bands
            .iter()
            .map(|(min, max, p)| {
                let mut b = format!("points = {p}");
                if let Some(m) = min {
                    b.push_str(&format!(", min = {m}"));
                }
                if let Some(m) = max {
                    b.push_str(&format!(", max = {m}"));
                }
                format!("{{ {b} }}")
            })
            .collect();
        let text = format!(
            "name = \"p\"\nversion = \"1\"\n[components.fit]\nweight = 1\n\
             [[criteria]]\nname = \"c\"\ncomponent = \"fit\"\nweight = 1\nfact = \"f.n\"\n\
             [criteria.rule]\nbands = [{}]\notherwise = {otherwise}\n",
            bands.join(", ")
        );
        Model::from_toml(&text, "model").unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// Non-overlapping bands from sorted cut points, some open-ended, some with gaps between.
    fn bands() -> impl Strategy<Value = Vec<(Option<i32>, Option<i32>, f64)>> {
        (
            prop::collection::btree_set(-50i32..50, 2..8),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec((0u8..=10, any::<bool>()), 8),
        )
            .prop_map(|(cuts, open_low, open_high, points)| {
                let cuts: Vec<i32> = cuts.into_iter().collect();
                let last = cuts.len() - 2;
                (0..=last)
                    .filter(|&i| i == 0 || i == last || !points[i].1) // some bands left out: gaps
                    .map(|i| {
                        let min = if i == 0 && open_low { None } else { Some(cuts[i]) };
                        let max = if i == last && open_high {
                            None
                        } else {
                            Some(cuts[i + 1])
                        };
                        (min, max, f64::from(points[i].0) / 2.0)
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn a_blank_never_scores_above_a_known_number(b in bands(), otherwise in 0u8..=10, x in -80i32..80) {
            let m = bands_model(&b, f64::from(otherwise) / 2.0);
            let blank = m.score(&m.schema().empty_row(), date(AS_OF)).score;
            let mut row = m.schema().empty_row();
            row.set(0, Some(FactValue::Number(f64::from(x))));
            let known = m.score(&row, date(AS_OF)).score;
            prop_assert!(blank <= known, "blank {blank} > known {x}: {known}");
        }

        #[test]
        fn a_blank_scores_what_the_worst_known_number_scores(b in bands(), otherwise in 0u8..=10) {
            let m = bands_model(&b, f64::from(otherwise) / 2.0);
            let blank = m.score(&m.schema().empty_row(), date(AS_OF)).score;
            // Cut points lie within -50..50: these numbers reach every band and every gap.
            let worst = (-100i32..=100)
                .map(|x| {
                    let mut row = m.schema().empty_row();
                    row.set(0, Some(FactValue::Number(f64::from(x))));
                    m.score(&row, date(AS_OF)).score
                })
                .fold(f32::INFINITY, f32::min);
            prop_assert_eq!(blank, worst);
        }
    }
}
