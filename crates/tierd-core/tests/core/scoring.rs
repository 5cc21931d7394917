//! Scoring behaviour through the public API: every rule kind, missing-fact policies (more in
//! `missing.rs`),
//! components, coverage, potential value and explanations.

use tierd_core::fact::FactType;
use tierd_core::{Date, FactRow, Model};

fn date(s: &str) -> Date {
    s.parse().expect("test date")
}

const AS_OF: &str = "2026-11-24";

/// A model with one criterion of the given rule in component `fit`, plus `extra` TOML.
fn one_rule(fact: &str, rule: &str, missing: &str) -> Model {
    let text = format!(
        "name = \"t\"\nversion = \"1\"\n[components.fit]\nweight = 1\n\
         [[criteria]]\nname = \"c\"\ncomponent = \"fit\"\nweight = 1\nfact = \"{fact}\"\nmissing = \"{missing}\"\n\
         [criteria.rule]\n{rule}\n"
    );
    Model::from_toml(&text, "model").unwrap_or_else(|e| panic!("model: {e}"))
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

fn score_of(model: &Model, cells: &[(&str, &str)]) -> f32 {
    model.score(&row(model, cells), date(AS_OF)).score
}

#[test]
fn bands_map_numbers_to_points_and_otherwise() {
    let m = one_rule(
        "f.n",
        "bands = [{ min = 0, max = 100, points = 1 }, { min = 100, max = 1000, points = 4 }]\notherwise = 0.5",
        "lowest",
    );
    assert_eq!(score_of(&m, &[("f.n", "50")]), 1.0);
    assert_eq!(score_of(&m, &[("f.n", "100")]), 4.0);
    assert_eq!(score_of(&m, &[("f.n", "5000")]), 0.5);
}

#[test]
fn map_matches_ignoring_case() {
    let m = one_rule(
        "f.s",
        "map = { Software = 5, Retail = 2 }\notherwise = 1",
        "lowest",
    );
    assert_eq!(score_of(&m, &[("f.s", "software")]), 5.0);
    assert_eq!(score_of(&m, &[("f.s", "Retail")]), 2.0);
    assert_eq!(score_of(&m, &[("f.s", "Mining")]), 1.0);
}

#[test]
fn any_of_scores_a_match_or_per_match_with_a_cap() {
    let m = one_rule("f.l", "any_of = [\"Snowflake\", \"dbt\"]\npoints = 4", "lowest");
    assert_eq!(score_of(&m, &[("f.l", "AWS;snowflake")]), 4.0);
    assert_eq!(score_of(&m, &[("f.l", "AWS")]), 0.0);
    let per = one_rule(
        "f.l",
        "any_of = [\"a\", \"b\", \"c\"]\nper_match = 2\npoints = 5",
        "lowest",
    );
    assert_eq!(score_of(&per, &[("f.l", "a")]), 2.0);
    assert_eq!(score_of(&per, &[("f.l", "a;b;c")]), 5.0);
}

#[test]
fn all_of_needs_every_item() {
    let m = one_rule("f.l", "all_of = [\"dbt\", \"Fivetran\"]\notherwise = 1", "lowest");
    assert_eq!(score_of(&m, &[("f.l", "dbt;Fivetran;AWS")]), 5.0);
    assert_eq!(score_of(&m, &[("f.l", "dbt")]), 1.0);
}

#[test]
fn days_until_bands_days_from_the_scoring_date() {
    let m = one_rule(
        "f.d",
        "days_until = [{ max = 0, points = 1 }, { min = 0, max = 90, points = 5 }, { min = 90, points = 2 }]",
        "lowest",
    );
    assert_eq!(score_of(&m, &[("f.d", "2026-12-24")]), 5.0);
    assert_eq!(score_of(&m, &[("f.d", "2027-06-01")]), 2.0);
    assert_eq!(score_of(&m, &[("f.d", "2026-11-01")]), 1.0);
}

#[test]
fn recency_bands_use_the_latest_event() {
    let m = one_rule(
        "f.e",
        "recency = { bands = [{ max = 30, points = 5 }, { min = 30, max = 90, points = 2 }] }",
        "zero",
    );
    assert_eq!(score_of(&m, &[("f.e", "2026-01-01;2026-11-20")]), 5.0);
    assert_eq!(score_of(&m, &[("f.e", "2026-10-01")]), 2.0);
    assert_eq!(score_of(&m, &[("f.e", "2025-01-01")]), 0.0);
    assert_eq!(score_of(&m, &[]), 0.0);
}

#[test]
fn engagement_events_fade_linearly_over_their_lifespan() {
    let m = one_rule("f.e", "recency = { per_event = 4, lifespan_days = 90 }", "zero");
    assert_eq!(score_of(&m, &[("f.e", AS_OF)]), 4.0);
    let half = score_of(&m, &[("f.e", "2026-09-25")]); // 60 days ago: 1/3 left
    assert_eq!(half, 1.333, "4/3 to the thousandth");
    assert_eq!(score_of(&m, &[("f.e", "2026-08-01")]), 0.0);
    // Two fresh events add up, capped at 5.
    assert_eq!(score_of(&m, &[("f.e", "2026-11-24;2026-11-24")]), 5.0);
}

#[test]
fn bool_rule_scores_each_value() {
    let m = one_rule("f.b", "bool = { true = 5, false = 2 }", "lowest");
    assert_eq!(score_of(&m, &[("f.b", "true")]), 5.0);
    assert_eq!(score_of(&m, &[("f.b", "no")]), 2.0);
}

const TWO_COMPONENTS: &str = r#"
name = "t"
version = "7"
[components.fit]
weight = 3
[components.engagement]
weight = 1
[[criteria]]
name = "industry"
component = "fit"
weight = 1
fact = "f.industry"
[criteria.rule]
map = { Software = 5 }
[[criteria]]
name = "size"
component = "fit"
weight = 3
fact = "f.size"
[criteria.rule]
bands = [{ min = 0, max = 100, points = 1 }, { min = 100, points = 3 }]
[[criteria]]
name = "demo"
component = "engagement"
weight = 1
fact = "e.demo"
missing = "zero"
label = "demo request"
[criteria.rule.recency]
per_event = 5
lifespan_days = 90
"#;

#[test]
fn an_unknown_fact_scores_its_lowest_and_a_blank_none_counts_as_known() {
    let m = Model::from_toml(TWO_COMPONENTS, "model").expect("model");
    // size unknown: the lowest any known size earns, 0 (`otherwise`, for a size below the
    // first band's min of 0); no demo request (zero): 0.
    let card = m.score(&row(&m, &[("f.industry", "Software")]), date(AS_OF));
    // Components in name order: engagement, fit. fit = (1·5 + 3·0) / 4 = 1.25.
    assert_eq!(card.components, vec![Some(0.0), Some(1.25)]);
    // (3·1.25 + 1·0) / 4 = 0.9375, to the thousandth (half to even) 0.938.
    assert_eq!(card.score, 0.938);
    // coverage: fit has 1 of 4 weight known (3/4 of total), engagement fully (zero policy).
    assert!(
        (card.coverage - (0.75 * 0.25 + 0.25)).abs() < 1e-6,
        "{}",
        card.coverage
    );
}

#[test]
fn contributions_sum_to_the_score_and_reasons_are_in_words() {
    let m = Model::from_toml(TWO_COMPONENTS, "model").expect("model");
    let r = row(&m, &[("f.industry", "Software"), ("f.size", "50")]);
    let card = m.score(&r, date(AS_OF));
    let sum: f32 = card.criteria.iter().map(|c| c.contribution()).sum();
    assert!((sum - card.score).abs() < 1e-5);
    let e = m.explain(&r, &card, date(AS_OF));
    assert_eq!(e.model, "t@7");
    let neg: Vec<String> = e.negative.iter().map(ToString::to_string).collect();
    assert_eq!(neg, vec!["size 50 (-0.8)", "no demo request in 90 days (-0.6)"]);
    assert_eq!(e.positive[0].to_string(), "industry: Software (+0.5)");
    let mut compact = String::new();
    m.compact_reasons(&r, &card, date(AS_OF), 3, 2, &mut compact);
    assert_eq!(
        compact,
        "industry: Software (+0.5); size 50 (-0.8); no demo request in 90 days (-0.6)"
    );
}

#[test]
fn an_engaged_account_outranks_a_better_fit_with_the_default_model() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/model.toml"))
        .expect("config/model.toml");
    let m = Model::from_toml(&text, "model").expect("default model is valid");
    let base = [
        ("firmographic.region", "North America"),
        ("firmographic.org_type", "private"),
        ("contracts.renewal_date", "2027-09-01"),
    ];
    let mut fit: Vec<(&str, &str)> = base.to_vec();
    fit.extend([
        ("firmographic.industry", "Software"),
        ("firmographic.employee_count", "3000"),
        ("technographic.technologies", "Snowflake;dbt;Fivetran"),
    ]);
    let mut engaged: Vec<(&str, &str)> = base.to_vec();
    engaged.extend([
        ("firmographic.industry", "Healthcare"),
        ("firmographic.employee_count", "3000"),
        ("technographic.technologies", "AWS;Salesforce"),
        ("engagement.demo_requests", "2026-11-20"),
        ("engagement.site_visits_30d", "200"),
        ("engagement.webinars", "2026-11-01"),
    ]);
    let (f, e) = (score_of(&m, &fit), score_of(&m, &engaged));
    assert!(e > f, "engaged {e} should outrank better fit {f}");
}

