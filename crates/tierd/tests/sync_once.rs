//! `tierd sync --once` as a user runs it: the built binary against a file connector in a temporary
//! directory. Exit 0 and a report on success; exit 2 and a clear message when the configuration is
//! wrong; a second run pushes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's configuration and model, with `extra` sections appended, in `dir`.
fn config_in(dir: &Path, extra: &str) -> PathBuf {
    std::fs::copy(repo().join("config/model.toml"), dir.join("model.toml")).expect("copy the model");
    let base = std::fs::read_to_string(repo().join("config/tierd.toml")).expect("read the config");
    let path = dir.join("tierd.toml");
    std::fs::write(&path, format!("{base}\n{extra}")).expect("write the config");
    path
}

fn sync(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tierd"))
        .arg("--config")
        .arg(config)
        .args(["sync", "--once"])
        .args(args)
        .env_remove("TIERD_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run tierd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn file_sections(dir: &Path) -> String {
    std::fs::copy(
        repo().join("crates/tierd/tests/fixtures/accounts.csv"),
        dir.join("accounts.csv"),
    )
    .expect("copy the accounts");
    format!(
        "[store]\nurl = \"sqlite://{store}\"\n\n[connector]\ntype = \"file\"\npath = \"{input}\"\noutput = \"{output}\"\n\n\
         [pipeline]\nas_of = \"2026-11-24\"\n",
        store = dir.join("tierd.db").display(),
        input = dir.join("accounts.csv").display(),
        output = dir.join("tiers.csv").display(),
    )
}

#[test]
fn a_sync_exits_0_with_a_report_and_a_second_one_pushes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_in(dir.path(), &file_sections(dir.path()));
    let first = sync(&config, &["--job", "full"]);
    let out = text(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{out}\n{}", text(&first.stderr));
    assert!(out.contains("(full): succeeded"), "{out}");
    assert!(out.contains("pyramid: tier_1"), "{out}");
    let pushed_first = pushed(&out);
    assert!(pushed_first > 0, "{out}");
    assert!(
        dir.path().join("tiers.csv").exists(),
        "the file connector wrote its output"
    );

    let second = sync(&config, &[]);
    let out = text(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{out}\n{}", text(&second.stderr));
    assert!(out.contains("(incremental): succeeded"), "{out}");
    assert_eq!(pushed(&out), 0, "nothing changed: {out}");
}

#[test]
fn incremental_runs_over_an_unchanged_file_keep_their_watermark() {
    // Regression: a pull that yields no page (the file did not change) stored no watermark,
    // so the incremental run after it read the whole file again.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_in(dir.path(), &file_sections(dir.path()));
    let runs: Vec<u64> = [
        ["--job", "full"],
        ["--job", "incremental"],
        ["--job", "incremental"],
    ]
    .iter()
    .map(|args| {
        let run = sync(&config, args);
        let out = text(&run.stdout);
        assert_eq!(run.status.code(), Some(0), "{out}\n{}", text(&run.stderr));
        scored(&out)
    })
    .collect();
    assert!(runs[0] > 0, "{runs:?}");
    assert_eq!(runs[2], runs[1], "the file is not read again: {runs:?}");
    assert!(runs[2] < runs[0], "{runs:?}");
}

/// The `N accounts scored` figure of a report.
fn scored(report: &str) -> u64 {
    report
        .split(" accounts scored")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no accounts figure in {report}"))
}

/// The `pushed N` figure of a report.
fn pushed(report: &str) -> u64 {
    report
        .split("pushed ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pushed count in: {report}"))
}

#[test]
fn a_bad_configuration_exits_2_and_names_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_in(dir.path(), "[connector]\ntype = \"pipedrive\"\n");
    let out = sync(&config, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("connector.type"), "{err}");
    assert!(err.contains("unknown connector 'pipedrive'"), "{err}");

    let out = sync(
        &config_in(dir.path(), &file_sections(dir.path())),
        &["--job", "weekly"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--job weekly: expected full, incremental or deals"),
        "{err}"
    );
}
