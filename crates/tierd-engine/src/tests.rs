//! Runs of the pipeline against the HubSpot emulator and a SQLite store in a temporary directory.

use std::sync::Arc;

use serde_json::json;
use tempfile::TempDir;
use tierd_core::tier::Cap;
use tierd_emulators::{HubSpotConfig, HubSpotEmulator};
use tierd_store::{RunKind, RunStatus};

use crate::metrics::Metrics;
use crate::{Pipeline, RunReport, RunRequest};
use tierd_config::engine::ConnectorSettings;
use tierd_config::Settings;

pub(crate) const ACCOUNTS: u64 = 300;

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
        // The emulator has no search lag: pull exactly what changed since the last run.
        "search_overlap_ms": 0,
        "retry": { "max_attempts": 2, "base_delay": 1, "max_delay": 5, "timeout": 5000 },
    }) else {
        unreachable!("a JSON object")
    };
    table
}

async fn world() -> World {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
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
    sqlite_pipeline(emulator, dir, "2026-11-24", |_| {}).await
}

/// A pipeline on a SQLite store in `dir` that scores as of `as_of`, its settings adjusted by
/// `tweak`.
pub(crate) async fn sqlite_pipeline(
    emulator: &HubSpotEmulator,
    dir: &TempDir,
    as_of: &str,
    tweak: impl FnOnce(&mut Settings),
) -> Pipeline {
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    pipeline_with(
        emulator,
        &url,
        as_of,
        tweak,
        Arc::new(Metrics::default()),
        "test:1",
    )
    .await
}

/// A pipeline on the store at `url`, its settings adjusted by `tweak`.
pub(crate) async fn pipeline_with(
    emulator: &HubSpotEmulator,
    url: &str,
    as_of: &str,
    tweak: impl FnOnce(&mut Settings),
    metrics: Arc<Metrics>,
    instance: &str,
) -> Pipeline {
    std::env::set_var("TIERD_TEST_HUBSPOT_TOKEN", "test-token");
    let mut settings = match Settings::load(None) {
        Ok(s) => s,
        Err(_) => panic!("the built-in configuration loads"),
    };
    settings.plugins.clear();
    settings.store.url = url.to_string();
    settings.connector = Some(
        ConnectorSettings::from_table(connector_table(&emulator.base_url())).expect("connector section"),
    );
    settings.pipeline.as_of = Some(as_of.into());
    // This world has 5 tier 1 accounts (one lifted there, within 3%'s nine seats) and 61 in
    // tier 2 (two lifted there): a tier 2 cap of 59 binds, on the two lifted ones, which rank
    // lowest by score.
    settings.policy.caps = [Some(Cap::Percent(3.0)), Some(Cap::Count(59))];
    settings.pipeline.batch_size = 64;
    tweak(&mut settings);
    Pipeline::start(Arc::new(settings), metrics, instance.into())
        .await
        .expect("pipeline starts")
}

pub(crate) async fn run(p: &Pipeline, kind: RunKind) -> RunReport {
    let (_tx, rx) = crate::shutdown::never();
    p.run(RunRequest::new(kind), rx, None).await.expect("run starts")
}

pub(crate) fn hubspot_id(n: u64) -> String {
    (1_000_000_000 + n).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_pushes_each_change_once_and_a_second_run_nothing() {
    let w = world().await;
    full_runs_push_each_change_once(&w.emulator, &w.pipeline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_on_postgres_pushes_each_change_once_and_a_second_run_nothing() {
    let Some(pg) = tierd_test_support::postgres::Schema::create("pipeline").await else {
        return;
    };
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let metrics = Arc::new(Metrics::default());
    let p = pipeline_with(&emulator, &pg.url(), "2026-11-24", |_| {}, metrics, "test:1").await;
    full_runs_push_each_change_once(&emulator, &p).await;
    p.shutdown().await;
}

async fn full_runs_push_each_change_once(emulator: &HubSpotEmulator, pipeline: &Pipeline) {
    struct W<'a> {
        emulator: &'a HubSpotEmulator,
        pipeline: &'a Pipeline,
    }
    let w = W { emulator, pipeline };
    let first = run(w.pipeline, RunKind::Full).await;
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

    let second = run(w.pipeline, RunKind::Full).await;
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

    let pushed_before = pushed_states(&w.pipeline).await;
    let incr = run(&w.pipeline, RunKind::Incremental).await;
    let pushed_after = pushed_states(&w.pipeline).await;
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
    // Exactly the accounts whose pushed tier, score bucket or reason changed are written, once
    // each in this run: the changed account and those whose tier moved because of it (a cap seat
    // it freed goes to the next account in rank).
    let written: Vec<&String> = after
        .per_record
        .iter()
        .filter(|(id, n)| **n > before.count(id))
        .map(|(id, _)| id)
        .collect();
    assert!(written.contains(&&changed), "the changed account is written");
    for id in &written {
        assert_eq!(
            after.count(id) - before.count(id),
            1,
            "{id} written twice in one run"
        );
        let key = format!("hubspot:{id}");
        let (old, new) = (&pushed_before[&key], &pushed_after[&key]);
        assert!(
            (old.tier, old.score_bucket, &old.reason) != (new.tier, new.score_bucket, &new.reason),
            "{id} written without a change: {old:?}"
        );
    }
    let rewritten: Vec<&String> = pushed_after
        .iter()
        .filter(|(id, new)| pushed_before.get(*id).is_none_or(|old| old.at != new.at))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(rewritten.len(), written.len(), "every recorded push was a write");
    assert_eq!(after.total - before.total, incr.pushed);
}

/// Every account's pushed state, by id.
async fn pushed_states(p: &Pipeline) -> std::collections::HashMap<String, tierd_store::PushedState> {
    let ids: Vec<String> = (0..ACCOUNTS)
        .map(|n| format!("hubspot:{}", hubspot_id(n)))
        .collect();
    p.store().last_pushed(&ids).await.expect("pushed states")
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
            .run(RunRequest::new(RunKind::Full), rx, Some(progress))
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
    assert!(w
        .pipeline
        .store()
        .pending_pushes(true)
        .await
        .expect("pending")
        .is_empty());
    assert_eq!(w.emulator.writes().max_per_record(), 1);
    assert!(second.pushed > 0);
}

/// A push batch is `[pipeline] push_calls_per_commit` calls committed together: 300 accounts in
/// calls of 20, five calls a batch, commit as three batches. When the CRM defers a call, the
/// batch's later calls are not sent: only the first call's 20 updates are deferred (before, each
/// of the batch's five calls met the outage and 100 were deferred).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_batch_commits_its_calls_together_and_stops_at_a_deferral() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let p = sqlite_pipeline(&emulator, &dir, "2026-11-24", |s| {
        s.pipeline.push_batch_size = 20;
        s.pipeline.push_calls_per_commit = 5;
        s.pipeline.push_concurrency = 1;
    })
    .await;
    let (_tx, rx) = crate::shutdown::never();
    let progress = Arc::new(FailAtPush {
        emulator_faults: emulator.faults().clone(),
    });
    let first = p
        .run(RunRequest::new(RunKind::Full), rx, Some(progress))
        .await
        .expect("run starts");
    assert_eq!(first.status, RunStatus::Failed, "{first:?}");
    assert_eq!(first.deferred, 20, "one call's updates deferred: {first:?}");
    let pending = p.store().pending_pushes(false).await.expect("pending");
    assert_eq!(pending.len(), 20);
    assert_eq!(emulator.writes().total, 0);

    emulator.faults().reset();
    let second = run(&p, RunKind::Full).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    assert_eq!(second.pushed, ACCOUNTS);
    let checkpoint = p
        .store()
        .checkpoint(second.run, "push")
        .await
        .expect("checkpoint")
        .expect("the push stage's checkpoint");
    assert_eq!(
        checkpoint.position, "2",
        "three batches of 100: the last is batch 2"
    );
    assert_eq!(emulator.writes().max_per_record(), 1);
    p.shutdown().await;
}

