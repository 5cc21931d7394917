//! One versus two `tierd run` instances on one PostgreSQL database, over the same full run.
//!
//! ```sh
//! cargo build --release -p tierd
//! cargo run --release -p tierd-e2e --example instances -- [ACCOUNTS] [BATCH_SIZE] [enrich [LATENCY_MS]]
//! ```
//!
//! For each instance count: a fresh database, a HubSpot emulator with ACCOUNTS companies
//! (default 20,000; no limits, no latency) hosted by this process, N daemons started with the
//! schedules off. A first full run (every company pushed) warms the store, then a second full run
//! (nothing to push, so the run is pull, work items, tiering) is timed from `POST /api/v1/runs` to
//! its success. Printed: both runs' wall time and accounts/s, and how many work items each
//! instance processed (`work_items.claimed_by`), which shows the queue was shared.
//!
//! Without `enrich` the work items are pure CPU (no plugins), so on one small machine a second
//! instance only shares the same cores. With `enrich` the built-in `firmographic` plugin runs
//! (isolated, one batch in flight per instance, `[pipeline] workers = 2`) against the PDL-shaped
//! enrichment emulator in this process, which waits LATENCY_MS (default 50) before each answer,
//! as a real provider's round trip does: the work items then mostly wait, and a second instance
//! doubles the batches in flight. Full runs refresh the plugin cache, so both runs enrich every
//! account; the enrichment API's request count per run is printed to show it.
//! Uses `TIERD_BIN` when set, else the `tierd` beside this example's profile directory.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use tierd_e2e::harness::{free_port, hubspot, Api, Config, Database, Tierd};
use tierd_emulators::enrichment::{EnrichmentConfig, EnrichmentEmulator};

/// The variable the daemons read the enrichment API key from (`api_key_env`); set in this
/// process before any thread starts, and inherited by the children.
const PDL_KEY_ENV: &str = "TIERD_BENCH_PDL_API_KEY";
const PDL_KEY: &str = "bench-pdl-key";

/// What the work items spend their time on.
#[derive(Clone, Copy)]
enum Scenario {
    /// No plugins: pull, score, commit.
    Cpu,
    /// The `firmographic` plugin against an enrichment API answering after `latency`.
    Enrichment { latency: Duration },
}

struct Timed {
    first: Duration,
    second: Duration,
    items_by_instance: BTreeMap<String, i64>,
    /// Enrichment API requests during the first and the second run.
    api_requests: Option<(u64, u64)>,
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

/// `[plugins.firmographic]`: one batch of 100 in flight per instance, the API routed to the
/// emulator, and the plugin's own 100-a-minute default lifted (the limiter is per process,
/// which would make this a rate-limit benchmark rather than a latency one).
fn firmographic_toml(api: &EnrichmentEmulator) -> String {
    format!(
        r#"[plugins.firmographic]
path = "{path}"
mode = "isolated"
batch_size = 100
concurrency = 1
rate_limit_per_minute = 60000000
api_key_env = "{PDL_KEY_ENV}"
resolve = {{ "api.peopledatalabs.com" = "{addr}" }}
config = {{ base_url = "http://api.peopledatalabs.com" }}
"#,
        path = tierd_test_support::cdylib("firmographic").display(),
        addr = api.addr(),
    )
}

async fn measure(instances: usize, accounts: u64, batch_size: usize, scenario: Scenario) -> Timed {
    let db = Database::postgres()
        .await
        .expect("this benchmark needs PostgreSQL (TIERD_TEST_POSTGRES)");
    let crm = hubspot(accounts, 1).await;
    let enrichment = match scenario {
        Scenario::Cpu => None,
        Scenario::Enrichment { latency } => {
            // The same seed and date as the CRM, so the API knows the CRM's companies.
            let mut cfg = EnrichmentConfig::new(accounts, 1);
            cfg.api_key = PDL_KEY.into();
            cfg.latency = latency;
            Some(
                EnrichmentEmulator::start(cfg)
                    .await
                    .expect("the enrichment emulator starts"),
            )
        }
    };
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
        cfg.workers = 2;
        cfg.api_listen = Some(listen.clone());
        if let Some(api) = &enrichment {
            cfg.extra = firmographic_toml(api);
        }
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
        for d in &mut daemons {
            assert!(d.exited().is_none(), "a daemon exited at start:\n{}", d.output());
        }
        assert!(Instant::now() < deadline, "the daemons did not start: {roles:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let requests = || enrichment.as_ref().map_or(0, |e| e.stats().requests);
    let (first, id) = timed_run(&apis[leader], 0).await;
    let after_first = requests();
    let (second, id) = timed_run(&apis[leader], id).await;
    let api_requests = enrichment
        .as_ref()
        .map(|_| (after_first, requests() - after_first));

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
    if let Some(api) = enrichment {
        api.shutdown().await;
    }
    Timed {
        first,
        second,
        items_by_instance: rows
            .into_iter()
            .map(|(owner, n)| (owner.unwrap_or_else(|| "-".into()), n))
            .collect(),
        api_requests,
    }
}

async fn bench(accounts: u64, batch_size: usize, scenario: Scenario) {
    match scenario {
        Scenario::Cpu => println!("CPU-bound: no plugins"),
        Scenario::Enrichment { latency } => println!(
            "wait-bound: firmographic (isolated, concurrency 1, batch 100), workers 2, API latency {} ms",
            latency.as_millis()
        ),
    }
    println!(
        "{accounts} accounts, batch_size {batch_size}, tierd at {}",
        tierd_e2e::tierd_bin().display()
    );
    println!("| instances | first full run (pushes all) | accounts/s | second full run (nothing to push) | accounts/s | work items per instance | API requests (first / second run) |");
    println!("|---|---|---|---|---|---|---|");
    for instances in [1, 2] {
        let t = measure(instances, accounts, batch_size, scenario).await;
        let rate = |d: Duration| accounts as f64 / d.as_secs_f64();
        let items: Vec<String> = t.items_by_instance.values().map(|n| n.to_string()).collect();
        let requests = t
            .api_requests
            .map_or("-".to_owned(), |(a, b)| format!("{a} / {b}"));
        println!(
            "| {instances} | {:.2} s | {:.0} | {:.2} s | {:.0} | {} | {requests} |",
            t.first.as_secs_f64(),
            rate(t.first),
            t.second.as_secs_f64(),
            rate(t.second),
            items.join(" / ")
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let accounts: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let batch_size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(250);
    let scenario = match args.next().as_deref() {
        None | Some("cpu") => Scenario::Cpu,
        Some("enrich") => Scenario::Enrichment {
            latency: Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(50)),
        },
        Some(other) => {
            eprintln!("unknown scenario {other:?}: use `cpu` (the default) or `enrich [LATENCY_MS]`");
            std::process::exit(2);
        }
    };
    // Before the runtime starts any thread: the environment is then read by nobody else.
    std::env::set_var(PDL_KEY_ENV, PDL_KEY);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench(accounts, batch_size, scenario));
}
