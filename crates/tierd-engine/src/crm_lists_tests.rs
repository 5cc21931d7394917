//! `[crm_lists]` after committing runs, against the HubSpot emulator on SQLite and PostgreSQL and
//! the Salesforce emulator on SQLite: each list holds exactly its tier's accounts as the store
//! has them, tier moves add and remove members with counts that match the moves, a person's edit
//! of a list is put right, and a list the CRM refuses fails alone, never the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;
use tempfile::TempDir;
use tierd_config::activation::{CrmList, CrmListSettings};
use tierd_config::engine::ConnectorSettings;
use tierd_config::Settings;
use tierd_core::Tier;
use tierd_emulators::{HubSpotConfig, HubSpotEmulator, SalesforceConfig, SalesforceEmulator};
use tierd_store::{RunKind, RunStatus};

use crate::metrics::{ExtraGauges, Metrics};
use crate::tests::{hubspot_id, pipeline_with, run, ACCOUNTS};
use crate::Pipeline;

const TIERS: [Tier; 3] = [Tier::Tier1, Tier::Tier2, Tier::Tier3];

fn name(t: Tier) -> String {
    format!("tierd: {}", t.as_str())
}

fn lists() -> CrmListSettings {
    CrmListSettings {
        lists: TIERS
            .iter()
            .map(|&tier| CrmList {
                tier,
                name: name(tier),
                key: format!("crm_lists.{}", tier.as_str()),
            })
            .collect(),
    }
}

/// The store's tiered accounts per tier.
async fn store_tiers(p: &Pipeline) -> BTreeMap<Tier, BTreeSet<String>> {
    let mut out: BTreeMap<Tier, BTreeSet<String>> = TIERS.iter().map(|&t| (t, BTreeSet::new())).collect();
    for a in crate::all_summaries(p.store()).await.expect("summaries") {
        if let (true, Some(ids)) = (a.tiered, out.get_mut(&a.tier)) {
            ids.insert(a.id);
        }
    }
    out
}