#[test]
fn potential_value_takes_the_first_source_with_data() {
    let text = r#"
name = "t"
version = "1"
[components.value]
weight = 1
[potential_value]
sources = [
  { fact = "crm.acv" },
  { fact = "f.size", bands = [{ max = 100, value = 1000 }, { min = 100, value = 9000 }] },
  { fact = "f.revenue", ratio = 0.001 },
]
[[criteria]]
name = "value"
component = "value"
weight = 1
fact = "derived.potential_value"
[criteria.rule]
bands = [{ max = 5000, points = 1 }, { min = 5000, points = 5 }]
"#;
    let m = Model::from_toml(text, "model").expect("model");
    let pv = |cells: &[(&str, &str)]| m.score(&row(&m, cells), date(AS_OF)).potential_value;
    assert_eq!(pv(&[("crm.acv", "42000"), ("f.size", "10")]), Some(42000.0));
    assert_eq!(pv(&[("f.size", "500"), ("f.revenue", "1000000")]), Some(9000.0));
    assert_eq!(pv(&[("f.revenue", "2000000")]), Some(2000.0));
    assert_eq!(pv(&[]), None);
    assert_eq!(score_of(&m, &[("f.size", "500")]), 5.0);
}

#[test]
fn nothing_known_scores_zero_with_zero_coverage() {
    let m = one_rule("f.n", "bands = [{ min = 0, points = 5 }]", "lowest");
    let card = m.score(&m.schema().empty_row(), date(AS_OF));
    assert_eq!((card.score, card.coverage), (0.0, 0.0));
}

