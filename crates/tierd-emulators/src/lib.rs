//! tierd-emulators: HTTP emulators of the SaaS APIs tierd talks to, and a DNS responder.
//!
//! Owns faithful stand-ins for HubSpot, Salesforce, the company-enrichment API and
//! company websites, seeded from `tierd-gen` (and the same [`people`] per company for both
//! CRMs), with the vendors' paging, limits, error
//! bodies, rate limiting and partial failures, plus fault injection. Tests, benches and
//! `tierd demo` run against them. [`dns`] answers TXT and MX questions for configured names,
//! for the plugins' DNS capability.
//!
//! Must not depend on the other tierd crates except `tierd-gen` (its synthetic accounts
//! are the emulators' world): connectors and plugins reach an emulator over HTTP only,
//! exactly as they reach the real service.
//!
//! Each emulator is one module with a `*Config` (built with `new(accounts, seed)` and
//! adjusted field by field) and a running handle (`start`, `base_url`, `faults`,
//! `writes`, `shutdown`). Shared by all: [`Faults`] (latency, 5xx, 429 storms,
//! malformed records, dropped connections, also settable over `POST /__admin/faults`),
//! [`WriteLog`] (every record write applied, by id) and `GET /__admin/stats`.
//! The worlds live in memory and every read is O(page): records are kept in id order
//! and cursors are positions, so benchmarks measure the client, not the emulator.

// Handlers bail out early with the vendor's error `Response` in `Err`; it is a cold path and
// boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod clock;
mod server;

pub mod dns;
pub mod enrichment;
pub mod faults;
pub mod hubspot;
pub mod people;
pub mod salesforce;
pub mod websites;
pub mod writes;

pub use dns::{DnsConfig, DnsEmulator};
pub use faults::Faults;
pub use hubspot::{HubSpotConfig, HubSpotEmulator};
pub use salesforce::{SalesforceConfig, SalesforceEmulator};
pub use server::EmulatorStats;
pub use writes::WriteLog;
