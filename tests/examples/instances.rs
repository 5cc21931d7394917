//! One versus two `tierd run` instances on one PostgreSQL database, over the same full run.
//!
//! ```sh
//! cargo build --release -p tierd
//! cargo run --release -p tierd-e2e --example instances -- [ACCOUNTS] [BATCH_SIZE]
//! ```
//!
//! For each instance count: a fresh database, a HubSpot emulator with ACCOUNTS companies
//! (default 20,000; no limits, no latency) hosted by this process, N daemons started with the
//! schedules off. A first full run (every company pushed) warms the store, then a second full run
//! (nothing to push, so the run is pull, work items, tiering) is timed from `POST /api/v1/runs` to
//! its success. Printed: both runs' wall time and accounts/s, and how many work items each
//! instance processed (`work_items.claimed_by`), which shows the queue was shared.
//! Uses `TIERD_BIN` when set, else the `tierd` beside this example's profile directory.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use tierd_e2e::harness::{free_port, hubspot, Api, Config, Database, Tierd};

struct Timed {
    first: Duration,
    second: Duration,
    items_by_instance: BTreeMap<String, i64>,
}

async fn wait_for_success(api: &Api, after: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if let Some(runs) = api.get("/api/v1/runs?limit=1").await {
            let run = &runs["runs"][0];
            let id = run["id"].as_i64().unwrap_or(0);
            match run["status"].as_str() {
                Some("succeeded") if id > after => return id,
                Some("failed" | "interrupted") if id > after => panic!("the run did not succeed: {run}"),
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "no successful run within 30 minutes");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn timed_run(api: &Api, after: i64) -> (Duration, i64) {
    let started = Instant::now();
    let (status, body) = api.post("/api/v1/runs", &json!({"kind": "full"})).await;
    assert_eq!(status, 202, "{body}");
    let id = wait_for_success(api, after).await;
    (started.elapsed(), id)
}

async fn measure(instances: usize, accounts: u64, batch_size: usize) -> Timed {
    let db = Database::postgres()
        .await
        .expect("this benchmark needs PostgreSQL (TIERD_TEST_POSTGRES)");
    let crm = hubspot(accounts, 1).await;
    let root = tempfile::tempdir().expect("tempdir");
    let mut daemons = Vec::new();
    let mut apis = Vec::new();
    for i in 0..instances {
        let dir = root.path().join(format!("i{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let listen = format!("127.0.0.1:{}", free_port());
        let mut cfg = Config::new(db.url(), &crm.base_url());
        cfg.batch_size = batch_size;
        cfg.push_batch_size = 100;
        cfg.api_listen = Some(listen.clone());
        let config = cfg.write(&dir);
        daemons.push(Tierd::spawn(&format!("i{i}"), &dir, &config, &["run"]));
        apis.push(Api::new(&listen));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        let mut roles = Vec::new();
        for api in &apis {
            roles.push(api.role().await);
        }
        if roles.iter().all(Option::is_some) {
            if let Some(i) = roles.iter().position(|r| r.as_deref() == Some("leader")) {
                break i;
            }
        }
        assert!(Instant::now() < deadline, "the daemons did not start: {roles:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (first, id) = timed_run(&apis[leader], 0).await;
    let (second, id) = timed_run(&apis[leader], id).await;

    let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(db.url()).expect("url"))
        .await
        .expect("connect");
    let rows: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT claimed_by, COUNT(*) FROM work_items WHERE run = $1 GROUP BY claimed_by")
            .bind(id)
            .fetch_all(&mut conn)
            .await
            .expect("work items per instance");
    let _ = conn.close().await;
    for d in &daemons {
        d.sigterm();
    }
    for d in &mut daemons {
        d.exit_within(Duration::from_secs(60)).await;
    }
    Timed {
        first,
        second,
        items_by_instance: rows
            .into_iter()
            .map(|(owner, n)| (owner.unwrap_or_else(|| "-".into()), n))
            .collect(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let accounts: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let batch_size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(250);
    println!(
        "{accounts} accounts, batch_size {batch_size}, tierd at {}",
        tierd_e2e::tierd_bin().display()
    );
    println!("| instances | first full run (pushes all) | accounts/s | second full run (nothing to push) | accounts/s | work items per instance |");
    println!("|---|---|---|---|---|---|");
    for instances in [1, 2] {
        let t = measure(instances, accounts, batch_size).await;
        let rate = |d: Duration| accounts as f64 / d.as_secs_f64();
        let items: Vec<String> = t.items_by_instance.values().map(|n| n.to_string()).collect();
        println!(
            "| {instances} | {:.2} s | {:.0} | {:.2} s | {:.0} | {} |",
            t.first.as_secs_f64(),
            rate(t.first),
            t.second.as_secs_f64(),
            rate(t.second),
            items.join(" / ")
        );
    }
}