#[test]
fn a_score_printed_as_3_000_is_tier_3() {
    // Issue 12 #4: a row summed to 2.9999998 in f32, printed as 3.000 and fell below the 3.0
    // threshold. Scores are kept to the printed thousandth. Here 3 points at weights 0.1 and
    // 0.7: (0.1·3 + 0.7·3) / (0.1 + 0.7) is 2.9999998 in f32.
    let text = "name = \"t\"\nversion = \"1\"\n[components.fit]\nweight = 1\n\
        [[criteria]]\nname = \"a\"\ncomponent = \"fit\"\nweight = 0.1\nfact = \"f.a\"\n\
        [criteria.rule]\nbands = [{ points = 3 }]\n\
        [[criteria]]\nname = \"b\"\ncomponent = \"fit\"\nweight = 0.7\nfact = \"f.b\"\n\
        [criteria.rule]\nbands = [{ points = 3 }]\n";
    let model = Model::from_toml(text, "model").expect("model");
    let sum = (0.1f32 * 3.0 + 0.7f32 * 3.0) / (0.1f32 + 0.7f32);
    assert!(sum < 3.0, "the f32 sum this guards against: {sum}");
    let card = model.score(&row(&model, &[("f.a", "1"), ("f.b", "1")]), date(AS_OF));
    assert_eq!(format!("{:.3}", card.score), "3.000");
    assert_eq!(card.score, 3.0);
    assert_eq!(
        tierd_core::TierPolicy::default().tier_for(card.score),
        tierd_core::Tier::Tier3
    );
}