/// `tierd_crm_list_members_total` per (tier, change), from the metrics text.
fn list_counters(m: &Metrics) -> BTreeMap<(String, String), u64> {
    let text = m.render(&ExtraGauges::default());
    text.lines()
        .filter_map(|l| l.strip_prefix("tierd_crm_list_members_total{"))
        .filter_map(|l| {
            let (labels, value) = l.split_once("} ")?;
            let get = |k: &str| {
                labels
                    .split(',')
                    .find_map(|p| p.strip_prefix(&format!("{k}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
            };
            Some(((get("tier")?, get("change")?), value.trim().parse().ok()?))
        })
        .collect()
}

fn crm_list_errors(m: &Metrics) -> u64 {
    let text = m.render(&ExtraGauges::default());
    text.lines()
        .find_map(|l| l.strip_prefix("tierd_errors_total{stage=\"crm_lists\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// What the counters grew by between two readings, for one tier.
fn grew(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
    t: Tier,
    change: &str,
) -> u64 {
    let key = (t.as_str().to_string(), change.to_string());
    after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)
}

/// The counts a sync must report when a tier goes from `old` to `new`: (added, removed).
fn moves(old: &BTreeSet<String>, new: &BTreeSet<String>) -> (u64, u64) {
    (
        new.difference(old).count() as u64,
        old.difference(new).count() as u64,
    )
}

fn hubspot_list(emulator: &HubSpotEmulator, t: Tier) -> BTreeSet<String> {
    emulator
        .list_members(&name(t))
        .unwrap_or_else(|| panic!("the list of {t} exists"))
        .into_iter()
        .map(|id| format!("hubspot:{id}"))
        .collect()
}

async fn hubspot_pipeline(emulator: &HubSpotEmulator, url: &str, metrics: Arc<Metrics>) -> Pipeline {
    pipeline_with(
        emulator,
        url,
        "2026-11-24",
        |s| s.crm_lists = lists(),
        metrics,
        "test:1",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_lists_follow_the_tiers_run_after_run() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let metrics = Arc::new(Metrics::default());
    let p = hubspot_pipeline(&emulator, &url, metrics.clone()).await;
    lists_follow_the_tiers(&emulator, &p, &metrics).await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_lists_follow_the_tiers_run_after_run_on_postgres() {
    let Some(pg) = tierd_test_support::postgres::Schema::create("crm_lists").await else {
        return;
    };
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let metrics = Arc::new(Metrics::default());
    let p = hubspot_pipeline(&emulator, &pg.url(), metrics.clone()).await;
    lists_follow_the_tiers(&emulator, &p, &metrics).await;
    p.shutdown().await;
}

async fn lists_follow_the_tiers(emulator: &HubSpotEmulator, p: &Pipeline, metrics: &Metrics) {
    let first = run(p, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let tiers = store_tiers(p).await;
    let counted = list_counters(metrics);
    for t in TIERS {
        assert_eq!(
            hubspot_list(emulator, t),
            tiers[&t],
            "{t} list after the first run"
        );
        assert_eq!(
            grew(&BTreeMap::new(), &counted, t, "added"),
            tiers[&t].len() as u64,
            "{t}"
        );
        assert_eq!(grew(&BTreeMap::new(), &counted, t, "removed"), 0, "{t}");
    }
    assert!(tiers[&Tier::Tier3].len() > 1, "the world has a tier 3: {tiers:?}");

    // A person locks a tier 3 account at tier 2, and adds an untiered account to the tier 1
    // list by hand.
    let locked = tiers[&Tier::Tier3]
        .iter()
        .next()
        .expect("a tier 3 account")
        .clone();
    let locked_id = locked.trim_start_matches("hubspot:");
    emulator.set_properties(
        locked_id,
        &[("tierd_tier", "tier_2"), ("tierd_tier_locked", "true")],
    );
    let stranger = (0..ACCOUNTS)
        .map(|k| format!("hubspot:{}", hubspot_id(k)))
        .find(|id| tiers.values().all(|ids| !ids.contains(id)))
        .expect("an untiered account");
    emulator.edit_list(&name(Tier::Tier1), stranger.trim_start_matches("hubspot:"), true);

    let second = run(p, RunKind::Incremental).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    let now = store_tiers(p).await;
    assert!(now[&Tier::Tier2].contains(&locked) && !now[&Tier::Tier3].contains(&locked));
    let after = list_counters(metrics);
    for t in TIERS {
        assert_eq!(
            hubspot_list(emulator, t),
            now[&t],
            "{t} list after the second run"
        );
        let (mut added, mut removed) = moves(&tiers[&t], &now[&t]);
        if t == Tier::Tier1 {
            removed += 1; // the person's addition
        }
        if t == Tier::Tier1 && now[&t].contains(&stranger) {
            added -= 1;
            removed -= 1;
        }
        assert_eq!(grew(&counted, &after, t, "added"), added, "{t} added");
        assert_eq!(grew(&counted, &after, t, "removed"), removed, "{t} removed");
    }
    assert!(
        grew(&counted, &after, Tier::Tier2, "added") >= 1,
        "the lock joined tier 2"
    );
    assert!(
        grew(&counted, &after, Tier::Tier3, "removed") >= 1,
        "and left tier 3"
    );

    // Nothing changed since: a sync finds every list in step.
    for outcome in p.sync_crm_lists().await {
        let s = outcome.result.expect("synced");
        assert_eq!(
            (s.added, s.removed, s.created),
            (0, 0, false),
            "{}",
            outcome.list.name
        );
        assert_eq!(s.unchanged, now[&outcome.list.tier].len() as u64);
    }
    assert_eq!(crm_list_errors(metrics), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_the_crm_refuses_fails_alone_and_never_the_run() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    // A person already has a DYNAMIC list under tier 3's name: HubSpot refuses changes to it.
    emulator.create_company_list(&name(Tier::Tier3), "DYNAMIC");
    let dir = TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let metrics = Arc::new(Metrics::default());
    let p = hubspot_pipeline(&emulator, &url, metrics.clone()).await;
    let report = run(&p, RunKind::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(crm_list_errors(&metrics), 1, "one list failed");
    let tiers = store_tiers(&p).await;
    assert_eq!(hubspot_list(&emulator, Tier::Tier2), tiers[&Tier::Tier2]);
    assert_eq!(emulator.list_members(&name(Tier::Tier3)), Some(vec![]));
    let outcomes = p.sync_crm_lists().await;
    let failed: Vec<(&str, &str)> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| (o.list.key.as_str(), e.as_str())))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "crm_lists.tier_3");
    assert!(
        failed[0].1.contains("'tierd: tier_3'") && failed[0].1.contains("DYNAMIC"),
        "{}",
        failed[0].1
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_campaigns_follow_the_tiers() {
    let emulator = SalesforceEmulator::start(SalesforceConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    std::env::set_var("TIERD_TEST_SALESFORCE_SECRET", "test-secret");
    let mut settings = match Settings::load(None) {
        Ok(s) => s,
        Err(_) => panic!("the built-in configuration loads"),
    };
    settings.plugins.clear();
    settings.store.url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let serde_json::Value::Object(table) = json!({
        "type": "salesforce",
        "login_url": emulator.base_url(),
        "client_id": "tierd-test",
        "client_secret_env": "TIERD_TEST_SALESFORCE_SECRET",
        "api_reserve_share": 0.0,
        "record_retries": 0,
        "retry": { "max_attempts": 2, "base_delay": 1, "max_delay": 5, "timeout": 5000 },
    }) else {
        unreachable!("a JSON object")
    };
    settings.connector = Some(ConnectorSettings::from_table(table).expect("connector section"));
    settings.pipeline.as_of = Some("2026-11-24".into());
    settings.crm_lists = lists();
    let metrics = Arc::new(Metrics::default());
    let p = Pipeline::start(Arc::new(settings), metrics.clone(), "test:1".into())
        .await
        .expect("pipeline starts");
    let campaign = |t: Tier| -> BTreeSet<String> {
        emulator
            .campaign_accounts(&name(t))
            .unwrap_or_else(|| panic!("the Campaign of {t} exists"))
            .into_iter()
            .map(|id| format!("salesforce:{id}"))
            .collect()
    };

    let first = run(&p, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let tiers = store_tiers(&p).await;
    for t in TIERS {
        assert_eq!(campaign(t), tiers[&t], "{t} Campaign after the first run");
    }
    let counted = list_counters(&metrics);

    // A person locks a tier 3 account at tier 2.
    let locked = tiers[&Tier::Tier3]
        .iter()
        .next()
        .expect("a tier 3 account")
        .clone();
    emulator.set_fields(
        locked.trim_start_matches("salesforce:"),
        &[("Tier__c", "tier_2"), ("Tier_Locked__c", "true")],
    );
    let second = run(&p, RunKind::Incremental).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    let now = store_tiers(&p).await;
    assert!(now[&Tier::Tier2].contains(&locked), "{now:?}");
    let after = list_counters(&metrics);
    for t in TIERS {
        assert_eq!(campaign(t), now[&t], "{t} Campaign after the second run");
        let (added, removed) = moves(&tiers[&t], &now[&t]);
        assert_eq!(grew(&counted, &after, t, "added"), added, "{t} added");
        assert_eq!(grew(&counted, &after, t, "removed"), removed, "{t} removed");
    }
    assert!(grew(&counted, &after, Tier::Tier3, "removed") >= 1);
    for t in TIERS {
        assert_eq!(
            emulator.campaigns_named(&name(t)),
            1,
            "found again by name, not created twice"
        );
    }
    assert_eq!(crm_list_errors(&metrics), 0);
    p.shutdown().await;
}
