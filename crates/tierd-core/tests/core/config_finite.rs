//! Scores are finite by construction: a model or `[tiering]` section with a number scoring
//! cannot hold (a weight beyond `f32`, NaN, infinity) is rejected with its key path, and a
//! model that compiles never scores NaN (issue 12 #10), checked over mutated models.

use proptest::prelude::*;
use tierd_core::fact::FactValue;
use tierd_core::tier::RawTierPolicy;
use tierd_core::{Date, Model, TierPolicy};

const AS_OF: Date = Date::from_days(20_781); // 2026-11-24

/// A TOML float, including `nan` and `inf`.
fn float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:e}")
    }
}

/// The numbers a model holds, each of which the fuzz test mutates.
#[derive(Debug, Clone)]
struct Numbers {
    component_weights: [f64; 2],
    criterion_weights: [f64; 4],
    band_bounds: [f64; 2],
    points: [f64; 3],
    lifespan_days: f64,
    per_event: f64,
    ratio: f64,
    value: f64,
}

impl Default for Numbers {
    fn default() -> Self {
        Numbers {
            component_weights: [2.0, 1.0],
            criterion_weights: [1.0, 2.0, 1.0, 0.5],
            band_bounds: [100.0, 1000.0],
            points: [1.0, 5.0, 3.0],
            lifespan_days: 90.0,
            per_event: 2.0,
            ratio: 0.1,
            value: 50_000.0,
        }
    }
}

/// A model using every kind of number a model file holds.
fn model_text(n: &Numbers) -> String {
    let [cw_fit, cw_eng] = n.component_weights.map(float);
    let [w0, w1, w2, w3] = n.criterion_weights.map(float);
    let [lo, hi] = n.band_bounds.map(float);
    let [p0, p1, p2] = n.points.map(float);
    let (life, per, ratio, value) = (
        float(n.lifespan_days),
        float(n.per_event),
        float(n.ratio),
        float(n.value),
    );
    format!(
        "name = \"fuzz\"\nversion = \"1\"\n\
         [components.fit]\nweight = {cw_fit}\n[components.engagement]\nweight = {cw_eng}\n\
         [[potential_value.sources]]\nfact = \"crm.acv\"\nratio = {ratio}\n\
         [[potential_value.sources]]\nfact = \"f.revenue\"\nbands = [{{ min = 0, max = {hi}, value = {value} }}]\n\
         [[criteria]]\nname = \"size\"\ncomponent = \"fit\"\nweight = {w0}\nfact = \"f.size\"\n\
         [criteria.rule]\nbands = [{{ min = {lo}, max = {hi}, points = {p0} }}, {{ min = {hi}, points = {p1} }}]\n\
         [[criteria]]\nname = \"demos\"\ncomponent = \"engagement\"\nweight = {w1}\nfact = \"e.demos\"\nmissing = \"zero\"\n\
         [criteria.rule]\nrecency = {{ per_event = {per}, lifespan_days = {life} }}\n\
         [[criteria]]\nname = \"value\"\ncomponent = \"fit\"\nweight = {w2}\nfact = \"derived.potential_value\"\n\
         [criteria.rule]\nbands = [{{ min = 0, max = {hi}, points = {p2} }}]\notherwise = {p1}\n\
         [[criteria]]\nname = \"flag\"\ncomponent = \"engagement\"\nweight = {w3}\nfact = \"f.flag\"\n\
         [criteria.rule]\nbool = {{ true = {p1}, false = {p0} }}\n"
    )
}

fn errors(text: &str) -> String {
    match Model::from_toml(text, "model") {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_unmutated_model_compiles() {
    assert_eq!(errors(&model_text(&Numbers::default())), "");
}

/// A change to the default numbers.
type Mutation = Box<dyn Fn(&mut Numbers)>;

#[test]
fn numbers_scoring_cannot_hold_are_rejected_with_their_key_path() {
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|n| n.component_weights[0] = 1e308),
            "model.components.fit.weight: must be within",
        ),
        (
            Box::new(|n| n.component_weights[1] = f64::NAN),
            "model.components.engagement.weight: must be within",
        ),
        (
            Box::new(|n| n.criterion_weights[0] = 1e39),
            "model.criteria[0].weight: must be within",
        ),
        (
            Box::new(|n| n.criterion_weights[1] = f64::INFINITY),
            "model.criteria[1].weight: must be within",
        ),
        (
            Box::new(|n| n.criterion_weights[2] = 1e-300),
            "model.criteria[2].weight: must be within",
        ),
        (
            Box::new(|n| n.band_bounds[0] = f64::NAN),
            "model.criteria[0].rule.bands[0].min: must be a number",
        ),
        (
            Box::new(|n| n.points[0] = f64::NAN),
            "model.criteria[0].rule.bands[0].points: points must be within 0..=5",
        ),
        (
            Box::new(|n| n.lifespan_days = f64::NAN),
            "model.criteria[1].rule.recency.lifespan_days: must be a number of days above 0",
        ),
        (
            Box::new(|n| n.lifespan_days = f64::INFINITY),
            "model.criteria[1].rule.recency.lifespan_days: must be a number of days above 0",
        ),
        (
            Box::new(|n| n.per_event = f64::INFINITY),
            "model.criteria[1].rule.recency.per_event: points must be within 0..=5",
        ),
        (
            Box::new(|n| n.ratio = f64::NAN),
            "model.potential_value.sources[0].ratio: must be a finite number",
        ),
        (
            Box::new(|n| n.value = 1e300),
            "model.potential_value.sources[1].bands[0].value: must be within",
        ),
        (
            Box::new(|n| n.value = f64::NAN),
            "model.potential_value.sources[1].bands[0].value: must be within",
        ),
    ];
    for (mutate, expected) in cases {
        let mut n = Numbers::default();
        mutate(&mut n);
        let got = errors(&model_text(&n));
        assert!(
            got.contains(expected),
            "expected {expected:?} for {n:?}, got:\n{got}"
        );
    }
}

