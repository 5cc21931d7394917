//! `tierd sync --once` with a deals file, `tierd sync --once --job deals` and `tierd report funnel`
//! as a user runs them: the built binary, the file connector, a SQLite store in a temporary
//! directory, and figures checked against values computed by hand.

mod common;

use serde_json::Value;

use common::{f, ok, repo, tierd};

/// The fixture tiers acc-6 as Tier 1 (locked), acc-1 Tier 2, acc-2, acc-3 and acc-10 Tier 3,
/// acc-4 and acc-5 untiered. The deals are dated 2099, after that tiering whatever today is, so
/// each counts under the account's tier of the run.
const DEALS: &str = "id,account_id,amount,currency,stage,created,close_date,closed,won
t1,acc-6,1000,USD,won,2099-01-01,2099-01-11,true,true
t2,acc-6,3000,USD,won,2099-01-02,2099-01-22,true,true
t3,acc-6,500,USD,lost,2099-01-03,2099-01-05,true,false
b1,acc-4,200,USD,won,2099-01-01,2099-01-31,true,true
b2,acc-4,100,USD,lost,2099-01-02,2099-01-03,true,false
b3,acc-5,400,USD,lost,2099-01-02,2099-01-04,true,false
b4,acc-5,300,USD,open,2099-01-05,,false,false
x1,,50,USD,won,2099-01-01,2099-01-02,true,true
x2,acc-1,700,EUR,won,2099-01-01,2099-01-02,true,true
";

/// A shadow candidate whose tiers are easy to work out: Software scores 5 (Tier 1), anything else
/// or a blank 0 (untiered), and the live policy's demo-request lift still applies.
const SHADOW_MODEL: &str = r#"name = "shadow-industry"
version = "1"
neutral_points = 2.5

[components.fit]
weight = 1
label = "fit"

[[criteria]]
name = "industry"
component = "fit"
weight = 1
fact = "firmographic.industry"
label = "industry"
[criteria.rule]
map = { "Software" = 5 }
otherwise = 0
"#;

fn close(v: &Value, want: f64) {
    assert!((f(v) - want).abs() < 1e-3, "{v} vs {want}");
}

