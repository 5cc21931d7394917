//! End-to-end tests of the built `tierd` binary; the tests live in `tests/tests/`.
//!
//! The binary comes from the workspace build (`cargo test --workspace` builds it,
//! because the `tierd` package has integration tests) or from `TIERD_BIN`.

use std::path::PathBuf;

/// The `tierd` binary under test.
pub fn tierd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TIERD_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> -> target/<profile>/tierd
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
