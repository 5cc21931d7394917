//! How many accounts per second `Store::commit_batch` writes, on SQLite and on PostgreSQL.
//!
//! `cargo run --release -p tierd-store --example batch_commit [BATCHES] [BATCH_SIZE] [ENDPOINTS]`
//! SQLite goes to a temporary file; PostgreSQL to a scratch schema of `TIERD_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/test`), skipped when unreachable.
//! Each batch scores `BATCH_SIZE` accounts, records a push for a quarter of them and a
//! checkpoint, the way the daemon commits; the first pass inserts, the second updates. With
//! `ENDPOINTS` above 0, every pushed account also writes a `tier.changed` webhook event (about
//! 500 bytes) to the outbox for that many endpoints, as a batch with webhooks configured does.

use std::str::FromStr;
use std::time::Instant;

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use tierd_core::Tier;
use tierd_store::{BatchCommit, NewEvent, PushRecord, RunKind, ScoredAccount, Store, Timestamp};

fn batch(run: tierd_store::RunId, b: usize, size: usize, pass: usize, endpoints: usize) -> BatchCommit {
    let scored: Vec<ScoredAccount> = (0..size)
        .map(|i| {
            let n = b * size + i;
            let score = ((n * 7 + pass * 3) % 50) as f64 / 10.0;
            ScoredAccount {
                id: format!("hubspot:{n}"),
                name: format!("Account {n}"),
                domain: Some(format!("a{n}.example")),
                facts: json!({
                    "firmographic.employee_count": {"value": n % 5000, "source": "firmographic", "observed_at": "2026-01-05"},
                    "technographic.technologies": {"value": ["Snowflake", "Segment"], "source": "technographic", "observed_at": "2026-01-05"},
                }).into(),
                facts_hash: format!("{:016x}", n * 2_654_435_761 + pass),
                score,
                coverage: 0.8,
                potential_value: 120_000.0,
                tier: Tier::ALL[n % 4],
                explanation: json!({"top": ["employee count", "uses Snowflake"], "score": score}).into(),
                reason: "employee count 1200; uses Snowflake".to_string(),
                model_version: "default@3".to_string(),
                crm_tier_seen: None,
                locked: false,
            }
        })
        .collect();
    let pushed: Vec<PushRecord> = scored
        .iter()
        .step_by(4)
        .map(|a| PushRecord {
            account: a.id.clone(),
            tier: a.tier,
            score_bucket: (a.score * 2.0).round() / 2.0,
            reason: a.reason.clone(),
        })
        .collect();
    let events = if endpoints == 0 {
        Vec::new()
    } else {
        pushed
            .iter()
            .map(|p| NewEvent {
                id: format!("msg_{pass}_{}", p.account),
                kind: "tier.changed".to_string(),
                body: json!({
                    "type": "tier.changed",
                    "timestamp": "2026-12-01T10:00:00.000Z",
                    "data": {
                        "account": {"id": p.account, "name": "Account", "domain": "a.example", "tier": p.tier.as_str()},
                        "from": "tier_2", "to": p.tier.as_str(), "score": p.score_bucket,
                        "reason": p.reason, "run": 1
                    }
                })
                .to_string(),
                occurred_at: Timestamp::from_millis(1_764_583_200_000),
                endpoints: (0..endpoints).map(|e| format!("endpoint-{e}")).collect(),
            })
            .collect()
    };
    BatchCommit {
        run,
        scored,
        pushed,
        checkpoint: Some(("push".to_string(), b.to_string())),
        events,
        ..BatchCommit::default()
    }
}

async fn measure(name: &str, store: &Store, batches: usize, size: usize, endpoints: usize) {
    let run = store
        .begin_run(RunKind::Full, "default@3", "bench")
        .await
        .expect("start a run");
    for pass in 0..2 {
        let started = Instant::now();
        for b in 0..batches {
            store
                .commit_batch(&batch(run, b, size, pass, endpoints))
                .await
                .expect("commit a batch");
        }
        let secs = started.elapsed().as_secs_f64();
        let what = if pass == 0 { "insert" } else { "update" };
        println!(
            "{name:<8} {what}: {batches} batches of {size} in {secs:.2} s = {:.0} batches/s, {:.0} accounts/s",
            batches as f64 / secs,
            (batches * size) as f64 / secs
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let endpoints: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = Store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display()))
        .await
        .expect("open SQLite");
    measure("sqlite", &sqlite, batches, size, endpoints).await;

    let url = std::env::var("TIERD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let Ok(admin) = PgConnectOptions::from_str(&url) else {
        println!(
            "postgres: '{}' is not a PostgreSQL URL; skipped",
            tierd_store::redact_url(&url)
        );
        return;
    };
    let Ok(mut conn) = PgConnection::connect_with(&admin).await else {
        println!(
            "postgres: unreachable at {}; skipped",
            tierd_store::redact_url(&url)
        );
        return;
    };
    let schema = format!("bench_{}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let store = Store::connect_postgres(admin.clone().options([("search_path", schema.as_str())]))
        .await
        .expect("open PostgreSQL");
    measure("postgres", &store, batches, size, endpoints).await;
    store.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .expect("drop schema");
}
