//! `budget::report` over a real store, on SQLite and PostgreSQL, against figures computed by hand.

#[allow(dead_code)]
#[path = "../../tierd-store/tests/common/mod.rs"]
mod common;

use serde_json::json;
use tierd_activation::budget::{report, Budget, FunnelInput, RawBudget, TierFunnel};
use tierd_core::{Date, Tier, TierPolicy};
use tierd_store::{BatchCommit, RunKind, ScoredAccount};

use common::TestDb;

fn scored(id: &str, tier: Tier) -> ScoredAccount {
    ScoredAccount {
        id: id.to_string(),
        name: id.to_string(),
        domain: None,
        facts: json!({}).into(),
        facts_hash: "h".to_string(),
        score: 3.0,
        coverage: 1.0,
        potential_value: 0.0,
        tier,
        explanation: json!({}).into(),
        reason: String::new(),
        model_version: "default@1".to_string(),
        crm_tier_seen: None,
        locked: false,
    }
}

async fn the_budget_report_prices_the_pyramid_and_sizes_seats(db: TestDb) {
    // 2 accounts in Tier 1, 3 in Tier 2, 4 in Tier 3, 1 untiered.
    let mut accounts = Vec::new();
    for (tier, n) in [
        (Tier::Tier1, 2),
        (Tier::Tier2, 3),
        (Tier::Tier3, 4),
        (Tier::Untiered, 1),
    ] {
        for i in 0..n {
            accounts.push(scored(&format!("{}-{i}", tier.as_str()), tier));
        }
    }
    let run = db
        .store
        .begin_run(RunKind::Full, "default@1", "test")
        .await
        .expect("run");
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: accounts,
            ..BatchCommit::default()
        })
        .await
        .expect("commit");
    let raw: RawBudget = toml::from_str(
        "tier_1 = 50\ntier_2 = 30\ntier_3 = 5\nperiod = \"month\"\ncurrency = \"EUR\"\ntotal = 200\n",
    )
    .expect("budget toml");
    let budget = Budget::compile(&raw, "budget").expect("budget");
    let as_of = Date::from_ymd(2026, 12, 1).expect("date");
    let r = report(&db.store, &budget, &TierPolicy::default(), as_of, None)
        .await
        .expect("report");
    assert_eq!(r.currency, "EUR");
    // 2 x 50 + 3 x 30 + 4 x 5 = 210 a month, 10 over the total.
    let spend: Vec<(u64, f64)> = r.plan.tiers.iter().map(|t| (t.accounts, t.spend)).collect();
    assert_eq!(spend, [(2, 100.0), (3, 90.0), (4, 20.0)]);
    assert_eq!(
        (r.plan.untiered, r.plan.total, r.plan.over_budget),
        (1, 210.0, Some(10.0))
    );
    // Seats: Tier 3 for the 9 costs 45; 155 left buys both Tier 1 seats (45 each: 90), then
    // Tier 2 seats at 25 each: 65 buys 2 of 3, 15 left; 5 accounts stay in Tier 3.
    assert_eq!(r.candidates, [2, 3, 4]);
    let seats = r.seats.expect("a total buys seats");
    assert_eq!(
        (seats.tier_1_seats, seats.tier_2_seats, seats.tier_3_accounts),
        (2, 2, 5)
    );
    assert_eq!((seats.spend, seats.left_over), (185.0, 15.0));
    assert!(r.returns.is_none(), "no funnel, no returns");

    // With a funnel over 3 months: Tier 1 made 2 deals, won 1 of 9,000; the 1 untiered account
    // won 1,000. Tier 1 spend 2 x 50 x 3 = 300: 150 per deal created, 300 per deal won; won per
    // account 4,500 against 1,000: incremental (4,500 - 1,000) x 2 = 7,000, return 7,000 / 300.
    let funnel = FunnelInput {
        tiers: [
            TierFunnel {
                accounts: 2,
                deals_created: 2,
                deals_won: 1,
                won_amount: 9_000.0,
            },
            TierFunnel::default(),
            TierFunnel::default(),
        ],
        baseline: TierFunnel {
            accounts: 1,
            deals_created: 1,
            deals_won: 1,
            won_amount: 1_000.0,
        },
        periods: 3.0,
    };
    let r = report(&db.store, &budget, &TierPolicy::default(), as_of, Some(&funnel))
        .await
        .expect("report");
    let t1 = &r.returns.expect("returns")[0];
    assert_eq!(
        (t1.spend, t1.cost_per_deal_created, t1.cost_per_deal_won),
        (300.0, Some(150.0), Some(300.0))
    );
    assert_eq!(t1.incremental_won, Some(7_000.0));
    assert_eq!(t1.return_on_spend, Some(7_000.0 / 300.0));
    let text = serde_json::to_value(&r.plan).expect("json");
    assert_eq!(text["total"], json!(210.0));
}

on_both_backends!(the_budget_report_prices_the_pyramid_and_sizes_seats);
