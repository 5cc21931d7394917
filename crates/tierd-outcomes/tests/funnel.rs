//! The funnel on a small fixture stored in real SQLite and PostgreSQL, against figures computed
//! by hand (the arithmetic is in the comments).

use tierd_core::{Date, Tier};
use tierd_outcomes::{funnel, funnel_from_store, FunnelQuery, IssueReason};
use tierd_store::{BatchCommit, DealRecord, RunKind, ScoredAccount, Store, TierEvent, Timestamp};
use tierd_test_support::postgres::Schema;

const DAY: i64 = 86_400_000;
/// Day 0 of the fixture: 2024-10-04.
const D: i32 = 20_000;

fn at(day: i32) -> i64 {
    i64::from(D + day) * DAY + 12 * 3_600_000
}

fn tiered(account: &str, day: i32, tier: Tier) -> TierEvent {
    TierEvent {
        account: account.into(),
        at: at(day),
        tier,
    }
}

/// `(id, account, created day, closed, won, amount, close day)`, USD unless changed.
fn deal(
    id: &str,
    account: Option<&str>,
    created: i32,
    outcome: Option<(bool, bool)>,
    amount: Option<f64>,
    close: Option<i32>,
) -> DealRecord {
    DealRecord {
        id: id.into(),
        account: account.map(str::to_string),
        stage: Some("s".into()),
        amount,
        currency: Some("USD".into()),
        created_at: Some(Timestamp::from_millis(at(created))),
        close_date: close.map(|c| Date::from_days(D + c)),
        closed: outcome.map(|o| o.0),
        won: outcome.map(|o| o.1),
        ..DealRecord::default()
    }
}

const WON: Option<(bool, bool)> = Some((true, true));
const LOST: Option<(bool, bool)> = Some((true, false));
const OPEN: Option<(bool, bool)> = Some((false, false));

async fn load(store: &Store) {
    // a1 Tier 1 throughout; a2 Tier 1, untiered from day 50; a3 untiered; a4 untiered, Tier 3
    // from day 20; a5 Tier 2; a6 first tiered on day 200, after the period (days 0..=99).
    let run = store.begin_run(RunKind::Full, "m@1", "test").await.expect("run");
    store
        .import_tier_history(
            run,
            &[
                tiered("a1", -10, Tier::Tier1),
                tiered("a2", -10, Tier::Tier1),
                tiered("a2", 50, Tier::Untiered),
                tiered("a3", -10, Tier::Untiered),
                tiered("a4", -10, Tier::Untiered),
                tiered("a4", 20, Tier::Tier3),
                tiered("a5", -10, Tier::Tier2),
                tiered("a6", 200, Tier::Tier1),
            ],
        )
        .await
        .expect("history");
    let mut d13 = deal("d13", Some("a3"), 7, WON, Some(250.0), Some(8));
    d13.currency = Some("EUR".into());
    let mut d15 = deal("d15", Some("a1"), 9, WON, Some(1.0), Some(10));
    d15.created_at = None;
    let deals = vec![
        deal("d1", Some("a1"), 1, WON, Some(1000.0), Some(11)),
        deal("d2", Some("a1"), 2, LOST, Some(500.0), Some(20)),
        deal("d3", Some("a2"), 10, WON, Some(3000.0), Some(40)),
        deal("d4", Some("a2"), 60, WON, Some(200.0), Some(80)),
        deal("d5", Some("a3"), 5, LOST, Some(100.0), Some(15)),
        deal("d6", Some("a3"), 6, OPEN, Some(400.0), None),
        deal("d7", Some("a4"), 10, WON, Some(100.0), Some(30)),
        deal("d8", Some("a4"), 30, WON, None, Some(40)),
        deal("d9", Some("a5"), 3, None, Some(700.0), None),
        deal("d10", None, 4, WON, Some(50.0), Some(9)),
        deal("d11", Some("a6"), 5, WON, Some(900.0), Some(6)),
        deal("d12", Some("a1"), 300, WON, Some(5.0), Some(310)),
        d13,
        deal("d14", Some("a5"), 50, WON, Some(800.0), Some(40)),
        d15,
    ];
    store.record_deals(Some(run), &deals).await.expect("deals");
    // The CRM's target list (`crm.target_account`): a1, a2, a5 on it; a3 off it (false); a4 and
    // a6 without the fact; a7 off it, with no deal. Stored as tierd stores pulled accounts; their
    // tiers are written on day 1000, after the period, so they change no figure above.
    let flag = |v: Option<bool>| match v {
        Some(b) => {
            serde_json::json!({"crm.target_account": {"value": b, "source": "crm", "observed_at": null}})
        }
        None => {
            serde_json::json!({"firmographic.employee_count": {"value": 10, "source": "crm", "observed_at": null}})
        }
    };
    let members = [
        ("a1", Some(true)),
        ("a2", Some(true)),
        ("a3", Some(false)),
        ("a4", None),
        ("a5", Some(true)),
        ("a6", None),
        ("a7", Some(false)),
    ];
    let scored = members
        .iter()
        .map(|(id, on)| ScoredAccount {
            id: (*id).into(),
            name: (*id).into(),
            domain: None,
            facts: flag(*on).into(),
            facts_hash: String::new(),
            score: 1.0,
            coverage: 1.0,
            potential_value: 0.0,
            tier: Tier::Untiered,
            explanation: serde_json::json!({}).into(),
            reason: String::new(),
            model_version: "m@1".into(),
            crm_tier_seen: None,
            locked: false,
        })
        .collect();
    store
        .commit_batch(&BatchCommit {
            run,
            scored,
            history_at: Some(Timestamp::from_millis(at(1000))),
            ..BatchCommit::default()
        })
        .await
        .expect("accounts");
}

