//! tierd-store: everything tierd remembers between runs, on SQLite (default, embedded) or
//! PostgreSQL (several instances sharing one database).
//!
//! Owns the schema and its migrations, and the tables behind them: `runs`, `accounts` (latest
//! score, tier, what was last pushed, lock) with `account_texts` (its facts and explanation,
//! most of its bytes, apart so that a tier or push update writes a small row), `tier_history`, `facts_cache`,
//! `signals`, `checkpoints`, `pending_pushes` (records the CRM rejected), `work_items` (the
//! PostgreSQL work queue) and the webhook outbox (`webhook_events`, `webhook_deliveries`,
//! `webhook_attempts`, `webhook_endpoints`), `tier_counts`, deals with their history
//! (`deals`, `deal_history`) and the shadow model's scores and tier history (`shadow_scores`,
//! `shadow_history`, `shadow.rs`); the reports read from them (`reports.rs`). It must not depend on
//! connectors or plugins: it stores their results as
//! JSON and domain types from `tierd-core`, and knows nothing of how they were obtained.
//!
//! # One store, two backends
//!
//! [`Store`] wraps either pool. Almost every statement is the same SQL text on both (`$1`
//! placeholders, epoch-millisecond `BIGINT` timestamps, JSON as `TEXT`, `ON CONFLICT ... DO
//! UPDATE`, partial unique indexes), run by a macro against whichever pool is there, so the two
//! backends cannot drift apart. Only the schema files and the multi-instance primitives differ.
//!
//! # The crash-safety contract
//!
//! The daemon pushes a batch of tier changes to the CRM, then hands the outcome to
//! [`Store::commit_batch`] together with the batch's new account state. That call is **one
//! transaction**: the scored accounts, their tier-history rows, the pushed tier, score bucket,
//! reason and time of every accepted record, the pending-push rows of every rejected one, and the
//! run's checkpoint either all land or none do. Therefore:
//!
//! - an account whose push was committed is never pushed again for the same tier, whatever
//!   happens to the process afterwards, because the next diff is against `pushed_tier`;
//! - a rejected record stays in `pending_pushes` until a later batch records it as pushed, clears
//!   it, or marks it permanently invalid; nothing is lost across restarts;
//! - a restart resumes after the last checkpoint, and never sees a checkpoint ahead of the state
//!   it covers.
//!
//! The one window the store cannot close alone is a crash after the CRM accepted a push and before
//! the commit: the daemon closes it by diffing against the tier the CRM reports on the next pull
//! (`crm_tier_seen`), so a value already there is not written again.
//!
//! On SQLite the database runs in WAL mode with `synchronous = NORMAL`: a committed batch survives
//! the process being killed (`kill -9`); only a power cut may lose the last commits, which the
//! rule above then repairs. A store's own write transactions take turns in the process, first
//! come first served (`row::WriteTurn`), so the lock passes from one to the next as it is
//! released; SQLite's busy handler is left to settle with other processes.
//!
//! # Multi-instance
//!
//! On PostgreSQL, [`Store::try_lead`] takes a session advisory lock on a dedicated connection held
//! by the returned [`LeaderGuard`] (the lock dies with the connection, so a crashed leader's
//! standby takes over as soon as the server notices), and the work queue
//! ([`Store::enqueue_work`], [`Store::claim_work`]) hands each batch to exactly one instance with
//! `FOR UPDATE SKIP LOCKED`. On SQLite, which serves a single instance, leadership is always
//! granted and the queue works the same way, serialised by SQLite's write lock.

mod accounts;
mod cache;
mod cluster;
mod deals;
mod error;
mod migrate;
mod outbox;
mod reports;
mod row;
mod runs;
mod shadow;
mod signals;
mod wal;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Connection;

pub use accounts::{
    AccountState, AccountSummary, BatchCommit, Checkpoint, Engagement, JsonText, PendingPush, PushRecord,
    PushedState, RejectedPush, Rescored, ScoredAccount, TierChange,
};
pub use cache::CachedFacts;
pub use cluster::{LeaderGuard, WorkItem, WorkItemId, WorkProgress};
pub use deals::{DealEvent, DealRecord, DealSync, ReportDeal, StoredDeal, TierEvent};
pub use error::{redact_url, StoreError};
pub use outbox::{
    AttemptRecord, ClaimedDelivery, DeliveryAttempt, DeliveryCounts, DeliveryId, DeliveryOutcome,
    DeliveryRecord, DeliveryState, DisabledEndpoint, NewEvent,
};
pub use reports::{
    AccountListing, AccountPage, AccountQuery, Movement, MovementReport, PyramidPoint, RejectionGroup,
    TierCounts, MAX_PAGE,
};
pub use runs::{Run, RunId, RunKind, RunStatus};
pub use shadow::ShadowScore;
pub use signals::{NewSignal, StoredSignal};

