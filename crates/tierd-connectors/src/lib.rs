//! tierd-connectors: where accounts come from and where tiers go.
//!
//! Owns the account-file formats (CSV and JSONL in, tier files out) and, as
//! they arrive, the CRM connectors behind one trait. Parses outside data into
//! tierd-core's types at the edge, naming the file, line, account and field of
//! anything it cannot use.
//!
//! Must not depend on the store or the plugin host: connectors move records,
//! they do not decide or remember.

pub mod connector;
pub mod file_connector;
pub mod files;
pub mod http;
pub mod hubspot;
pub mod mapping;
pub mod plan;
pub mod registry;
pub mod salesforce;
