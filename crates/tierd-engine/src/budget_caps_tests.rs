//! Caps sized from the budget (`tier_N_cap = { budget = true }`) in a real run.

use tempfile::TempDir;
use tierd_emulators::{HubSpotConfig, HubSpotEmulator};
use tierd_store::{RunKind, RunStatus};

use crate::tests::{hubspot_id, run, sqlite_pipeline, ACCOUNTS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_buys_the_tier_2_seats_a_run_fills() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let tweak = |s: &mut tierd_config::Settings| {
        // Tier 3 is free, a Tier 1 seat costs 50, a Tier 2 seat 30: 2,020 a month buys the 5
        // Tier 1 seats (250) and 59 Tier 2 seats (1,770).
        let raw: tierd_activation::budget::RawBudget = serde_json::from_value(serde_json::json!({
            "tier_1": 50, "tier_2": 30, "tier_3": 0, "period": "month", "currency": "USD", "total": 2020
        }))
        .expect("budget");
        s.budget = Some(tierd_activation::budget::Budget::compile(&raw, "budget").expect("budget"));
        s.policy.caps = [None, None];
        s.policy.budget_caps = [true, true];
    };
    let p = sqlite_pipeline(&emulator, &dir, "2026-11-24", tweak).await;
    let report = run(&p, RunKind::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    // This world has 5 Tier 1 candidates and 61 Tier 2 candidates (see tests.rs): every Tier 1
    // candidate gets a seat, 59 Tier 2 ones do, and the 2 lowest-ranked fall to Tier 3.
    assert_eq!(report.pyramid[0], 5, "{:?}", report.pyramid);
    assert_eq!(report.pyramid[1], 59, "{:?}", report.pyramid);
    let mut capped = 0;
    for n in 0..ACCOUNTS {
        let id = format!("hubspot:{}", hubspot_id(n));
        let history = p.store().tier_history(&id, 1).await.expect("history");
        if history[0].reason.starts_with("pyramid cap: tier_2 is full") {
            assert_eq!(history[0].to, tierd_core::Tier::Tier3);
            capped += 1;
        }
    }
    assert_eq!(capped, 2);
    p.shutdown().await;
}
