//! The webhook outbox: events written in the same transaction as the change that caused them,
//! their deliveries to each endpoint, the log of every attempt, and the endpoints switched off.
//!
//! Durability is the point. An event exists only if its cause committed, and it stays until a
//! delivery worker records an outcome for it, so a process killed between the commit and the
//! delivery delivers it after the restart, with the same `webhook-id`. A claimed delivery carries
//! a lease (`claimed_until`): a worker that dies mid-request leaves it to be claimed again once
//! the lease has passed. On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so several instances
//! share the work without ever sending the same attempt twice at once.
//!
//! The store knows endpoints by name only. What to send where, how to sign it and when to retry
//! are the caller's (tierd-activation's) decisions: this module only records them. Times come
//! from the caller too (`now` arguments), so the retry schedule is testable without sleeping.

use std::time::Duration;

use crate::error::{query_error, StoreError};
use crate::row::{placeholders, StoreRow, WritePool};
use crate::{with_pool, Backend, Store, Timestamp};

/// An event to deliver, written by [`Store::enqueue_events`] or with the change that caused it
/// ([`crate::BatchCommit::events`], [`Store::finish_run_with_events`],
/// [`Store::insert_signals_with_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The `webhook-id`: unique, the same on every attempt (the receiver's idempotency key).
    pub id: String,
    /// The event type, e.g. `tier.changed`.
    pub kind: String,
    /// The exact body to send and sign.
    pub body: String,
    /// When the event happened.
    pub occurred_at: Timestamp,
    /// The endpoints (by configured name) to deliver it to; an event for none is not stored.
    pub endpoints: Vec<String>,
}

/// A delivery's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub i64);

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A delivery claimed by a worker: what to send, to which endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// The endpoint's configured name.
    pub endpoint: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The `webhook-id`.
    pub event_id: String,
    /// The event type.
    pub kind: String,
    /// The body to send.
    pub body: String,
    /// When the event happened.
    pub occurred_at: Timestamp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// Claimed by a worker now.
    Delivering,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: the last retry failed, or the endpoint answered 410.
    Failed,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivering => "delivering",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(DeliveryState::Pending),
            "delivering" => Ok(DeliveryState::Delivering),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            other => Err(format!("unknown delivery state '{other}'")),
        }
    }
}

/// What an attempt led to, decided by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint took it.
    Delivered,
    /// Try again at this time.
    Retry {
        /// The next attempt's time.
        at: Timestamp,
    },
    /// Stop trying; with a reason, also switch the endpoint off (410, or retries exhausted).
    Failed {
        /// Why the endpoint is disabled, when it is.
        disable_endpoint: Option<String>,
    },
}

/// One HTTP attempt, as recorded by [`Store::record_delivery_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// When it was made.
    pub at: Timestamp,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    /// What went wrong, when something did (never a secret or a URL with credentials).
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
    /// What it led to.
    pub outcome: DeliveryOutcome,
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRecord {
    /// The delivery.
    pub id: DeliveryId,
    /// The `webhook-id`.
    pub event_id: String,
    /// The event type.
    pub kind: String,
    /// The endpoint's name.
    pub endpoint: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Timestamp,
    /// The last HTTP status.
    pub last_status: Option<u16>,
    /// The last error.
    pub last_error: Option<String>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<Timestamp>,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// When the event happened.
    pub occurred_at: Timestamp,
}

/// One logged attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRecord {
    /// Its number, from 1.
    pub attempt: u32,
    /// When.
    pub at: Timestamp,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The instance that made it.
    pub owner: String,
}

/// An endpoint switched off.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DisabledEndpoint {
    /// Its configured name.
    pub name: String,
    /// Since when.
    pub at: Timestamp,
    /// Why.
    pub reason: String,
}

/// Deliveries per state (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCounts {
    /// Waiting for an attempt.
    pub pending: u64,
    /// Being sent.
    pub delivering: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up.
    pub failed: u64,
}

/// Rows per multi-row statement of the outbox: events bind 4 values each, deliveries 2.
pub(crate) const EVENTS_PER_STATEMENT: usize = 100;
pub(crate) const DELIVERIES_PER_STATEMENT: usize = 200;

/// `INSERT` of `rows` events; `$1` is the write time.
pub(crate) fn insert_events_sql(rows: usize) -> String {
    format!(
        "INSERT INTO webhook_events (event_id, type, payload, occurred_at, created_at) VALUES {}",
        crate::row::tuples(2, rows, 4, ", $1")
    )
}