#[test]
fn tiering_numbers_that_are_not_finite_are_rejected_with_their_key_path() {
    for (text, expected) in [
        ("tier_1 = nan", "tiering.tier_1: must be within 0..=5"),
        ("tier_3 = inf", "tiering.tier_3: must be within 0..=5"),
        (
            "hysteresis_margin = nan",
            "tiering.hysteresis_margin: must be within 0..=5",
        ),
        (
            "tier_1_cap = { percent = nan }",
            "tiering.tier_1_cap.percent: must be within 0..=100",
        ),
        (
            "tier_2_cap = { percent = inf }",
            "tiering.tier_2_cap.percent: must be within 0..=100",
        ),
    ] {
        let raw: RawTierPolicy = toml::from_str(text).expect("toml");
        let model = Model::from_toml(&model_text(&Numbers::default()), "model").expect("model");
        let got = match TierPolicy::compile(&raw, &mut model.schema().clone(), "tiering") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert!(
            got.contains(expected),
            "{text}: expected {expected:?}, got:\n{got}"
        );
    }
}

/// Any f64, with the edges (NaN, infinities, the f32 limit, tiny and huge) often.
fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => 0.0f64..10.0,
        1 => any::<f64>(),
        1 => prop::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -1.0, 1e-300, 1e-7, 1e-6, 1e6, 1.1e6,
            f64::from(f32::MAX), 1e39, 1e308, 5.0, 5.000001,
        ]),
    ]
}

/// The default model's numbers with a few of them (any of the 16) replaced: most mutants
/// differ in one or two places, as a typo would, so many of them still compile.
fn numbers() -> impl Strategy<Value = Numbers> {
    prop::collection::vec((0usize..16, any_number()), 0..4).prop_map(|edits| {
        let mut n = Numbers::default();
        for (field, x) in edits {
            let slot = match field {
                0..=1 => &mut n.component_weights[field],
                2..=5 => &mut n.criterion_weights[field - 2],
                6..=7 => &mut n.band_bounds[field - 6],
                8..=10 => &mut n.points[field - 8],
                11 => &mut n.lifespan_days,
                12 => &mut n.per_event,
                13 => &mut n.ratio,
                14 => &mut n.value,
                _ => &mut n.criterion_weights[0],
            };
            *slot = x;
        }
        n
    })
}

/// One account's facts: size, ACV, revenue, demo ages in days (negative: after the as-of
/// date), flag.
type Facts = (Option<f64>, Option<f64>, Option<f64>, Vec<i32>, Option<bool>);

/// Fact values of every kind, extremes included.
fn facts() -> impl Strategy<Value = Facts> {
    (
        prop::option::of(any_number()),
        prop::option::of(any_number()),
        prop::option::of(any_number()),
        prop::collection::vec(-400i32..30, 0..6),
        prop::option::of(any::<bool>()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_model_that_compiles_never_scores_nan(n in numbers(), rows in prop::collection::vec(facts(), 1..8)) {
        let Ok(model) = Model::from_toml(&model_text(&n), "model") else {
            // Rejected, with key paths (checked above): nothing to score.
            return Ok(());
        };
        let schema = model.schema();
        for (size, acv, revenue, demos, flag) in rows {
            let mut row = schema.empty_row();
            let mut set = |name: &str, v: Option<FactValue>| {
                if let Some(slot) = schema.slot(name) {
                    row.set(slot, v);
                }
            };
            set("f.size", size.map(FactValue::Number));
            set("crm.acv", acv.map(FactValue::Number));
            set("f.revenue", revenue.map(FactValue::Number));
            let mut dates: Vec<Date> = demos.iter().map(|d| AS_OF.add_days(-d)).collect();
            dates.sort_unstable_by(|a, b| b.cmp(a));
            set("e.demos", Some(FactValue::DateList(dates)));
            set("f.flag", flag.map(FactValue::Bool));
            let card = model.score(&row, AS_OF);
            prop_assert!((0.0..=5.0).contains(&card.score), "score {} for {:?}", card.score, n);
            prop_assert!((0.0..=1.0).contains(&card.coverage), "coverage {} for {:?}", card.coverage, n);
            for c in &card.criteria {
                prop_assert!(c.share.is_finite() && c.contribution().is_finite(), "{c:?} for {n:?}");
            }
        }
    }
}
