//! Signals: dated events about an account (`technology_adopted`, `renewal_within`, ...), kept
//! once each. The key is (account, kind, subject, date), so re-deriving the same event on every
//! run, or after a crash, stores it once.

use tierd_core::Date;

use crate::error::{query_error, StoreError};
use crate::outbox::{write_events, NewEvent};
use crate::row::{parse_col, StoreRow, WritePool};
use crate::runs::RunId;
use crate::{with_pool, Store, Timestamp};

/// A signal to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignal {
    /// The account.
    pub account: String,
    /// What happened: `technology_adopted`, `renewal_within`, `tier_changed`...
    pub kind: String,
    /// What it happened to (a technology, a competitor), empty when nothing.
    pub subject: String,
    /// The day it happened.
    pub date: Date,
    /// Who saw it: a plugin name, `crm`, `tierd`.
    pub source: String,
}

/// A recorded signal.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredSignal {
    /// What happened.
    pub kind: String,
    /// What it happened to, empty when nothing.
    pub subject: String,
    /// The day it happened.
    pub date: Date,
    /// Who saw it.
    pub source: String,
    /// The run that first recorded it.
    pub run: Option<RunId>,
    /// When it was first recorded.
    pub observed_at: Timestamp,
}

const INSERT: &str = "INSERT INTO signals (account, kind, subject, date, source, run, observed_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (account, kind, subject, date) DO NOTHING";

fn signal_from_row(row: &impl StoreRow, account: &str) -> Result<StoredSignal, StoreError> {
    let decode = query_error("read signals", "signals");
    Ok(StoredSignal {
        kind: row.text("kind").map_err(decode)?,
        subject: row.text("subject").map_err(decode)?,
        date: parse_col(&row.text("date").map_err(decode)?, "signals", "date", account)?,
        source: row.text("source").map_err(decode)?,
        run: row.opt_int("run").map_err(decode)?.map(RunId),
        observed_at: Timestamp(row.int("observed_at").map_err(decode)?),
    })
}

impl Store {
    /// Records `signals` seen by `run`, in one transaction; ones already known are left as they
    /// were. Returns how many were new.
    pub async fn insert_signals(&self, run: Option<RunId>, signals: &[NewSignal]) -> Result<u64, StoreError> {
        if signals.is_empty() {
            return Ok(0);
        }
        let now = Timestamp::now().millis();
        let inserted = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin recording signals", "signals"))?;
            let mut inserted = 0;
            for s in signals {
                inserted += sqlx::query(INSERT)
                    .bind(&s.account)
                    .bind(&s.kind)
                    .bind(&s.subject)
                    .bind(s.date.to_string())
                    .bind(&s.source)
                    .bind(run.map(|r| r.0))
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("record a signal", "signals"))?
                    .rows_affected();
            }
            tx.commit().await.map_err(query_error("commit signals", "signals"))?;
            inserted
        });
        Ok(inserted)
    }

    /// Records `signals` seen by `run` like [`Store::insert_signals`], each with the webhook
    /// events it causes (`technology.adopted`, `renewal.due`, ...): a signal's events are written
    /// to the outbox in the same transaction, and only when the signal is new, so an event
    /// re-derived on every run (or after a crash) is announced once. Returns how many were new.
    pub async fn insert_signals_with_events(
        &self,
        run: Option<RunId>,
        signals: &[(NewSignal, Vec<NewEvent>)],
    ) -> Result<u64, StoreError> {
        if signals.is_empty() {
            return Ok(0);
        }
        let now = Timestamp::now().millis();
        let inserted = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin recording signals", "signals"))?;
            let mut inserted = 0;
            for (s, events) in signals {
                let new = sqlx::query(INSERT)
                    .bind(&s.account)
                    .bind(&s.kind)
                    .bind(&s.subject)
                    .bind(s.date.to_string())
                    .bind(&s.source)
                    .bind(run.map(|r| r.0))
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("record a signal", "signals"))?
                    .rows_affected();
                if new == 1 {
                    write_events!(tx, now, events)?;
                }
                inserted += new;
            }
            tx.commit().await.map_err(query_error("commit signals", "signals"))?;
            inserted
        });
        Ok(inserted)
    }

    /// An account's signals, most recent date first.
    pub async fn signals(&self, account: &str) -> Result<Vec<StoredSignal>, StoreError> {
        let sql = "SELECT kind, subject, date, source, run, observed_at FROM signals
                   WHERE account = $1 ORDER BY date DESC, kind, subject";
        let signals = with_pool!(self, pool => sqlx::query(sql)
            .bind(account)
            .fetch_all(pool)
            .await
            .map_err(query_error("read signals", "signals"))?
            .iter()
            .map(|r| signal_from_row(r, account))
            .collect::<Result<Vec<_>, _>>()?);
        Ok(signals)
    }

    /// Accounts with a signal first recorded at or after `since`, in id order: what an
    /// incremental run rescores besides the accounts the CRM changed.
    pub async fn accounts_with_signals_since(&self, since: Timestamp) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => sqlx::query_scalar(
            "SELECT DISTINCT account FROM signals WHERE observed_at >= $1 ORDER BY account",
        )
        .bind(since.millis())
        .fetch_all(pool)
        .await)
        .map_err(query_error("find accounts with new signals", "signals"))
    }
}