/// `INSERT` of `rows` deliveries, each `(event_id, endpoint)`, joined to their events by the
/// unique `event_id` (not by the order of a `RETURNING`, which SQL does not promise), numbered
/// in event order then endpoint name, so claims go oldest event first. A new delivery is due at
/// once, whatever the clock.
pub(crate) fn insert_deliveries_sql(rows: usize) -> String {
    format!(
        "INSERT INTO webhook_deliveries (event, endpoint, state, attempts, next_attempt_at)
         SELECT e.id, v.column2, 'pending', 0, 0
         FROM (VALUES {}) AS v JOIN webhook_events e ON e.event_id = v.column1
         ORDER BY e.id, v.column2",
        crate::row::tuples(1, rows, 2, "")
    )
}

/// Inserts `$events` (a slice of `NewEvent`) and their deliveries in the open transaction `$tx`,
/// a few multi-row statements per hundred events. A macro, not a function, because each
/// backend's transaction is its own type (see `with_pool!`); evaluates to
/// `Result<(), StoreError>`.
macro_rules! write_events {
    ($tx:expr, $now:expr, $events:expr) => {{
        let events: Vec<&$crate::NewEvent> = $events.iter().filter(|e| !e.endpoints.is_empty()).collect();
        let deliveries: Vec<(&str, &str)> = events
            .iter()
            .flat_map(|e| {
                e.endpoints
                    .iter()
                    .map(move |endpoint| (e.id.as_str(), endpoint.as_str()))
            })
            .collect();
        let mut written: Result<(), $crate::StoreError> = Ok(());
        for chunk in events.chunks($crate::outbox::EVENTS_PER_STATEMENT) {
            let sql = $crate::outbox::insert_events_sql(chunk.len());
            let mut insert = sqlx::query(&sql).bind($now);
            for e in chunk {
                insert = insert
                    .bind(&e.id)
                    .bind(&e.kind)
                    .bind(&e.body)
                    .bind(e.occurred_at.millis());
            }
            if let Err(source) = insert.execute(&mut *$tx).await {
                written = Err($crate::StoreError::Query {
                    op: "write webhook events",
                    table: "webhook_events",
                    source,
                });
                break;
            }
        }
        if written.is_ok() {
            for chunk in deliveries.chunks($crate::outbox::DELIVERIES_PER_STATEMENT) {
                let sql = $crate::outbox::insert_deliveries_sql(chunk.len());
                let mut insert = sqlx::query(&sql);
                for (event, endpoint) in chunk {
                    insert = insert.bind(*event).bind(*endpoint);
                }
                if let Err(source) = insert.execute(&mut *$tx).await {
                    written = Err($crate::StoreError::Query {
                        op: "queue webhook deliveries",
                        table: "webhook_deliveries",
                        source,
                    });
                    break;
                }
            }
        }
        written
    }};
}
pub(crate) use write_events;

