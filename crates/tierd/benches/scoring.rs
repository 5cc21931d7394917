//! Scoring and tiering throughput with the default model over generated accounts.
//!
//! `cargo bench -p tierd --bench scoring` prints elements (accounts) per second for
//! scoring alone, for scoring plus the compact explanation written beside each score,
//! and for tiering a scored population. See docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tierd_core::model::FactRow;
use tierd_core::tier::{Lock, RunKind, TierCandidate};
use tierd_core::{Date, Model, ScoreCard, TierPolicy};

const ACCOUNTS: usize = 10_000;

fn setup() -> (Model, Vec<FactRow>, Date) {
    let text = include_str!("../../../config/model.toml");
    let model = Model::from_toml(text, "model").expect("the default model is valid");
    let as_of = Date::from_ymd(2026, 11, 24).expect("date");
    let schema = model.schema();
    let rows = tierd_gen::Generator::new(tierd_gen::GenOptions { seed: 1, as_of })
        .take(ACCOUNTS)
        .map(|acc| {
            let mut row = schema.empty_row();
            for (name, value) in acc.facts() {
                if let Some(slot) = schema.slot(name) {
                    // Generated values carry the model's types; a single date is a one-event list.
                    let ty = schema.fact_type(slot);
                    row.set(slot, value.and_then(|v| ty.parse(&v.to_string()).ok().flatten()));
                }
            }
            row
        })
        .collect();
    (model, rows, as_of)
}

fn bench(c: &mut Criterion) {
    let (model, rows, as_of) = setup();
    let mut group = c.benchmark_group("default_model");
    group.throughput(Throughput::Elements(ACCOUNTS as u64));

    group.bench_function("score", |b| {
        let mut card = ScoreCard::default();
        b.iter(|| {
            let mut sum = 0f32;
            for row in &rows {
                model.score_into(row, as_of, &mut card);
                sum += card.score;
            }
            sum
        })
    });

    group.bench_function("score_and_explain", |b| {
        let mut card = ScoreCard::default();
        let mut text = String::new();
        b.iter(|| {
            let mut len = 0;
            for row in &rows {
                model.score_into(row, as_of, &mut card);
                text.clear();
                model.compact_reasons(row, &card, as_of, 3, 2, &mut text);
                len += text.len();
            }
            len
        })
    });

    let policy = TierPolicy::compile(
        &toml::from_str("tier_1_cap = { percent = 3 }\ntier_2_cap = { percent = 12 }").expect("policy"),
        &mut model.schema().clone(),
        "tiering",
    )
    .expect("policy");
    let candidates: Vec<TierCandidate> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let card = model.score(row, as_of);
            TierCandidate {
                id: format!("acc-{i:08}").into(),
                score: card.score,
                potential_value: card.potential_value.unwrap_or(0.0),
                coverage: card.coverage,
                previous: None,
                lock: Lock::Unlocked,
                engagement: None,
            }
        })
        .collect();
    group.bench_function("tier_with_caps", |b| {
        b.iter_batched(
            || candidates.clone(),
            |c| policy.assign(&c, RunKind::Full, as_of),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
