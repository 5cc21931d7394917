//! Runs of the pipeline against the HubSpot emulator and a SQLite store in a temporary directory.

use std::sync::Arc;

use serde_json::json;
use tempfile::TempDir;
use tierd_emulators::{HubSpotConfig, HubSpotEmulator};
use tierd_store::{RunKind, RunStatus};

use super::config::ConnectorSettings;
use super::{Pipeline, RunReport, RunRequest};
use crate::metrics::Metrics;
use crate::settings::Settings;

const ACCOUNTS: u64 = 300;

struct World {
    emulator: HubSpotEmulator,
    _dir: TempDir,
    pipeline: Pipeline,
}

fn connector_table(base_url: &str) -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(table) = json!({
        "type": "hubspot",
        "base_url": base_url,
        "token_env": "TIERD_TEST_HUBSPOT_TOKEN",
        "rate_limit": 0,
        "search_rate_per_sec": 0,
        "record_retries": 0,
        "retry": { "max_attempts": 2, "base_delay": 1, "max_delay": 5, "timeout": 5000 },
    }) else {
        unreachable!("a JSON object")
    };
    table
}

async fn world() -> World {
    let emulator = HubSpotEmulator::start(HubSpotConfig::new(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let pipeline = pipeline_for(&emulator, &dir).await;
    World {
        emulator,
        _dir: dir,
        pipeline,
    }
}

async fn pipeline_for(emulator: &HubSpotEmulator, dir: &TempDir) -> Pipeline {
    std::env::set_var("TIERD_TEST_HUBSPOT_TOKEN", "test-token");
    let mut settings = match Settings::load(None) {
        Ok(s) => s,
        Err(_) => panic!("the built-in configuration loads"),
    };
    settings.plugins.clear();
    settings.store.url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    settings.connector = Some(
        ConnectorSettings::from_table(connector_table(&emulator.base_url())).expect("connector section"),
    );
    settings.pipeline.as_of = Some("2026-11-24".into());
    settings.pipeline.batch_size = 64;
    Pipeline::start(Arc::new(settings), Arc::new(Metrics::default()), "test:1".into())
        .await
        .expect("pipeline starts")
}

async fn run(p: &Pipeline, kind: RunKind) -> RunReport {
    let (_tx, rx) = crate::shutdown::never();
    p.run(RunRequest { kind, pilot: None }, rx, None)
        .await
        .expect("run starts")
}

fn hubspot_id(n: u64) -> String {
    (1_000_000_000 + n).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_pushes_each_change_once_and_a_second_run_nothing() {
    let w = world().await;
    let first = run(&w.pipeline, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert_eq!(first.accounts, ACCOUNTS);
    assert_eq!(first.pyramid.iter().sum::<u64>(), ACCOUNTS);
    let writes = w.emulator.writes();
    assert_eq!(writes.max_per_record(), 1, "no account written twice");
    assert_eq!(writes.total, first.pushed);
    assert!(first.pushed > 0);
    assert!(
        first.pyramid[0] <= ACCOUNTS * 3 / 100,
        "tier 1 cap holds: {:?}",
        first.pyramid
    );

    let second = run(&w.pipeline, RunKind::Full).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    assert_eq!(second.pushed, 0, "nothing changed");
    assert_eq!(w.emulator.writes().total, writes.total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_push_only_changes_and_leave_people_alone() {
    let w = world().await;
    assert_eq!(run(&w.pipeline, RunKind::Full).await.status, RunStatus::Succeeded);
    let before = w.emulator.writes();
    // A person locks one account, sets another's tier by hand, and an account's size changes.
    let (locked, overridden, changed) = (hubspot_id(1), hubspot_id(2), hubspot_id(3));
    w.emulator
        .set_properties(&locked, &[("tierd_tier_locked", "true")]);
    let manual = match w.emulator.property(&overridden, "tierd_tier").as_deref() {
        Some("tier_1") => "tier_3",
        _ => "tier_1",
    };
    w.emulator.set_properties(&overridden, &[("tierd_tier", manual)]);
    w.emulator.set_properties(&changed, &[("numberofemployees", "1")]);

    let incr = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(incr.status, RunStatus::Succeeded, "{:?}", incr.error);
    assert!(incr.accounts >= 3, "the changes are pulled: {}", incr.accounts);
    let after = w.emulator.writes();
    assert_eq!(
        after.count(&locked),
        before.count(&locked),
        "locked account untouched"
    );
    assert_eq!(
        after.count(&overridden),
        before.count(&overridden),
        "a person's tier untouched"
    );
    assert_eq!(
        w.emulator.property(&overridden, "tierd_tier").as_deref(),
        Some(manual)
    );
    assert!(incr.skipped_overridden >= 1, "{incr:?}");
    assert!(after.max_per_record() <= 2);
    // Besides the changed account, only accounts whose tier moved (a cap seat it freed) are
    // written again: far fewer than a full push.
    let others: u64 = after
        .per_record
        .iter()
        .filter(|(id, _)| **id != changed)
        .map(|(id, n)| n - before.count(id))
        .sum();
    assert!(others <= 2, "{others} other accounts written again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_lost_before_its_commit_is_adopted_not_written_twice() {
    let w = world().await;
    // What the first run would push, written to the CRM by a process that then died before
    // committing: simulated by pushing a dry run's plan directly through the connector.
    let dry = run(&w.pipeline, RunKind::DryRun).await;
    assert_eq!(dry.status, RunStatus::Succeeded, "{:?}", dry.error);
    assert_eq!(w.emulator.writes().total, 0, "a dry run writes nothing");
    assert!(dry.pushed > 0);
    let full = run(&w.pipeline, RunKind::Full).await;
    let pushed_ids: Vec<String> = w.emulator.writes().per_record.keys().cloned().collect();
    assert_eq!(full.status, RunStatus::Succeeded);

    // A second store sees none of those pushes: as if the commits were lost.
    let dir = TempDir::new().expect("temp dir");
    let fresh = pipeline_for(&w.emulator, &dir).await;
    let again = run(&fresh, RunKind::Full).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
    assert_eq!(w.emulator.writes().max_per_record(), 1, "nothing written twice");
    assert_eq!(again.pushed, 0);
    assert!(!pushed_ids.is_empty());
    let last = fresh
        .store()
        .last_pushed(&[format!("hubspot:{}", pushed_ids[0])])
        .await
        .expect("read");
    assert_eq!(last.len(), 1, "the CRM's value was recorded as pushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_outage_fails_the_run_cleanly_and_the_next_run_completes() {
    let w = world().await;
    w.emulator.faults().set_error_rate(1.0);
    let failed = run(&w.pipeline, RunKind::Full).await;
    assert_eq!(failed.status, RunStatus::Failed);
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(!error.contains("test-token"), "no secret in errors: {error}");
    w.emulator.faults().reset();
    let next = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(
        next.accounts, ACCOUNTS,
        "no successful run yet: everything pulled"
    );
    assert_eq!(w.emulator.writes().max_per_record(), 1);
    let runs = w.pipeline.store().runs(10).await.expect("runs");
    assert_eq!(runs[1].status, RunStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_deferred_by_an_outage_is_pending_and_retried() {
    let w = world().await;
    // Fail only once the pull is done: the first push batch meets the outage.
    let first = {
        let (_tx, rx) = crate::shutdown::never();
        let progress = Arc::new(FailAtPush {
            emulator_faults: w.emulator.faults().clone(),
        });
        w.pipeline
            .run(
                RunRequest {
                    kind: RunKind::Full,
                    pilot: None,
                },
                rx,
                Some(progress),
            )
            .await
            .expect("run starts")
    };
    assert_eq!(first.status, RunStatus::Failed, "{first:?}");
    assert!(first.deferred > 0, "{first:?}");
    let pending = w.pipeline.store().pending_pushes(false).await.expect("pending");
    assert_eq!(pending.len() as u64, first.deferred);
    assert_eq!(w.emulator.writes().total, 0);

    w.emulator.faults().reset();
    let second = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    assert!(
        w.pipeline
            .store()
            .pending_pushes(true)
            .await
            .expect("pending")
            .is_empty()
    );
    assert_eq!(w.emulator.writes().max_per_record(), 1);
    assert!(second.pushed > 0);
}

/// Turns the CRM's errors on when the push stage starts.
struct FailAtPush {
    emulator_faults: tierd_emulators::Faults,
}

impl super::Progress for FailAtPush {
    fn stage(&self, name: &str, _total: Option<u64>) {
        if name == "push" {
            self.emulator_faults.set_error_rate(1.0);
        }
    }
    fn advance(&self, _n: u64) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pilot_reports_differences_and_pushes_nothing() {
    let w = world().await;
    assert_eq!(run(&w.pipeline, RunKind::Full).await.status, RunStatus::Succeeded);
    let before = w.emulator.writes().total;
    let (_tx, rx) = crate::shutdown::never();
    let pilot = w
        .pipeline
        .run(
            RunRequest {
                kind: RunKind::Pilot,
                pilot: Some(super::PilotSpec {
                    model: None,
                    filter: None,
                    sample: Some(0.5),
                }),
            },
            rx,
            None,
        )
        .await
        .expect("pilot");
    assert_eq!(pilot.status, RunStatus::Succeeded, "{:?}", pilot.error);
    assert!(pilot.accounts > 0 && pilot.accounts < ACCOUNTS);
    assert_eq!(w.emulator.writes().total, before);
    let m = pilot.movements.expect("movements");
    let compared: usize = m.matrix.iter().flatten().sum();
    assert_eq!(
        compared as u64, pilot.accounts,
        "every pilot account compared with its live tier"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_request_interrupts_and_the_next_run_finishes_the_job() {
    let w = world().await;
    let (tx, rx) = crate::shutdown::never();
    tx.send(true).expect("signal");
    let stopped = w
        .pipeline
        .run(
            RunRequest {
                kind: RunKind::Full,
                pilot: None,
            },
            rx,
            None,
        )
        .await
        .expect("run");
    assert_eq!(stopped.status, RunStatus::Interrupted);
    let next = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(w.emulator.writes().max_per_record(), 1);
}
