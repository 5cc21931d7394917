//! `tierd sync --once` as a process against the HubSpot emulator, on SQLite and PostgreSQL: a full
//! run then an incremental one after people changed the CRM, `kill -9` in the middle of a push,
//! SIGTERM in the middle of a push, the CRM going down mid-push, and a plugin crashing mid-run.
//! After every disturbance the next run must complete, every company must hold the tier the store
//! says was pushed, and no record may have been written twice (the emulator's write log).

use std::path::Path;
use std::time::Duration;
use tierd_test_support::cdylib;

use tierd_e2e::harness::{
    assert_crm_matches_store, company_id, hubspot, store_accounts, sync_once, wait_until, Config, Database,
    Tierd, CRM_TOKEN, TIER_PROPERTY,
};
use tierd_emulators::HubSpotEmulator;
use tierd_store::{RunKind, RunStatus};

/// Runs the test body `$name(db: Database)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(tierd_e2e::harness::Database::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = tierd_e2e::harness::Database::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

/// Starts `tierd sync --once ARGS` and kills or signals it once the CRM has received some but
/// not all of `expected` writes; returns the child (still running or just stopped).
async fn disturb_mid_push(
    crm: &HubSpotEmulator,
    dir: &Path,
    config: &Path,
    args: &[&str],
    expected: u64,
) -> Tierd {
    let mut all = vec!["sync", "--once"];
    all.extend_from_slice(args);
    let mut child = Tierd::spawn("interrupted", dir, config, &all);
    wait_until("the first pushed batch", Duration::from_secs(60), || {
        let started = crm.writes().total > 0;
        let exited = child.exited().is_some();
        async move { started || exited }
    })
    .await;
    assert!(
        child.exited().is_none(),
        "the run ended before the push\n{}",
        child.output()
    );
    let landed = crm.writes().total;
    assert!(
        landed < expected,
        "the push finished before the test could interrupt it ({landed} of {expected} written); \
         slow the emulator down further"
    );
    child
}

async fn full_then_incremental_after_people_change_the_crm(db: Database) {
    const ACCOUNTS: u64 = 400;
    let dir = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 17).await;
    let config = Config::new(db.url(), &crm.base_url()).write(dir.path());

    let (code, full) = sync_once("full", dir.path(), &config, &["--job", "full"]).await;
    assert_eq!(code, 0, "{}", full.output());
    let out = full.stdout();
    assert!(out.contains("Run 1 (full): succeeded"), "{out}");
    assert!(out.contains(&format!("{ACCOUNTS} accounts scored")), "{out}");
    let writes = crm.writes();
    assert_eq!(
        writes.total, ACCOUNTS,
        "the first full run writes every company once"
    );
    assert_eq!(writes.max_per_record(), 1);
    let store = db.store().await;
    let tiers = assert_crm_matches_store(&crm, &store, ACCOUNTS, &[]).await;

    // A month of people: a demo request on the best untiered account, a lock on another with a
    // size change that would otherwise move it, and a seller setting a tier by hand.
    let mut untiered = store_accounts(&store)
        .await
        .into_iter()
        .filter(|a| a.tier == tierd_core::Tier::Untiered)
        .collect::<Vec<_>>();
    untiered.sort_by(|a, b| b.score.total_cmp(&a.score));
    let demo = tierd_e2e::harness::crm_id(&untiered[0].id).to_string();
    let locked = tierd_e2e::harness::crm_id(&untiered[1].id).to_string();
    let overridden = tierd_e2e::harness::crm_id(&untiered[2].id).to_string();
    crm.set_properties(&demo, &[("demo_request_dates", "2026-11-20")]);
    crm.set_properties(
        &locked,
        &[("tierd_tier_locked", "true"), ("numberofemployees", "90000")],
    );
    crm.set_properties(&overridden, &[(TIER_PROPERTY, "tier_1")]);

    let (code, incr) = sync_once("incremental", dir.path(), &config, &[]).await;
    assert_eq!(code, 0, "{}", incr.output());
    let out = incr.stdout();
    assert!(out.contains("Run 2 (incremental): succeeded"), "{out}");
    assert!(out.contains("skipped locked 1,"), "{out}");
    assert!(out.contains("skipped (changed by a person) 1,"), "{out}");
    let after = crm.writes();
    assert_eq!(
        crm.property(&demo, TIER_PROPERTY).as_deref(),
        Some("tier_3"),
        "a fresh demo request lifts an untiered account one tier"
    );
    assert_eq!(after.count(&demo), 2, "the lifted account is written once more");
    assert_eq!(after.count(&locked), 1, "a locked account is not written");
    assert_eq!(after.count(&overridden), 1, "a person's tier is not overwritten");
    assert_eq!(
        crm.property(&overridden, TIER_PROPERTY).as_deref(),
        Some("tier_1")
    );
    assert_eq!(
        after.total,
        ACCOUNTS + 1,
        "nothing else changed, nothing else written"
    );
    let now = assert_crm_matches_store(&crm, &store, ACCOUNTS, &[locked.clone(), overridden.clone()]).await;
    let moved: Vec<&String> = now
        .iter()
        .filter(|(id, t)| tiers[*id] != **t)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(moved, vec![&demo], "only the demo request moved a tier");
    store.close().await;
}
on_both_backends!(full_then_incremental_after_people_change_the_crm);

