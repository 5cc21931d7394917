//! The plugins' facts cache kept in the store (`facts_cache`), so cached facts and plugin state
//! survive restarts and are shared by every instance.
//!
//! The host's [`FactsCache`] trait is synchronous and the store is async, and blocking a runtime
//! thread on a query per lookup would stall the plugins' own tasks. So a batch goes through three
//! steps: [`StoreCache::prefetch`] loads the entries of the batch's account keys for every plugin
//! (one query per plugin), the host reads and writes them in memory while it enriches, and
//! [`StoreCache::flush`] writes what the host put back. Entries are dropped from memory at flush,
//! so memory follows the batches in flight, not the population.
//!
//! Must not know about scoring or pushing: it moves plugin results between the host and the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tierd_plugin_host::{CacheKey, CachedResult, FactsCache};
use tierd_store::{CachedFacts, Store, Timestamp};

/// One plugin version's entries in memory, by account key, with when each was observed.
type Entries = HashMap<String, (CachedResult, Timestamp)>;

/// A [`FactsCache`] over the store, loaded and saved per batch.
#[derive(Default)]
pub(crate) struct StoreCache {
    /// (plugin, version) -> entries prefetched or put since the last flush.
    loaded: Mutex<HashMap<(String, String), Entries>>,
    /// (plugin, version) -> account keys put since the last flush.
    dirty: Mutex<HashMap<(String, String), Vec<String>>>,
}

fn to_timestamp(t: SystemTime) -> Timestamp {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}

fn to_system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(t.millis()).unwrap_or(0))
}

/// The store holds one JSON value per entry: the facts, signals and no-match flag together.
fn encode(entry: &CachedResult) -> Value {
    json!({ "facts": entry.facts, "signals": entry.signals, "no_match": entry.no_match })
}

fn decode(stored: CachedFacts) -> Option<CachedResult> {
    let Value::Object(mut body) = stored.facts else {
        return None;
    };
    let facts = match body.remove("facts") {
        Some(Value::Object(f)) => f,
        _ => Map::new(),
    };
    let signals = body
        .remove("signals")
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default();
    Some(CachedResult {
        facts,
        signals,
        no_match: body.get("no_match").and_then(Value::as_bool).unwrap_or(false),
        state: stored.state,
        expires_at: to_system_time(stored.expires_at),
    })
}

impl StoreCache {
    fn loaded(&self) -> MutexGuard<'_, HashMap<(String, String), Entries>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dirty(&self) -> MutexGuard<'_, HashMap<(String, String), Vec<String>>> {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the stored entries (stale ones too: their state is still wanted) of `keys` for each
    /// `(plugin, version)`.
    pub(crate) async fn prefetch(
        &self,
        store: &Store,
        plugins: &[(String, String)],
        keys: &[String],
    ) -> Result<(), tierd_store::StoreError> {
        for (plugin, version) in plugins {
            let found = store.cached_facts(plugin, version, keys, None).await?;
            let mut loaded = self.loaded();
            let table = loaded.entry((plugin.clone(), version.clone())).or_default();
            for (key, stored) in found {
                let observed = stored.observed_at;
                if let Some(entry) = decode(stored) {
                    table.insert(key, (entry, observed));
                }
            }
        }
        Ok(())
    }

    /// When the entry of `plugin` for `key` was observed, if it is in memory.
    pub(crate) fn observed_at(&self, plugin: &str, key: &str) -> Option<Timestamp> {
        self.loaded()
            .iter()
            .find(|((p, _), _)| p == plugin)
            .and_then(|(_, table)| table.get(key).map(|(_, at)| *at))
    }

    /// Writes the entries put since the last flush and forgets `keys` (the batch's).
    pub(crate) async fn flush(&self, store: &Store, keys: &[String]) -> Result<(), tierd_store::StoreError> {
        let dirty = std::mem::take(&mut *self.dirty());
        for ((plugin, version), accounts) in dirty {
            let entries: Vec<(String, CachedFacts)> = {
                let loaded = self.loaded();
                let Some(table) = loaded.get(&(plugin.clone(), version.clone())) else {
                    continue;
                };
                accounts
                    .iter()
                    .filter_map(|key| {
                        let (entry, observed) = table.get(key)?;
                        let stored = CachedFacts {
                            facts: encode(entry),
                            state: entry.state.clone(),
                            observed_at: *observed,
                            expires_at: to_timestamp(entry.expires_at),
                        };
                        Some((key.clone(), stored))
                    })
                    .collect()
            };
            store.put_cached_facts(&plugin, &version, &entries).await?;
        }
        let mut loaded = self.loaded();
        for table in loaded.values_mut() {
            for key in keys {
                table.remove(key);
            }
        }
        Ok(())
    }
}

impl FactsCache for StoreCache {
    fn get(&self, key: &CacheKey) -> Option<CachedResult> {
        self.loaded()
            .get(&(key.plugin.to_string(), key.version.to_string()))?
            .get(&key.account)
            .map(|(entry, _)| entry.clone())
    }

    fn put(&self, key: CacheKey, entry: CachedResult) {
        let table_key = (key.plugin.to_string(), key.version.to_string());
        self.dirty()
            .entry(table_key.clone())
            .or_default()
            .push(key.account.clone());
        self.loaded()
            .entry(table_key)
            .or_default()
            .insert(key.account, (entry, Timestamp::now()));
    }
}

/// The cache as the host takes it.
pub(crate) fn shared(cache: &Arc<StoreCache>) -> Arc<dyn FactsCache> {
    cache.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_survive_a_new_cache_through_the_store() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let plugins = vec![("firmo".to_string(), "1.0".to_string())];
        let keys = vec!["acme.com".to_string()];
        let cache = StoreCache::default();
        cache.prefetch(&store, &plugins, &keys).await.expect("prefetch");
        let key = CacheKey {
            plugin: Arc::from("firmo"),
            version: Arc::from("1.0"),
            account: "acme.com".into(),
        };
        assert!(cache.get(&key).is_none());
        let mut facts = Map::new();
        facts.insert("firmographic.employee_count".into(), json!(1200));
        let entry = CachedResult {
            facts,
            signals: vec![],
            no_match: false,
            state: json!({"seen": 1}),
            expires_at: SystemTime::now() + Duration::from_secs(3600),
        };
        cache.put(key.clone(), entry.clone());
        cache.flush(&store, &keys).await.expect("flush");
        assert!(cache.get(&key).is_none(), "forgotten after the batch");

        let again = StoreCache::default();
        again.prefetch(&store, &plugins, &keys).await.expect("prefetch");
        let back = again.get(&key).expect("persisted");
        assert_eq!((back.facts, back.state), (entry.facts, entry.state));
        assert!(again.observed_at("firmo", "acme.com").is_some());
    }
}
