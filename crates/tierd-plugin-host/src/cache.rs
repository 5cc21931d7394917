//! The facts cache: per-plugin, per-account results with an expiry, and the plugin's `state` for
//! the account. Behind a trait so the daemon can persist it (the store's `facts_cache` table).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tierd_plugin_api::Signal;

/// Whose result an entry is. The plugin version is part of it, so a new plugin version never
/// serves an older version's facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The plugin's configured name (shared: every key of a plugin holds the same).
    pub plugin: std::sync::Arc<str>,
    /// The version its `describe` reported.
    pub version: std::sync::Arc<str>,
    /// The account key (domain, or id without one).
    pub account: String,
}

/// One account's last successful result from one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResult {
    /// Checked facts.
    pub facts: Map<String, Value>,
    /// Checked signals.
    pub signals: Vec<Signal>,
    /// The source knew nothing about the account.
    pub no_match: bool,
    /// The plugin's state for the account, handed back on its next request (kept after expiry).
    pub state: Value,
    /// After this the facts are refreshed (the state is still passed back).
    pub expires_at: SystemTime,
}

/// Where results are kept between runs.
pub trait FactsCache: Send + Sync {
    /// The entry for `key`, expired or not.
    fn get(&self, key: &CacheKey) -> Option<CachedResult>;
    /// Stores or replaces the entry for `key`.
    fn put(&self, key: CacheKey, entry: CachedResult);
}

/// An in-memory [`FactsCache`]: lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<CacheKey, CachedResult>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FactsCache for MemoryCache {
    fn get(&self, key: &CacheKey) -> Option<CachedResult> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: CacheKey, entry: CachedResult) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, entry);
    }
}