#[test]
fn the_funnel_of_a_deals_file_matches_the_hand_computation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    std::fs::copy(repo().join("config/model.toml"), d.join("model.toml")).expect("model");
    std::fs::copy(
        repo().join("crates/tierd/tests/fixtures/accounts.csv"),
        d.join("accounts.csv"),
    )
    .expect("accounts");
    std::fs::write(d.join("deals.csv"), DEALS).expect("deals");
    std::fs::write(d.join("shadow.toml"), SHADOW_MODEL).expect("shadow model");
    let base = std::fs::read_to_string(repo().join("config/tierd.toml")).expect("config");
    let config = d.join("tierd.toml");
    std::fs::write(
        &config,
        format!(
            "{base}\n[store]\nurl = \"sqlite://{}\"\n\n[connector]\ntype = \"file\"\npath = \"{}\"\noutput = \"{}\"\ndeals = \"{}\"\n\n[pipeline]\nas_of = \"2026-11-24\"\n\n[budget]\ntier_1 = 50\ntier_2 = 30\ntier_3 = 5\nperiod = \"month\"\ncurrency = \"USD\"\n\n[shadow]\nmodel = \"shadow.toml\"\n",
            d.join("tierd.db").display(),
            d.join("accounts.csv").display(),
            d.join("tiers.csv").display(),
            d.join("deals.csv").display(),
        ),
    )
    .expect("write config");

    let run = ok(&tierd(&config, &["sync", "--once", "--job", "full"]));
    assert!(run.contains("9 pulled, 9 new"), "{run}");

    let json: Value = serde_json::from_str(&ok(&tierd(
        &config,
        &["report", "funnel", "--currency", "USD", "--format", "json"],
    )))
    .expect("json");
    let row = |tier: &str| {
        json["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["tier"] == tier)
            .expect("row")
            .clone()
    };
    // Tier 1 (acc-6): t1, t2 won (1000 in 10 days, 3000 in 20), t3 lost. Win rate 2/3; mean and
    // median won 2000; median days 15; pipeline 4500; velocity 3 × 2/3 × 2000 / 15 = 266.667.
    let t1 = row("tier_1");
    assert_eq!(
        (t1["accounts"].as_u64(), t1["deals"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(
        (
            t1["win_rate"]["successes"].as_u64(),
            t1["win_rate"]["trials"].as_u64()
        ),
        (Some(2), Some(3))
    );
    close(&t1["mean_won_amount"], 2000.0);
    close(&t1["median_days_to_close"], 15.0);
    close(&t1["pipeline"], 4500.0);
    close(&t1["velocity"], 266.667);
    // Baseline (acc-4, acc-5): b1 won (200 in 30 days), b2 and b3 lost, b4 open. Win rate 1/3;
    // pipeline 1000; velocity 4 × 1/3 × 200 / 30 = 8.8889.
    let b = row("untiered");
    assert_eq!((b["accounts"].as_u64(), b["deals"].as_u64()), (Some(2), Some(4)));
    assert_eq!(
        (
            b["win_rate"]["successes"].as_u64(),
            b["win_rate"]["trials"].as_u64()
        ),
        (Some(1), Some(3))
    );
    close(&b["pipeline"], 1000.0);
    close(&b["velocity"], 8.8889);
    // Win-rate lift (2/3)/(1/3) = 2; Katz se = sqrt(1/2 - 1/3 + 1/1 - 1/3) = 0.91287, interval
    // 2·e^(∓1.78920) = 2·e^∓1.7892 = [0.33419, 11.9693]. Velocity per account 266.667 / (8.8889/2) = 60.
    close(&t1["win_rate_lift"]["value"], 2.0);
    close(&t1["win_rate_lift"]["interval"]["low"], 0.334_19);
    close(&t1["win_rate_lift"]["interval"]["high"], 11.969_3);
    close(&t1["velocity_per_account_lift"]["value"], 60.0);
    // Tier 2 (acc-1): x2 is won but in EUR: counted as a deal, not in amounts.
    let t2 = row("tier_2");
    assert_eq!(
        (t2["deals"].as_u64(), t2["won_with_amount"].as_u64()),
        (Some(1), Some(0))
    );
    // x1 has no account; x2 another currency: both listed by id.
    assert_eq!(
        json["issues"],
        serde_json::json!([{"deal": "x1", "reason": "no_account"}, {"deal": "x2", "reason": "other_currency"}])
    );

    // The budget's returns over the same deals, 30 days of January 2099 (30 / (365.25 / 12) =
    // 0.985626 months). Tier 1: 50 × 1 account × 0.985626 = 49.2813 spent; 3 deals created, 2 won:
    // 16.4271 per deal created, 24.6407 per deal won; 4000 won per account against the baseline's
    // 200 / 2 = 100: lift 40, incremental (4000 - 100) × 1 = 3900, return 3900 / 49.2813 = 79.137.
    let budget: Value = serde_json::from_str(&ok(&tierd(
        &config,
        &[
            "report",
            "budget",
            "--from",
            "2099-01-01",
            "--to",
            "2099-01-30",
            "--format",
            "json",
        ],
    )))
    .expect("json");
    let r1 = &budget["returns"][0];
    assert_eq!(
        (r1["tier"].as_str(), r1["accounts"].as_u64()),
        (Some("tier_1"), Some(1))
    );
    close(&r1["spend"], 49.2813);
    close(&r1["cost_per_deal_created"], 16.4271);
    close(&r1["cost_per_deal_won"], 24.6407);
    close(&r1["won_per_account"], 4000.0);
    close(&r1["baseline_won_per_account"], 100.0);
    close(&r1["lift"], 40.0);
    close(&r1["incremental_won"], 3900.0);
    close(&r1["return_on_spend"], 79.137);
    // Tier 2 (acc-1): x2 won in EUR counts as a deal won, its amount does not: 30 × 0.985626.
    let r2 = &budget["returns"][1];
    close(&r2["spend"], 29.5688);
    close(&r2["cost_per_deal_won"], 29.5688);
    close(&r2["won_per_account"], 0.0);
    let table = ok(&tierd(
        &config,
        &["report", "budget", "--from", "2099-01-01", "--to", "2099-01-30"],
    ));
    assert!(table.contains("cost/deal created"), "{table}");

    // The shadow model, scored beside the live one and never pushed: acc-1 (Software) scores 5,
    // Tier 1; acc-3 (Retail, 0) is lifted to Tier 3 by its demo request of 2026-11-20; the rest
    // (acc-2, acc-4, acc-5, acc-6, acc-10) are untiered. Under its tiers: Tier 1 has x2 (won,
    // in EUR: counted, its amount not), the baseline t1, t2, t3, b1, b2, b3, b4: 7 deals, 6
    // closed, 3 won.
    let shadow: Value = serde_json::from_str(&ok(&tierd(
        &config,
        &[
            "report",
            "funnel",
            "--model",
            "shadow",
            "--currency",
            "USD",
            "--format",
            "json",
        ],
    )))
    .expect("json");
    assert_eq!(shadow["model"], "shadow");
    let srow = |tier: &str| {
        shadow["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["tier"] == tier)
            .expect("row")
            .clone()
    };
    let (s1, s3, sb) = (srow("tier_1"), srow("tier_3"), srow("untiered"));
    assert_eq!(
        (s1["accounts"].as_u64(), s1["deals"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (
            s1["win_rate"]["successes"].as_u64(),
            s1["win_rate"]["trials"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        (s3["accounts"].as_u64(), s3["deals"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (sb["accounts"].as_u64(), sb["deals"].as_u64()),
        (Some(5), Some(7))
    );
    assert_eq!(
        (
            sb["win_rate"]["successes"].as_u64(),
            sb["win_rate"]["trials"].as_u64()
        ),
        (Some(3), Some(6))
    );
    // Never pushed: the tiers file (the file connector's CRM) holds the live tiers.
    let tiers = std::fs::read_to_string(d.join("tiers.csv")).expect("tiers file");
    let acc1 = tiers
        .lines()
        .find(|l| l.starts_with("acc-1,"))
        .unwrap_or_else(|| panic!("acc-1 in {tiers}"));
    assert_eq!(acc1.split(',').nth(2), Some("tier_2"), "{acc1}");

    // The CRM side changes: b4 moves to acc-6, b3 is deleted. The deals job sees both.
    std::fs::write(
        d.join("deals.csv"),
        DEALS
            .replace("b4,acc-5", "b4,acc-6")
            .replace("b3,acc-5,400,USD,lost,2099-01-02,2099-01-04,true,false\n", ""),
    )
    .expect("deals");
    let job = ok(&tierd(&config, &["sync", "--once", "--job", "deals"]));
    assert!(
        job.contains("8 pulled, 0 new, 1 changed (1 moved, 0 reopened, 0 restored), 1 deleted"),
        "{job}"
    );
    let table = ok(&tierd(&config, &["report", "funnel", "--currency", "USD"]));
    // Tier 1 now has t1, t2, t3, b4: 4 deals; the baseline b1, b2: 2.
    let line = |label: &str| {
        table
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} in {table}"))
            .to_string()
    };
    let deals_of = |l: &str| {
        l.split_whitespace()
            .filter(|w| w.parse::<u64>().is_ok())
            .nth(1)
            .map(str::to_string)
    };
    assert_eq!(deals_of(&line("tier_1")).as_deref(), Some("4"), "{table}");
    assert_eq!(deals_of(&line("baseline")).as_deref(), Some("2"), "{table}");
    assert!(table.contains("1 no account: counted in no tier: x1"), "{table}");

    let csv = ok(&tierd(&config, &["report", "funnel", "--format", "csv"]));
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.starts_with("tier,accounts,accounts_with_deal,"), "{csv}");
}
