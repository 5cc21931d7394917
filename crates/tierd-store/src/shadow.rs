//! The shadow model's scores and tier history (`shadow_scores`, `shadow_history`): what a
//! candidate model, scored beside the live one on every committing run, would have tiered each
//! account, kept so the funnel can be read as if the candidate had been live. Nothing here is
//! ever pushed or read by tiering. Knows nothing of models: it stores what the engine gives it.

use sqlx::Row as _;
use tierd_core::Tier;

use crate::deals::TierEvent;
use crate::error::query_error;
use crate::row::{parse_col, placeholders, tuples, WritePool};
use crate::{with_pool, RunId, Store, StoreError, Timestamp};

/// One account's shadow score and tier from a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowScore {
    /// The account.
    pub account: String,
    /// The shadow model's score.
    pub score: f64,
    /// The tier the shadow model gives it.
    pub tier: Tier,
}

/// Rows per statement (each binds 6 values at most; both backends accept far more).
const PER_STATEMENT: usize = 500;

impl Store {
    /// Records `scores` from `run`, by the shadow model `model_version`, in one transaction: each
    /// account's latest shadow score and tier, and a history row where its shadow tier changed
    /// (or is its first under this model version: a new candidate starts its history over),
    /// dated `at` (a pinned scoring date, as [`crate::BatchCommit::history_at`]) or now.
    pub async fn record_shadow(
        &self,
        run: RunId,
        model_version: &str,
        scores: &[ShadowScore],
        at: Option<Timestamp>,
    ) -> Result<u64, StoreError> {
        let now = at.unwrap_or_else(Timestamp::now).millis();
        let mut changed = 0u64;
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin recording shadow scores", "shadow_scores"))?;
            for chunk in scores.chunks(PER_STATEMENT) {
                let sql = format!(
                    "SELECT account, tier, model_version FROM shadow_scores WHERE account IN ({})",
                    placeholders(1, chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for s in chunk {
                    q = q.bind(&s.account);
                }
                let rows = q.fetch_all(&mut *tx).await.map_err(query_error("read shadow scores", "shadow_scores"))?;
                let mut before = std::collections::HashMap::with_capacity(rows.len());
                for row in &rows {
                    let account: String = row.try_get("account").map_err(query_error("read shadow scores", "shadow_scores"))?;
                    let tier: String = row.try_get("tier").map_err(query_error("read shadow scores", "shadow_scores"))?;
                    let version: String = row.try_get("model_version").map_err(query_error("read shadow scores", "shadow_scores"))?;
                    before.insert(account, (tier, version));
                }
                let moved: Vec<(&ShadowScore, Option<&str>)> = chunk
                    .iter()
                    .filter_map(|s| match before.get(&s.account) {
                        Some((tier, version)) if version == model_version && tier == s.tier.as_str() => None,
                        Some((tier, version)) if version == model_version => Some((s, Some(tier.as_str()))),
                        _ => Some((s, None)),
                    })
                    .collect();
                if !moved.is_empty() {
                    let sql = format!(
                        "INSERT INTO shadow_history (account, from_tier, to_tier, score, at, model_version, run) VALUES {}",
                        tuples(1, moved.len(), 6, &format!(", {}", run.0))
                    );
                    let mut q = sqlx::query(&sql);
                    for (s, from) in &moved {
                        q = q.bind(&s.account).bind(*from).bind(s.tier.as_str()).bind(s.score).bind(now).bind(model_version);
                    }
                    q.execute(&mut *tx).await.map_err(query_error("record shadow tier changes", "shadow_history"))?;
                    changed += moved.len() as u64;
                }
                let sql = format!(
                    "INSERT INTO shadow_scores (account, score, tier, updated_at, model_version) VALUES {}
                     ON CONFLICT (account) DO UPDATE SET score = excluded.score, tier = excluded.tier,
                         updated_at = excluded.updated_at, model_version = excluded.model_version",
                    tuples(1, chunk.len(), 5, "")
                );
                let mut q = sqlx::query(&sql);
                for s in chunk {
                    q = q.bind(&s.account).bind(s.score).bind(s.tier.as_str()).bind(now).bind(model_version);
                }
                q.execute(&mut *tx).await.map_err(query_error("record shadow scores", "shadow_scores"))?;
            }
            tx.commit().await.map_err(query_error("commit shadow scores", "shadow_scores"))?;
        });
        Ok(changed)
    }

    /// The shadow model's tier changes, ordered by account then time, in the shape of
    /// [`Store::tier_timeline`]: only those of the latest shadow model version (an earlier
    /// candidate's history is not mixed in). Empty when no shadow model has scored.
    pub async fn shadow_timeline(&self) -> Result<Vec<TierEvent>, StoreError> {
        let sql = "SELECT account, at, to_tier FROM shadow_history
                   WHERE model_version = (SELECT model_version FROM shadow_history ORDER BY id DESC LIMIT 1)
                   ORDER BY account, at, id";
        let rows: Vec<(String, i64, String)> = with_pool!(self, pool => sqlx::query_as(sql)
            .fetch_all(pool)
            .await)
        .map_err(query_error("read shadow history", "shadow_history"))?;
        rows.into_iter()
            .map(|(account, at, tier)| {
                let tier = parse_col(&tier, "shadow_history", "to_tier", &account)?;
                Ok(TierEvent { account, at, tier })
            })
            .collect()
    }

    /// Accounts per shadow tier (tier_1, tier_2, tier_3, untiered) and the shadow model's
    /// version, from the latest shadow scores; `None` when no shadow model has scored.
    pub async fn shadow_pyramid(&self) -> Result<Option<(String, [u64; 4])>, StoreError> {
        let sql = "SELECT model_version, tier, COUNT(*) AS n FROM shadow_scores
                   WHERE model_version = (SELECT model_version FROM shadow_history ORDER BY id DESC LIMIT 1)
                   GROUP BY model_version, tier";
        let rows: Vec<(String, String, i64)> = with_pool!(self, pool => sqlx::query_as(sql)
            .fetch_all(pool)
            .await)
        .map_err(query_error("read shadow scores", "shadow_scores"))?;
        let mut version = None;
        let mut counts = [0u64; 4];
        for (v, tier, n) in rows {
            let tier: Tier = parse_col(&tier, "shadow_scores", "tier", &v)?;
            let i = Tier::ALL.iter().position(|t| *t == tier).unwrap_or(3);
            counts[i] += u64::try_from(n).unwrap_or(0);
            version = Some(v);
        }
        Ok(version.map(|v| (v, counts)))
    }
}
