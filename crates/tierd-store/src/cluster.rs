//! Several instances on one PostgreSQL database: leadership and the work queue.
//!
//! Leadership is a session advisory lock (`pg_try_advisory_lock`) taken on a connection opened
//! for it alone and owned by the [`LeaderGuard`]. A pooled connection would not do: returned to
//! the pool it would keep the lock for whoever borrows it next. When the leader's process dies
//! its connection closes, PostgreSQL ends the session and frees the lock, and a standby polling
//! [`Store::try_lead`] gets it.
//!
//! The work queue holds a run's batches. [`Store::claim_work`] takes queued items with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers never block on each other and never get the
//! same item; an item whose claimer died is put back by [`Store::requeue_stale_work`].
//!
//! SQLite serves one instance: leadership is always granted, and the queue works the same way
//! with claims serialised by SQLite's write lock.

use std::fmt;
use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::Connection;

use crate::accounts::JsonText;
use crate::error::{query_error, StoreError};
use crate::row::{StoreRow, WritePool};
use crate::runs::RunId;
use crate::{with_pool, Backend, Store, Timestamp};

/// Leadership, held until this guard is released or dropped.
#[derive(Debug)]
pub struct LeaderGuard {
    held: Held,
}

#[derive(Debug)]
enum Held {
    /// SQLite: one instance, always the leader.
    Alone,
    /// PostgreSQL: the session holding the advisory lock.
    Session { conn: PgConnection, key: i64 },
}

impl LeaderGuard {
    /// Whether leadership is still held: on PostgreSQL, whether the lock's session is alive.
    /// A leader checks this before each scheduling decision and steps down when it is false.
    pub async fn still_leading(&mut self) -> bool {
        match &mut self.held {
            Held::Alone => true,
            Held::Session { conn, .. } => conn.ping().await.is_ok(),
        }
    }

    /// Gives leadership up now (dropping the guard does too, once the server sees the
    /// connection close).
    pub async fn release(self) -> Result<(), StoreError> {
        match self.held {
            Held::Alone => Ok(()),
            Held::Session { mut conn, key } => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .execute(&mut conn)
                    .await
                    .map_err(query_error("release leadership", "pg_locks"))?;
                conn.close()
                    .await
                    .map_err(query_error("close the leader's connection", "pg_locks"))
            }
        }
    }
}

/// A work item's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct WorkItemId(pub i64);

impl fmt::Display for WorkItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A batch of a run, claimed by one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    /// Its id.
    pub id: WorkItemId,
    /// The run.
    pub run: RunId,
    /// Its number within the run, from 0.
    pub batch_no: i64,
    /// What to do, as JSON text (opaque to the store: e.g. the accounts of the batch).
    pub payload: JsonText,
    /// Claims so far, this one included.
    pub attempts: u32,
}

/// How far a run's queue is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkProgress {
    /// Waiting for an instance.
    pub queued: u64,
    /// Being worked on.
    pub claimed: u64,
    /// Finished.
    pub done: u64,
    /// Given up.
    pub failed: u64,
}

impl WorkProgress {
    /// Whether nothing is left to do.
    pub fn is_finished(&self) -> bool {
        self.queued == 0 && self.claimed == 0
    }
}

const CLAIM_POSTGRES: &str = "UPDATE work_items SET state = 'claimed', claimed_by = $2, claimed_at = $3,
        attempts = attempts + 1
    WHERE id IN (SELECT id FROM work_items WHERE run = $1 AND state = 'queued'
                 ORDER BY batch_no LIMIT $4 FOR UPDATE SKIP LOCKED)
    RETURNING id, run, batch_no, payload, attempts";

/// The same claim without row locks: SQLite runs one writer at a time anyway.
const CLAIM_SQLITE: &str = "UPDATE work_items SET state = 'claimed', claimed_by = $2, claimed_at = $3,
        attempts = attempts + 1
    WHERE id IN (SELECT id FROM work_items WHERE run = $1 AND state = 'queued'
                 ORDER BY batch_no LIMIT $4)
    RETURNING id, run, batch_no, payload, attempts";

fn work_item_from_row(row: &impl StoreRow) -> Result<WorkItem, StoreError> {
    let decode = query_error("read a claimed work item", "work_items");
    let id = row.int("id").map_err(decode)?;
    Ok(WorkItem {
        id: WorkItemId(id),
        run: RunId(row.int("run").map_err(decode)?),
        batch_no: row.int("batch_no").map_err(decode)?,
        payload: JsonText::from_stored(row.text("payload").map_err(decode)?),
        attempts: u32::try_from(row.int("attempts").map_err(decode)?).unwrap_or(u32::MAX),
    })
}

