//! The facts cache: per-plugin, per-account results with an expiry, and the plugin's `state` for
//! the account. Behind a trait so the daemon can persist it (the store's `facts_cache` table).
//!
//! The host reads and writes a whole batch at once ([`FactsCache::lookup_batch`],
//! [`FactsCache::put_batch`]): one lock and no per-account key allocation in [`MemoryCache`],
//! one round trip for a persistent cache. Both have defaults built on `get`/`put`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Map, Value};
use tierd_plugin_api::Signal;

use crate::keyhash::KeyHashState;

/// Whose result an entry is. The plugin version is part of it, so a new plugin version never
/// serves an older version's facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The plugin's configured name (shared: every key of a plugin holds the same).
    pub plugin: Arc<str>,
    /// The version its `describe` reported.
    pub version: Arc<str>,
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

/// What the cache says about one account before an enrich pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A fresh entry: answer from it.
    Fresh(CachedResult),
    /// No fresh entry: ask the plugin, passing back `state` (`null` without any entry).
    Ask {
        /// The state the plugin returned last time.
        state: Value,
    },
}

/// Where results are kept between runs.
pub trait FactsCache: Send + Sync {
    /// The entry for `key`, expired or not.
    fn get(&self, key: &CacheKey) -> Option<CachedResult>;
    /// Stores or replaces the entry for `key`.
    fn put(&self, key: CacheKey, entry: CachedResult);

    /// One [`Lookup`] per account of `accounts` (same order) for one plugin version. An entry is
    /// fresh when it expires after `fresh_at`; `None` treats every entry as stale (a refresh).
    fn lookup_batch(
        &self,
        plugin: &Arc<str>,
        version: &Arc<str>,
        accounts: &[&str],
        fresh_at: Option<SystemTime>,
    ) -> Vec<Lookup> {
        accounts
            .iter()
            .map(|account| {
                let key = CacheKey {
                    plugin: plugin.clone(),
                    version: version.clone(),
                    account: (*account).to_owned(),
                };
                match self.get(&key) {
                    Some(e) if is_fresh(&e, fresh_at) => Lookup::Fresh(e),
                    e => Lookup::Ask {
                        state: e.map(|e| e.state).unwrap_or(Value::Null),
                    },
                }
            })
            .collect()
    }

    /// Stores or replaces the entries of one plugin version, by account key.
    fn put_batch(&self, plugin: &Arc<str>, version: &Arc<str>, entries: Vec<(&str, CachedResult)>) {
        for (account, entry) in entries {
            let key = CacheKey {
                plugin: plugin.clone(),
                version: version.clone(),
                account: account.to_owned(),
            };
            self.put(key, entry);
        }
    }
}

fn is_fresh(entry: &CachedResult, fresh_at: Option<SystemTime>) -> bool {
    fresh_at.is_some_and(|now| entry.expires_at > now)
}

/// An in-memory [`FactsCache`]: lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryCache {
    /// One table per plugin version; there are few, so they are searched in order, and an
    /// account's entry is found by its key alone.
    tables: Mutex<Vec<Table>>,
}

#[derive(Debug)]
struct Table {
    plugin: Arc<str>,
    version: Arc<str>,
    entries: HashMap<String, CachedResult, KeyHashState>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().iter().map(|t| t.entries.len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Table>> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn table<'t>(tables: &'t [Table], plugin: &str, version: &str) -> Option<&'t Table> {
    tables
        .iter()
        .find(|t| &*t.plugin == plugin && &*t.version == version)
}

fn table_mut<'t>(tables: &'t mut Vec<Table>, plugin: &Arc<str>, version: &Arc<str>) -> &'t mut Table {
    let at = match tables
        .iter()
        .position(|t| t.plugin == *plugin && t.version == *version)
    {
        Some(at) => at,
        None => {
            tables.push(Table {
                plugin: plugin.clone(),
                version: version.clone(),
                entries: HashMap::default(),
            });
            tables.len() - 1
        }
    };
    &mut tables[at]
}

