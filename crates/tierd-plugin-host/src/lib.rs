//! tierd-plugin-host: loads and runs enrichment plugins, in one of three modes per plugin.
//!
//! - `in_process`: the library is loaded with libloading and called through its C table.
//! - `isolated` (default): a child `tierd plugin-host --library PATH` loads it and speaks the
//!   length-delimited stdio protocol ([`protocol`], `docs/plugin-protocol.md`); a crash, hang,
//!   garbage or oversized output kills only the child, fails only that batch (its accounts come
//!   back [`Outcome::Stale`]), and the child restarts with back-off.
//! - `exec`: any executable speaking the same protocol.
//!
//! [`PluginSet`] is the entry point: start the configured plugins, `enrich` accounts through them
//! (batched by the plugin's preferred size, `concurrency` batches in flight, results cached per
//! plugin, plugin version and account key through a [`FactsCache`]), and check every returned
//! fact against the types the plugin declared. Plugins reach the network only through the host's
//! HTTP capability and, since plugin ABI 1.1, its DNS capability (each with its allowlist,
//! timeouts, rate limit and counters); in isolated mode the child relays HTTP requests and DNS
//! queries to the parent so those limits hold in one place.
//!
//! Must not depend on the connectors or the store: it sees accounts only as plugin requests.

// Loading libraries and calling their C tables is FFI; each unsafe block states its invariant.
#![allow(unsafe_code)]

mod backend;
mod cache;
pub mod child;
mod config;
mod dns;
mod error;
mod http;
mod keyhash;
mod library;
pub mod locate;
pub mod protocol;
mod secret;
mod set;

pub use backend::HostOptions;
pub use cache::{CacheKey, CachedResult, FactsCache, Lookup, MemoryCache};
pub use config::{DnsSettings, Mode, PluginConfig};
pub use dns::DnsCounters;
pub use error::HostError;
pub use http::HttpCounters;
pub use secret::Secret;
pub use set::{
    AccountEnrichment, EnrichOptions, Enriched, Outcome, PluginInfo, PluginResult, PluginSet, RejectedFact,
};
pub use tierd_plugin_api::{AccountInput, ABI_MAJOR, ABI_MINOR};
