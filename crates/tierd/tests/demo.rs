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
        .args(["demo", "--accounts", "500", "--seed", "7", "--dir"])
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
        // The funnel over the emulated deals comes before the API (which is now section 5).
        "== 4. Funnel per tier",
        "deals created in the period;",
        "== 5. Admin API on http://127.0.0.1:",
        "curl -H \"Authorization: Bearer ",
        "Demo finished in ",
    ] {
        assert!(stdout.contains(section), "missing '{section}' in:\n{stdout}");
    }
    let line = |start: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting '{start}' in:\n{stdout}"))
    };
    assert!(
        line("Run 1 (full)").contains("succeeded; 500 accounts scored"),
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
