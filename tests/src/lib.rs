//! End-to-end tests of the built `tierd` binary; the tests live in `tests/tests/`, the
//! one-versus-two-instances benchmark in `tests/examples/instances.rs`.
//!
//! The binary comes from the workspace build (`cargo build -p tierd`) or from `TIERD_BIN`.
//! [`harness`] holds what every test of a running binary needs: a database of its own, a config
//! file, child processes that die with the test, and the checks that tie the CRM to the store.

pub mod harness;

/// The `tierd` binary under test (`TIERD_BIN`, else the workspace build's).
pub use tierd_test_support::tierd_bin;
