//! Runs: one row per pull-enrich-score-tier-push pass, with its kind, status, owner, watermark and
//! statistics. A partial unique index allows at most one `running` row, so two schedulers (or two
//! instances) can never start overlapping runs, whatever their clocks say.

use std::fmt;
use std::str::FromStr;

use crate::error::{query_error, StoreError};
use crate::outbox::{write_events, NewEvent};
use crate::row::{json_col, parse_col, StoreRow, WritePool};
use crate::{with_pool, Store, Timestamp};

/// A run's id.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Every account, enrichment refreshed, tiers free to move.
    Full,
    /// Accounts changed since the watermark, plus those with new signals.
    Incremental,
    /// The whole pipeline, nothing pushed.
    DryRun,
    /// A candidate model on a subset, nothing pushed.
    Pilot,
}

impl RunKind {
    /// The stored name: `full`, `incremental`, `dry_run`, `pilot`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Incremental => "incremental",
            RunKind::DryRun => "dry_run",
            RunKind::Pilot => "pilot",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(RunKind::Full),
            "incremental" => Ok(RunKind::Incremental),
            "dry_run" => Ok(RunKind::DryRun),
            "pilot" => Ok(RunKind::Pilot),
            other => Err(format!(
                "'{other}' is not a run kind (full, incremental, dry_run, pilot)"
            )),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// In progress (at most one at a time).
    Running,
    /// Finished, everything done.
    Succeeded,
    /// Stopped on an error, recorded in [`Run::error`].
    Failed,
    /// Its process stopped (crash, kill) before it finished; found so at the next start.
    Interrupted,
}

impl RunStatus {
    /// The stored name: `running`, `succeeded`, `failed`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            "interrupted" => Ok(RunStatus::Interrupted),
            other => Err(format!(
                "'{other}' is not a run status (running, succeeded, failed, interrupted)"
            )),
        }
    }
}

/// One run as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Run {
    /// Its id (increasing).
    pub id: RunId,
    /// What it does.
    pub kind: RunKind,
    /// Where it is.
    pub status: RunStatus,
    /// The scoring model's `name@version` it used.
    pub model_version: String,
    /// The instance that started it.
    pub owner: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it finished (or was found interrupted).
    pub finished_at: Option<Timestamp>,
    /// The CRM watermark it reached (opaque to the store), for the next incremental run.
    pub watermark: Option<String>,
    /// Its statistics, as the daemon recorded them.
    pub stats: Option<serde_json::Value>,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
}

const RUN_COLUMNS: &str =
    "id, kind, status, model_version, owner, started_at, finished_at, watermark, stats, error";

