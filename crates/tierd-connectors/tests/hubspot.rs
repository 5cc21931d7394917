//! What only the HubSpot connector does, against the HubSpot emulator: paging, incremental
//! pulls past the search cap, its property names, batch writes, the native ICP property,
//! rate limits, deals, tokens. What every connector does is `conformance.rs`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use tierd_connectors::connector::{Connector, PushOutcome, TierUpdate, Watermark};
use tierd_connectors::http::Secret;

use common::{accounts, fast_retries, pull};
use tierd_connectors::hubspot::{HubSpotConfig, HubSpotConnector};
use tierd_connectors::plan::{plan_push, CrmTierState, LastPush, PlanOptions};
use tierd_core::Tier;
use tierd_emulators::{HubSpotConfig as EmuConfig, HubSpotEmulator};

fn connector(emu: &HubSpotEmulator, tune: impl FnOnce(&mut HubSpotConfig)) -> HubSpotConnector {
    let mut cfg = HubSpotConfig {
        base_url: emu.base_url(),
        token: Secret::new("test-token"),
        rate_limit: 0,
        search_rate_per_sec: 0,
        search_overlap_ms: 0,
        retry: fast_retries(7),
        ..HubSpotConfig::default()
    };
    tune(&mut cfg);
    cfg.build().expect("valid config")
}

fn update(id: &str, tier: Tier, score: f32) -> TierUpdate {
    TierUpdate {
        id: id.to_string(),
        tier,
        score,
        coverage: 0.9,
        reason: format!("{tier} because of fit"),
        model: "default@1".into(),
        scored_at: Watermark(1_795_000_000_000),
    }
}

fn company_id(k: u64) -> String {
    (1_000_000_000 + k).to_string()
}

#[tokio::test]
async fn full_pull_lists_companies_100_per_page_in_id_order() {
    // Every account once with its facts is the conformance suite's; the paging is HubSpot's.
    let emu = HubSpotEmulator::start(EmuConfig::unlimited(250, 3))
        .await
        .expect("emulator");
    let c = connector(&emu, |_| {});
    let pages = pull(&c, None).await;
    assert_eq!(pages.len(), 3, "100 + 100 + 50");
    let ids: Vec<String> = accounts(&pages).iter().map(|a| a.id.clone()).collect();
    let expected: Vec<String> = (0..250).map(|k| format!("hubspot:{}", company_id(k))).collect();
    assert_eq!(ids, expected);
    emu.shutdown().await;
}

#[tokio::test]
async fn incremental_pull_restarts_the_search_before_the_result_cap() {
    let mut cfg = EmuConfig::unlimited(1_300, 5);
    cfg.search_result_cap = 500;
    let emu = HubSpotEmulator::start(cfg).await.expect("emulator");
    let c = connector(&emu, |cfg| cfg.search_result_cap = 500);
    let since = Watermark::parse("2000-01-01").expect("date");
    let pages = pull(&c, Some(since)).await;
    let all = accounts(&pages);
    let ids: BTreeSet<&str> = all.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        (all.len(), ids.len()),
        (1_300, 1_300),
        "each company exactly once"
    );
    // Paging straight through would have hit the cap (the emulator answers 400 there).
    emu.shutdown().await;
}