#[test]
fn thresholds_compare_at_the_printed_precision() {
    let p = tierd_core::TierPolicy::default();
    // Just under 3.0 in f32, printed as 3.000: Tier 3, as printed.
    assert_eq!(p.tier_for(2.9999998), tierd_core::Tier::Tier3);
    assert_eq!(p.tier_for(2.9994), tierd_core::Tier::Untiered);
    assert_eq!(format!("{:.3}", 4.4996f32), "4.500");
    assert_eq!(p.tier_for(4.4996), tierd_core::Tier::Tier1);
}

#[test]
fn an_event_dated_after_the_as_of_date_neither_scores_nor_lifts_and_is_named() {
    // Issue 12 #6: an event dated tomorrow scored as if today while the override ignored it.
    let fade = one_rule("f.e", "recency = { per_event = 4, lifespan_days = 90 }", "zero");
    assert_eq!(score_of(&fade, &[("f.e", "2026-11-25")]), 0.0);
    assert_eq!(score_of(&fade, &[("f.e", "2026-11-25;2026-11-24")]), 4.0);
    let bands = one_rule(
        "f.e",
        "recency = { bands = [{ min = 0, max = 30, points = 5 }] }",
        "zero",
    );
    assert_eq!(score_of(&bands, &[("f.e", "2026-11-30")]), 0.0);
    assert_eq!(score_of(&bands, &[("f.e", "2026-11-30;2026-11-20")]), 5.0);

    let mut schema = fade.schema().clone();
    let raw: tierd_core::tier::RawTierPolicy =
        toml::from_str("[[overrides]]\nfact = \"f.e\"\nwithin_days = 30\n").expect("policy toml");
    let policy = tierd_core::TierPolicy::compile(&raw, &mut schema, "tiering").expect("policy");
    let r = row(&fade, &[("f.e", "2026-11-30;2026-11-25")]);
    assert_eq!(policy.engagement_on(&r, date(AS_OF)), None);
    let card = fade.score(&r, date(AS_OF));
    let e = fade.explain(&r, &card, date(AS_OF));
    assert_eq!(e.criteria[0].reason, "no e");

    let warnings = schema.future_events(&r, date(AS_OF));
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0].to_string(),
        "f.e: 2 events dated after the as-of date 2026-11-24 (latest 2026-11-30), ignored as not yet happened"
    );
    assert!(schema
        .future_events(&row(&fade, &[("f.e", "2026-11-24")]), date(AS_OF))
        .is_empty());
}

mod invariants {
    use super::*;
    use proptest::prelude::*;
    use tierd_core::fact::FactValue;

