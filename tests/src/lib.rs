//! End-to-end tests of the built `tierd` binary; the tests live in `tests/tests/`, the
//! one-versus-two-instances benchmark in `tests/examples/instances.rs`.
//!
//! The binary comes from the workspace build (`cargo build -p tierd`) or from `TIERD_BIN`.
//! [`harness`] holds what every test of a running binary needs: a database of its own, a config
//! file, child processes that die with the test, and the checks that tie the CRM to the store.

use std::path::PathBuf;

pub mod harness;

/// The `tierd` binary under test.
pub fn tierd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TIERD_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> -> target/<profile>/tierd; examples sit in
    // target/<profile>/examples/, one level down as well.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps layout");
    let bin = profile_dir.join(format!("tierd{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p tierd` first, or set TIERD_BIN",
        bin.display()
    );
    bin
}
