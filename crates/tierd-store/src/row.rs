//! Reading columns and opening write transactions the same way on both backends.
//!
//! Row decoding is written once, against [`StoreRow`], instead of once per backend; the few
//! column types the schema uses are all it offers. Values that fail to parse as the domain type
//! they stand for become [`StoreError::Corrupt`] with the table, column and row key.

use std::str::FromStr;

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Postgres, Row, Sqlite, Transaction};

use crate::error::StoreError;

/// The typed column getters of a row, for both backends.
pub(crate) trait StoreRow {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn real(&self, col: &str) -> Result<f64, sqlx::Error>;
    fn opt_real(&self, col: &str) -> Result<Option<f64>, sqlx::Error>;
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
    fn opt_flag(&self, col: &str) -> Result<Option<bool>, sqlx::Error>;
    /// Text borrowed from the row: no allocation, for reads that stream millions of rows.
    fn str_ref(&self, col: &str) -> Result<&str, sqlx::Error>;
    /// Nullable text borrowed from the row.
    fn opt_str_ref(&self, col: &str) -> Result<Option<&str>, sqlx::Error>;
}

macro_rules! impl_store_row {
    ($row:ty) => {
        impl StoreRow for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn real(&self, col: &str) -> Result<f64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_real(&self, col: &str) -> Result<Option<f64>, sqlx::Error> {
                self.try_get(col)
            }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_flag(&self, col: &str) -> Result<Option<bool>, sqlx::Error> {
                self.try_get(col)
            }
            fn str_ref(&self, col: &str) -> Result<&str, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_str_ref(&self, col: &str) -> Result<Option<&str>, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}

impl_store_row!(SqliteRow);
impl_store_row!(PgRow);

/// This store's writers taking turns, first come first served: on SQLite a writer waits here
/// for the one before it to commit and is woken the moment it does. Without it each waited in
/// SQLite's busy handler, which sleeps 1 ms, 2 ms, ... up to 100 ms between tries, so the write
/// lock sat idle for part of each sleep after every commit: in a 1M-account run from the file
/// it was held 65% of the time its two commit workers wanted it (`commit_scores`: 98.9 s held,
/// 151 s waited for, in a 151 s scoring phase). Writes of a single statement outside a
/// transaction (a run's start and end, a watermark, purges), other processes and the log
/// keeper's checkpoints still meet the busy handler. Shared by the clones of one
/// [`crate::Store`].
#[derive(Clone, Default)]
pub(crate) struct WriteTurn(std::sync::Arc<tokio::sync::Mutex<()>>);

/// A write transaction and, on SQLite, this store's turn to write, given up when it ends.
/// Statements run on `&mut *tx`, as on a [`Transaction`].
pub(crate) struct WriteTx<DB: sqlx::Database> {
    tx: Transaction<'static, DB>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    /// Commits; the turn passes on once the commit is done.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// Opening a transaction that will write.
pub(crate) trait WritePool {
    type Db: sqlx::Database;
    async fn begin_write(&self, turn: &WriteTurn) -> Result<WriteTx<Self::Db>, sqlx::Error>;
}

impl WritePool for SqlitePool {
    type Db = Sqlite;
    /// Waits for this store's turn, then `BEGIN IMMEDIATE` takes SQLite's write lock up front
    /// (waiting up to the busy timeout for other processes), so a transaction that reads before
    /// it writes cannot fail half-way with `SQLITE_BUSY_SNAPSHOT`.
    async fn begin_write(&self, turn: &WriteTurn) -> Result<WriteTx<Sqlite>, sqlx::Error> {
        let turn = turn.0.clone().lock_owned().await;
        Ok(WriteTx {
            tx: self.begin_with("BEGIN IMMEDIATE").await?,
            _turn: Some(turn),
        })
    }
}

impl WritePool for PgPool {
    type Db = Postgres;
    /// PostgreSQL's writers lock rows, not the database: they need no turns.
    async fn begin_write(&self, _turn: &WriteTurn) -> Result<WriteTx<Postgres>, sqlx::Error> {
        Ok(WriteTx {
            tx: self.begin().await?,
            _turn: None,
        })
    }
}

/// One column of `rows`, for PostgreSQL's array binds (`UNNEST`): a batch's rows go in as one
/// array per column.
pub(crate) fn column<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

/// Parses a stored text column into a domain type, naming the row when it does not parse.
pub(crate) fn parse_col<T>(
    raw: &str,
    table: &'static str,
    column: &'static str,
    key: &str,
) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    raw.parse().map_err(|e: T::Err| StoreError::Corrupt {
        table,
        column,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// A stored JSON column read straight into `T` (fields `T` does not name are skipped, no tree
/// built).
pub(crate) fn json_col_as<T: serde::de::DeserializeOwned>(
    raw: &str,
    table: &'static str,
    column: &'static str,
    key: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        table,
        column,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// A stored JSON column as a JSON tree.
pub(crate) fn json_col(
    raw: &str,
    table: &'static str,
    column: &'static str,
    key: &str,
) -> Result<serde_json::Value, StoreError> {
    json_col_as(raw, table, column, key)
}

/// The items with distinct keys, the last of each kept: a multi-row upsert may not touch a row
/// twice, and the last word on a key is the one that counts.
pub(crate) fn last_per_key<T>(items: &[T], key: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut out: Vec<&T> = items.iter().rev().filter(|i| seen.insert(key(i))).collect();
    out.reverse();
    out
}

/// `$first, $first+1, ...` for `n` values: the placeholder list of an `IN (...)`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&(first + i).to_string());
    }
    out
}

/// `rows` tuples of `per_row` consecutive placeholders from `$first`, each followed by `tail`:
/// the `VALUES` list of a multi-row statement.
pub(crate) fn tuples(first: usize, rows: usize, per_row: usize, tail: &str) -> String {
    let mut out = String::with_capacity(rows * (per_row * 6 + tail.len() + 4));
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        out.push_str(&placeholders(first + r * per_row, per_row));
        out.push_str(tail);
        out.push(')');
    }
    out
}

/// [`tuples`] from `$1` for `backend`, for a statement whose every placeholder these are: on
/// SQLite anonymous `?`s bound in order, because sqlx asks SQLite the name of each numbered
/// parameter and SQLite finds it by a linear scan, so binding a statement of thousands of `$N`
/// costs their square (200 µs a deal in a 500-deal upsert).
pub(crate) fn tuples_for(backend: &crate::Backend, rows: usize, per_row: usize, tail: &str) -> String {
    match backend {
        crate::Backend::Postgres(_) => tuples(1, rows, per_row, tail),
        crate::Backend::Sqlite(_) => anonymous_tuples(rows, per_row, tail),
    }
}

/// [`tuples`] of anonymous `?`s, SQLite's (see [`tuples_for`]).
pub(crate) fn anonymous_tuples(rows: usize, per_row: usize, tail: &str) -> String {
    let row = format!("({}{tail})", anonymous_placeholders(per_row));
    vec![row.as_str(); rows].join(", ")
}

/// `n` anonymous `?`s, SQLite's (see [`tuples_for`]).
pub(crate) fn anonymous_placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// [`placeholders`] from `$1` for `backend`, for a statement whose every placeholder these are
/// (see [`tuples_for`]).
pub(crate) fn placeholders_for(backend: &crate::Backend, n: usize) -> String {
    match backend {
        crate::Backend::Postgres(_) => placeholders(1, n),
        crate::Backend::Sqlite(_) => anonymous_placeholders(n),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    /// A store's writers get their turns in the order they asked for them: when a write commits,
    /// the next in line takes the lock, even when a later writer asks again first and SQLite's
    /// lock is free (busy handlers polling for it would let either win).
    #[tokio::test]
    async fn writers_take_their_turns_in_the_order_they_asked() {
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::Store::connect_sqlite_file(&dir.path().join("turns.db"))
            .await
            .expect("store");
        let crate::Backend::Sqlite(pool) = &store.backend else {
            unreachable!("a SQLite store")
        };
        let first = pool.begin_write(&store.turn).await.expect("first writer");
        let mut second = Box::pin(pool.begin_write(&store.turn));
        let mut third = Box::pin(pool.begin_write(&store.turn));
        assert!(
            (&mut second).now_or_never().is_none(),
            "the second waits for the first"
        );
        assert!((&mut third).now_or_never().is_none(), "the third waits too");
        first.commit().await.expect("first commits");
        assert!(
            (&mut third).now_or_never().is_none(),
            "the lock is free, but the turn is the second writer's"
        );
        let mut second = second.await.expect("the second writer's turn");
        sqlx::query("CREATE TABLE turns (writer TEXT NOT NULL)")
            .execute(&mut *second)
            .await
            .expect("the second writes");
        sqlx::query("INSERT INTO turns (writer) VALUES ('second')")
            .execute(&mut *second)
            .await
            .expect("the second writes");
        assert!(
            (&mut third).now_or_never().is_none(),
            "the third waits for the second"
        );
        second.commit().await.expect("second commits");
        let mut third = third.await.expect("the third writer's turn");
        let (writer,): (String,) = sqlx::query_as("SELECT writer FROM turns")
            .fetch_one(&mut *third)
            .await
            .expect("read");
        assert_eq!(writer, "second", "the third writes after the second's commit");
        third.commit().await.expect("third commits");
    }
}