impl FactsCache for MemoryCache {
    fn get(&self, key: &CacheKey) -> Option<CachedResult> {
        let tables = self.lock();
        table(&tables, &key.plugin, &key.version)?
            .entries
            .get(&key.account)
            .cloned()
    }

    fn put(&self, key: CacheKey, entry: CachedResult) {
        let mut tables = self.lock();
        table_mut(&mut tables, &key.plugin, &key.version)
            .entries
            .insert(key.account, entry);
    }

    fn lookup_batch(
        &self,
        plugin: &Arc<str>,
        version: &Arc<str>,
        accounts: &[&str],
        fresh_at: Option<SystemTime>,
    ) -> Vec<Lookup> {
        let tables = self.lock();
        let Some(table) = table(&tables, plugin, version) else {
            return accounts
                .iter()
                .map(|_| Lookup::Ask { state: Value::Null })
                .collect();
        };
        accounts
            .iter()
            .map(|account| match table.entries.get(*account) {
                Some(e) if is_fresh(e, fresh_at) => Lookup::Fresh(e.clone()),
                // Only the state is needed: the facts of a stale entry are not copied.
                Some(e) => Lookup::Ask {
                    state: e.state.clone(),
                },
                None => Lookup::Ask { state: Value::Null },
            })
            .collect()
    }

    fn put_batch(&self, plugin: &Arc<str>, version: &Arc<str>, entries: Vec<(&str, CachedResult)>) {
        let mut tables = self.lock();
        let table = table_mut(&mut tables, plugin, version);
        for (account, entry) in entries {
            // Replacing in place keeps the stored key: no allocation for an account seen before.
            match table.entries.get_mut(account) {
                Some(slot) => *slot = entry,
                None => {
                    table.entries.insert(account.to_owned(), entry);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Only `get` and `put`: exercises the trait's default batch methods.
    struct Plain(MemoryCache);

    impl FactsCache for Plain {
        fn get(&self, key: &CacheKey) -> Option<CachedResult> {
            self.0.get(key)
        }
        fn put(&self, key: CacheKey, entry: CachedResult) {
            self.0.put(key, entry)
        }
    }

    fn entry(state: i64, expires_at: SystemTime) -> CachedResult {
        CachedResult {
            facts: Map::from_iter([("t.n".to_owned(), Value::from(state))]),
            signals: Vec::new(),
            no_match: false,
            state: Value::from(state),
            expires_at,
        }
    }

    fn check(cache: &dyn FactsCache) {
        let (plugin, version, other): (Arc<str>, Arc<str>, Arc<str>) = ("p".into(), "1".into(), "2".into());
        let now = SystemTime::now();
        let later = now + Duration::from_secs(60);
        let earlier = now - Duration::from_secs(60);
        cache.put_batch(
            &plugin,
            &version,
            vec![("fresh", entry(1, later)), ("old", entry(2, earlier))],
        );
        cache.put_batch(&plugin, &version, vec![("fresh", entry(3, later))]);
        let found = cache.lookup_batch(&plugin, &version, &["fresh", "old", "none"], Some(now));
        assert_eq!(
            found,
            [
                Lookup::Fresh(entry(3, later)),
                Lookup::Ask {
                    state: Value::from(2)
                },
                Lookup::Ask { state: Value::Null },
            ]
        );
        // A refresh passes the state back even for a fresh entry.
        let refresh = cache.lookup_batch(&plugin, &version, &["fresh"], None);
        assert_eq!(
            refresh,
            [Lookup::Ask {
                state: Value::from(3)
            }]
        );
        // Another plugin version sees nothing.
        let other = cache.lookup_batch(&plugin, &other, &["fresh"], Some(now));
        assert_eq!(other, [Lookup::Ask { state: Value::Null }]);
        let key = CacheKey {
            plugin,
            version,
            account: "fresh".to_owned(),
        };
        assert_eq!(cache.get(&key), Some(entry(3, later)));
    }

    #[test]
    fn batches_read_and_write_like_single_entries() {
        let memory = MemoryCache::new();
        check(&memory);
        assert_eq!(memory.len(), 2);
        check(&Plain(MemoryCache::new()));
    }
}