/// Claimable: pending and due, or claimed by a worker whose lease ran out. `$1` owner, `$2` now,
/// `$3` lease end, `$4` limit, endpoints from `$5`.
fn claim_sql(endpoints: usize, postgres: bool) -> String {
    format!(
        "UPDATE webhook_deliveries SET state = 'delivering', claimed_by = $1, claimed_until = $3
        WHERE id IN (SELECT d.id FROM webhook_deliveries d
            WHERE ((d.state = 'pending' AND d.next_attempt_at <= $2)
                   OR (d.state = 'delivering' AND d.claimed_until <= $2))
              AND d.endpoint IN ({})
              AND NOT EXISTS (SELECT 1 FROM webhook_endpoints w
                              WHERE w.name = d.endpoint AND w.disabled_at IS NOT NULL)
            ORDER BY d.next_attempt_at, d.id LIMIT $4{})
        RETURNING id",
        placeholders(5, endpoints),
        // SQLite has one writer at a time; PostgreSQL claimers skip each other's rows.
        if postgres { " FOR UPDATE SKIP LOCKED" } else { "" }
    )
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint, d.state, d.attempts, d.next_attempt_at, d.last_status,
    d.last_error, d.last_attempt_at, d.delivered_at, e.event_id, e.type, e.payload, e.occurred_at";

fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn to_status(n: Option<i64>) -> Option<u16> {
    n.and_then(|s| u16::try_from(s).ok())
}

fn claimed_from_row(row: &impl StoreRow) -> Result<ClaimedDelivery, sqlx::Error> {
    Ok(ClaimedDelivery {
        id: DeliveryId(row.int("id")?),
        endpoint: row.text("endpoint")?,
        attempts: to_u32(row.int("attempts")?),
        event_id: row.text("event_id")?,
        kind: row.text("type")?,
        body: row.text("payload")?,
        occurred_at: Timestamp(row.int("occurred_at")?),
    })
}

fn record_from_row(row: &impl StoreRow) -> Result<DeliveryRecord, StoreError> {
    let decode = query_error("read webhook deliveries", "webhook_deliveries");
    let id = row.int("id").map_err(decode)?;
    let state = row.text("state").map_err(decode)?;
    Ok(DeliveryRecord {
        id: DeliveryId(id),
        event_id: row.text("event_id").map_err(decode)?,
        kind: row.text("type").map_err(decode)?,
        endpoint: row.text("endpoint").map_err(decode)?,
        state: crate::row::parse_col(&state, "webhook_deliveries", "state", &id.to_string())?,
        attempts: to_u32(row.int("attempts").map_err(decode)?),
        next_attempt_at: Timestamp(row.int("next_attempt_at").map_err(decode)?),
        last_status: to_status(row.opt_int("last_status").map_err(decode)?),
        last_error: row.opt_text("last_error").map_err(decode)?,
        last_attempt_at: row.opt_int("last_attempt_at").map_err(decode)?.map(Timestamp),
        delivered_at: row.opt_int("delivered_at").map_err(decode)?.map(Timestamp),
        occurred_at: Timestamp(row.int("occurred_at").map_err(decode)?),
    })
}

impl Store {
    /// Writes events that no other change causes (e.g. a test event), in one transaction.
    pub async fn enqueue_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.iter().all(|e| e.endpoints.is_empty()) {
            return Ok(());
        }
        let now = Timestamp::now().millis();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin writing webhook events", "webhook_events"))?;
            write_events!(tx, now, events)?;
            tx.commit().await.map_err(query_error("commit webhook events", "webhook_events"))?;
        });
        Ok(())
    }

    /// Claims up to `n` deliveries due at `now` for the endpoints named in `endpoints` (the ones
    /// this instance can sign for), oldest first, for `lease`: until `now + lease` no other
    /// worker takes them; after it, a worker that died mid-request is presumed dead and they can
    /// be claimed again (and sent again with the same `webhook-id`). Deliveries of disabled
    /// endpoints are left alone.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        endpoints: &[String],
        now: Timestamp,
        lease: Duration,
        n: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if endpoints.is_empty() || n == 0 {
            return Ok(Vec::new());
        }
        let claim = claim_sql(endpoints.len(), matches!(self.backend, Backend::Postgres(_)));
        let failed = query_error("claim webhook deliveries", "webhook_deliveries");
        let mut claimed = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(failed)?;
            let mut query = sqlx::query_scalar::<_, i64>(&claim)
                .bind(owner)
                .bind(now.millis())
                .bind(now.plus(lease).millis())
                .bind(i64::from(n));
            for endpoint in endpoints {
                query = query.bind(endpoint);
            }
            let ids = query.fetch_all(&mut *tx).await.map_err(failed)?;
            let mut claimed = Vec::with_capacity(ids.len());
            if !ids.is_empty() {
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event
                     WHERE d.id IN ({})",
                    placeholders(1, ids.len())
                );
                let mut read = sqlx::query(&sql);
                for id in &ids {
                    read = read.bind(id);
                }
                for row in read.fetch_all(&mut *tx).await.map_err(failed)? {
                    claimed.push(claimed_from_row(&row).map_err(failed)?);
                }
            }
            tx.commit().await.map_err(failed)?;
            claimed
        });
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Records an attempt of a delivery `owner` claimed, and its outcome, in one transaction:
    /// the attempt log row, the delivery's new state, and the endpoint switched off when the
    /// outcome says so. Returns `false`, changing nothing, when `owner` no longer holds the claim
    /// (its lease ran out and another worker took the delivery).
    pub async fn record_delivery_attempt(
        &self,
        delivery: DeliveryId,
        owner: &str,
        attempt: &DeliveryAttempt,
    ) -> Result<bool, StoreError> {
        let (state, next_at, delivered_at) = match &attempt.outcome {
            DeliveryOutcome::Delivered => (DeliveryState::Delivered, attempt.at, Some(attempt.at.millis())),
            DeliveryOutcome::Retry { at } => (DeliveryState::Pending, *at, None),
            DeliveryOutcome::Failed { .. } => (DeliveryState::Failed, attempt.at, None),
        };
        let disable = match &attempt.outcome {
            DeliveryOutcome::Failed { disable_endpoint } => disable_endpoint.as_deref(),
            _ => None,
        };
        let failed = query_error("record a webhook delivery attempt", "webhook_deliveries");
        let recorded = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(failed)?;
            let updated: Option<(String, i64)> = sqlx::query_as(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, state = $3, next_attempt_at = $4,
                    claimed_by = NULL, claimed_until = NULL, last_status = $5, last_error = $6,
                    last_attempt_at = $7, delivered_at = $8
                 WHERE id = $1 AND claimed_by = $2 AND state = 'delivering'
                 RETURNING endpoint, attempts",
            )
            .bind(delivery.0)
            .bind(owner)
            .bind(state.as_str())
            .bind(next_at.millis())
            .bind(attempt.status.map(i64::from))
            .bind(attempt.error.as_deref())
            .bind(attempt.at.millis())
            .bind(delivered_at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
            match updated {
                None => false,
                Some((endpoint, attempts)) => {
                    sqlx::query(
                        "INSERT INTO webhook_attempts (delivery, attempt, at, status, error, duration_ms, owner)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(delivery.0)
                    .bind(attempts)
                    .bind(attempt.at.millis())
                    .bind(attempt.status.map(i64::from))
                    .bind(attempt.error.as_deref())
                    .bind(i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX))
                    .bind(owner)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("log a webhook delivery attempt", "webhook_attempts"))?;
                    if let Some(reason) = disable {
                        sqlx::query(
                            "INSERT INTO webhook_endpoints (name, disabled_at, reason) VALUES ($1, $2, $3)
                             ON CONFLICT (name) DO UPDATE SET disabled_at = excluded.disabled_at,
                                reason = excluded.reason
                             WHERE webhook_endpoints.disabled_at IS NULL",
                        )
                        .bind(&endpoint)
                        .bind(attempt.at.millis())
                        .bind(reason)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("disable a webhook endpoint", "webhook_endpoints"))?;
                    }
                    tx.commit().await.map_err(failed)?;
                    true
                }
            }
        });
        Ok(recorded)
    }

    /// Deliveries, newest first, up to `limit`, before `before` when paging; only `endpoint`'s
    /// when given ([`deliveries_sql`]).
    pub async fn webhook_deliveries(
        &self,
        endpoint: Option<&str>,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = deliveries_sql(endpoint.is_some(), before.is_some());
        let records = with_pool!(self, pool => {
            let mut query = sqlx::query(&sql).bind(i64::from(limit));
            if let Some(endpoint) = endpoint {
                query = query.bind(endpoint);
            }
            if let Some(before) = before {
                query = query.bind(before.0);
            }
            query
                .fetch_all(pool)
                .await
                .map_err(query_error("read webhook deliveries", "webhook_deliveries"))?
                .iter()
                .map(record_from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(records)
    }

    /// A delivery's attempts, first first.
    pub async fn webhook_attempts(&self, delivery: DeliveryId) -> Result<Vec<AttemptRecord>, StoreError> {
        let failed = query_error("read webhook attempts", "webhook_attempts");
        let attempts = with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT attempt, at, status, error, duration_ms, owner FROM webhook_attempts
                 WHERE delivery = $1 ORDER BY attempt, id",
            )
            .bind(delivery.0)
            .fetch_all(pool)
            .await
            .map_err(failed)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(AttemptRecord {
                    attempt: to_u32(row.int("attempt").map_err(failed)?),
                    at: Timestamp(row.int("at").map_err(failed)?),
                    status: to_status(row.opt_int("status").map_err(failed)?),
                    error: row.opt_text("error").map_err(failed)?,
                    duration_ms: row.int("duration_ms").map_err(failed)?,
                    owner: row.text("owner").map_err(failed)?,
                });
            }
            out
        });
        Ok(attempts)
    }

    /// The endpoints switched off, by name.
    pub async fn disabled_webhook_endpoints(&self) -> Result<Vec<DisabledEndpoint>, StoreError> {
        let rows: Vec<(String, i64, Option<String>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT name, disabled_at, reason FROM webhook_endpoints WHERE disabled_at IS NOT NULL ORDER BY name",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_error("read disabled webhook endpoints", "webhook_endpoints"))?;
        Ok(rows
            .into_iter()
            .map(|(name, at, reason)| DisabledEndpoint {
                name,
                at: Timestamp(at),
                reason: reason.unwrap_or_default(),
            })
            .collect())
    }

    /// Switches an endpoint back on; its pending deliveries resume. Returns whether it was off.
    pub async fn enable_webhook_endpoint(&self, name: &str) -> Result<bool, StoreError> {
        let n = with_pool!(self, pool => sqlx::query(
            "UPDATE webhook_endpoints SET disabled_at = NULL, reason = NULL WHERE name = $1 AND disabled_at IS NOT NULL",
        )
        .bind(name)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(query_error("enable a webhook endpoint", "webhook_endpoints"))?;
        Ok(n == 1)
    }

    /// Deletes events written before `before` whose every delivery is finished (delivered or
    /// failed), with their deliveries and attempt logs, in one transaction. Returns how many
    /// events went. Events still pending anywhere are kept, however old.
    pub async fn purge_webhook_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        const FINISHED: &str = "SELECT e.id FROM webhook_events e WHERE e.created_at < $1
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                            WHERE p.event = e.id AND p.state IN ('pending', 'delivering'))";
        let failed = query_error("purge finished webhook events", "webhook_events");
        let purged = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(failed)?;
            sqlx::query(&format!(
                "DELETE FROM webhook_attempts WHERE delivery IN
                    (SELECT id FROM webhook_deliveries WHERE event IN ({FINISHED}))"
            ))
            .bind(before.millis())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            sqlx::query(&format!("DELETE FROM webhook_deliveries WHERE event IN ({FINISHED})"))
                .bind(before.millis())
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            let purged = sqlx::query(
                "DELETE FROM webhook_events WHERE created_at < $1
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event = webhook_events.id)",
            )
            .bind(before.millis())
            .execute(&mut *tx)
            .await
            .map_err(failed)?
            .rows_affected();
            tx.commit().await.map_err(failed)?;
            purged
        });
        Ok(purged)
    }

    /// Deliveries per state.
    pub async fn webhook_delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_error("count webhook deliveries", "webhook_deliveries"))?;
        let mut counts = DeliveryCounts::default();
        for (state, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            match state.as_str() {
                "pending" => counts.pending = n,
                "delivering" => counts.delivering = n,
                "delivered" => counts.delivered = n,
                _ => counts.failed = n,
            }
        }
        Ok(counts)
    }
}

