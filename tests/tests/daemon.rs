//! `tierd run` as processes: leader failover between two daemons on one PostgreSQL database, and
//! SIGTERM in the middle of a run's push. Runs are started through the admin API
//! (`POST /api/v1/runs`) with the schedules off, so nothing depends on the wall clock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tierd_e2e::harness::{
    assert_crm_matches_store, free_port, hubspot, wait_until, Api, Config, Database, Tierd,
};
use tierd_emulators::HubSpotEmulator;
use tierd_store::{RunKind, RunStatus};

const ACCOUNTS: u64 = 600;

/// One daemon's directory, config and API.
struct Instance {
    dir: PathBuf,
    config: PathBuf,
    api: Api,
}

fn instance(root: &Path, name: &str, db: &Database, crm: &HubSpotEmulator) -> Instance {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("instance dir");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut cfg = Config::new(db.url(), &crm.base_url());
    cfg.push_batch_size = 20;
    cfg.api_listen = Some(listen.clone());
    let config = cfg.write(&dir);
    Instance {
        dir,
        config,
        api: Api::new(&listen),
    }
}

impl Instance {
    fn start(&self, name: &str) -> Tierd {
        Tierd::spawn(name, &self.dir, &self.config, &["run"])
    }
}

async fn wait_for_role(api: &Api, role: &str, within: Duration, daemon: &Tierd) {
    let deadline = Instant::now() + within;
    while api.role().await.as_deref() != Some(role) {
        assert!(
            Instant::now() < deadline,
            "no {role} within {within:?}\n{}",
            daemon.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn queue_full_run(api: &Api) {
    let (status, body) = api.post("/api/v1/runs", &json!({"kind": "full"})).await;
    assert_eq!(status, 202, "{body}");
}

/// The latest run as the API shows it.
async fn latest_run(api: &Api) -> Option<Value> {
    let runs = api.get("/api/v1/runs?limit=1").await?;
    runs["runs"].get(0).cloned()
}

async fn wait_for_success(api: &Api, run_after: i64, daemon: &Tierd) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(run) = latest_run(api).await {
            let id = run["id"].as_i64().unwrap_or(0);
            let status = run["status"].as_str().unwrap_or("");
            if id > run_after && status == "succeeded" {
                return run;
            }
            assert!(
                !(id > run_after && (status == "failed" || status == "interrupted")),
                "the run did not succeed: {run}\n{}",
                daemon.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no successful run within 60 s\n{}",
            daemon.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two daemons share a database; the leader is killed (`kill -9`) in the middle of a push. The
/// standby takes the lead within seconds, records the dead leader's run as interrupted, and a run
/// queued on it completes with every company written exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_is_killed_mid_push() {
    let Some(db) = Database::postgres().await else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 41).await;
    let (a, b) = (
        instance(root.path(), "a", &db, &crm),
        instance(root.path(), "b", &db, &crm),
    );
    let mut leader = a.start("a");
    wait_for_role(&a.api, "leader", Duration::from_secs(30), &leader).await;
    let standby = b.start("b");
    wait_for_role(&b.api, "standby", Duration::from_secs(30), &standby).await;
    assert_eq!(b.api.post("/api/v1/runs", &json!({"kind": "full"})).await.0, 409);

    crm.faults().set_latency(Duration::from_millis(40));
    queue_full_run(&a.api).await;
    wait_until("the leader's first pushed batch", Duration::from_secs(60), || {
        let started = crm.writes().total > 0;
        async move { started }
    })
    .await;
    leader.kill9();
    let killed_at = Instant::now();
    let at_kill = crm.writes().total;
    assert!(
        at_kill < ACCOUNTS,
        "the push finished before the kill ({at_kill} written)"
    );

    wait_for_role(&b.api, "leader", Duration::from_secs(10), &standby).await;
    let took_over = killed_at.elapsed();
    eprintln!("standby led {took_over:?} after the leader was killed");
    let store = db.store().await;
    wait_until(
        "the dead leader's run marked interrupted",
        Duration::from_secs(10),
        || {
            let store = store.clone();
            async move {
                let runs = store.runs(1).await.unwrap_or_default();
                runs.first().is_some_and(|r| r.status == RunStatus::Interrupted)
            }
        },
    )
    .await;

    crm.faults().set_latency(Duration::ZERO);
    queue_full_run(&b.api).await;
    let run = wait_for_success(&b.api, 1, &standby).await;
    assert_eq!(run["kind"], "full", "{run}");
    let writes = crm.writes();
    assert_eq!(
        writes.max_per_record(),
        1,
        "no company written twice across the failover ({at_kill} before the kill)"
    );
    assert_eq!(writes.total, ACCOUNTS);
    assert_crm_matches_store(&crm, &store, ACCOUNTS, &[]).await;
    let statuses: Vec<(RunKind, RunStatus)> = store
        .runs(10)
        .await
        .expect("runs")
        .iter()
        .rev()
        .map(|r| (r.kind, r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (RunKind::Full, RunStatus::Interrupted),
            (RunKind::Full, RunStatus::Succeeded)
        ]
    );
    store.close().await;
    drop(standby);
}

/// SIGTERM to `tierd run` in the middle of a push: the batches in flight are committed, the run is
/// recorded interrupted, the daemon exits 0 (docs/operations.md), and after a restart a new run
/// completes without writing anything twice.
async fn sigterm_stops_the_daemon_after_the_batch_in_flight(db: Database) {
    let root = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 43).await;
    let one = instance(root.path(), "one", &db, &crm);
    let mut daemon = one.start("first");
    wait_for_role(&one.api, "leader", Duration::from_secs(30), &daemon).await;

    crm.faults().set_latency(Duration::from_millis(40));
    queue_full_run(&one.api).await;
    wait_until("the first pushed batch", Duration::from_secs(60), || {
        let started = crm.writes().total > 0;
        async move { started }
    })
    .await;
    daemon.sigterm();
    let status = daemon.exit_within(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let err = daemon.stderr();
    assert!(err.contains("stopping: finishing the batches in flight"), "{err}");
    assert!(err.contains("tierd stopped"), "{err}");
    let at_stop = crm.writes().total;
    assert!(
        at_stop < ACCOUNTS,
        "the push finished before the signal ({at_stop} written)"
    );
    assert_eq!(at_stop % 20, 0, "whole batches only: {at_stop}");
    let store = db.store().await;
    let runs = store.runs(1).await.expect("runs");
    assert_eq!(runs[0].status, RunStatus::Interrupted, "{:?}", runs[0]);

    crm.faults().set_latency(Duration::ZERO);
    let restarted = one.start("second");
    wait_for_role(&one.api, "leader", Duration::from_secs(30), &restarted).await;
    queue_full_run(&one.api).await;
    wait_for_success(&one.api, runs[0].id.0, &restarted).await;
    let writes = crm.writes();
    assert_eq!(
        writes.max_per_record(),
        1,
        "nothing written twice across the stop"
    );
    assert_eq!(writes.total, ACCOUNTS);
    assert_crm_matches_store(&crm, &store, ACCOUNTS, &[]).await;
    store.close().await;
}

mod sigterm_stops_the_daemon_after_the_batch_in_flight {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::sigterm_stops_the_daemon_after_the_batch_in_flight(tierd_e2e::harness::Database::sqlite())
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = tierd_e2e::harness::Database::postgres().await {
            super::sigterm_stops_the_daemon_after_the_batch_in_flight(db).await;
        }
    }
}