fn run_from_row(row: &impl StoreRow) -> Result<Run, StoreError> {
    let decode = query_error("read a run", "runs");
    let id = row.int("id").map_err(decode)?;
    let key = id.to_string();
    let stats = row.opt_text("stats").map_err(decode)?;
    Ok(Run {
        id: RunId(id),
        kind: parse_col(&row.text("kind").map_err(decode)?, "runs", "kind", &key)?,
        status: parse_col(&row.text("status").map_err(decode)?, "runs", "status", &key)?,
        model_version: row.text("model_version").map_err(decode)?,
        owner: row.text("owner").map_err(decode)?,
        started_at: Timestamp(row.int("started_at").map_err(decode)?),
        finished_at: row.opt_int("finished_at").map_err(decode)?.map(Timestamp),
        watermark: row.opt_text("watermark").map_err(decode)?,
        stats: stats.map(|s| json_col(&s, "runs", "stats", &key)).transpose()?,
        error: row.opt_text("error").map_err(decode)?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Starts a run, or says which run is still running ([`StoreError::RunInProgress`]).
    pub async fn begin_run(
        &self,
        kind: RunKind,
        model_version: &str,
        owner: &str,
    ) -> Result<RunId, StoreError> {
        // The running run may finish between the refused insert and the look-up; then try again.
        for _ in 0..3 {
            let inserted = with_pool!(self, pool => sqlx::query_scalar(
                "INSERT INTO runs (kind, status, model_version, owner, started_at)
                 VALUES ($1, 'running', $2, $3, $4) RETURNING id",
            )
            .bind(kind.as_str())
            .bind(model_version)
            .bind(owner)
            .bind(Timestamp::now().millis())
            .fetch_one(pool)
            .await);
            match inserted {
                Ok(id) => return Ok(RunId(id)),
                Err(e) if is_unique_violation(&e) => {
                    if let Some(running) = self.running_run().await? {
                        return Err(StoreError::RunInProgress {
                            id: running.id,
                            owner: running.owner,
                            started_at: running.started_at,
                        });
                    }
                }
                Err(source) => {
                    return Err(StoreError::Query {
                        op: "start a run",
                        table: "runs",
                        source,
                    })
                }
            }
        }
        Err(StoreError::Invalid {
            op: "start a run",
            detail: "other runs kept starting and finishing in between; try again".to_string(),
        })
    }

    /// The run in progress, if any.
    pub async fn running_run(&self) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running'");
        let row = with_pool!(self, pool => sqlx::query(&sql)
            .fetch_optional(pool)
            .await
            .map_err(query_error("find the running run", "runs"))?
            .map(|r| run_from_row(&r))
            .transpose()?);
        Ok(row)
    }

    /// Ends a running run with `status` (not `Running`), its statistics and error.
    pub async fn finish_run(
        &self,
        id: RunId,
        status: RunStatus,
        stats: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.finish_run_with_events(id, status, stats, error, &[]).await
    }

    /// [`Store::finish_run`], writing the webhook events it causes (`run.finished`,
    /// `run.failed`) to the outbox in the same transaction: they exist exactly when the run is
    /// finished.
    pub async fn finish_run_with_events(
        &self,
        id: RunId,
        status: RunStatus,
        stats: &serde_json::Value,
        error: Option<&str>,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        if status == RunStatus::Running {
            return Err(StoreError::Invalid {
                op: "finish a run",
                detail: format!("run {id} cannot finish with status 'running'"),
            });
        }
        let now = Timestamp::now().millis();
        let failed = query_error("finish a run", "runs");
        let done = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(failed)?;
            let done = sqlx::query(
                "UPDATE runs SET status = $2, finished_at = $3, stats = $4, error = $5
                 WHERE id = $1 AND status = 'running'",
            )
            .bind(id.0)
            .bind(status.as_str())
            .bind(now)
            .bind(stats.to_string())
            .bind(error)
            .execute(&mut *tx)
            .await
            .map_err(failed)?
            .rows_affected();
            if done == 1 {
                write_events!(tx, now, events)?;
                tx.commit().await.map_err(failed)?;
            }
            done
        });
        if done == 1 {
            return Ok(());
        }
        match self.run(id).await? {
            Some(run) => Err(StoreError::RunNotRunning {
                id,
                status: run.status,
            }),
            None => Err(StoreError::UnknownRun { id }),
        }
    }

    /// Marks runs left `running` by a process that is gone as `interrupted`: those of `owner`, or
    /// all of them with `None` (a single instance at start; a new leader for a dead one). Returns
    /// the runs so marked.
    pub async fn interrupt_stale_runs(&self, owner: Option<&str>) -> Result<Vec<RunId>, StoreError> {
        let mut ids: Vec<RunId> = with_pool!(self, pool => sqlx::query_scalar(
            "UPDATE runs SET status = 'interrupted', finished_at = $1,
                 error = COALESCE(error, 'the process running it stopped before it finished')
             WHERE status = 'running' AND ($2 IS NULL OR owner = $2)
             RETURNING id",
        )
        .bind(Timestamp::now().millis())
        .bind(owner)
        .fetch_all(pool)
        .await)
        .map_err(query_error("mark stale runs interrupted", "runs"))?
        .into_iter()
        .map(RunId)
        .collect();
        ids.sort();
        for id in &ids {
            tracing::warn!(
                run = id.0,
                "run left running by a stopped process marked interrupted"
            );
        }
        Ok(ids)
    }

    /// One run.
    pub async fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let run = with_pool!(self, pool => sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(pool)
            .await
            .map_err(query_error("read a run", "runs"))?
            .map(|r| run_from_row(&r))
            .transpose()?);
        Ok(run)
    }

    /// The latest `limit` runs, newest first.
    pub async fn runs(&self, limit: u32) -> Result<Vec<Run>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT $1");
        let runs = with_pool!(self, pool => sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(query_error("list runs", "runs"))?
            .iter()
            .map(run_from_row)
            .collect::<Result<Vec<_>, _>>()?);
        Ok(runs)
    }

    /// The latest run of `kind` with `status` (`None`: any).
    pub async fn last_run(
        &self,
        kind: Option<RunKind>,
        status: Option<RunStatus>,
    ) -> Result<Option<Run>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR status = $2)
             ORDER BY id DESC LIMIT 1"
        );
        let run = with_pool!(self, pool => sqlx::query(&sql)
            .bind(kind.map(RunKind::as_str))
            .bind(status.map(RunStatus::as_str))
            .fetch_optional(pool)
            .await
            .map_err(query_error("find the last run", "runs"))?
            .map(|r| run_from_row(&r))
            .transpose()?);
        Ok(run)
    }

    /// Records the CRM watermark `run` has reached.
    pub async fn set_watermark(&self, run: RunId, watermark: &str) -> Result<(), StoreError> {
        let updated = with_pool!(self, pool => sqlx::query("UPDATE runs SET watermark = $2 WHERE id = $1")
            .bind(run.0)
            .bind(watermark)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(query_error("set a run's watermark", "runs"))?;
        if updated == 0 {
            return Err(StoreError::UnknownRun { id: run });
        }
        Ok(())
    }
}
