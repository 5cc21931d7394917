//! The emulators' integration tests, as one test binary (one link instead of two in a cold
//! `cargo test`). A new file here goes in `emulators/` with a `mod` line below.

#[path = "emulators/hubspot.rs"]
mod hubspot;
#[path = "emulators/lists.rs"]
mod lists;
#[path = "emulators/salesforce.rs"]
mod salesforce;