async fn check(store: &Store) {
    let q = FunnelQuery {
        from: Some(Date::from_days(D)),
        to: Some(Date::from_days(D + 99)),
        currency: Some("USD".into()),
        model: "live".into(),
        target_list_fact: None,
    };
    let f = funnel(
        &store.tier_timeline().await.expect("timeline"),
        &store.deals_for_report().await.expect("deals"),
        &q,
    );
    let close = |a: Option<f64>, b: f64| assert!(a.is_some_and(|a| (a - b).abs() < 1e-4), "{a:?} vs {b}");

    // In the period: every deal but d12 (day 300) and d15 (no creation date) = 13;
    // d11's account was first tiered after it was created: under no tier.
    assert_eq!((f.deals_in_period, f.deals_before_tiering), (13, 1));

    // Tier 1: accounts a1, a2 (both Tier 1 on day 0). Deals d1, d2, d3 (d4 was created after a2
    // left Tier 1: it counts as untiered; d3 stays Tier 1's though a2 is untiered today).
    // Won d1, d3 of 3 closed: 2/3. Won amounts 1000, 3000: mean = median = 2000. Days to close
    // 11-1 = 10, 40-10 = 30: mean = median = 20. Pipeline 1000+500+3000 = 4500.
    // Velocity = 3 × 2/3 × 2000 / 20 = 200.
    let t1 = f.row(Tier::Tier1).expect("tier 1");
    assert_eq!((t1.accounts, t1.deals, t1.conversion.successes), (2, 3, 2));
    assert_eq!((t1.win_rate.successes, t1.win_rate.trials), (2, 3));
    close(t1.mean_won_amount, 2000.0);
    close(t1.median_won_amount, 2000.0);
    close(t1.mean_days_to_close, 20.0);
    close(t1.median_days_to_close, 20.0);
    close(Some(t1.pipeline), 4500.0);
    close(t1.velocity, 200.0);

    // Tier 2: a5; d9 (unknown stage: not closed) and d14 (won 800, closes before it was
    // created: no days to close). Win rate 1/1, pipeline 700+800 = 1500, no velocity.
    let t2 = f.row(Tier::Tier2).expect("tier 2");
    assert_eq!(
        (t2.accounts, t2.deals, t2.win_rate.successes, t2.win_rate.trials),
        (1, 2, 1, 1)
    );
    close(t2.mean_won_amount, 800.0);
    assert_eq!((t2.mean_days_to_close, t2.velocity), (None, None));
    close(Some(t2.pipeline), 1500.0);

    // Tier 3: a4 from day 20; d8 (day 30, won, no amount): win 1/1, 40-30 = 10 days, pipeline 0.
    let t3 = f.row(Tier::Tier3).expect("tier 3");
    assert_eq!(
        (t3.accounts, t3.deals, t3.win_rate.successes, t3.won_with_amount),
        (1, 1, 1, 0)
    );
    close(t3.mean_days_to_close, 10.0);
    assert_eq!(t3.mean_won_amount, None);

    // Baseline (untiered): a3, a4 (on day 0) and a2 (from day 50) = 3 accounts, all with deals.
    // Deals d4 (a2, day 60), d5, d6, d13 (a3), d7 (a4, day 10, before its Tier 3) = 5.
    // Closed d4 won, d5 lost, d7 won, d13 won: 3/4. Won amounts 200, 100 (d13 is in EUR):
    // mean = median = 150. Days to close: d4 20, d7 20, d13 1: mean 41/3 = 13.6667, median 20.
    // Pipeline 200 + 100 + 400 + 100 = 800. Velocity = 5 × 0.75 × 150 / (41/3) = 1687.5/41
    // = 41.15854.
    let b = f.row(Tier::Untiered).expect("baseline");
    assert_eq!((b.accounts, b.deals, b.conversion.successes), (3, 5, 3));
    assert_eq!((b.win_rate.successes, b.win_rate.trials), (3, 4));
    close(b.mean_won_amount, 150.0);
    close(b.median_won_amount, 150.0);
    close(b.mean_days_to_close, 41.0 / 3.0);
    close(b.median_days_to_close, 20.0);
    close(Some(b.pipeline), 800.0);
    close(b.velocity, 41.158_54);

    // Lifts of Tier 1: win rate (2/3)/(3/4) = 0.88889, Katz se = sqrt(1/2 - 1/3 + 1/3 - 1/4)
    // = 0.5, interval 0.88889·e^(∓0.97998) = [0.33361, 2.36840]. Won amount 2000/150 = 13.3333.
    // Days to close 20/13.6667 = 1.46341. Velocity per account (200/2)/(41.15854/3) = 7.28889.
    close(t1.win_rate_lift.value, 0.888_889);
    let i = t1.win_rate_lift.interval.expect("interval");
    close(Some(i.low), 0.333_61);
    close(Some(i.high), 2.368_40);
    close(t1.won_amount_lift.value, 13.333_333);
    close(t1.days_to_close_lift.value, 1.463_415);
    close(t1.velocity_per_account_lift.value, 7.288_889);

    // Every deal not fully counted is listed by id and reason.
    let issues: Vec<(&str, IssueReason)> = f.issues.iter().map(|i| (i.deal.as_str(), i.reason)).collect();
    assert_eq!(
        issues,
        [
            ("d10", IssueReason::NoAccount),
            ("d15", IssueReason::NoCreationDate),
            ("d8", IssueReason::NoAmount),
            ("d13", IssueReason::OtherCurrency),
            ("d9", IssueReason::UnknownStage),
            ("d14", IssueReason::CloseBeforeCreate),
        ]
    );
    assert!(f.not_in_target_list.is_none());

    // With the target list: the tier rows are the same, read through the store's streaming path,
    // and one more row counts the accounts not on the list, whatever their tier.
    let q = FunnelQuery {
        target_list_fact: Some("crm.target_account".into()),
        ..q
    };
    let g = funnel_from_store(store, &q).await.expect("funnel");
    assert_eq!(g.rows, f.rows);
    assert_eq!(g.issues, f.issues);
    // Off the list: a3 (false), a4 and a6 (no fact), a7 (false) = 4 accounts; on it a1, a2, a5.
    // Their deals in the period: d5, d6, d13 (a3), d7, d8 (a4), d11 (a6, before its first tiering:
    // counted here all the same) = 6, from a3, a4, a6: conversion 3/4.
    // Closed d5 lost, d13, d7, d8, d11 won: 4/5. Won amounts in USD: d7 100, d11 900 (d13 is in
    // EUR, d8 has none): mean = median = 500. Days to close: d13 1, d7 20, d8 10, d11 1: mean
    // 32/4 = 8, median of 1, 1, 10, 20 = 5.5. Pipeline 100 + 400 + 100 + 900 = 1500.
    // Velocity = 6 × 0.8 × 500 / 8 = 300.
    let o = g.not_in_target_list.as_ref().expect("off-list row");
    assert_eq!(o.fact, "crm.target_account");
    assert_eq!(
        (o.accounts, o.accounts_on_list, o.accounts_without_fact),
        (4, 3, 2)
    );
    assert_eq!((o.deals, o.conversion.successes, o.conversion.trials), (6, 3, 4));
    assert_eq!(
        (o.win_rate.successes, o.win_rate.trials, o.won_with_amount),
        (4, 5, 2)
    );
    close(o.mean_won_amount, 500.0);
    close(o.median_won_amount, 500.0);
    close(o.mean_days_to_close, 8.0);
    close(o.median_days_to_close, 5.5);
    close(Some(o.pipeline), 1500.0);
    close(o.velocity, 300.0);
    // Lifts against the untiered baseline: conversion 0.75 / 1 = 0.75; win rate 0.8 / 0.75 =
    // 1.066667; velocity per account (300/4) / (41.15854/3) = 75 / 13.719512 = 5.466667.
    close(o.conversion_lift.value, 0.75);
    close(o.win_rate_lift.value, 1.066_667);
    close(o.velocity_per_account_lift.value, 5.466_667);
    // In the JSON the row's figures sit beside its own fields, as a tier row's do.
    let json = serde_json::to_value(&g).expect("json");
    let row = &json["not_in_target_list"];
    assert_eq!(
        (row["accounts"].as_u64(), row["accounts_on_list"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(json["rows"][0]["tier"], "tier_1");
    assert!(json["rows"][0]["win_rate"].is_object());
    // The table shows the row; it warns of a misnamed fact only when no account has it at all
    // (HubSpot leaves the checkbox blank off the list, so blanks alone say nothing).
    let table = |f: &tierd_outcomes::Funnel| {
        let mut out = Vec::new();
        tierd_outcomes::write_table(&mut out, f).expect("table");
        String::from_utf8(out).expect("utf-8")
    };
    let text = table(&g);
    assert!(text.lines().any(|l| l.starts_with("off-list ")), "{text}");
    assert!(!text.contains("No stored account has the fact"), "{text}");
    let q = FunnelQuery {
        target_list_fact: Some("crm.no_such_fact".into()),
        ..q
    };
    let h = funnel_from_store(store, &q).await.expect("funnel");
    let o = h.not_in_target_list.as_ref().expect("off-list row");
    assert_eq!(
        (o.accounts, o.accounts_on_list, o.accounts_without_fact),
        (7, 0, 7)
    );
    assert!(table(&h).contains("No stored account has the fact crm.no_such_fact"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect_sqlite_file(&dir.path().join("t.db"))
        .await
        .expect("sqlite");
    load(&store).await;
    check(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_on_postgres() {
    let Some(schema) = Schema::create("outcomes").await else {
        return;
    };
    let store = Store::connect_postgres(schema.options()).await.expect("postgres");
    load(&store).await;
    check(&store).await;
}
