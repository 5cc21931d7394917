//! The tier listing under load at scale: what `GET /api/v1/tiers?tier=X&after=...` and the
//! dashboard's accounts page ask of the store (the counts, then one page of one tier through the
//! `(tier, id)` index), from 20 concurrent clients over N accounts, on SQLite and PostgreSQL.
//! Prints p50/p99/max latency and requests per second. Generated data lives in a temp dir (SQLite)
//! or a throwaway schema (PostgreSQL) and is removed at the end.
//!
//! ```sh
//! cargo run --release -p tierd-store --example reports_bench -- 1000000
//! ```

use std::time::{Duration, Instant};

use tierd_core::Tier;
use tierd_store::{AccountQuery, Store};

const CLIENTS: usize = 20;
const REQUESTS_PER_CLIENT: usize = 200;
const PAGE: u32 = 100;

/// 1M rows in one statement per backend: ids in order, tiers 2% / 8% / 20% / 70%, an explanation
/// the size of a real one (about 1 KB).
const SEED_SQL: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
    INSERT INTO accounts (id, name, domain, facts_hash, score, coverage, tier, model_version, scored_at)
    SELECT 'hubspot:' || CAST(1000000000 + i AS TEXT), 'Company ' || CAST(i AS TEXT), 'c' || CAST(i AS TEXT) || '.example',
        'h', (i % 500) / 100.0, 0.8,
        CASE WHEN i % 50 = 0 THEN 'tier_1' WHEN i % 50 < 5 THEN 'tier_2' WHEN i % 50 < 15 THEN 'tier_3' ELSE 'untiered' END,
        'bench@1', 0
    FROM n";

/// Every seeded account's facts (none) and explanation.
const SEED_TEXTS_SQL: &str =
    "INSERT INTO account_texts (id, facts, explanation) SELECT id, '{}', $1 FROM accounts";

fn explanation() -> String {
    let reason = |t: &str, i: f64| format!(r#"{{"text": "{t}", "impact": {i}}}"#);
    let criteria: Vec<String> = (0..12)
        .map(|c| format!(r#"{{"criterion": "criterion_{c}", "component": "fit", "fact": "firmographic.f{c}", "value": "some value", "points": 3.5, "share": 0.08, "contribution": 0.28, "impact": 0.08, "reason": "criterion {c} reads some value"}}"#))
        .collect();
    format!(
        r#"{{"reasons": "uses Snowflake; no demo request", "as_of": "2026-11-24", "detail": {{"model": "bench@1", "score": 3.5, "coverage": 0.8, "components": [], "criteria": [{}], "positive": [{}, {}], "negative": [{}]}}}}"#,
        criteria.join(", "),
        reason("uses Snowflake", 0.8),
        reason("industry: Software", 0.5),
        reason("no demo request in 90 days", -0.4)
    )
}

async fn load(store: &Store) -> anyhow::Result<Vec<Duration>> {
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let tier = Tier::ALL[c % 4];
            let mut after: Option<String> = None;
            let mut latencies = Vec::with_capacity(REQUESTS_PER_CLIENT);
            for _ in 0..REQUESTS_PER_CLIENT {
                let t = Instant::now();
                let _counts = store.tier_totals().await?;
                let page = store
                    .account_page(&AccountQuery {
                        tier: Some(tier),
                        search: None,
                        after: after.clone(),
                        limit: PAGE,
                    })
                    .await?;
                latencies.push(t.elapsed());
                after = page.next_after;
            }
            Ok::<_, tierd_store::StoreError>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

fn report(backend: &str, accounts: i64, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{backend}: {accounts} accounts, {CLIENTS} clients x {REQUESTS_PER_CLIENT} requests (counts + a {PAGE}-account page of one tier): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} requests/s",
        q(0.50),
        q(0.99),
        q(1.0),
        lat.len() as f64 / wall.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let accounts: i64 = std::env::args().nth(1).map_or(Ok(1_000_000), |a| a.parse())?;
    let explanation = explanation();

    // SQLite, in a temp dir removed at the end.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let store = Store::connect_sqlite_file(&path).await?;
    let started = Instant::now();
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
        sqlx::query(SEED_SQL).bind(accounts).execute(&mut conn).await?;
        sqlx::query(SEED_TEXTS_SQL)
            .bind(&explanation)
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    eprintln!(
        "sqlite: seeded {accounts} accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        store.tier_totals().await?.total,
        accounts as u64,
        "the counts follow the rows"
    );
    let t = Instant::now();
    let lat = load(&store).await?;
    report("sqlite", accounts, lat, t.elapsed());
    store.close().await;
    drop(dir);

    // PostgreSQL, in a throwaway schema.
    match tierd_test_support::postgres::Schema::create("bench_reports").await {
        Some(schema) => {
            let store = Store::connect_postgres(schema.options()).await?;
            let started = Instant::now();
            {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect_with(&schema.options()).await?;
                sqlx::query(&SEED_SQL.replace("SELECT 1 UNION", "SELECT CAST(1 AS BIGINT) UNION"))
                    .bind(accounts)
                    .execute(&mut conn)
                    .await?;
                sqlx::query(SEED_TEXTS_SQL)
                    .bind(&explanation)
                    .execute(&mut conn)
                    .await?;
                sqlx::query("ANALYZE accounts").execute(&mut conn).await?;
                conn.close().await?;
            }
            eprintln!(
                "postgres: seeded {accounts} accounts in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert_eq!(
                store.tier_totals().await?.total,
                accounts as u64,
                "the counts follow the rows"
            );
            let t = Instant::now();
            let lat = load(&store).await?;
            report("postgres", accounts, lat, t.elapsed());
            store.close().await;
            drop(schema);
        }
        None => eprintln!("postgres: not reachable, skipped"),
    }
    Ok(())
}
