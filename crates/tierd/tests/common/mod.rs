//! What the CLI tests that run the built binary against a config share: the repository root,
//! running `tierd --config`, a run that must succeed, and a JSON number.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tierd --config CONFIG ARGS...`, with no configuration or log filter from the environment.
pub fn tierd(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tierd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TIERD_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run tierd")
}

/// Its stdout, after checking it exited 0 (stdout and stderr shown otherwise).
pub fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A JSON number.
pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}
