//! The persistent facts cache: one entry per (plugin, plugin version, account key), with the
//! plugin's facts, its opaque per-account state, and an expiry.
//!
//! The plugin version is part of the key, so a new plugin version never reads an older one's
//! facts. Expired entries stay until purged because the plugin's state is still wanted after its
//! facts go stale (a technographic plugin compares against what it saw last time); readers ask
//! for fresh entries only, or for all of them.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::{query_error, StoreError};
use crate::row::{json_col, last_per_key, placeholders, placeholders_for, tuples_for, StoreRow, WritePool};
use crate::{with_pool, Store, Timestamp};

/// One cached result of a plugin for one account key.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedFacts {
    /// What the plugin returned (opaque to the store).
    pub facts: serde_json::Value,
    /// The plugin's state for the account, handed back on its next call.
    pub state: serde_json::Value,
    /// When the plugin produced it.
    pub observed_at: Timestamp,
    /// After this the facts are stale.
    pub expires_at: Timestamp,
}

impl CachedFacts {
    /// An entry observed at `observed_at` and fresh for `ttl`.
    pub fn new(
        facts: serde_json::Value,
        state: serde_json::Value,
        observed_at: Timestamp,
        ttl: Duration,
    ) -> Self {
        CachedFacts {
            facts,
            state,
            observed_at,
            expires_at: observed_at.plus(ttl),
        }
    }

    /// Whether the facts are still fresh at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// Entries per multi-row upsert: 7 parameters each, 700 per statement.
const PUT_ROWS: usize = 100;

/// Stores or replaces `rows` entries of one plugin version in one statement.
fn upsert_sql(backend: &crate::Backend, rows: usize) -> String {
    format!(
        "INSERT INTO facts_cache (plugin, plugin_version, key, facts, state, observed_at, expires_at)
        VALUES {}
        ON CONFLICT (plugin, plugin_version, key) DO UPDATE SET facts = excluded.facts, state = excluded.state,
            observed_at = excluded.observed_at, expires_at = excluded.expires_at",
        tuples_for(backend, rows, 7, "")
    )
}

/// Keys per `IN (...)` chunk (two more parameters precede them).
const KEY_CHUNK: usize = 500;

fn cached_from_row(row: &impl StoreRow) -> Result<(String, CachedFacts), StoreError> {
    let decode = query_error("read cached facts", "facts_cache");
    let key = row.text("key").map_err(decode)?;
    let entry = CachedFacts {
        facts: json_col(&row.text("facts").map_err(decode)?, "facts_cache", "facts", &key)?,
        state: json_col(&row.text("state").map_err(decode)?, "facts_cache", "state", &key)?,
        observed_at: Timestamp(row.int("observed_at").map_err(decode)?),
        expires_at: Timestamp(row.int("expires_at").map_err(decode)?),
    };
    Ok((key, entry))
}

impl Store {
    /// The cached entries of `plugin` at `version` for `keys`: only those still fresh at
    /// `fresh_at`, or all of them (stale ones too, for their state) with `None`.
    pub async fn cached_facts(
        &self,
        plugin: &str,
        version: &str,
        keys: &[String],
        fresh_at: Option<Timestamp>,
    ) -> Result<HashMap<String, CachedFacts>, StoreError> {
        let mut out = HashMap::with_capacity(keys.len());
        // With no cut-off, `expires_at > MIN` keeps everything.
        let cutoff = fresh_at.map_or(i64::MIN, Timestamp::millis);
        for chunk in keys.chunks(KEY_CHUNK) {
            // On SQLite every placeholder anonymous, bound in order (see `row::tuples_for`).
            let (head, keys) = match &self.backend {
                crate::Backend::Sqlite(_) => (
                    "plugin = ? AND plugin_version = ? AND expires_at > ?",
                    placeholders_for(&self.backend, chunk.len()),
                ),
                crate::Backend::Postgres(_) => (
                    "plugin = $1 AND plugin_version = $2 AND expires_at > $3",
                    placeholders(4, chunk.len()),
                ),
            };
            let sql = format!(
                "SELECT key, facts, state, observed_at, expires_at FROM facts_cache WHERE {head} AND key IN ({keys})"
            );
            with_pool!(self, pool => {
                let mut query = sqlx::query(&sql).bind(plugin).bind(version).bind(cutoff);
                for key in chunk {
                    query = query.bind(key);
                }
                let rows = query.fetch_all(pool).await.map_err(query_error("read cached facts", "facts_cache"))?;
                for row in &rows {
                    let (key, entry) = cached_from_row(row)?;
                    out.insert(key, entry);
                }
            });
        }
        Ok(out)
    }

    /// Stores or replaces entries of `plugin` at `version`, in one transaction.
    pub async fn put_cached_facts(
        &self,
        plugin: &str,
        version: &str,
        entries: &[(String, CachedFacts)],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // A statement per hundred entries, not per entry; a key given twice keeps its last entry.
        let entries = last_per_key(entries, |(key, _)| key);
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin caching facts", "facts_cache"))?;
            for chunk in entries.chunks(PUT_ROWS) {
                let sql = upsert_sql(&self.backend, chunk.len());
                let mut upsert = sqlx::query(&sql);
                for (key, entry) in chunk {
                    upsert = upsert
                        .bind(plugin)
                        .bind(version)
                        .bind(key)
                        .bind(entry.facts.to_string())
                        .bind(entry.state.to_string())
                        .bind(entry.observed_at.millis())
                        .bind(entry.expires_at.millis());
                }
                upsert.execute(&mut *tx).await.map_err(query_error("cache facts", "facts_cache"))?;
            }
            tx.commit().await.map_err(query_error("commit cached facts", "facts_cache"))?;
        });
        Ok(())
    }

    /// Deletes entries that expired before `expired_before` (give stale entries a grace period
    /// when their state still matters). Returns how many went.
    pub async fn purge_cached_facts(&self, expired_before: Timestamp) -> Result<u64, StoreError> {
        with_pool!(self, pool => sqlx::query("DELETE FROM facts_cache WHERE expires_at < $1")
            .bind(expired_before.millis())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(query_error("purge expired cached facts", "facts_cache"))
    }
}