/// The deliveries listing's statement: newest first, `$1` the limit, then the endpoint and the
/// cursor, each only when given. A filter that is not given is left out, not written as
/// `($2 IS NULL OR d.id < $2)`: SQLite does not fold that away, and every page after a cursor
/// walked the log from its newest delivery down to the cursor.
fn deliveries_sql(endpoint: bool, before: bool) -> String {
    let mut filters = Vec::new();
    if endpoint {
        filters.push(format!("d.endpoint = ${}", filters.len() + 2));
    }
    if before {
        filters.push(format!("d.id < ${}", filters.len() + 2));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event
         {filter} ORDER BY d.id DESC LIMIT $1"
    )
}

#[cfg(test)]
mod deliveries_tests {
    use super::*;

    /// A page of the deliveries after a cursor seeks to it in the key (a `SEARCH` of
    /// `rowid<?` in SQLite's plan), rather than walking the log from its newest delivery.
    #[tokio::test]
    async fn a_page_of_deliveries_after_a_cursor_seeks_to_the_cursor() {
        for endpoint in [false, true] {
            let steps = crate::sqlite_plan(&deliveries_sql(endpoint, true), |q| {
                let q = q.bind(50i64);
                let q = if endpoint { q.bind("crm") } else { q };
                q.bind(500_000i64)
            })
            .await;
            assert!(
                steps
                    .iter()
                    .any(|s| s.starts_with("SEARCH d") && s.contains("rowid<?")),
                "endpoint {endpoint}: {steps:?}"
            );
        }
    }
}
