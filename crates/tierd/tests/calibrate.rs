//! `tierd calibrate` as a user runs it: the built binary, the file connector with a deals file,
//! a SQLite store in a temporary directory after `tierd sync --once`, and figures checked
//! against values computed by hand.
//!
//! The model reads two facts so every score is easy to compute: industry (Software 5, Financial
//! Services 4, Retail 3.2, anything else 0) in `fit`, weight 3, and region (North America 5, EMEA
//! 3, APAC 1, LATAM 0) in `geo`, weight 1; the tiers are the default thresholds with no caps and
//! no overrides. Scores (3 × industry + region) / 4: acc-1 5.0 (Tier 1), acc-2 3.75 (Tier 2),
//! acc-3 3.65 (Tier 3), acc-10 0.75, acc-6 0.25, acc-4 0 and acc-5 (no facts) 0, untiered.

mod common;

use serde_json::Value;

use common::{f, ok, repo, tierd};

const MODEL: &str = r#"# The e2e model: two criteria, two components.
name = "e2e"
version = "1"

[components.fit]
weight = 3

[components.geo]
weight = 1

[[criteria]]
name = "industry"
component = "fit"
weight = 1
fact = "firmographic.industry"
[criteria.rule]
map = { "Software" = 5, "Financial Services" = 4, "Retail" = 3.2 }

[[criteria]]
name = "region"
component = "geo"
weight = 1
fact = "firmographic.region"
[criteria.rule]
map = { "North America" = 5, "EMEA" = 3, "APAC" = 1, "LATAM" = 0 }
"#;

/// Ten deals per account, created 2026-06-01 to 06-10, each closed ten days later for 1000 USD;
/// the first `won` of them won. acc-1 8 of 10, acc-2 6, acc-3 5, acc-4 2, acc-10 3, acc-6 1: 25
/// won, 35 lost. Then x1 (closed, no account), x2 (closed, an account the file does not hold)
/// and o1 (open).
fn deals() -> String {
    let mut out = String::from("id,account_id,amount,currency,stage,created,close_date,closed,won\n");
    for (account, won) in [
        ("acc-1", 8),
        ("acc-2", 6),
        ("acc-3", 5),
        ("acc-4", 2),
        ("acc-10", 3),
        ("acc-6", 1),
    ] {
        for j in 0..10u32 {
            let w = j < won;
            out.push_str(&format!(
                "{account}-d{j},{account},1000,USD,{},2026-06-{:02},2026-06-{:02},true,{w}\n",
                if w { "won" } else { "lost" },
                j + 1,
                j + 11
            ));
        }
    }
    out.push_str("x1,,1000,USD,won,2026-06-01,2026-06-11,true,true\n");
    out.push_str("x2,acc-zz,1000,USD,lost,2026-06-01,2026-06-11,true,false\n");
    out.push_str("o1,acc-1,1000,USD,open,2026-06-01,,false,false\n");
    out
}

fn close(v: &Value, want: f64) {
    assert!((f(v) - want).abs() < 1e-6, "{v} vs {want}");
}

fn row<'a>(model: &'a Value, tier: &str) -> &'a Value {
    model["funnel"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["tier"] == tier)
        .expect("row")
}

fn rate(r: &Value) -> (u64, u64) {
    (
        r["win_rate"]["successes"].as_u64().expect("won"),
        r["win_rate"]["trials"].as_u64().expect("closed"),
    )
}