/// Push batches go out `[pipeline] push_concurrency` at a time, each committing its own outcome:
/// with 2 the CRM answers two batch updates at once, with 1 never, and either way every account
/// is written once and recorded as pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_batches_are_sent_side_by_side_and_each_account_is_written_once() {
    for concurrency in [1u64, 2] {
        let emulator = Arc::new(
            HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
                .await
                .expect("emulator"),
        );
        let dir = TempDir::new().expect("temp dir");
        let tweak = |s: &mut Settings| {
            s.pipeline.push_batch_size = 20;
            s.pipeline.push_concurrency = concurrency as usize;
        };
        let p = sqlite_pipeline(&emulator, &dir, "2026-11-24", tweak).await;
        // Each batch update takes 100 ms to answer, so the next batch is read and planned while
        // one is in flight; the most in flight is read when the deals stage (after the push) starts.
        let watch = Arc::new(PushWatch {
            emulator: emulator.clone(),
            most_in_flight: std::sync::Mutex::new(None),
        });
        let (_tx, rx) = crate::shutdown::never();
        let report = p
            .run(RunRequest::new(RunKind::Full), rx, Some(watch.clone()))
            .await
            .expect("run starts");
        assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
        let most = watch
            .most_in_flight
            .lock()
            .expect("lock")
            .expect("the deals stage started");
        assert_eq!(
            most, concurrency,
            "requests in flight at once with push_concurrency {concurrency}"
        );
        let writes = emulator.writes();
        assert_eq!(writes.max_per_record(), 1);
        assert!(report.pushed > 40, "more than two batches: {}", report.pushed);
        assert_eq!(writes.total, report.pushed);
        assert_eq!(pushed_states(&p).await.len() as u64, report.pushed);
        p.shutdown().await;
    }
}

/// Slows the CRM's answers from the push stage on, and notes the most requests it answered at
/// once when the push is over.
struct PushWatch {
    emulator: Arc<HubSpotEmulator>,
    most_in_flight: std::sync::Mutex<Option<u64>>,
}