async fn kill_9_mid_push_then_resume_writes_each_account_once(db: Database) {
    const ACCOUNTS: u64 = 600;
    let dir = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 23).await;
    let mut cfg = Config::new(db.url(), &crm.base_url());
    cfg.push_batch_size = 20;
    let config = cfg.write(dir.path());
    // 30 push calls of 40 ms: a window of over a second to land the kill in.
    crm.faults().set_latency(Duration::from_millis(40));

    let mut killed = disturb_mid_push(&crm, dir.path(), &config, &["--job", "full"], ACCOUNTS).await;
    killed.kill9();
    let at_kill = crm.writes();
    let store = db.store().await;
    let left = store.running_run().await.expect("read runs");
    assert!(left.is_some(), "the killed run is left running in the store");

    crm.faults().set_latency(Duration::ZERO);
    let (code, resumed) = sync_once("resumed", dir.path(), &config, &["--job", "full"]).await;
    assert_eq!(code, 0, "{}", resumed.output());
    assert!(
        resumed.stdout().contains("(full): succeeded"),
        "{}",
        resumed.stdout()
    );
    let writes = crm.writes();
    assert_eq!(
        writes.max_per_record(),
        1,
        "no company written twice across the crash ({} written before the kill)",
        at_kill.total
    );
    assert_eq!(writes.total, ACCOUNTS, "every company written exactly once");
    assert_crm_matches_store(&crm, &store, ACCOUNTS, &[]).await;
    let runs = store.runs(10).await.expect("runs");
    let statuses: Vec<(RunKind, RunStatus)> = runs.iter().rev().map(|r| (r.kind, r.status)).collect();
    assert_eq!(
        statuses,
        vec![
            (RunKind::Full, RunStatus::Interrupted),
            (RunKind::Full, RunStatus::Succeeded)
        ],
        "the killed run is recorded interrupted once the next one starts"
    );
    store.close().await;
}
on_both_backends!(kill_9_mid_push_then_resume_writes_each_account_once);

/// SIGTERM: the batches in flight are pushed and committed, the run is recorded interrupted, the
/// process exits 1 (sync's code for a run that did not succeed), and the next run finishes the
/// job without writing anything twice.
async fn sigterm_mid_push_stops_after_the_batch_and_resumes(db: Database) {
    const ACCOUNTS: u64 = 600;
    let dir = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 29).await;
    let mut cfg = Config::new(db.url(), &crm.base_url());
    cfg.push_batch_size = 20;
    let config = cfg.write(dir.path());
    crm.faults().set_latency(Duration::from_millis(40));

    let mut stopped = disturb_mid_push(&crm, dir.path(), &config, &["--job", "full"], ACCOUNTS).await;
    stopped.sigterm();
    let status = stopped.exit_within(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{}", stopped.output());
    let out = stopped.stdout();
    assert!(out.contains("Run 1 (full): interrupted"), "{out}");
    assert!(
        out.contains("stopped on request after the batches in flight"),
        "{out}"
    );
    let at_stop = crm.writes();
    assert!(at_stop.total < ACCOUNTS, "{out}");
    assert_eq!(at_stop.total % 20, 0, "whole batches only: {}", at_stop.total);
    let store = db.store().await;
    let pushed = store_accounts(&store)
        .await
        .iter()
        .filter(|a| a.pushed_tier.is_some())
        .count() as u64;
    assert_eq!(
        pushed, at_stop.total,
        "every batch the CRM took is committed as pushed"
    );

    crm.faults().set_latency(Duration::ZERO);
    let (code, resumed) = sync_once("resumed", dir.path(), &config, &["--job", "full"]).await;
    assert_eq!(code, 0, "{}", resumed.output());
    let writes = crm.writes();
    assert_eq!(writes.max_per_record(), 1);
    assert_eq!(writes.total, ACCOUNTS);
    assert_crm_matches_store(&crm, &store, ACCOUNTS, &[]).await;
    store.close().await;
}
on_both_backends!(sigterm_mid_push_stops_after_the_batch_and_resumes);