#[test]
fn calibrate_reports_pyramid_backtest_and_suggested_weights_from_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    std::fs::write(d.join("model.toml"), MODEL).expect("model");
    std::fs::copy(
        repo().join("crates/tierd/tests/fixtures/accounts.csv"),
        d.join("accounts.csv"),
    )
    .expect("accounts");
    std::fs::write(d.join("deals.csv"), deals()).expect("deals");
    let config = d.join("tierd.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\npath = \"model.toml\"\n\n[tiering]\ntier_1 = 4.5\ntier_2 = 3.75\ntier_3 = 3.0\n\n[store]\nurl = \"sqlite://{}\"\n\n[connector]\ntype = \"file\"\npath = \"{}\"\noutput = \"{}\"\ndeals = \"{}\"\n\n[pipeline]\nas_of = \"2026-11-24\"\n",
            d.join("tierd.db").display(),
            d.join("accounts.csv").display(),
            d.join("tiers.csv").display(),
            d.join("deals.csv").display(),
        ),
    )
    .expect("write config");
    ok(&tierd(&config, &["sync", "--once", "--job", "full"]));

    // --pyramid 20,20,20 over the 7 stored accounts (acc-7, acc-8 and acc-9 are rejected by the
    // file reader): scores 5.0, 3.75, 3.65, 0.75, 0.25, 0, 0. Targets: round(1.4) = 1, round(2.8)
    // = 3, round(4.2) = 4 cumulatively, so 1, 2, 1; thresholds at the 1st, 3rd and 4th best.
    let json: Value = serde_json::from_str(&ok(&tierd(
        &config,
        &["calibrate", "--pyramid", "20,20,20", "--format", "json"],
    )))
    .expect("json");
    let p = &json["pyramid"];
    assert_eq!(json["accounts"], 7, "{json:#}");
    assert_eq!(p["target_counts"], serde_json::json!([1, 2, 1]), "{p:#}");
    assert_eq!(p["thresholds"], serde_json::json!([5.0, 3.65, 0.75]), "{p:#}");
    assert_eq!(
        p["by_thresholds"],
        serde_json::json!({"tier_1": 1, "tier_2": 2, "tier_3": 1, "untiered": 3})
    );
    // acc-6 is locked at Tier 1 in the CRM, and stays there under both. Live: Tier 1 acc-1 and
    // acc-6, Tier 2 acc-2 (3.75), Tier 3 acc-3 (3.65), 3 untiered. New: acc-3 up to Tier 2,
    // acc-10 up to Tier 3; nothing down.
    assert_eq!(
        p["live"],
        serde_json::json!({"tier_1": 2, "tier_2": 1, "tier_3": 1, "untiered": 3})
    );
    assert_eq!(
        p["calibrated"],
        serde_json::json!({"tier_1": 2, "tier_2": 2, "tier_3": 1, "untiered": 2})
    );
    assert_eq!(
        (p["moves"]["up"].as_u64(), p["moves"]["down"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(p["moves"]["matrix"][2], serde_json::json!([0, 1, 0, 0]));
    assert_eq!(p["moves"]["matrix"][3], serde_json::json!([0, 0, 1, 2]));

    // --model: the candidate swaps the component weights (fit 1, geo 3): acc-1 5.0 and acc-3
    // (3.2 + 15) / 4 = 4.55 in Tier 1, acc-2 (4 + 9) / 4 = 3.25 in Tier 3, the rest untiered.
    let candidate = d.join("swapped.toml");
    std::fs::write(
        &candidate,
        MODEL
            .replace("[components.fit]\nweight = 3", "[components.fit]\nweight = 1")
            .replace("[components.geo]\nweight = 1", "[components.geo]\nweight = 3"),
    )
    .expect("candidate");
    let json: Value = serde_json::from_str(&ok(&tierd(
        &config,
        &[
            "calibrate",
            "--model",
            candidate.to_str().expect("path"),
            "--format",
            "json",
        ],
    )))
    .expect("json");
    let b = &json["backtest"];
    assert_eq!(
        (b["deals"].as_u64(), b["not_closed"].as_u64()),
        (Some(60), Some(1)),
        "{b:#}"
    );
    // x1 is listed by id; x2 never reaches the store (deals are pulled per stored account).
    assert_eq!(
        b["left_out"],
        serde_json::json!([{"deal": "x1", "reason": "no_account"}])
    );
    let live = &b["models"][0];
    assert_eq!(live["label"], "live");
    // Live: Tier 1 = acc-1 8/10, Tier 2 = acc-2 6/10, Tier 3 = acc-3 5/10, baseline = acc-4,
    // acc-10, acc-6: 6/30.
    assert_eq!(rate(row(live, "tier_1")), (8, 10));
    assert_eq!(rate(row(live, "tier_2")), (6, 10));
    assert_eq!(rate(row(live, "tier_3")), (5, 10));
    assert_eq!(rate(row(live, "untiered")), (6, 30));
    // Lift (8/10) / (6/30) = 4; velocity 10 × 0.8 × 1000 / 10 = 800 a day, the baseline's
    // 30 × 0.2 × 1000 / 10 = 600 over 3 accounts: per account 800 / 200 = 4.
    close(&row(live, "tier_1")["win_rate_lift"]["value"], 4.0);
    close(&row(live, "tier_1")["velocity"], 800.0);
    close(&row(live, "untiered")["velocity"], 600.0);
    close(&row(live, "tier_1")["velocity_per_account_lift"]["value"], 4.0);
    // Tier 1 precision 8/10. AUC: won-over-lost pairs, ties half, by account from the best
    // score down: 8 × 34 + 6 × 31 + 5 × 26.5 + 3 × 20.5 + 1 × 12.5 + 2 × 4 = 672.5 of 25 × 35.
    assert_eq!(live["tier_1_precision"]["value"], 0.8);
    close(&live["auc"], 672.5 / 875.0);
    // The file connector dates no fact: every deal was scored on today's facts, and says so.
    assert_eq!(live["scored_on_later_facts"], 60);
    let cand = &b["models"][1];
    assert_eq!(cand["model"], "e2e@1");
    // Candidate: Tier 1 = acc-1 and acc-3, 13/20; Tier 2 none; Tier 3 = acc-2, 6/10. AUC:
    // 8 × 34 + 5 × 30.5 + 6 × 26 + 3 × 20.5 + 1 × 12.5 + 2 × 4 = 662.5 of 875.
    assert_eq!(rate(row(cand, "tier_1")), (13, 20));
    assert_eq!(rate(row(cand, "tier_2")), (0, 0));
    assert_eq!(rate(row(cand, "tier_3")), (6, 10));
    close(&cand["auc"], 662.5 / 875.0);

    // A pilot of the candidate on the EMEA accounts (acc-2 and acc-10) prints, beside its
    // movements, the backtest of both models on that subset: 20 closed deals, 9 won. Live:
    // acc-2 in Tier 2 wins 6/10, acc-10 in the baseline 3/10; the candidate puts acc-2 in
    // Tier 3 (3.25), same deals. Deals of other accounts are not in it.
    let pilot = ok(&tierd(
        &config,
        &[
            "sync",
            "--once",
            "--pilot",
            candidate.to_str().expect("path"),
            "--filter",
            "firmographic.region=EMEA",
        ],
    ));
    assert!(
        pilot.contains("Backtest on 20 closed deals (0 not closed)"),
        "{pilot}"
    );
    let model_lines: Vec<&str> = pilot
        .lines()
        .filter(|l| l.contains(": 9 won, 11 lost;"))
        .collect();
    assert_eq!(model_lines.len(), 2, "{pilot}");
    assert!(model_lines[0].trim_start().starts_with("live (e2e@1)"), "{pilot}");
    // The backtest's rows (indented four), not the movements matrix's (two).
    let rows = |tier: &str| -> Vec<String> {
        pilot
            .lines()
            .filter(|l| l.starts_with(&format!("    {tier}")))
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(rows("tier_2 "), vec!["tier_2 10 60.0%", "tier_2 0 -"], "{pilot}");
    assert_eq!(rows("tier_3 "), vec!["tier_3 0 -", "tier_3 10 60.0%"], "{pilot}");
    assert_eq!(rows("baseline "), vec!["baseline 10 30.0%"; 2], "{pilot}");

    // --suggest-weights: six accounts are too few for the default 30% holdout (no id hashes
    // below 0.3), which is said, not fitted.
    let o = tierd(&config, &["calibrate", "--suggest-weights"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the holdout set is empty"), "{err}");
    // At 40%, acc-4 and acc-6 are held out: 20 deals, 3 won. The live scores rank acc-6 (0.25)
    // above acc-4 (0): won-over-lost pairs 1 × 8 + 1 × 9 / 2 + 2 × 8 / 2 = 20.5 of 3 × 17.
    let json: Value = serde_json::from_str(&ok(&tierd(
        &config,
        &[
            "calibrate",
            "--suggest-weights",
            "--holdout",
            "40",
            "--format",
            "json",
        ],
    )))
    .expect("json");
    let s = &json["suggest_weights"];
    assert_eq!(
        (s["train_deals"].as_u64(), s["holdout_deals"].as_u64()),
        (Some(40), Some(20)),
        "{s:#}"
    );
    close(&s["live_holdout_auc"], 20.5 / 51.0);
    assert_eq!(s["criteria"].as_array().map(Vec::len), Some(2), "{s:#}");
    assert_eq!(s["candidate_written"], Value::Null);
    // --output: a candidate file that loads as a model.
    let out = ok(&tierd(
        &config,
        &[
            "calibrate",
            "--suggest-weights",
            "--holdout",
            "40",
            "--output",
            d.join("cand.toml").to_str().expect("path"),
        ],
    ));
    assert!(
        out.contains("Suggested weights (a suggestion, never applied)"),
        "{out}"
    );
    assert!(out.contains("Wrote the candidate model to"), "{out}");
    let text = std::fs::read_to_string(d.join("cand.toml")).expect("candidate written");
    assert!(
        text.contains("# The e2e model: two criteria, two components."),
        "{text}"
    );
    assert!(text.contains("log-odds per point"), "{text}");
    assert!(text.contains("version = \"1-suggested\""), "{text}");
    std::fs::write(d.join("model.toml"), &text).expect("adopt the candidate");
    let valid = ok(&tierd(&config, &["config", "validate"]));
    assert!(
        valid.contains("valid. Model e2e@1-suggested with 2 criteria"),
        "{valid}"
    );

    // Too few outcomes: a clear message, no fit, no file.
    std::fs::write(d.join("model.toml"), MODEL).expect("model");
    std::fs::write(
        d.join("deals.csv"),
        deals().lines().take(12).collect::<Vec<_>>().join("\n"),
    )
    .expect("deals");
    ok(&tierd(&config, &["sync", "--once", "--job", "deals"]));
    let o = tierd(
        &config,
        &[
            "calibrate",
            "--suggest-weights",
            "--output",
            d.join("none.toml").to_str().expect("path"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("too few closed deals to fit weights: 9 won and 2 lost, at least 20 of each are needed"),
        "{err}"
    );
    assert!(!d.join("none.toml").exists());
}
