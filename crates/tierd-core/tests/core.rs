//! tierd-core's integration tests, as one test binary (each binary links the crate and its
//! dependencies once: one instead of three is a shorter cold `cargo test`). A new file here goes
//! in `core/` with a `mod` line below.

#[path = "core/config_finite.rs"]
mod config_finite;
#[path = "core/missing.rs"]
mod missing;
#[path = "core/scoring.rs"]
mod scoring;
#[path = "core/tiering.rs"]
mod tiering;