/// The CRM answers 5xx to everything after the push began: the run fails cleanly with a message
/// naming the CRM and no secret; once the CRM is back, the next run pushes the rest, each company
/// once.
async fn crm_outage_mid_push_fails_cleanly_and_the_next_run_resumes(db: Database) {
    const ACCOUNTS: u64 = 600;
    let dir = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 31).await;
    let mut cfg = Config::new(db.url(), &crm.base_url());
    cfg.push_batch_size = 20;
    let config = cfg.write(dir.path());
    crm.faults().set_latency(Duration::from_millis(40));

    let mut failing = disturb_mid_push(&crm, dir.path(), &config, &["--job", "full"], ACCOUNTS).await;
    crm.faults().set_error_rate(1.0);
    let status = failing.exit_within(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{}", failing.output());
    let (out, err) = (failing.stdout(), failing.stderr());
    assert!(out.contains("Run 1 (full): failed"), "{out}");
    // A batch refused with a 5xx is deferred (kept for the next run), which stops the push.
    assert!(out.contains("HTTP 500"), "{out}");
    assert!(out.contains("deferred to the next run"), "{out}");
    assert!(
        !out.contains(CRM_TOKEN) && !err.contains(CRM_TOKEN),
        "the CRM token leaked into the output"
    );
    let at_outage = crm.writes();
    assert!(at_outage.total < ACCOUNTS);

    crm.faults().reset();
    let (code, resumed) = sync_once("resumed", dir.path(), &config, &[]).await;
    assert_eq!(code, 0, "{}", resumed.output());
    let writes = crm.writes();
    assert_eq!(
        writes.max_per_record(),
        1,
        "nothing written twice across the outage"
    );
    assert_eq!(writes.total, ACCOUNTS);
    let store = db.store().await;
    assert_crm_matches_store(&crm, &store, ACCOUNTS, &[]).await;
    store.close().await;
}
on_both_backends!(crm_outage_mid_push_fails_cleanly_and_the_next_run_resumes);

/// The misbehaving plugin, isolated: two companies' batches make its process segfault and one
/// panics, in the middle of the run. The run completes; the failed results are counted in the
/// report and the run's stored statistics, and every company is still tiered and pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_crashing_mid_run_leaves_stale_results_flagged_and_the_run_completes() {
    const ACCOUNTS: u64 = 120;
    let db = Database::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 37).await;
    for (k, name) in [(40, "segfault"), (41, "panic"), (80, "segfault")] {
        crm.set_properties(&company_id(k), &[("name", name)]);
    }
    let mut cfg = Config::new(db.url(), &crm.base_url());
    cfg.extra = format!(
        "[plugins.misbehaving]\npath = \"{}\"\nmode = \"isolated\"\nbatch_size = 1\nconcurrency = 1\ntimeout_ms = 10000\n",
        cdylib("tierd-test-misbehaving").display()
    );
    let config = cfg.write(dir.path());

    let (code, run) = sync_once("full", dir.path(), &config, &["--job", "full"]).await;
    assert_eq!(code, 0, "{}", run.output());
    let out = run.stdout();
    assert!(out.contains("Run 1 (full): succeeded"), "{out}");
    assert!(
        out.contains("3 plugin results failed (previous facts kept)"),
        "{out}"
    );
    let store = db.store().await;
    let runs = store.runs(1).await.expect("runs");
    let stats = runs[0].stats.as_ref().expect("run statistics");
    assert_eq!(stats["stale_plugin_results"], 3, "{stats}");
    assert_eq!(crm.writes().max_per_record(), 1);
    assert_crm_matches_store(&crm, &store, ACCOUNTS, &[]).await;
    store.close().await;
}