/// Runs the same code against whichever pool the store has. `$pool` is bound to a `&SqlitePool`
/// in one arm and a `&PgPool` in the other, so the body must compile for both: that is what keeps
/// the SQL of the two backends one text.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The steps of SQLite's plan for `sql` (`EXPLAIN QUERY PLAN`) on a new in-memory store, its
/// parameters bound by `bind`: for tests that a statement seeks where it should.
#[cfg(test)]
pub(crate) async fn sqlite_plan(
    sql: &str,
    bind: impl for<'q> FnOnce(
        sqlx::query::QueryAs<'q, sqlx::Sqlite, (i64, i64, i64, String), sqlx::sqlite::SqliteArguments<'q>>,
    ) -> sqlx::query::QueryAs<
        'q,
        sqlx::Sqlite,
        (i64, i64, i64, String),
        sqlx::sqlite::SqliteArguments<'q>,
    >,
) -> Vec<String> {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    let Backend::Sqlite(pool) = &store.backend else {
        panic!("a SQLite store");
    };
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    bind(sqlx::query_as(&explain))
        .fetch_all(pool)
        .await
        .expect("plan")
        .into_iter()
        .map(|(_, _, _, step)| step)
        .collect()
}

/// The pool behind a [`Store`].
#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the store: cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    /// Its writers' turns ([`row::WriteTurn`]).
    pub(crate) turn: row::WriteTurn,
}

/// Only the backend's name: the pools' own `Debug` would print their connect options, password
/// included.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish()
    }
}

/// Milliseconds since the Unix epoch, UTC: how every time is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The wall clock now.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp(ms)
    }

    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// This instant moved `d` later (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// This instant moved `d` earlier (saturating).
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ms since epoch", self.0)
    }
}

/// Where the store lives unless configured: a SQLite file under the data directory.
pub const DEFAULT_URL: &str = "sqlite://data/tierd.db";

/// Connections per pool. SQLite serialises writers anyway; the extra connections serve reads
/// (the admin API) while a batch commits.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long a SQLite writer waits for another before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`: `sqlite://PATH` (the file and
    /// its directory are created), `sqlite::memory:` (one connection, gone when the store is
    /// dropped), or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
            return Store::connect_postgres(options).await;
        }
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            let options = SqliteConnectOptions::new().in_memory(true).foreign_keys(true);
            // Each in-memory connection is its own database: keep exactly one, forever.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect {
                    url: url.to_string(),
                    source,
                })?;
            return Store::migrated(Backend::Sqlite(pool)).await;
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            return Store::connect_sqlite_file(Path::new(path)).await;
        }
        Err(StoreError::UnsupportedUrl { url: redact_url(url) })
    }

    /// Opens (creating if needed) and migrates the SQLite store in the file at `path`.
    /// Folders and the file tierd creates are owner-only (0700, 0600 on Unix): the store holds
    /// scores, facts, reasons and plugin state. Existing ones keep their modes.
    pub async fn connect_sqlite_file(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            owner_only_dir(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // SQLite gives its -wal and -shm files the database file's mode.
        owner_only_file(path).map_err(|source| StoreError::Connect {
            url: format!("sqlite://{}", path.display()),
            source: sqlx::Error::Io(source),
        })?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            // Statement journals (an upsert of many rows keeps one) in memory, not a temp file.
            .pragma("temp_store", "memory")
            // The log is started over by `wal::keep`, and cut back to this size when it is.
            .pragma("journal_size_limit", wal::LOG_SIZE_LIMIT.to_string())
            // `wal::keep` does every checkpoint: a commit does not wait for one.
            .pragma("wal_autocheckpoint", "0");
        let url = format!("sqlite://{}", path.display());
        // As for PostgreSQL: a plain connection reports why the file cannot be opened.
        let probe = SqliteConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::Connect {
                url: url.clone(),
                source,
            })?;
        let _ = probe.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Connect { url, source })?;
        wal::keep(pool.clone(), options);
        Store::migrated(Backend::Sqlite(pool)).await
    }

    /// Opens and migrates a PostgreSQL store with explicit options (e.g. a `search_path`).
    pub async fn connect_postgres(options: PgConnectOptions) -> Result<Store, StoreError> {
        // Statements are prepared once per connection, and after five runs PostgreSQL may switch a
        // prepared statement to a generic plan made while `accounts` was small: the batch joins
        // against it then turn into sequential scans, 5x slower at 100k accounts (measured).
        // Planning each execution costs far less.
        let options = options.options([("plan_cache_mode", "force_custom_plan")]);
        let url = format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        // One plain connection first: the pool would retry until its timeout and then report only
        // that it timed out, hiding the server's answer (refused, unknown database, bad password).
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::Connect {
                url: url.clone(),
                source,
            })?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { url, source })?;
        Store::migrated(Backend::Postgres(pool)).await
    }

    async fn migrated(backend: Backend) -> Result<Store, StoreError> {
        let store = Store {
            backend,
            turn: row::WriteTurn::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Whether several instances can share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Checks the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(error::query_error("ping the database", "-"))
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// Creates `dir` and any missing parents, owner-only on Unix.
fn owner_only_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the file at `path` empty and owner-only (on Unix) unless it exists.
fn owner_only_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