impl super::Progress for PushWatch {
    fn stage(&self, name: &str, _total: Option<u64>) {
        let faults = self.emulator.faults();
        match name {
            "push" => faults.set_latency(std::time::Duration::from_millis(100)),
            "deals" => {
                faults.set_latency(std::time::Duration::ZERO);
                *self.most_in_flight.lock().expect("lock") = Some(self.emulator.stats().most_in_flight);
            }
            _ => {}
        }
    }
    fn advance(&self, _n: u64) {}
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
                job: crate::Job::Full,
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
        .run(RunRequest::new(RunKind::Full), rx, None)
        .await
        .expect("run");
    assert_eq!(stopped.status, RunStatus::Interrupted);
    let next = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(w.emulator.writes().max_per_record(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_account_gets_one_history_row_naming_the_cap() {
    let w = world().await;
    let full = run(&w.pipeline, RunKind::Full).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{:?}", full.error);
    let mut capped = 0;
    for n in 0..ACCOUNTS {
        let id = format!("hubspot:{}", hubspot_id(n));
        let history = w.pipeline.store().tier_history(&id, 10).await.expect("history");
        assert_eq!(
            history.len(),
            1,
            "{id}: one row for its first tiering: {history:?}"
        );
        let state = w
            .pipeline
            .store()
            .account(&id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!((history[0].from, history[0].to), (None, state.tier), "{id}");
        if history[0].reason.starts_with("pyramid cap: tier_2 is full; ") {
            // Earned tier 2 by score, or lifted there by an engagement: demoted below it.
            assert_eq!(state.tier, tierd_core::Tier::Tier3, "{id}");
            capped += 1;
        }
    }
    assert_eq!(
        capped, 2,
        "the tier 2 cap demoted two accounts: {:?}",
        full.pyramid
    );
}

/// The tier after the last run, in the store and in the CRM.
async fn tier_of(w: &World, p: &Pipeline, n: u64) -> (tierd_core::Tier, Option<String>) {
    let id = format!("hubspot:{}", hubspot_id(n));
    let state = p.store().account(&id).await.expect("read").expect("stored");
    (state.tier, w.emulator.property(&hubspot_id(n), "tierd_tier"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engagement_lift_ends_when_it_expires_even_if_the_account_is_not_rescored() {
    let w = world().await;
    assert_eq!(run(&w.pipeline, RunKind::Full).await.status, RunStatus::Succeeded);
    // An untiered or tier 3 account requests a demo: lifted one tier.
    let mut lifted = None;
    for n in 0..ACCOUNTS {
        let (tier, _) = tier_of(&w, &w.pipeline, n).await;
        if matches!(tier, tierd_core::Tier::Tier3 | tierd_core::Tier::Untiered) {
            lifted = Some((n, tier));
            break;
        }
    }
    let (n, base) = lifted.expect("an account below tier 2");
    w.emulator
        .set_properties(&hubspot_id(n), &[("demo_request_dates", "2026-11-20")]);
    let incr = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(incr.status, RunStatus::Succeeded, "{:?}", incr.error);
    assert_eq!(tier_of(&w, &w.pipeline, n).await.0, base.lifted());
    // The run after absorbs the re-pull of what the last one wrote.
    assert_eq!(
        run(&w.pipeline, RunKind::Incremental).await.status,
        RunStatus::Succeeded
    );

    // Two months later nothing changed in the CRM: the account is not pulled, yet its lift
    // (30 days) has expired.
    let later = sqlite_pipeline(&w.emulator, &w._dir, "2027-01-24", |_| {}).await;
    let expired = run(&later, RunKind::Incremental).await;
    assert_eq!(expired.status, RunStatus::Succeeded, "{:?}", expired.error);
    let (tier, crm) = tier_of(&w, &later, n).await;
    assert_eq!(tier, base, "the lift expired");
    assert_eq!(crm.as_deref(), Some(base.as_str()), "and the CRM was told");
    let id = format!("hubspot:{}", hubspot_id(n));
    let history = later.store().tier_history(&id, 10).await.expect("history");
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(
        history[1].reason.starts_with("demo request (lifted one tier)"),
        "{history:?}"
    );
    assert_eq!((history[0].from, history[0].to), (Some(base.lifted()), base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_of_an_incremental_job_pulls_only_the_changes() {
    let w = world().await;
    assert_eq!(run(&w.pipeline, RunKind::Full).await.status, RunStatus::Succeeded);
    assert_eq!(
        run(&w.pipeline, RunKind::Incremental).await.status,
        RunStatus::Succeeded
    );
    w.emulator
        .set_properties(&hubspot_id(3), &[("numberofemployees", "1")]);
    let incremental = dry_run(&w.pipeline, crate::Job::Incremental).await;
    assert_eq!(
        incremental.status,
        RunStatus::Succeeded,
        "{:?}",
        incremental.error
    );
    // The watermark is inclusive (`GTE`): the last record the previous pull saw comes again.
    assert!(
        (1..=2).contains(&incremental.accounts),
        "only the change is pulled: {}",
        incremental.accounts
    );
    let full = dry_run(&w.pipeline, crate::Job::Full).await;
    assert_eq!(full.accounts, ACCOUNTS, "a full job's dry run pulls everything");
    // What the incremental dry run would push, the incremental run pushes.
    let writes = w.emulator.writes().total;
    let real = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(real.pushed, incremental.pushed);
    assert_eq!(w.emulator.writes().total - writes, real.pushed);
}

async fn dry_run(p: &Pipeline, job: crate::Job) -> RunReport {
    let (_tx, rx) = crate::shutdown::never();
    let request = RunRequest {
        job,
        ..RunRequest::new(RunKind::DryRun)
    };
    p.run(request, rx, None).await.expect("dry run")
}

/// Sends one JSON request to the emulator with the test token; the status code.
pub(crate) async fn emulator_post(base_url: &str, path: &str, body: &serde_json::Value) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to the emulator");
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer test-token\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_crm_refuses_stay_pending_with_its_reason_and_invalid_ones_are_not_resent() {
    let w = world().await;
    // Someone created tierd's tier property without a tier_3 option: every tier_3 update is
    // refused in the 207 while the rest of its batch is written.
    let base = w.emulator.base_url();
    let group = json!({"name": "tierd", "label": "tierd", "displayOrder": -1});
    assert_eq!(
        emulator_post(&base, "/crm/v3/properties/companies/groups", &group).await,
        201
    );
    let options: Vec<serde_json::Value> = ["tier_1", "tier_2", "untiered"]
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"label": v, "value": v, "displayOrder": i, "hidden": false}))
        .collect();
    let tier = json!({"name": "tierd_tier", "label": "Tier", "type": "enumeration", "fieldType": "select",
        "groupName": "tierd", "options": options});
    assert_eq!(
        emulator_post(&base, "/crm/v3/properties/companies", &tier).await,
        201
    );

    let first = run(&w.pipeline, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert_eq!(
        first.rejected, first.pyramid[2],
        "every tier_3 update refused: {first:?}"
    );
    assert!(first.rejected > 0 && first.pushed > 0, "{first:?}");
    assert_eq!(w.emulator.writes().total, first.pushed);
    let pending = w.pipeline.store().pending_pushes(true).await.expect("pending");
    assert_eq!(pending.len() as u64, first.rejected);
    for pp in &pending {
        assert_eq!(pp.tier, tierd_core::Tier::Tier3);
        assert!(pp.permanent, "a validation error is permanent: {pp:?}");
        assert!(
            pp.last_error.contains("INVALID_OPTION"),
            "the CRM's reason: {}",
            pp.last_error
        );
        assert!(w
            .emulator
            .property(pp.account.trim_start_matches("hubspot:"), "tierd_tier")
            .is_none());
    }
    assert!(
        w.pipeline
            .store()
            .pending_pushes(false)
            .await
            .expect("pending")
            .is_empty(),
        "permanent ones are listed only when asked"
    );

    // The next run does not send them again, and keeps listing them.
    let writes = w.emulator.writes();
    let second = run(&w.pipeline, RunKind::Full).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    assert_eq!(second.pushed, 0, "{second:?}");
    assert_eq!(second.rejected, first.rejected, "held, still counted: {second:?}");
    assert_eq!(w.emulator.writes().total, writes.total);
    let again = w.pipeline.store().pending_pushes(true).await.expect("pending");
    assert_eq!(again.len(), pending.len());
    assert!(again.iter().all(|pp| pp.attempts == 1), "not retried: {again:?}");
}

/// The accounts this instance processed, from its metrics.
fn processed(metrics: &Metrics) -> u64 {
    metrics.accounts_processed_total()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_run_on_postgres_with_the_result_of_one() {
    let Some(pg) = tierd_test_support::postgres::Schema::create("pipeline").await else {
        return;
    };
    // Small items, one local worker, and a follower that looks for work every 2 ms (not every
    // 500 ms, which a 300-account run can finish inside): the follower gets its share.
    let tweak = |s: &mut Settings| {
        s.pipeline.batch_size = 5;
        s.pipeline.workers = 1;
        s.pipeline.idle_poll_ms = 2;
    };
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let (leader_metrics, follower_metrics) = (Arc::new(Metrics::default()), Arc::new(Metrics::default()));
    let leader = pipeline_with(
        &emulator,
        &pg.url(),
        "2026-11-24",
        tweak,
        leader_metrics.clone(),
        "test:1",
    )
    .await;
    let follower = pipeline_with(
        &emulator,
        &pg.url(),
        "2026-11-24",
        tweak,
        follower_metrics.clone(),
        "test:2",
    )
    .await;
    let (stop, stopped) = crate::shutdown::never();
    let (report, worked) = tokio::join!(
        async {
            let report = run(&leader, RunKind::Full).await;
            let _ = stop.send(true);
            report
        },
        follower.work(stopped)
    );
    worked.expect("the follower works until stopped");
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let (by_leader, by_follower) = (processed(&leader_metrics), processed(&follower_metrics));
    assert!(
        by_leader > 0 && by_follower > 0,
        "both instances processed items: {by_leader} + {by_follower}"
    );
    assert_eq!(by_leader + by_follower, ACCOUNTS, "each account processed once");
    assert_eq!(
        report.accounts, ACCOUNTS,
        "the report counts every instance's work"
    );
    let writes = emulator.writes();
    assert_eq!(writes.max_per_record(), 1, "no account written twice");
    assert_eq!(writes.total, report.pushed);

    // One instance on its own store and CRM comes to the same tiers.
    let single = world().await;
    let alone = run(&single.pipeline, RunKind::Full).await;
    assert_eq!(alone.status, RunStatus::Succeeded, "{:?}", alone.error);
    assert_eq!((alone.pyramid, alone.pushed), (report.pyramid, report.pushed));
    for n in 0..ACCOUNTS {
        let id = hubspot_id(n);
        assert_eq!(
            emulator.property(&id, "tierd_tier"),
            single.emulator.property(&id, "tierd_tier"),
            "{id}"
        );
    }
    leader.shutdown().await;
    follower.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_failing_mid_run_leaves_its_previous_facts_flagged_stale() {
    use tierd_plugin_host::{Mode, PluginConfig};
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let with_plugin = |s: &mut Settings| {
        // One account per plugin call: the plugin panics on a batch whose first account is
        // named "panic", so exactly that account's result fails.
        let plugin = PluginConfig {
            batch_size: Some(1),
            concurrency: 1,
            ..PluginConfig::library(
                tierd_test_support::cdylib("tierd-test-misbehaving"),
                Mode::InProcess,
            )
        };
        s.plugins.insert("m".into(), plugin);
        // Keep the plugin's fact, though the model does not score it.
        let seen = tierd_core::fact::FactName::new("test.seen").expect("fact name");
        s.schema
            .require(&seen, tierd_core::fact::FactType::Number)
            .expect("schema slot");
    };
    let metrics = Arc::new(Metrics::default());
    let p = pipeline_with(&emulator, &url, "2026-11-24", with_plugin, metrics, "test:1").await;
    let first = run(&p, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert_eq!(first.stale_plugin_results, 0);
    let id = format!("hubspot:{}", hubspot_id(5));
    let before = p.store().account(&id).await.expect("read").expect("stored");
    assert_eq!(before.facts["test.seen"]["source"], "m", "{}", before.facts);

    // The plugin now fails for that account (a full run asks every plugin again).
    emulator.set_properties(&hubspot_id(5), &[("name", "panic")]);
    let second = run(&p, RunKind::Full).await;
    assert_eq!(
        second.status,
        RunStatus::Succeeded,
        "the run completes: {:?}",
        second.error
    );
    assert_eq!(second.stale_plugin_results, 1, "{second:?}");
    let after = p.store().account(&id).await.expect("read").expect("stored");
    assert_eq!(after.updated_run, Some(second.run), "the account was rescored");
    let kept = &after.facts["test.seen"];
    assert_eq!(
        kept["value"], before.facts["test.seen"]["value"],
        "previous facts kept"
    );
    assert_eq!(kept["stale"], true, "and flagged stale: {}", after.facts);
    assert!(
        after.score > 0.0 && (after.score - before.score).abs() < 1e-9,
        "score not zeroed"
    );
    // Other accounts got fresh results, not flagged.
    let other = p
        .store()
        .account(&format!("hubspot:{}", hubspot_id(6)))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(other.facts["test.seen"]["source"], "m");
    assert!(other.facts["test.seen"].get("stale").is_none(), "{}", other.facts);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescoring_unchanged_accounts_with_hysteresis_does_not_lift_them_twice() {
    // With HubSpot's search overlap the incremental run pulls back every account the full run
    // wrote. One of them (1000000235) earns tier 3 by a score just under tier 2's threshold
    // (3.672, within the hysteresis margin) and is lifted to tier 2 by a demo request.
    // Hysteresis held against the stored, already lifted tier_2 and the lift then raised it to
    // tier 1: that was the extra write. Hysteresis now compares base tiers. (No caps, so the
    // lifted tier is the one written.)
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let overlap = |s: &mut Settings| {
        if let Some(c) = s.connector.as_mut() {
            c.table.remove("search_overlap_ms");
        }
        s.policy.caps = [None, None];
    };
    let p = sqlite_pipeline(&emulator, &dir, "2026-11-24", overlap).await;
    assert_eq!(run(&p, RunKind::Full).await.status, RunStatus::Succeeded);
    let lifted = p
        .store()
        .account(&format!("hubspot:{}", hubspot_id(235)))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        (lifted.base_tier, lifted.tier),
        (tierd_core::Tier::Tier3, tierd_core::Tier::Tier2)
    );
    let writes = emulator.writes().total;
    let incr = run(&p, RunKind::Incremental).await;
    assert_eq!(incr.status, RunStatus::Succeeded, "{:?}", incr.error);
    assert_eq!(incr.accounts, ACCOUNTS, "everything written is pulled back");
    assert_eq!((incr.pushed, emulator.writes().total), (0, writes), "{incr:?}");
    p.shutdown().await;
}

/// A pipeline with the contract-renewals plugin, uncached as its docs advise: it answers from the
/// CRM's renewal date and signals `renewal_within` on the day it sees one.
pub(crate) async fn with_contracts(emulator: &HubSpotEmulator, dir: &TempDir, as_of: &str) -> Pipeline {
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    with_contracts_on(emulator, &url, as_of).await
}

/// Adds the contract-renewals plugin, in-process and uncached as its docs advise.
pub(crate) fn add_contract_renewals(s: &mut Settings) {
    use tierd_plugin_host::{Mode, PluginConfig};
    let plugin = PluginConfig {
        cache_ttl_secs: 0,
        ..PluginConfig::library(tierd_test_support::cdylib("contract-renewals"), Mode::InProcess)
    };
    s.plugins.insert("contract-renewals".into(), plugin);
}

/// The same on the store at `url`.
async fn with_contracts_on(emulator: &HubSpotEmulator, url: &str, as_of: &str) -> Pipeline {
    pipeline_with(
        emulator,
        url,
        as_of,
        add_contract_renewals,
        Arc::new(Metrics::default()),
        "test:1",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_over_an_unchanged_crm_keep_contract_facts_and_write_nothing() {
    // Regression (issue 12 #1 and #2): accounts re-processed for their new `renewal_within`
    // signals (dated the day they are seen) lost the renewal date the plugin had replaced in
    // storage, then scored and tiered lower and were written; and every reason with a day count
    // was rewritten each day.
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let p = with_contracts(&emulator, &dir, "2026-11-24").await;
    let full = run(&p, RunKind::Full).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{:?}", full.error);
    p.shutdown().await;

    // A day later: the incremental run pulls back what the full run wrote and enriches it on the
    // new day. Nothing changed in the CRM but the date, so no write carries only a count.
    let p = with_contracts(&emulator, &dir, "2026-11-25").await;
    let before_writes = emulator.writes();
    let pushed_before = pushed_states(&p).await;
    let next = run(&p, RunKind::Incremental).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    let pushed_after = pushed_states(&p).await;
    let after_writes = emulator.writes();
    for (id, n) in &after_writes.per_record {
        if *n == before_writes.count(id) {
            continue;
        }
        let key = format!("hubspot:{id}");
        let (old, new) = (&pushed_before[&key], &pushed_after[&key]);
        assert!(
            old.tier != new.tier
                || old.score_bucket != new.score_bucket
                || !tierd_core::explain::same_in_substance(&old.reason, &new.reason),
            "{id} written with no news: {} -> {}",
            old.reason,
            new.reason
        );
    }

    // The same day again: the accounts with that day's new signals that the pull does not bring
    // are processed from storage, and must come out exactly as they went in.
    let ids: Vec<String> = (0..ACCOUNTS)
        .map(|n| format!("hubspot:{}", hubspot_id(n)))
        .collect();
    let before = p.store().accounts(&ids).await.expect("states");
    let renewing = before
        .values()
        .filter(|a| a.facts["contracts.renewal_date"]["source"] == "contract-renewals")
        .count();
    assert!(renewing > 10, "the plugin answered for {renewing} accounts");
    let writes = emulator.writes().total;
    let again = run(&p, RunKind::Incremental).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
    assert!(
        again.accounts > 10,
        "accounts with new signals are processed again: {}",
        again.accounts
    );
    let after = p.store().accounts(&ids).await.expect("states");
    for (id, a) in &after {
        let b = &before[id];
        assert_eq!(
            a.facts["contracts.renewal_date"], b.facts["contracts.renewal_date"],
            "{id} kept its renewal date"
        );
        assert_eq!((a.tier, a.score), (b.tier, b.score), "{id} did not move");
    }
    assert_eq!(emulator.writes().total, writes, "nothing was written: {again:?}");
    assert_eq!(again.pushed, 0);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_account_is_reported_once_as_a_lock_with_the_persons_tier() {
    // Regression (issue 12 #3): every later run reported the lock as a movement again, with the
    // score's reasons.
    let w = world().await;
    assert_eq!(run(&w.pipeline, RunKind::Full).await.status, RunStatus::Succeeded);
    let id = (0..ACCOUNTS)
        .map(hubspot_id)
        .find(|id| w.emulator.property(id, "tierd_tier").as_deref() == Some("tier_3"))
        .expect("a tier_3 account");
    w.emulator
        .set_properties(&id, &[("tierd_tier", "tier_2"), ("tierd_tier_locked", "true")]);
    let key = format!("hubspot:{id}");
    let first = run(&w.pipeline, RunKind::Incremental).await;
    let line = first
        .top_movements
        .iter()
        .find(|m| m.id == key)
        .unwrap_or_else(|| panic!("the lock is reported: {:?}", first.top_movements));
    assert_eq!(
        (line.from, line.to),
        (Some(tierd_core::Tier::Tier3), tierd_core::Tier::Tier2)
    );
    assert!(
        line.reason.starts_with("locked by a person at tier_2"),
        "{}",
        line.reason
    );
    for _ in 0..3 {
        for kind in [RunKind::Incremental, RunKind::Full] {
            let again = run(&w.pipeline, kind).await;
            assert!(
                again.top_movements.iter().all(|m| m.id != key),
                "reported again: {:?}",
                again.top_movements
            );
        }
    }
    assert_eq!(w.emulator.property(&id, "tierd_tier").as_deref(), Some("tier_2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_cleared_in_the_crm_is_written_again_and_counted() {
    // Regression (issue 12 #8): runs reported "pushed 0, unchanged 300" and left the CRM empty.
    let w = world().await;
    assert_eq!(run(&w.pipeline, RunKind::Full).await.status, RunStatus::Succeeded);
    let cleared: Vec<String> = (10..13).map(hubspot_id).collect();
    let tiers: Vec<Option<String>> = cleared
        .iter()
        .map(|id| w.emulator.property(id, "tierd_tier"))
        .collect();
    for id in &cleared {
        w.emulator.set_properties(id, &[("tierd_tier", "")]);
    }
    let incr = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(incr.status, RunStatus::Succeeded, "{:?}", incr.error);
    assert_eq!((incr.repaired, incr.skipped_overridden), (3, 0), "{incr:?}");
    for (id, tier) in cleared.iter().zip(&tiers) {
        assert_eq!(&w.emulator.property(id, "tierd_tier"), tier, "{id} repaired");
    }
    let again = run(&w.pipeline, RunKind::Full).await;
    assert_eq!((again.pushed, again.repaired), (0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_report_counts_the_work_its_own_daemon_loop_took() {
    // Regression (issue 12 #9): in `tierd run` the daemon's work loop takes some of the leader's
    // items, and the run reported only the accounts its own consumers processed.
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let metrics = Arc::new(Metrics::default());
    let tweak = |s: &mut Settings| {
        s.pipeline.batch_size = 5;
        s.pipeline.workers = 1;
        s.pipeline.idle_poll_ms = 1;
    };
    let p = pipeline_with(&emulator, &url, "2026-11-24", tweak, metrics.clone(), "test:1").await;
    let (stop, stopped) = crate::shutdown::never();
    let (report, worked) = tokio::join!(
        async {
            let report = run(&p, RunKind::Full).await;
            let _ = stop.send(true);
            report
        },
        p.work(stopped)
    );
    worked.expect("the loop works until stopped");
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(processed(&metrics), ACCOUNTS);
    assert_eq!(report.accounts, ACCOUNTS, "{report:?}");
    let stored = p.store().run(report.run).await.expect("read").expect("run");
    assert_eq!(stored.stats.expect("stats")["accounts"], ACCOUNTS);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_items_holding_separators_survive_full_and_incremental_runs() {
    // Regression (issue 11 #3): list facts were joined with `;` and split again between runs.
    let dir = TempDir::new().expect("temp dir");
    let input = dir.path().join("accounts.jsonl");
    let line = serde_json::json!({
        "id": "acc-1", "name": "Acme", "domain": "acme.example",
        "technographic.technologies": ["Snowflake", "Acme; Inc", "dbt, Labs"],
        "firmographic.employee_count": 1200,
    });
    std::fs::write(&input, format!("{line}\n")).expect("write accounts");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let mut settings = match Settings::load(None) {
        Ok(s) => s,
        Err(_) => panic!("the built-in configuration loads"),
    };
    settings.plugins.clear();
    settings.store.url = url;
    let serde_json::Value::Object(table) = json!({
        "type": "file",
        "path": input.display().to_string(),
        "output": dir.path().join("tiers.jsonl").display().to_string(),
    }) else {
        unreachable!("a JSON object")
    };
    settings.connector = Some(ConnectorSettings::from_table(table).expect("connector section"));
    settings.pipeline.as_of = Some("2026-11-24".into());
    let p = Pipeline::start(Arc::new(settings), Arc::new(Metrics::default()), "test:1".into())
        .await
        .expect("pipeline starts");
    let expect = json!(["Snowflake", "Acme; Inc", "dbt, Labs"]);
    assert_eq!(run(&p, RunKind::Full).await.status, RunStatus::Succeeded);
    let stored = p.store().account("acc-1").await.expect("read").expect("stored");
    assert_eq!(
        stored.facts["technographic.technologies"]["value"], expect,
        "{}",
        stored.facts
    );
    // Touch the file so the incremental run reads it again.
    let file = std::fs::File::options()
        .write(true)
        .open(&input)
        .expect("open accounts");
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .expect("touch");
    drop(file);
    let incr = run(&p, RunKind::Incremental).await;
    assert_eq!(
        (incr.status, incr.accounts),
        (RunStatus::Succeeded, 1),
        "{:?}",
        incr.error
    );
    let again = p.store().account("acc-1").await.expect("read").expect("stored");
    assert_eq!(again.facts["technographic.technologies"]["value"], expect);
    assert_eq!(again.score, stored.score);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_on_a_half_step_is_not_rewritten_by_every_full_run() {
    // Regression (issue 12 #7): a score on a half step (2.75 then) was bucketed by the planner
    // in f32 (28) and by the store in f64 (27), so every full run wrote it again. With seed 120
    // hubspot:1000003190 scores 3.75 today.
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(3_700, 120))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let tweak = |s: &mut Settings| {
        s.policy = tierd_core::TierPolicy {
            caps: [None, None],
            ..s.policy.clone()
        };
    };
    let p = sqlite_pipeline(&emulator, &dir, "2026-11-24", tweak).await;
    let first = run(&p, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let id = format!("hubspot:{}", hubspot_id(3_190));
    let state = p.store().account(&id).await.expect("read").expect("stored");
    assert!(
        (state.score - 3.75).abs() < 5e-4,
        "the half-step account: {}",
        state.score
    );
    for _ in 0..2 {
        let again = run(&p, RunKind::Full).await;
        assert_eq!(
            (again.status, again.pushed),
            (RunStatus::Succeeded, 0),
            "{again:?}"
        );
    }
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_postgres_store_over_a_crm_holding_tierds_tiers_adopts_them_and_keeps_contract_facts() {
    // Issue 12 #1, the other start: the CRM already carries tierd's tiers (a store re-created, or
    // moved from SQLite to PostgreSQL). The new store's full run adopts them, and incremental
    // runs on later days, with nothing changed in the CRM, keep every contract fact; the only
    // tiers that move are those whose engagement lift ended (news, by design).
    let Some(pg) = tierd_test_support::postgres::Schema::create("pipeline").await else {
        return;
    };
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let first_store = TempDir::new().expect("temp dir");
    let p = with_contracts(&emulator, &first_store, "2026-11-24").await;
    assert_eq!(run(&p, RunKind::Full).await.status, RunStatus::Succeeded);
    p.shutdown().await;
    let writes = emulator.writes().total;

    let p = with_contracts_on(&emulator, &pg.url(), "2026-11-24").await;
    let adopted = run(&p, RunKind::Full).await;
    assert_eq!(adopted.status, RunStatus::Succeeded, "{:?}", adopted.error);
    assert_eq!(
        emulator.writes().total,
        writes,
        "the CRM's tiers are adopted, not written again"
    );
    p.shutdown().await;
    let ids: Vec<String> = (0..ACCOUNTS)
        .map(|n| format!("hubspot:{}", hubspot_id(n)))
        .collect();
    for (day, runs) in [("2026-11-25", 2), ("2026-11-26", 1)] {
        let p = with_contracts_on(&emulator, &pg.url(), day).await;
        for _ in 0..runs {
            let before = p.store().accounts(&ids).await.expect("states");
            let incr = run(&p, RunKind::Incremental).await;
            assert_eq!(incr.status, RunStatus::Succeeded, "{:?}", incr.error);
            let after = p.store().accounts(&ids).await.expect("states");
            for (id, a) in &after {
                if a.tier != before[id].tier {
                    let lifted = before[id]
                        .pushed
                        .as_ref()
                        .is_some_and(|p| p.reason.contains("(lifted one tier)"));
                    assert!(
                        lifted,
                        "{id} moved on {day} without its lift ending: {:?}",
                        before[id].pushed
                    );
                }
                assert_eq!(
                    a.facts["contracts.renewal_date"]["value"],
                    before[id].facts["contracts.renewal_date"]["value"],
                    "{id} kept its renewal date on {day}"
                );
            }
        }
        p.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_sets_the_companies_off_hubspots_target_account_list_beside_the_tiers() {
    let cfg = HubSpotConfig::unlimited(ACCOUNTS, 7);
    // The seeded portal's Target Account list: its companies of 1,000 people or more, counted here
    // from the generator, not from what tierd stored.
    let on_list = tierd_gen::Generator::new(tierd_gen::GenOptions {
        seed: 7,
        as_of: cfg.as_of.parse().expect("date"),
    })
    .take(ACCOUNTS as usize)
    .filter(|a| a.employee_count.is_some_and(|n| n >= 1000))
    .count() as u64;
    assert!(on_list > 10 && on_list < ACCOUNTS / 2, "{on_list}");
    let emulator = HubSpotEmulator::start(cfg).await.expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    // As `[outcomes] target_list_fact` configures it (tierd-config's tests check the loading).
    let tweak = |s: &mut Settings| {
        let fact = tierd_core::fact::FactName::new("crm.target_account").expect("name");
        s.schema
            .require(&fact, tierd_core::fact::FactType::Bool)
            .expect("a flag");
        s.outcomes.target_list_fact = Some(fact);
    };
    let metrics = Arc::new(Metrics::default());
    let p = pipeline_with(&emulator, &url, "2026-11-24", tweak, metrics, "test:1").await;
    let first = run(&p, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);

    let funnel = tierd_outcomes::funnel_from_store(p.store(), &p.funnel_query("live"))
        .await
        .expect("funnel");
    let off = funnel.not_in_target_list.as_ref().expect("the off-list row");
    assert_eq!(off.fact, "crm.target_account");
    assert_eq!(off.accounts_on_list, on_list);
    assert_eq!(off.accounts, ACCOUNTS - on_list);
    // HubSpot leaves the checkbox blank off the list: no off-list account has the fact.
    assert_eq!(off.accounts_without_fact, off.accounts);
    // Its deals are those of the accounts whose stored facts say nothing of the list.
    let ids: Vec<String> = (0..ACCOUNTS)
        .map(|n| format!("hubspot:{}", hubspot_id(n)))
        .collect();
    let stored = p.store().accounts(&ids).await.expect("accounts");
    assert_eq!(stored.len() as u64, ACCOUNTS);
    let listed: std::collections::HashSet<&str> = stored
        .values()
        .filter(|a| a.facts["crm.target_account"]["value"] == json!(true))
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(listed.len() as u64, on_list);
    let deals = p.store().deals_for_report().await.expect("deals");
    let off_deals = deals
        .iter()
        .filter(|d| d.account.as_deref().is_some_and(|a| !listed.contains(a)))
        .count() as u64;
    assert!(off_deals > 0);
    assert_eq!(off.deals, off_deals);
    p.shutdown().await;
}

/// Accounts in [`deals_of_many_accounts`]: three chunks of a thousand per call, two lanes.
const MANY: u64 = 2_500;

/// The deals stage pulls and stores chunks in two lanes, each pulling its next chunk while it
/// stores the one before: over three chunks of accounts (2,500, a thousand per call; one lane
/// stores two) every deal is stored once, as new, and a second pull changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deals_of_many_accounts_are_pulled_and_stored_chunk_by_chunk() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(MANY, 11))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let p = sqlite_pipeline(&emulator, &dir, "2026-11-24", |_| {}).await;
    deals_of_many_accounts(&p).await;
    p.shutdown().await;
}

/// The same on PostgreSQL, where the two lanes' transactions run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deals_of_many_accounts_are_stored_in_two_lanes_on_postgres() {
    let Some(pg) = tierd_test_support::postgres::Schema::create("deal_lanes").await else {
        return;
    };
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(MANY, 11))
        .await
        .expect("emulator");
    let metrics = Arc::new(Metrics::default());
    let p = pipeline_with(&emulator, &pg.url(), "2026-11-24", |_| {}, metrics, "test:1").await;
    deals_of_many_accounts(&p).await;
    p.shutdown().await;
}

async fn deals_of_many_accounts(p: &Pipeline) {
    let ids: Vec<String> = (0..MANY).map(|n| format!("hubspot:{}", hubspot_id(n))).collect();
    let first = crate::stage::deals::pull(p, None, &ids).await.expect("deals");
    assert_eq!(first.accounts, MANY);
    assert!(first.pulled > MANY / 2, "{first:?}");
    assert_eq!(
        (first.sync.new, first.deleted, first.without_account),
        (first.pulled, 0, 0)
    );
    let stored = p.store().deals_for_report().await.expect("stored deals");
    assert_eq!(stored.len() as u64, first.pulled);
    let distinct: std::collections::HashSet<&str> = stored.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(distinct.len(), stored.len());
    // Each chunk's accounts have their deals stored, the last one's included.
    let accounts: std::collections::HashSet<&str> =
        stored.iter().filter_map(|d| d.account.as_deref()).collect();
    for chunk in ids.chunks(1000) {
        assert!(
            chunk.iter().any(|id| accounts.contains(id.as_str())),
            "no deal stored for {}..",
            chunk[0]
        );
    }
    let again = crate::stage::deals::pull(p, None, &ids)
        .await
        .expect("deals again");
    assert_eq!(again.pulled, first.pulled);
    assert_eq!(again.sync, tierd_store::DealSync::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committing_runs_keep_the_deals_of_their_accounts_and_a_deals_job_changes_nothing_more() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let metrics = Arc::new(Metrics::default());
    let pipeline = pipeline_with(&emulator, &url, "2026-11-24", |_| {}, metrics.clone(), "test:1").await;
    let w = World {
        emulator,
        _dir: dir,
        pipeline,
    };
    let first = run(&w.pipeline, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let deals = first.deals.expect("a full run pulls deals");
    assert_eq!(deals.accounts, ACCOUNTS);
    assert!(deals.pulled > 0);
    assert_eq!(
        (deals.sync.new, deals.deleted, deals.without_account),
        (deals.pulled, 0, 0)
    );
    let stored = w.pipeline.store().deals_for_report().await.expect("deals");
    assert_eq!(stored.len() as u64, deals.pulled);
    assert!(stored
        .iter()
        .all(|d| d.account.is_some() && d.created_at.is_some()));
    // /metrics carries the funnel report's headline: its deals per tier are the report's.
    let text = metrics.render(&crate::metrics::ExtraGauges::default());
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tierd_funnel_deals{"))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    let deals_per_tier: u64 = lines
        .iter()
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    let funnel =
        tierd_outcomes::funnel_from_store(w.pipeline.store(), &tierd_outcomes::FunnelQuery::default())
            .await
            .expect("funnel");
    assert_eq!(deals_per_tier, funnel.rows.iter().map(|r| r.deals).sum::<u64>());
    // Every emulated deal is counted: under a tier, or before its account was first tiered.
    assert_eq!(
        funnel.deals_before_tiering + deals_per_tier,
        funnel.deals_in_period
    );
    assert_eq!(funnel.deals_in_period, deals.pulled);

    // Nothing changed in the CRM: the deals job and the next run see the same deals.
    let again = w.pipeline.sync_deals().await.expect("deals job");
    assert_eq!(
        (again.pulled, again.sync.new, again.sync.changed, again.deleted),
        (deals.pulled, 0, 0, 0)
    );
    let incremental = run(&w.pipeline, RunKind::Incremental).await;
    assert_eq!(
        incremental.status,
        RunStatus::Succeeded,
        "{:?}",
        incremental.error
    );
    assert_eq!(
        incremental.deals.map(|d| d.sync),
        Some(tierd_store::DealSync::default())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_report_says_where_its_time_went_stage_by_stage() {
    use tierd_plugin_host::{Mode, PluginConfig};
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let with_plugin = |s: &mut Settings| {
        let plugin = PluginConfig::library(
            tierd_test_support::cdylib("tierd-test-misbehaving"),
            Mode::InProcess,
        );
        s.plugins.insert("m".into(), plugin);
    };
    let metrics = Arc::new(Metrics::default());
    let p = pipeline_with(
        &emulator,
        &url,
        "2026-11-24",
        with_plugin,
        metrics.clone(),
        "test:1",
    )
    .await;
    let report = run(&p, RunKind::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert!(report.pushed > 0);
    let t = &report.stages;
    // Every stage that ran has time; those that talk to the CRM have vendor time too. (Which
    // stage takes longest is the machine's business, not this test's.)
    for (stage, time) in t.stages().into_iter().filter(|(s, _)| s != "queue") {
        assert!(time.seconds > 0.0, "{stage} has no time: {t:?}");
    }
    // SQLite serves one instance: its items go to the workers in memory, not through the
    // store's queue.
    assert_eq!(t.queue, crate::StageTime::default(), "{t:?}");
    for (stage, time) in [("pull", t.pull), ("push", t.push), ("deals", t.deals)] {
        assert!(time.vendor_seconds > 0.0, "{stage} waited for no vendor: {t:?}");
    }
    for (stage, time) in [
        ("queue", t.queue),
        ("score", t.score),
        ("commit", t.commit),
        ("tier", t.tier),
    ] {
        assert_eq!(
            time.vendor_seconds, 0.0,
            "{stage} does not talk to a vendor: {t:?}"
        );
    }
    assert_eq!(t.enrich.keys().collect::<Vec<_>>(), ["m"], "one entry per plugin");
    assert!(t.run_seconds > 0.0);

    // Stored with the run, as the API serves it.
    let stored = p.store().run(report.run).await.expect("read").expect("the run");
    let stats = stored.stats.expect("stats");
    let back: crate::StageTimes = serde_json::from_value(stats["stages"].clone()).expect("stage times");
    // Equal up to the last digit serde_json's float parser may round differently.
    let (stored, reported) = (back.stages(), t.stages());
    assert_eq!(stored.len(), reported.len());
    for ((name, s), (_, r)) in stored.iter().zip(&reported) {
        assert!(
            (s.seconds - r.seconds).abs() < 1e-12 && (s.vendor_seconds - r.vendor_seconds).abs() < 1e-12,
            "{name}: stored {s:?}, reported {r:?}"
        );
    }
    assert!((back.run_seconds - t.run_seconds).abs() < 1e-12);
    // And in /metrics.
    let text = metrics.render(&crate::metrics::ExtraGauges::default());
    for stage in ["pull", "score", "commit", "tier", "push", "deals"] {
        let line = format!("tierd_run_stage_seconds_total{{kind=\"full\",stage=\"{stage}\",plugin=\"\"}}");
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    assert!(text.contains("tierd_run_stage_seconds_total{kind=\"full\",stage=\"enrich\",plugin=\"m\"}"));
    p.shutdown().await;
}

/// `tierd calibrate` and a pilot's backtest read the store a page at a time (a million stored
/// states do not fit in memory): any page size gives every account `keep` takes once, in id
/// order, laid out as a read of every account at once lays it out, with its lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_accounts_read_a_page_at_a_time_as_all_at_once() {
    use tierd_core::tier::Lock;
    let w = world().await;
    assert_eq!(run(&w.pipeline, RunKind::Full).await.status, RunStatus::Succeeded);
    // The lock's property exists once the first run has set the CRM up.
    w.emulator
        .set_properties(&hubspot_id(1), &[("tierd_tier_locked", "true")]);
    let locked = format!("hubspot:{}", hubspot_id(1));
    assert_eq!(
        run(&w.pipeline, RunKind::Incremental).await.status,
        RunStatus::Succeeded
    );
    let store = w.pipeline.store();
    let schema = &w.pipeline.settings.schema;

    // Every account at once, laid out one by one, in id order.
    let mut ids: Vec<String> = crate::all_summaries(store)
        .await
        .expect("summaries")
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    assert_eq!(ids.len(), ACCOUNTS as usize);
    let states = store.accounts(&ids).await.expect("states");
    let expected: Vec<_> = ids
        .iter()
        .map(|id| {
            let facts = tierd_core::codec::decode(schema, &states[id].facts).0;
            tierd_outcomes::BacktestAccount::new(id.clone(), schema, &tierd_core::codec::current(&facts))
                .expect("laid out")
        })
        .collect();
    let locked_tier = states[&locked].tier;

    for page in [1, 7, 299, 300, 1000] {
        let read = crate::backtest::stored_accounts(store, &[schema, schema], page, |_| true)
            .await
            .expect("read");
        assert_eq!(read.len(), ACCOUNTS as usize, "page {page}");
        assert_eq!(read.laid_out.len(), 2, "one list per schema");
        for laid_out in &read.laid_out {
            assert!(
                *laid_out == expected,
                "page {page}: laid out as all at once, in id order"
            );
        }
        assert_eq!(read.unreadable, [Vec::<String>::new(), Vec::new()]);
        for (id, lock) in ids.iter().zip(&read.locks) {
            let want = if *id == locked {
                Lock::At(locked_tier)
            } else {
                Lock::Unlocked
            };
            assert_eq!(*lock, want, "page {page}: {id}");
        }
    }

    // `keep` sees each account once and picks: the ids ending in 7 (30 of 300).
    let mut seen = 0;
    let read = crate::backtest::stored_accounts(store, &[schema], 7, |s| {
        seen += 1;
        s.id.ends_with('7')
    })
    .await
    .expect("read");
    assert_eq!(seen, ACCOUNTS as usize);
    let picked: Vec<&str> = read.laid_out[0].iter().map(|a| a.id.as_str()).collect();
    let want: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| id.ends_with('7'))
        .collect();
    assert_eq!(want.len(), 30);
    assert_eq!(picked, want);
    assert_eq!(read.locks.len(), 30);
}

/// A pilot's or a calibration's candidate model is read by one function, whose errors name the
/// file: missing, or not a valid model.
#[test]
fn a_candidate_model_that_cannot_be_loaded_is_named() {
    let dir = TempDir::new().expect("dir");
    let live = tierd_core::TierPolicy::default();
    let missing = dir.path().join("missing.toml");
    let err = crate::backtest::load_candidate(&missing, &live).expect_err("missing");
    assert!(
        format!("{err:#}").contains(&format!("cannot read the candidate model {}", missing.display())),
        "{err:#}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n").expect("write");
    let err = crate::backtest::load_candidate(&bad, &live).expect_err("invalid");
    assert!(
        format!("{err:#}").contains(&format!("the candidate model {} is not valid", bad.display())),
        "{err:#}"
    );
    let good = dir.path().join("model.toml");
    std::fs::write(&good, include_str!("../../../config/model.toml")).expect("write");
    let (model, schema, _) = crate::backtest::load_candidate(&good, &live).expect("loads");
    assert_eq!(model.name, "default-b2b");
    assert!(schema.len() >= model.schema().len());
}
