//! tierd-connectors: where accounts come from and where tiers go.
//!
//! Owns:
//! - the [`connector::Connector`] trait every source and destination of accounts
//!   implements (pull pages since a watermark, push tier updates with an outcome per
//!   record, ensure schema, watermark, deals, contacts), and the [`registry`] that builds one from
//!   its config section by name;
//! - the connectors: [`hubspot`] (CRM v3 API, private-app token), [`salesforce`] (REST API,
//!   OAuth client credentials) and [`file_connector`] (CSV/JSONL in, tiers file out, over
//!   the account-file formats of `tierd score` in [`files`]);
//! - [`lists`]: CRM lists kept per tier (HubSpot lists, Salesforce Campaigns), synced to the
//!   members the caller names;
//! - [`mapping`] of CRM fields to typed facts, with the shared contract's defaults;
//! - [`plan`], the pure push planning: never overwrite a person's tier, send only changes;
//! - [`http`], the one HTTP layer: token-bucket rate limiting sized from each vendor's
//!   documented limit, 429/5xx/transport retries with jittered back-off, counters, and
//!   the [`http::Secret`] type that keeps tokens out of logs and errors.
//!
//! Parses outside data into tierd-core's types at the edge, naming the record, field,
//! file and line of anything it cannot use. See `docs/connectors.md`.
//!
//! Must not depend on the store or the plugin host: connectors move records, they do not
//! decide or remember. What tierd last pushed is handed in by the caller.

pub mod connector;
mod contacts_file;
pub mod deals_file;
pub mod file_connector;
pub mod files;
pub mod http;
pub mod hubspot;
pub mod lists;
pub mod mapping;
pub mod plan;
pub mod registry;
pub mod salesforce;