    /// A model with `weights.len()` criteria over facts `f.c0..`, each giving points equal to
    /// its fact's value (0..=5), spread over two components.
    fn points_model(weights: &[(f64, bool, bool)]) -> Model {
        let mut text = String::from(
            "name = \"p\"\nversion = \"1\"\n[components.a]\nweight = 2\n[components.b]\nweight = 1\n",
        );
        let bands = (0..5)
            .map(|k| format!("{{ min = {k}, max = {}, points = {k} }}", k + 1))
            .chain(std::iter::once("{ min = 5, points = 5 }".to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        for (i, (w, in_b, zero)) in weights.iter().enumerate() {
            text.push_str(&format!(
                "[[criteria]]\nname = \"c{i}\"\ncomponent = \"{}\"\nweight = {w}\nfact = \"f.c{i}\"\nmissing = \"{}\"\n[criteria.rule]\nbands = [{bands}]\n",
                if *in_b { "b" } else { "a" },
                if *zero { "zero" } else { "lowest" },
            ));
        }
        // Both components need a criterion.
        text.push_str(&format!("[[criteria]]\nname = \"ca\"\ncomponent = \"a\"\nweight = 1\nfact = \"f.ca\"\n[criteria.rule]\nbands = [{bands}]\n"));
        text.push_str(&format!("[[criteria]]\nname = \"cb\"\ncomponent = \"b\"\nweight = 1\nfact = \"f.cb\"\n[criteria.rule]\nbands = [{bands}]\n"));
        Model::from_toml(&text, "model").unwrap_or_else(|e| panic!("{e}"))
    }

    /// (criteria as (weight, in component b, missing = zero), fact values, criterion to raise, by how much)
    type Setup = (Vec<(f64, bool, bool)>, Vec<Option<u8>>, usize, u8);

    fn setup() -> impl Strategy<Value = Setup> {
        prop::collection::vec((0.1f64..10.0, any::<bool>(), any::<bool>()), 1..8).prop_flat_map(|w| {
            let n = w.len() + 2;
            (
                Just(w),
                prop::collection::vec(prop::option::of(0u8..=5), n),
                0..n,
                0u8..=5,
            )
        })
    }

    fn row_of(model: &Model, values: &[Option<u8>]) -> FactRow {
        let mut row = model.schema().empty_row();
        for (i, v) in values.iter().enumerate() {
            row.set(i, v.map(|x| FactValue::Number(f64::from(x))));
        }
        row
    }

    proptest! {
        #[test]
        fn score_and_coverage_stay_in_range((w, values, _, _) in setup()) {
            let m = points_model(&w);
            let card = m.score(&row_of(&m, &values), date(AS_OF));
            prop_assert!((0.0..=5.0).contains(&card.score));
            prop_assert!((0.0..=1.0).contains(&card.coverage));
        }

        #[test]
        fn contributions_sum_to_the_score_within_half_a_thousandth((w, values, _, _) in setup()) {
            let m = points_model(&w);
            let card = m.score(&row_of(&m, &values), date(AS_OF));
            let sum: f32 = card.criteria.iter().map(|c| c.contribution()).sum();
            // The score is quantised to thousandths; the rest is f32 rounding.
            prop_assert!((sum - card.score).abs() <= 0.0005 + 1e-5, "{sum} vs {}", card.score);
        }

        #[test]
        fn score_never_falls_when_a_known_criterion_earns_more((w, mut values, i, bump) in setup()) {
            let m = points_model(&w);
            let before = values[i].unwrap_or(0);
            values[i] = Some(before);
            let low = m.score(&row_of(&m, &values), date(AS_OF)).score;
            values[i] = Some(before.saturating_add(bump).min(5));
            let high = m.score(&row_of(&m, &values), date(AS_OF)).score;
            prop_assert!(high >= low - 1e-5, "{high} < {low}");
        }
    }
}

#[test]
fn shares_are_each_criterion_s_part_of_the_score_worked_out_once_or_per_account() {
    let m = Model::from_toml(
        r#"
name = "t"
version = "1"
[components.a]
weight = 3
[components.b]
weight = 1
[[criteria]]
name = "a1"
component = "a"
weight = 1
fact = "firmographic.employee_count"
rule = { bands = [{ max = 100, points = 5 }], otherwise = 1 }
[[criteria]]
name = "a2"
component = "a"
weight = 3
fact = "firmographic.annual_revenue"
rule = { bands = [{ max = 100, points = 5 }], otherwise = 1 }
[[criteria]]
name = "b1"
component = "b"
weight = 2
fact = "firmographic.industry"
rule = { map = { "software" = 2 } }
"#,
        "model",
    )
    .expect("model");
    let r = row(
        &m,
        &[
            ("firmographic.employee_count", "10"),
            ("firmographic.annual_revenue", "1000"),
            ("firmographic.industry", "Software"),
        ],
    );
    let weights = tierd_core::score::Weights::of(&m);
    let mut weighed = tierd_core::ScoreCard::default();
    m.score_weighed(&r, date("2026-01-01"), &weights, &mut weighed);
    let card = m.score(&r, date("2026-01-01"));
    assert_eq!(weighed, card);
    // By hand: a is 3/4 of the score, a1 1/4 of a, a2 3/4 of a; b 1/4, b1 all of it.
    let shares: Vec<f32> = card.criteria.iter().map(|o| o.share).collect();
    assert_eq!(shares, vec![0.1875, 0.5625, 0.25]);
    // a = (1·5 + 3·1) / 4 = 2, b = 2: the score is 2.
    assert_eq!(card.components, vec![Some(2.0), Some(2.0)]);
    assert_eq!(card.score, 2.0);
    assert_eq!(card.coverage, 1.0);
}
