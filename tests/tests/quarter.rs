//! A RevOps quarter, end to end through the binary: generate the account base, run the
//! full reassessment, run an incremental pass a month later against it, explain a mover.

use std::process::Command;

use tierd_e2e::tierd_bin;

fn run(args: &[&str]) -> String {
    let out = Command::new(tierd_bin())
        .args(args)
        .env_remove("TIERD_CONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("tierd runs");
    assert!(
        out.status.success(),
        "tierd {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tiers(path: &std::path::Path) -> Vec<(String, String)> {
    csv::Reader::from_path(path)
        .expect("tiers file")
        .records()
        .map(|r| r.expect("row"))
        .map(|r| (r[0].to_string(), r[2].to_string()))
        .collect()
}

#[test]
fn full_then_incremental_run_moves_accounts_and_explains_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/tierd.toml");
    run(&[
        "gen",
        "--accounts",
        "5000",
        "--seed",
        "11",
        "--as-of",
        "2026-10-01",
        "--output",
        &p("a.csv"),
    ]);
    let full = run(&[
        "score",
        "--config",
        config,
        "--input",
        &p("a.csv"),
        "--output",
        &p("q4.csv"),
        "--as-of",
        "2026-10-01",
    ]);
    assert!(full.contains("Scored 5,000 accounts"), "{full}");
    let inc = run(&[
        "score",
        "--config",
        config,
        "--input",
        &p("a.csv"),
        "--output",
        &p("nov.csv"),
        "--previous",
        &p("q4.csv"),
        "--as-of",
        "2026-11-01",
    ]);
    assert!(inc.contains("Movements against"), "{inc}");

    let before = tiers(&dir.path().join("q4.csv"));
    let after = tiers(&dir.path().join("nov.csv"));
    assert_eq!(before.len(), 5000);
    assert_eq!(
        before.iter().map(|r| &r.0).collect::<Vec<_>>(),
        after.iter().map(|r| &r.0).collect::<Vec<_>>(),
        "output keeps input order"
    );
    let mover = before
        .iter()
        .zip(&after)
        .find(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0.clone())
        .expect("a month of fading engagement moves someone");
    let explained = run(&[
        "explain",
        "--config",
        config,
        "--input",
        &p("a.csv"),
        "--as-of",
        "2026-11-01",
        &mover,
    ]);
    assert!(explained.contains("Reasons down:"), "{explained}");
}
