//! tierd-test-support: what tierd's tests, benches and examples share, so each is written once.
//!
//! Owns: locating what cargo built beside the running test ([`cdylib`] for a plugin library,
//! [`tierd_bin`] for the binary), and a PostgreSQL server to test against
//! ([`postgres::reachable`], [`postgres::Schema`], [`postgres::unique_name`]).
//!
//! Must not depend on any other tierd crate: the crates it serves dev-depend on it, and a
//! cycle would give their unit tests two copies of their own types. A dev-dependency (and the
//! e2e harness's dependency) only; `publish = false`.

use std::path::{Path, PathBuf};

pub mod postgres;

/// `target/<profile>/`: the directory cargo builds into for the running test, bench or example
/// (they run from `target/<profile>/deps/` or `target/<profile>/examples/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running test's own path");
    let dir = exe.parent().expect("the test binary has a directory");
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("deps" | "examples") => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// The shared library of the cdylib crate `crate_name` (`tierd-plugin-hello`), built for the
/// running test: the crate must be a dev-dependency of the test's package, so cargo builds it
/// into `target/<profile>/deps/` (or `target/<profile>/` when built on its own).
///
/// # Panics
/// When it is not built, naming the file and the command that builds it.
pub fn cdylib(crate_name: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    let file = format!("{DLL_PREFIX}{}{DLL_SUFFIX}", crate_name.replace('-', "_"));
    let dir = profile_dir();
    [dir.join("deps").join(&file), dir.join(&file)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{file} is not built in {}: add {crate_name} to the test's dev-dependencies, or run `cargo build -p {crate_name}`",
                dir.display()
            )
        })
}

/// The `tierd` binary under test: `TIERD_BIN` when set, else `target/<profile>/tierd`.
///
/// # Panics
/// When it is not built.
pub fn tierd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TIERD_BIN") {
        return PathBuf::from(p);
    }
    let bin = profile_dir().join(format!("tierd{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p tierd` first, or set TIERD_BIN",
        bin.display()
    );
    bin
}

/// One webhook message as a receiver got it: its Standard Webhooks headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The raw body.
    pub body: String,
}

/// Whether each message's signature verifies with `secret` (a `whsec_` secret), by an
/// independent implementation: `verify_standard_webhooks.py`, Python's standard library only,
/// never tierd's own signing code.
pub fn python_verifies(secret: &str, messages: &[SignedMessage]) -> Vec<bool> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("verify_standard_webhooks.py");
    let input = serde_json::json!({
        "secret": secret,
        "messages": messages.iter().map(|m| serde_json::json!({
            "id": m.id, "timestamp": m.timestamp, "signature": m.signature, "body": m.body,
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "the verifier failed");
    serde_json::from_slice(&out.stdout).expect("a list of booleans")
}
