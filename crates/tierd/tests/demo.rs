//! `tierd demo` as a user runs it, on a small world: every section printed, both runs succeed, the
//! locked account is not written, no account is written twice in the incremental run, the admin
//! API answers, and the written configuration is one `tierd config validate` accepts.
//!
//! The plugin cdylibs come from this package's dev-dependencies (target/<profile>/deps/).

use std::process::{Command, Stdio};

fn tierd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tierd"));
    cmd.env_remove("TIERD_CONFIG").env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("TIERD__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The number right after `prefix` in `line`.
fn number_after(line: &str, prefix: &str) -> u64 {
    let rest = &line[line
        .find(prefix)
        .unwrap_or_else(|| panic!("'{prefix}' in '{line}'"))
        + prefix.len()..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("a number after '{prefix}' in '{line}'"))
}

#[test]
fn the_demo_runs_the_whole_loop_on_a_small_world() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = tierd()
        // 1,500 accounts: with seed 7, a world with Tier 1 accounts by score and, after the
        // demo requests of step 2, accounts lifted to Tier 1 by one.
        .args(["demo", "--accounts", "1500", "--seed", "7", "--dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("tierd demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{stderr}", out.status);

    for section in [
        "== 1. Full reassessment",
        "Pyramid:",
        "Top Tier 1 accounts:",
        "== 2. A week later",
        "== 3. Incremental sync",
        "Movements:",
        "Top movements:",
        // A quarter of deals opening and closing, then the funnel over them, before the API.
        "== 4. A quarter passes",
        "== 5. Funnel per tier since the first run",
        "deals created in the period;",
        "== 6. Admin API and dashboard on http://127.0.0.1:",
        "Dashboard: open http://127.0.0.1:",
        "curl -H \"Authorization: Bearer ",
        "Demo finished in ",
    ] {
        assert!(stdout.contains(section), "missing '{section}' in:\n{stdout}");
    }
    // Each step of the quarter opens deals in the CRM, and its incremental run pulls them as
    // new: the companies whose deals changed are the ones it pulls.
    let steps: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" deals opened and "))
        .collect();
    assert_eq!(steps.len(), 3, "{stdout}");
    let mut opened_total = 0;
    for l in &steps {
        let opened = number_after(l, ": ");
        assert!(opened > 0, "{l}");
        assert!(l.contains("succeeded run"), "{l}");
        assert!(
            number_after(l, "pulled: ") >= opened,
            "every opened deal is pulled: {l}"
        );
        opened_total += opened;
    }
    // The funnel counts those deals (and only those: they are the deals created since the first
    // run), each under its account's tier.
    let funnel_deals = stdout
        .lines()
        .find(|l| l.contains("deals created in the period;"))
        .map(|l| number_after(l, ""))
        .expect("the funnel's summary line");
    assert_eq!(funnel_deals, opened_total, "{stdout}");
    assert!(
        stdout.contains("x the baseline's win rate.") || stdout.contains("too few to compare"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Calibration (tierd calibrate --backtest): over "),
        "{stdout}"
    );
    // Each top account shows what HubSpot received, and a Tier 1 below the 4.5 threshold says
    // what lifted it there. The default model gives Tier 1 by score, not only by lifts
    // (issue 13): the best account clears 4.5 on its own.
    let top: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Top Tier 1 accounts:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(
        top.first()
            .is_some_and(|l| l.contains(" tier_1 ") && !l.contains("lifted")),
        "a Tier 1 by score first among the top ones: {stdout}"
    );
    for l in &top {
        assert!(l.contains(" pushed ") || l.contains("not pushed: "), "{l}");
        let fields: Vec<&str> = l.split_whitespace().collect();
        let tier_at = fields
            .iter()
            .position(|f| f.starts_with("tier_") || *f == "untiered");
        let tier_at = tier_at.unwrap_or_else(|| panic!("a tier in {l}"));
        let score: f64 = fields[tier_at - 1]
            .parse()
            .unwrap_or_else(|_| panic!("a score in {l}"));
        if fields[tier_at] == "tier_1" && score < 4.5 {
            assert!(
                l.contains("lifted") || l.contains("locked"),
                "Tier 1 at {score} without its reason: {l}"
            );
        }
    }
    // `explain --store` of an account the week's demo requests lifted to Tier 1, now, after the
    // quarter (the lift may have ended since): its stored facts, its tier and reason, in the words
    // the CRM received.
    let lifted = stdout
        .lines()
        .find(|l| l.contains("-> tier_1: demo request (lifted one tier)"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("an account lifted to Tier 1 among the movements: {stdout}"));
    let explain = tierd()
        .args(["explain", "--store", "--config"])
        .arg(dir.path().join("tierd.toml"))
        .arg(lifted)
        .output()
        .expect("tierd explain runs");
    let shown = String::from_utf8_lossy(&explain.stdout);
    assert!(
        explain.status.success(),
        "{shown}\n{}",
        String::from_utf8_lossy(&explain.stderr)
    );
    let field = |name: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name:?} line in:\n{shown}"))
            .to_owned()
    };
    let (tier, reason, pushed) = (field("tier  "), field("reason  "), field("pushed  "));
    let tier_name = tier.split_whitespace().next().expect("a tier").to_owned();
    assert!(tier.contains(" by thresholds)"), "{shown}");
    assert_eq!(pushed, format!("{tier_name}: {reason}"), "{shown}");
    for expected in [
        format!("{lifted}  "),
        "firmographic.".to_owned(),
        "(firmographic)".to_owned(),
    ] {
        assert!(shown.contains(&expected), "missing {expected:?} in:\n{shown}");
    }
    let line = |start: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting '{start}' in:\n{stdout}"))
    };
    assert!(
        line("Run 1 (full)").contains("succeeded; 1500 accounts scored"),
        "{stdout}"
    );
    assert!(line("Run 2 (incremental)").contains("succeeded"), "{stdout}");
    let full_pushed = number_after(line("Run 1 (full)"), "pushed ");
    assert!(full_pushed > 0, "the first run writes tiers: {stdout}");
    assert!(
        number_after(line("Run 2 (incremental)"), "skipped locked ") >= 1,
        "the lock is reported: {stdout}"
    );
    let locked = line("Locked by a person: ");
    assert_eq!(number_after(locked, "tierd wrote it "), 0, "{locked}");
    let writes = line("HubSpot emulator: ");
    assert_eq!(
        number_after(writes, "HubSpot emulator: "),
        full_pushed,
        "{writes}"
    );
    assert!(number_after(writes, "at most ") <= 1, "{writes}");
    assert!(
        stdout.contains("GET /api/v1/tiers -> 200 {\"counts\":"),
        "{stdout}"
    );

    // The configuration the demo wrote is a valid tierd.toml.
    let config = dir.path().join("tierd.toml");
    let validate = tierd()
        .args(["config", "validate", "--config"])
        .arg(&config)
        .output()
        .expect("tierd config validate runs");
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    assert!(dir.path().join("tierd.db").exists());
}