#[tokio::test]
async fn schema_creates_tierds_properties_and_checks_the_native_icp_one() {
    // Creating what is missing, then nothing more, is the conformance suite's.
    let emu = HubSpotEmulator::start(EmuConfig::unlimited(5, 1))
        .await
        .expect("emulator");
    let c = connector(&emu, |cfg| cfg.write_native_icp = true);
    let first = c.ensure_schema().await.expect("schema");
    assert_eq!(
        first.created,
        [
            "group tierd",
            "tierd_tier",
            "tierd_score",
            "tierd_scored_at",
            "tierd_model",
            "tierd_reason",
            "tierd_tier_locked"
        ]
    );
    assert_eq!(first.existing, ["hs_ideal_customer_profile"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn push_writes_every_account_exactly_once_with_the_native_icp_property() {
    let emu = HubSpotEmulator::start(EmuConfig::unlimited(250, 6))
        .await
        .expect("emulator");
    let c = connector(&emu, |cfg| cfg.write_native_icp = true);
    c.ensure_schema().await.expect("schema");
    let mut updates: Vec<TierUpdate> = (0..250)
        .map(|k| {
            update(
                &format!("hubspot:{}", company_id(k)),
                Tier::ALL[k as usize % 4],
                2.5,
            )
        })
        .collect();
    updates.insert(18, update("salesforce:001", Tier::Tier1, 4.9));
    let outcomes = c.push(&updates).await.expect("push");
    assert_eq!(outcomes.len(), updates.len());
    for (u, o) in updates.iter().zip(&outcomes) {
        match u.id.as_str() {
            "salesforce:001" => assert!(matches!(o, PushOutcome::Rejected { permanent: true, .. })),
            _ => assert_eq!(o, &PushOutcome::Written, "{}", u.id),
        }
    }
    let log = emu.writes();
    assert_eq!((log.total, log.max_per_record()), (250, 1));
    assert_eq!(
        emu.property(&company_id(0), "tierd_tier").as_deref(),
        Some("tier_1")
    );
    assert_eq!(
        emu.property(&company_id(0), "hs_ideal_customer_profile")
            .as_deref(),
        Some("tier_1")
    );
    assert_eq!(
        emu.property(&company_id(3), "hs_ideal_customer_profile"),
        None,
        "untiered clears it"
    );
    assert_eq!(
        emu.property(&company_id(1), "tierd_score").as_deref(),
        Some("2.500")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn locked_and_overridden_accounts_are_untouched_and_unchanged_ones_not_sent() {
    let mut cfg = EmuConfig::unlimited(20, 7);
    cfg.tierd_properties = true;
    let emu = HubSpotEmulator::start(cfg).await.expect("emulator");
    let c = connector(&emu, |_| {});
    let results: Vec<TierUpdate> = (0..20)
        .map(|k| update(&format!("hubspot:{}", company_id(k)), Tier::Tier2, 3.9))
        .collect();
    let plan = plan_push(
        results.clone(),
        &HashMap::new(),
        &HashMap::new(),
        PlanOptions::default(),
    );
    assert!(plan.held.is_empty());
    c.push(&plan.send).await.expect("first push");
    let mut last: HashMap<String, LastPush> = plan.send.iter().map(|u| (u.id.clone(), u.into())).collect();

    // People act: one locks an account, another sets a tier by hand.
    emu.set_properties(&company_id(3), &[("tierd_tier_locked", "true")]);
    emu.set_properties(&company_id(4), &[("tierd_tier", "tier_1")]);
    let before = emu.writes();
    let crm: HashMap<String, CrmTierState> = accounts(&pull(&c, None).await)
        .into_iter()
        .map(|a| {
            let state = CrmTierState {
                crm_tier: a.crm_tier,
                locked: a.locked,
            };
            (a.id.clone(), state)
        })
        .collect();

    // Same results: nothing to send. New tier for everyone: all but the two people's accounts.
    let same = plan_push(results.clone(), &crm, &last, PlanOptions::default());
    assert!(same.send.is_empty(), "{:?}", same.send);
    let promoted: Vec<TierUpdate> = results
        .iter()
        .map(|u| TierUpdate {
            tier: Tier::Tier1,
            score: 4.6,
            ..u.clone()
        })
        .collect();
    let plan = plan_push(promoted, &crm, &last, PlanOptions::default());
    assert_eq!(plan.send.len(), 18);
    let held: HashMap<&str, &PushOutcome> = plan.held.iter().map(|(id, o)| (id.as_str(), o)).collect();
    assert_eq!(
        held[format!("hubspot:{}", company_id(3)).as_str()],
        &PushOutcome::SkippedLocked
    );
    assert_eq!(
        held[format!("hubspot:{}", company_id(4)).as_str()],
        &PushOutcome::SkippedOverridden {
            crm_tier: Some(Tier::Tier1)
        }
    );
    let outcomes = c.push(&plan.send).await.expect("second push");
    assert!(outcomes.iter().all(|o| *o == PushOutcome::Written));
    last.extend(plan.send.iter().map(|u| (u.id.clone(), u.into())));
    let after = emu.writes();
    assert_eq!(after.total - before.total, 18);
    assert_eq!(after.count(&company_id(3)), 1, "locked: only the first push");
    assert_eq!(after.count(&company_id(4)), 1, "overridden: only the first push");
    assert_eq!(
        emu.property(&company_id(4), "tierd_tier").as_deref(),
        Some("tier_1")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_tier_value_tierd_does_not_know_quarantines_the_record() {
    // A team's own tier values ("Gold") are a person's: reported, never overwritten.
    let mut cfg = EmuConfig::unlimited(5, 8);
    cfg.tierd_properties = true;
    let emu = HubSpotEmulator::start(cfg).await.expect("emulator");
    emu.set_properties(&company_id(2), &[("tierd_tier", "Gold")]);
    let c = connector(&emu, |_| {});
    let pages = pull(&c, None).await;
    let quarantined: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.quarantined)
        .map(|q| q.to_string())
        .collect();
    assert_eq!(
        quarantined,
        [format!(
            "hubspot:{}: field 'tierd_tier': 'Gold' is not a tier (expected tier_1, tier_2, tier_3 or untiered); \
             set a tier tierd knows or clear the field",
            company_id(2)
        )]
    );
    assert_eq!(accounts(&pages).len(), 4);
    emu.shutdown().await;
}

#[tokio::test]
async fn rate_limit_storms_without_retry_after_and_server_errors_are_ridden_out() {
    let emu = HubSpotEmulator::start(EmuConfig::unlimited(300, 9))
        .await
        .expect("emulator");
    emu.faults().set_rate_limit_storm(3);
    let c = connector(&emu, |_| {});
    let pages = pull(&c, None).await;
    assert_eq!(accounts(&pages).len(), 300);
    let stats = c.http_stats();
    assert_eq!(stats.rate_limited, 3, "{stats:?}");
    assert!(stats.retries >= 3 && stats.waited > Duration::ZERO, "{stats:?}");

    emu.faults().reset();
    emu.faults().set_error_rate(0.3);
    emu.faults().set_drop_rate(0.1);
    for _ in 0..4 {
        let pages = pull(&c, None).await;
        assert_eq!(accounts(&pages).len(), 300);
    }
    let after = c.http_stats();
    assert!(after.server_errors + after.transport_errors > 0, "{after:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn the_rate_limiter_keeps_under_the_emulators_window() {
    // HubSpot allows 5 searches per second; an incremental pull of 12 search pages sent
    // back to back would break that window. The emulator enforces it (429) and counts the
    // busiest second, so the limiter is judged by what the vendor saw, not by a stopwatch.
    let mut cfg = EmuConfig::new(120, 10);
    cfg.search_rate_per_sec = Some(5);
    let emu = HubSpotEmulator::start(cfg).await.expect("emulator");
    let c = connector(&emu, |cfg| {
        cfg.search_rate_per_sec = 5;
        cfg.search_page_size = 10;
    });
    let since = Watermark::parse("2000-01-01").expect("date");
    let pages = pull(&c, Some(since)).await;
    assert_eq!(accounts(&pages).len(), 120);
    let sent = c.http_stats();
    let served = emu.stats();
    assert_eq!(
        (sent.rate_limited, served.rate_limited),
        (0, 0),
        "{sent:?} {served:?}"
    );
    assert_eq!(sent.requests, served.requests);
    assert!(
        served.requests >= 12,
        "more searches than one window allows: {served:?}"
    );
    assert!(
        (1..=5).contains(&served.busiest_window),
        "at most 5 in any second: {served:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn deals_come_with_their_company() {
    let emu = HubSpotEmulator::start(EmuConfig::unlimited(30, 11))
        .await
        .expect("emulator");
    let c = connector(&emu, |_| {});
    let ids: Vec<String> = (0..30).map(|k| format!("hubspot:{}", company_id(k))).collect();
    let deals = c.deals_for(&ids).await.expect("deals");
    assert!(!deals.is_empty());
    for d in &deals {
        assert!(ids.contains(&d.account_id), "{d:?}");
        assert!(d.stage.is_some() && d.created.is_some(), "{d:?}");
        // Closed and won from hs_is_closed / hs_is_closed_won, the currency, and the stage entry
        // dates: the first stage on creation, a closing stage on the close date.
        let stage = d.stage.as_deref().unwrap_or_default();
        assert_eq!(d.won, Some(stage == "closedwon"), "{d:?}");
        assert_eq!(
            d.closed,
            Some(stage == "closedwon" || stage == "closedlost"),
            "{d:?}"
        );
        assert_eq!(d.currency.as_deref(), Some("USD"));
        assert!(
            matches!(d.pipeline.as_deref(), Some("default" | "renewals")),
            "{d:?}"
        );
        assert_eq!(
            d.stage_entries[0],
            ("appointmentscheduled".to_string(), d.created.expect("created"))
        );
        assert_eq!(
            d.stage_entries.len(),
            if d.closed == Some(true) { 2 } else { 1 },
            "{d:?}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_wrong_token_is_an_auth_error_that_does_not_show_the_token() {
    let emu = HubSpotEmulator::start(EmuConfig::unlimited(5, 12))
        .await
        .expect("emulator");
    let c = connector(&emu, |cfg| cfg.token = Secret::new("pat-wrong-token"));
    let err = c.pull(None).next().await.expect("one item").expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("authentication failed") && text.contains("401"),
        "{text}"
    );
    assert!(!text.contains("pat-wrong-token"), "{text}");
    emu.shutdown().await;
}
