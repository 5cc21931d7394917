//! The funnel read from the store as it streams (`funnel_from_store`) equals the funnel over the
//! same rows read whole (`tier_timeline`, `deals_for_report`, then `funnel`), on a generated
//! population of 3,000 accounts and 9,000 deals with every kind of bad deal, on SQLite and
//! PostgreSQL; the benchmark's population, small.

#[path = "../examples/funnel_bench/population.rs"]
#[allow(dead_code)] // the benchmark's helpers this test does not call
mod population;

use tierd_core::Date;
use tierd_outcomes::{funnel, funnel_from_store, FunnelQuery};
use tierd_store::{RunKind, Store};
use tierd_test_support::postgres::Schema;

async fn load(store: &Store) {
    let mut rng = population::Rng::new(7);
    let run = store.begin_run(RunKind::Full, "m@1", "test").await.expect("run");
    store
        .import_tier_history(run, &population::tier_history(&mut rng, 0, 3_000))
        .await
        .expect("history");
    for from in (0..9_000).step_by(3_000) {
        store
            .record_deals(Some(run), &population::deals(&mut rng, 3_000, from, from + 3_000))
            .await
            .expect("deals");
    }
}

async fn check(store: &Store) {
    let history = store.tier_timeline().await.expect("history");
    let deals = store.deals_for_report().await.expect("deals");
    let queries = [
        FunnelQuery {
            currency: Some("USD".into()),
            model: "live".into(),
            ..FunnelQuery::default()
        },
        FunnelQuery {
            from: Date::from_ymd(2026, 3, 1),
            to: Date::from_ymd(2026, 8, 31),
            currency: None,
            model: "live".into(),
            target_list_fact: None,
        },
    ];
    for q in &queries {
        let whole = funnel(&history, &deals, q);
        // The fixture exercises what it claims to: tiers, the baseline, issues of every kind.
        assert!(whole.rows.iter().all(|r| r.deals > 0 && r.accounts > 0), "{q:?}");
        // Every account is tiered by February, so only the whole year has deals before tiering.
        assert_eq!(whole.deals_before_tiering > 0, q.from.is_none());
        let expected_kinds = if q.currency.is_some() { 6 } else { 5 };
        assert_eq!(
            whole.issue_counts.len(),
            expected_kinds,
            "{:?}",
            whole.issue_counts
        );
        assert_eq!(funnel_from_store(store, q).await.expect("streamed"), whole);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_funnel_equals_whole_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect_sqlite_file(&dir.path().join("t.db"))
        .await
        .expect("sqlite");
    load(&store).await;
    check(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_funnel_equals_whole_on_postgres() {
    let Some(schema) = Schema::create("outcomes_scale").await else {
        return;
    };
    let store = Store::connect_postgres(schema.options()).await.expect("postgres");
    load(&store).await;
    check(&store).await;
}