impl Store {
    /// Tries to become the leader for `lock_key` (any number agreed by all instances of one
    /// deployment). `None`: another instance leads; poll again later.
    pub async fn try_lead(&self, lock_key: i64) -> Result<Option<LeaderGuard>, StoreError> {
        let pool = match &self.backend {
            Backend::Sqlite(_) => return Ok(Some(LeaderGuard { held: Held::Alone })),
            Backend::Postgres(pool) => pool,
        };
        let options = pool.connect_options();
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::Connect {
                url: format!(
                    "postgres://{}@{}:{}/{}",
                    options.get_username(),
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or("")
                ),
                source,
            })?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key)
            .fetch_one(&mut conn)
            .await
            .map_err(query_error("try to take leadership", "pg_locks"))?;
        if got {
            return Ok(Some(LeaderGuard {
                held: Held::Session { conn, key: lock_key },
            }));
        }
        // Closing politely frees the server's session now; a failure here changes nothing.
        let _ = conn.close().await;
        Ok(None)
    }

    /// Queues `batches` of `run`, numbered after the ones already queued for it. Returns their
    /// ids in order.
    pub async fn enqueue_work(
        &self,
        run: RunId,
        batches: &[JsonText],
    ) -> Result<Vec<WorkItemId>, StoreError> {
        let ids = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin queueing work", "work_items"))?;
            let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(batch_no) + 1, 0) FROM work_items WHERE run = $1")
                .bind(run.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(query_error("number queued work", "work_items"))?;
            let mut ids = Vec::with_capacity(batches.len());
            for (i, payload) in batches.iter().enumerate() {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO work_items (run, batch_no, payload, state, attempts)
                     VALUES ($1, $2, $3, 'queued', 0) RETURNING id",
                )
                .bind(run.0)
                .bind(next + i64::try_from(i).unwrap_or(i64::MAX))
                .bind(payload.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(query_error("queue work", "work_items"))?;
                ids.push(WorkItemId(id));
            }
            tx.commit().await.map_err(query_error("commit queued work", "work_items"))?;
            ids
        });
        Ok(ids)
    }

    /// Claims up to `n` queued items of `run` for `owner`, lowest batch numbers first. Concurrent
    /// claimers (other tasks, other instances) never get the same item.
    pub async fn claim_work(&self, run: RunId, owner: &str, n: u32) -> Result<Vec<WorkItem>, StoreError> {
        let now = Timestamp::now().millis();
        let sql = match self.backend {
            Backend::Sqlite(_) => CLAIM_SQLITE,
            Backend::Postgres(_) => CLAIM_POSTGRES,
        };
        let mut items = with_pool!(self, pool => sqlx::query(sql)
            .bind(run.0)
            .bind(owner)
            .bind(now)
            .bind(i64::from(n))
            .fetch_all(pool)
            .await
            .map_err(query_error("claim work", "work_items"))?
            .iter()
            .map(work_item_from_row)
            .collect::<Result<Vec<_>, _>>()?);
        items.sort_by_key(|i| i.batch_no);
        Ok(items)
    }

    /// Marks an item `owner` claimed as done (`ok`) or failed, with what processing it counted.
    /// Returns `false`, changing nothing, when the item is no longer claimed by `owner` (it was
    /// requeued as stale and someone else took it): the caller's result is then not the one that
    /// counts.
    pub async fn complete_work(
        &self,
        id: WorkItemId,
        owner: &str,
        ok: bool,
        result: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let state = if ok { "done" } else { "failed" };
        let result = result.map(serde_json::Value::to_string);
        let updated = with_pool!(self, pool => sqlx::query(
            "UPDATE work_items SET state = $3, result = $4 WHERE id = $1 AND claimed_by = $2 AND state = 'claimed'",
        )
        .bind(id.0)
        .bind(owner)
        .bind(state)
        .bind(result.as_deref())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(query_error("complete work", "work_items"))?;
        Ok(updated == 1)
    }

    /// Puts back in the queue items claimed at least `older_than` ago (their claimer is presumed
    /// dead). Returns how many.
    pub async fn requeue_stale_work(&self, older_than: Duration) -> Result<u64, StoreError> {
        let cutoff = Timestamp::now().minus(older_than).millis();
        with_pool!(self, pool => sqlx::query(
            "UPDATE work_items SET state = 'queued', claimed_by = NULL, claimed_at = NULL
             WHERE state = 'claimed' AND claimed_at <= $1",
        )
        .bind(cutoff)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(query_error("requeue stale work", "work_items"))
    }

    /// What each done item of `run` recorded when it was completed, in batch order.
    pub async fn work_results(&self, run: RunId) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows: Vec<(Option<String>,)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT result FROM work_items WHERE run = $1 AND state = 'done' ORDER BY batch_no",
        )
        .bind(run.0)
        .fetch_all(pool)
        .await)
        .map_err(query_error("read work results", "work_items"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(r,)| serde_json::from_str(r.as_deref()?).ok())
            .collect())
    }

    /// How many of `run`'s items are in each state.
    pub async fn work_progress(&self, run: RunId) -> Result<WorkProgress, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT state, COUNT(*) FROM work_items WHERE run = $1 GROUP BY state",
        )
        .bind(run.0)
        .fetch_all(pool)
        .await)
        .map_err(query_error("read work progress", "work_items"))?;
        let mut progress = WorkProgress::default();
        for (state, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            match state.as_str() {
                "queued" => progress.queued = n,
                "claimed" => progress.claimed = n,
                "done" => progress.done = n,
                _ => progress.failed = n,
            }
        }
        Ok(progress)
    }
}
