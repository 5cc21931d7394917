//! Deals per account and their history: what the funnel per tier counts.
//!
//! A connector's deals arrive as [`DealRecord`]s; [`Store::record_deals`] keeps each as last seen
//! in `deals` and appends to `deal_history` what changed since (created, a stage entered, moved to
//! another account, amount changed, reopened, restored after a deletion), dated by the CRM when it
//! dates the change (stage entry dates) and by the time tierd saw it otherwise.
//! [`Store::delete_deals`] marks deals the CRM no longer has. Reads for reports
//! ([`Store::deals_for_report`], [`Store::tier_timeline`], and their streaming forms
//! [`Store::for_each_report_deal`], [`Store::for_each_tier_event`]) and the accounts' target-list
//! flag ([`Store::for_each_account_flag`]) return plain rows; the arithmetic is the
//! caller's (`tierd-outcomes`). Knows nothing of connectors: the caller maps their deals here.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use tierd_core::tier::Tier;
use tierd_core::Date;

use crate::error::{query_error, StoreError};
use crate::row::{anonymous_placeholders, anonymous_tuples, column, parse_col, StoreRow, WritePool};
use crate::runs::RunId;
use crate::{with_pool, Store, Timestamp};

/// A deal as a connector (or a deals file) gives it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DealRecord {
    /// The deal's id in its CRM.
    pub id: String,
    /// The account it belongs to (the connector's account id); `None` when the CRM gave none.
    pub account: Option<String>,
    /// Pipeline, when the CRM has several.
    pub pipeline: Option<String>,
    /// Current stage.
    pub stage: Option<String>,
    /// Amount, when set.
    pub amount: Option<f64>,
    /// Currency of the amount (ISO 4217), when the CRM says.
    pub currency: Option<String>,
    /// When it was created.
    pub created_at: Option<Timestamp>,
    /// Close date (expected while open, actual once closed).
    pub close_date: Option<Date>,
    /// Closed (won or lost); `None` when the stage does not say.
    pub closed: Option<bool>,
    /// Won; `None` when the stage does not say.
    pub won: Option<bool>,
    /// When each stage was entered, as the CRM dates it (HubSpot `hs_v2_date_entered_<stage>`,
    /// Salesforce `OpportunityHistory`), oldest first.
    pub stage_entries: Vec<(String, Timestamp)>,
}

/// A stored deal, as the funnel reads it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredDeal {
    /// The deal's id in its CRM.
    pub id: String,
    /// The account, `None` when the CRM gave none.
    pub account: Option<String>,
    /// Pipeline.
    pub pipeline: Option<String>,
    /// Current stage.
    pub stage: Option<String>,
    /// Amount.
    pub amount: Option<f64>,
    /// Currency of the amount.
    pub currency: Option<String>,
    /// When it was created (epoch milliseconds).
    pub created_at: Option<i64>,
    /// Close date.
    pub close_date: Option<Date>,
    /// Closed; `None` for an unknown stage.
    pub closed: Option<bool>,
    /// Won; `None` for an unknown stage.
    pub won: Option<bool>,
}

/// What [`Store::record_deals`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DealSync {
    /// Deals seen for the first time.
    pub new: u64,
    /// Known deals whose stage, amount, close date or account changed.
    pub changed: u64,
    /// Of those, moved to another account.
    pub moved: u64,
    /// Of those, closed before and open again.
    pub reopened: u64,
    /// Deals marked deleted earlier and seen again.
    pub restored: u64,
}

/// A row of a deal's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DealEvent {
    /// `created`, `stage`, `moved`, `amount`, `deleted`, `reopened` or `restored`.
    pub event: String,
    /// When (epoch milliseconds).
    pub at: i64,
    /// The account it belonged to after the event.
    pub account: Option<String>,
    /// The stage entered (`stage`, `reopened`).
    pub stage: Option<String>,
}

/// A live deal as the funnel reads it, borrowed from the row being read
/// ([`Store::for_each_report_deal`]) or from a [`StoredDeal`] ([`StoredDeal::as_report`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportDeal<'a> {
    /// The deal's id in its CRM.
    pub id: &'a str,
    /// The account, `None` when the CRM gave none.
    pub account: Option<&'a str>,
    /// Amount.
    pub amount: Option<f64>,
    /// Currency of the amount.
    pub currency: Option<&'a str>,
    /// When it was created (epoch milliseconds).
    pub created_at: Option<i64>,
    /// Close date.
    pub close_date: Option<Date>,
    /// Closed; `None` for an unknown stage.
    pub closed: Option<bool>,
    /// Won; `None` for an unknown stage.
    pub won: Option<bool>,
}

impl StoredDeal {
    /// The fields the funnel reads, borrowed.
    pub fn as_report(&self) -> ReportDeal<'_> {
        ReportDeal {
            id: &self.id,
            account: self.account.as_deref(),
            amount: self.amount,
            currency: self.currency.as_deref(),
            created_at: self.created_at,
            close_date: self.close_date,
            closed: self.closed,
            won: self.won,
        }
    }
}

/// A tier an account took at an instant (a row of `tier_history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierEvent {
    /// The account.
    pub account: String,
    /// When (epoch milliseconds).
    pub at: i64,
    /// The tier it took.
    pub tier: Tier,
}

/// Deals read, written and diffed per statement by [`Store::record_deals`]: on SQLite, 13 binds a
/// row keeps a statement under its bind limit (PostgreSQL binds one array per column).
const DEALS_PER_STATEMENT: usize = 500;

const SELECT_KNOWN: &str =
    "SELECT id, account, stage, amount, close_date, closed, deleted FROM deals WHERE id";

const UPSERT_COLUMNS: &str = "INSERT INTO deals (id, account, pipeline, stage, amount, currency,
        created_at, close_date, closed, won, first_seen, updated_at, updated_run, deleted)";

const UPSERT_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET account = excluded.account,
        pipeline = excluded.pipeline, stage = excluded.stage, amount = excluded.amount,
        currency = excluded.currency, created_at = excluded.created_at,
        close_date = excluded.close_date, closed = excluded.closed, won = excluded.won,
        deleted = FALSE, updated_at = excluded.updated_at, updated_run = excluded.updated_run";

const HISTORY_COLUMNS: &str = "INSERT INTO deal_history (deal, account, at, event, stage, amount, run)";

/// [`Store::record_deals`]'s three statements, as each backend runs them best, in its open
/// transaction. SQLite takes multi-row `VALUES` lists of anonymous placeholders; PostgreSQL takes
/// one array per column (`UNNEST`): the same rows cost its server about a third less that way
/// than as `VALUES` lists of thousands of parameters (250,000 history rows: 2.5 s against 3.6 s
/// of its CPU), and a run from HubSpot stores a deal and about three history rows per account.
trait DealStatements {
    /// The stored state of `ids` (sorted, distinct) that are stored.
    async fn known_deals(&mut self, ids: &[&str]) -> Result<HashMap<String, Known>, StoreError>;
    /// Writes `deals` (distinct ids) as seen `now` by `run`.
    async fn upsert_deals(
        &mut self,
        deals: &[&DealRecord],
        now: i64,
        run: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Appends `rows` to the history, in order.
    async fn append_deal_history(
        &mut self,
        rows: &[(&DealRecord, Change<'_>)],
        run: Option<i64>,
    ) -> Result<(), StoreError>;
}

impl DealStatements for crate::row::WriteTx<sqlx::Sqlite> {
    async fn known_deals(&mut self, ids: &[&str]) -> Result<HashMap<String, Known>, StoreError> {
        let sql = format!("{SELECT_KNOWN} IN ({})", anonymous_placeholders(ids.len()));
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q
            .fetch_all(&mut **self)
            .await
            .map_err(query_error("read deals", "deals"))?;
        rows.iter().map(known_from_row).collect()
    }

    async fn upsert_deals(
        &mut self,
        deals: &[&DealRecord],
        now: i64,
        run: Option<i64>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "{UPSERT_COLUMNS} VALUES {}{UPSERT_TAIL}",
            anonymous_tuples(deals.len(), 13, ", FALSE")
        );
        let mut q = sqlx::query(&sql);
        for d in deals {
            q = q
                .bind(&d.id)
                .bind(&d.account)
                .bind(&d.pipeline)
                .bind(&d.stage)
                .bind(d.amount)
                .bind(&d.currency)
                .bind(d.created_at.map(Timestamp::millis))
                .bind(d.close_date.map(|c| c.to_string()))
                .bind(d.closed)
                .bind(d.won)
                .bind(now)
                .bind(now)
                .bind(run);
        }
        q.execute(&mut **self)
            .await
            .map_err(query_error("record deals", "deals"))?;
        Ok(())
    }

    async fn append_deal_history(
        &mut self,
        rows: &[(&DealRecord, Change<'_>)],
        run: Option<i64>,
    ) -> Result<(), StoreError> {
        for rows in rows.chunks(DEALS_PER_STATEMENT) {
            let sql = format!("{HISTORY_COLUMNS} VALUES {}", anonymous_tuples(rows.len(), 7, ""));
            let mut q = sqlx::query(&sql);
            for (d, c) in rows {
                q = q
                    .bind(&d.id)
                    .bind(&d.account)
                    .bind(c.at)
                    .bind(c.event)
                    .bind(c.stage)
                    .bind(d.amount)
                    .bind(run);
            }
            q.execute(&mut **self)
                .await
                .map_err(query_error("record deal history", "deal_history"))?;
        }
        Ok(())
    }
}

impl DealStatements for crate::row::WriteTx<sqlx::Postgres> {
    async fn known_deals(&mut self, ids: &[&str]) -> Result<HashMap<String, Known>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_KNOWN} = ANY($1)"))
            .bind(ids)
            .fetch_all(&mut **self)
            .await
            .map_err(query_error("read deals", "deals"))?;
        rows.iter().map(known_from_row).collect()
    }

    async fn upsert_deals(
        &mut self,
        deals: &[&DealRecord],
        now: i64,
        run: Option<i64>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "{UPSERT_COLUMNS}
            SELECT v.id, v.account, v.pipeline, v.stage, v.amount, v.currency, v.created_at, v.close_date,
                v.closed, v.won, $11, $11, $12, FALSE
            FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::int8[],
                $8::text[], $9::bool[], $10::bool[])
                AS v (id, account, pipeline, stage, amount, currency, created_at, close_date, closed, won)
            {UPSERT_TAIL}"
        );
        sqlx::query(&sql)
            .bind(column(deals, |d| d.id.as_str()))
            .bind(column(deals, |d| d.account.as_deref()))
            .bind(column(deals, |d| d.pipeline.as_deref()))
            .bind(column(deals, |d| d.stage.as_deref()))
            .bind(column(deals, |d| d.amount))
            .bind(column(deals, |d| d.currency.as_deref()))
            .bind(column(deals, |d| d.created_at.map(Timestamp::millis)))
            .bind(column(deals, |d| d.close_date.map(|c| c.to_string())))
            .bind(column(deals, |d| d.closed))
            .bind(column(deals, |d| d.won))
            .bind(now)
            .bind(run)
            .execute(&mut **self)
            .await
            .map_err(query_error("record deals", "deals"))?;
        Ok(())
    }

    async fn append_deal_history(
        &mut self,
        rows: &[(&DealRecord, Change<'_>)],
        run: Option<i64>,
    ) -> Result<(), StoreError> {
        // The history's ids follow the rows' order, so the rows are inserted in array order.
        let sql = format!(
            "{HISTORY_COLUMNS}
            SELECT v.deal, v.account, v.at, v.event, v.stage, v.amount, $7
            FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::float8[])
                WITH ORDINALITY AS v (deal, account, at, event, stage, amount, n)
            ORDER BY v.n"
        );
        sqlx::query(&sql)
            .bind(column(rows, |(d, _)| d.id.as_str()))
            .bind(column(rows, |(d, _)| d.account.as_deref()))
            .bind(column(rows, |(_, c)| c.at))
            .bind(column(rows, |(_, c)| c.event))
            .bind(column(rows, |(_, c)| c.stage))
            .bind(column(rows, |(d, _)| d.amount))
            .bind(run)
            .execute(&mut **self)
            .await
            .map_err(query_error("record deal history", "deal_history"))?;
        Ok(())
    }
}

/// The previous state of a deal, for the diff.
#[derive(Clone)]
struct Known {
    account: Option<String>,
    stage: Option<String>,
    amount: Option<f64>,
    close_date: Option<String>,
    closed: Option<bool>,
    deleted: bool,
}

fn known_from_row(row: &impl StoreRow) -> Result<(String, Known), StoreError> {
    let decode = query_error("read a deal", "deals");
    let id = row.text("id").map_err(decode)?;
    Ok((
        id,
        Known {
            account: row.opt_text("account").map_err(decode)?,
            stage: row.opt_text("stage").map_err(decode)?,
            amount: row.opt_real("amount").map_err(decode)?,
            close_date: row.opt_text("close_date").map_err(decode)?,
            closed: row.opt_flag("closed").map_err(decode)?,
            deleted: row.flag("deleted").map_err(decode)?,
        },
    ))
}

impl Known {
    /// What the store holds once `deal` is written.
    fn after(deal: &DealRecord) -> Known {
        Known {
            account: deal.account.clone(),
            stage: deal.stage.clone(),
            amount: deal.amount,
            close_date: deal.close_date.map(|c| c.to_string()),
            closed: deal.closed,
            deleted: false,
        }
    }
}

/// One history row to write.
struct Change<'a> {
    event: &'static str,
    at: i64,
    stage: Option<&'a str>,
}

/// What changed between `known` (None: a new deal) and `deal`, in the order it happened.
fn changes<'a>(known: Option<&Known>, deal: &'a DealRecord, now: i64) -> Vec<Change<'a>> {
    let entered = |stage: &str| {
        deal.stage_entries
            .iter()
            .rev()
            .find(|(s, _)| s == stage)
            .map(|(_, at)| at.millis())
    };
    let mut out = Vec::new();
    match known {
        None => {
            let created = deal.created_at.map_or(now, Timestamp::millis);
            out.push(Change {
                event: "created",
                at: created,
                stage: None,
            });
            // Every dated stage entry the CRM reports, then the current stage if it is undated.
            for (stage, at) in &deal.stage_entries {
                out.push(Change {
                    event: "stage",
                    at: at.millis(),
                    stage: Some(stage),
                });
            }
            if let Some(stage) = deal.stage.as_deref() {
                if entered(stage).is_none() {
                    out.push(Change {
                        event: "stage",
                        at: created,
                        stage: Some(stage),
                    });
                }
            }
        }
        Some(k) => {
            if k.deleted {
                out.push(Change {
                    event: "restored",
                    at: now,
                    stage: None,
                });
            }
            if k.account != deal.account {
                out.push(Change {
                    event: "moved",
                    at: now,
                    stage: None,
                });
            }
            if k.closed == Some(true) && deal.closed == Some(false) {
                let at = deal.stage.as_deref().and_then(entered).unwrap_or(now);
                out.push(Change {
                    event: "reopened",
                    at,
                    stage: deal.stage.as_deref(),
                });
            }
            if k.stage != deal.stage {
                let at = deal.stage.as_deref().and_then(entered).unwrap_or(now);
                out.push(Change {
                    event: "stage",
                    at,
                    stage: deal.stage.as_deref(),
                });
            }
            if k.amount != deal.amount {
                out.push(Change {
                    event: "amount",
                    at: now,
                    stage: None,
                });
            }
        }
    }
    out
}

impl Store {
    /// Stores `deals` as seen by `run`, in one transaction, and appends what changed to their
    /// history: a deal moved to another account, reopened, restored after a deletion, or its stage
    /// or amount changed. Seeing the same deal unchanged writes nothing new.
    pub async fn record_deals(
        &self,
        run: Option<RunId>,
        deals: &[DealRecord],
    ) -> Result<DealSync, StoreError> {
        let mut sync = DealSync::default();
        if deals.is_empty() {
            return Ok(sync);
        }
        let now = Timestamp::now().millis();
        let run = run.map(|r| r.0);
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin recording deals", "deals"))?;
            for chunk in deals.chunks(DEALS_PER_STATEMENT) {
                // One read per chunk, not per deal (a sync of 100k deals was 100k round trips).
                let mut ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                let mut known = tx.known_deals(&ids).await?;
                // The row a deal ends as (its last write in the chunk), and its history in order.
                let mut writes: Vec<&DealRecord> = Vec::new();
                let mut write_of: HashMap<&str, usize> = HashMap::new();
                let mut history: Vec<(&DealRecord, Change<'_>)> = Vec::new();
                for d in chunk {
                    let k = known.get(&d.id);
                    let changes = changes(k, d, now);
                    // A close date alone moving changes the deal but is no event of its history.
                    let close_moved =
                        k.is_some_and(|k| k.close_date != d.close_date.map(|c| c.to_string()));
                    match k {
                        None => sync.new += 1,
                        Some(k) if !changes.is_empty() || close_moved => {
                            sync.changed += 1;
                            sync.moved += u64::from(k.account != d.account);
                            sync.reopened += u64::from(k.closed == Some(true) && d.closed == Some(false));
                            sync.restored += u64::from(k.deleted);
                        }
                        Some(_) => continue,
                    }
                    history.extend(changes.into_iter().map(|c| (d, c)));
                    match write_of.entry(d.id.as_str()) {
                        Entry::Occupied(e) => writes[*e.get()] = d,
                        Entry::Vacant(e) => {
                            e.insert(writes.len());
                            writes.push(d);
                        }
                    }
                    // The same id later in the call is diffed against this write, as before.
                    known.insert(d.id.clone(), Known::after(d));
                }
                if !writes.is_empty() {
                    tx.upsert_deals(&writes, now, run).await?;
                }
                if !history.is_empty() {
                    tx.append_deal_history(&history, run).await?;
                }
            }
            tx.commit().await.map_err(query_error("commit deals", "deals"))?;
        });
        Ok(sync)
    }

    /// Marks deals the CRM no longer has as deleted (kept, with a `deleted` history row, and left
    /// out of reports). Returns how many were live before.
    pub async fn delete_deals(&self, run: Option<RunId>, ids: &[String]) -> Result<u64, StoreError> {
        let now = Timestamp::now().millis();
        let mut deleted = 0;
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin deleting deals", "deals"))?;
            for id in ids {
                let n = sqlx::query("UPDATE deals SET deleted = TRUE, updated_at = $2, updated_run = $3
                                     WHERE id = $1 AND deleted = FALSE")
                    .bind(id)
                    .bind(now)
                    .bind(run.map(|r| r.0))
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("delete a deal", "deals"))?
                    .rows_affected();
                if n > 0 {
                    sqlx::query("INSERT INTO deal_history (deal, account, at, event, stage, amount, run)
                                 SELECT id, account, $2, 'deleted', stage, amount, $3 FROM deals WHERE id = $1")
                        .bind(id)
                        .bind(now)
                        .bind(run.map(|r| r.0))
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("record deal history", "deal_history"))?;
                }
                deleted += n;
            }
            tx.commit().await.map_err(query_error("commit deleted deals", "deals"))?;
        });
        Ok(deleted)
    }

    /// Ids of the live (not deleted) deals of these accounts: what a full pull of those accounts
    /// must see again, or they were deleted in the CRM.
    pub async fn live_deal_ids(&self, accounts: &[String]) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for chunk in accounts.chunks(500) {
            let sql = format!(
                "SELECT id FROM deals WHERE deleted = FALSE AND account IN ({}) ORDER BY id",
                crate::row::placeholders(1, chunk.len())
            );
            let rows: Vec<(String,)> = with_pool!(self, pool => {
                let mut q = sqlx::query_as(&sql);
                for a in chunk {
                    q = q.bind(a);
                }
                q.fetch_all(pool).await
            })
            .map_err(query_error("read deal ids", "deals"))?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(ids)
    }

    /// The live deals, ordered by id: the funnel's input.
    pub async fn deals_for_report(&self) -> Result<Vec<StoredDeal>, StoreError> {
        let sql = "SELECT id, account, pipeline, stage, amount, currency, created_at, close_date,
                          closed, won
                   FROM deals WHERE deleted = FALSE ORDER BY id";
        let deals = with_pool!(self, pool => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .map_err(query_error("read deals", "deals"))?
            .iter()
            .map(stored_deal_from_row)
            .collect::<Result<Vec<_>, _>>()?);
        Ok(deals)
    }

    /// A deal's history, oldest first: `(event, at, account, stage)`.
    pub async fn deal_history(&self, deal: &str) -> Result<Vec<DealEvent>, StoreError> {
        let sql = "SELECT event, at, account, stage FROM deal_history WHERE deal = $1 ORDER BY at, id";
        let rows: Vec<(String, i64, Option<String>, Option<String>)> =
            with_pool!(self, pool => sqlx::query_as(sql)
            .bind(deal)
            .fetch_all(pool)
            .await)
            .map_err(query_error("read deal history", "deal_history"))?;
        Ok(rows
            .into_iter()
            .map(|(event, at, account, stage)| DealEvent {
                event,
                at,
                account,
                stage,
            })
            .collect())
    }

    /// Records tier history that tierd did not decide itself (tiers from before tierd, another
    /// system's history, a benchmark's population) as rows of `run`, in one transaction.
    pub async fn import_tier_history(&self, run: RunId, events: &[TierEvent]) -> Result<(), StoreError> {
        const PER_STATEMENT: usize = 500;
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin importing tier history", "tier_history"))?;
            for chunk in events.chunks(PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO tier_history (account, at, to_tier, run, from_tier, score, reason, model_version) VALUES {}",
                    crate::row::tuples(1, chunk.len(), 3, &format!(", {}, NULL, 0, 'imported', 'imported'", run.0))
                );
                let mut q = sqlx::query(&sql);
                for e in chunk {
                    q = q.bind(&e.account).bind(e.at).bind(e.tier.as_str());
                }
                q.execute(&mut *tx).await.map_err(query_error("import tier history", "tier_history"))?;
            }
            tx.commit().await.map_err(query_error("commit imported tier history", "tier_history"))?;
        });
        Ok(())
    }

    /// Every tier change of every account, ordered by account then time: when each account took
    /// each tier (`tier_history`), so a report can say which tier an account held on any day.
    pub async fn tier_timeline(&self) -> Result<Vec<TierEvent>, StoreError> {
        let mut events = Vec::new();
        self.for_each_tier_event(|account, at, tier| {
            events.push(TierEvent {
                account: account.to_string(),
                at,
                tier,
            })
        })
        .await?;
        Ok(events)
    }

    /// Calls `f` with every tier change `(account, at, tier)`, in [`Store::tier_timeline`]'s
    /// order, as the rows stream in: a report over millions of rows holds one at a time, and the
    /// account is borrowed from the row (the caller copies what it keeps).
    pub async fn for_each_tier_event(&self, mut f: impl FnMut(&str, i64, Tier)) -> Result<(), StoreError> {
        use futures_util::TryStreamExt as _;
        let sql = "SELECT account, at, to_tier FROM tier_history ORDER BY account, at, id";
        let read = query_error("read tier history", "tier_history");
        with_pool!(self, pool => {
            let mut rows = sqlx::query(sql).fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(read)? {
                let account = row.str_ref("account").map_err(read)?;
                let tier = parse_col(row.str_ref("to_tier").map_err(read)?, "tier_history", "to_tier", account)?;
                f(account, row.int("at").map_err(read)?, tier);
            }
        });
        Ok(())
    }

    /// Calls `f` with every stored account's id and its fact `fact` read as a flag: `Some(true)`
    /// when the value is `true`, `Some(false)` when it is anything else (`false`, or not a flag),
    /// `None` when the account has no such fact. The funnel's CRM target list
    /// (`[outcomes] target_list_fact`). The value is picked out of the facts by the database,
    /// so the facts are neither sent nor parsed here.
    pub async fn for_each_account_flag(
        &self,
        fact: &str,
        mut f: impl FnMut(&str, Option<bool>),
    ) -> Result<(), StoreError> {
        use futures_util::TryStreamExt as _;
        // Both give the value's JSON text (`true`, `false`, `"x"`, ...) or NULL when absent.
        let (sql, key) = match &self.backend {
            crate::Backend::Sqlite(_) => (
                "SELECT id, json_type(facts, $1) AS kind FROM account_texts ORDER BY id",
                format!("$.\"{fact}\".value"),
            ),
            crate::Backend::Postgres(_) => (
                "SELECT id, (facts::json -> $1 -> 'value')::text AS kind FROM account_texts ORDER BY id",
                fact.to_string(),
            ),
        };
        let read = query_error("read account facts", "accounts");
        with_pool!(self, pool => {
            let mut rows = sqlx::query(sql).bind(&key).fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(read)? {
                let kind = row.opt_str_ref("kind").map_err(read)?;
                f(row.str_ref("id").map_err(read)?, kind.map(|k| k == "true"));
            }
        });
        Ok(())
    }

    /// Calls `f` with every live deal as the funnel reads it, as the rows stream in, borrowed
    /// from the row: no deal is held after `f` returns and no text is copied. Ordered by id, as
    /// [`Store::deals_for_report`], so a caller's floating-point sums come out the same.
    pub async fn for_each_report_deal(&self, mut f: impl FnMut(ReportDeal<'_>)) -> Result<(), StoreError> {
        use futures_util::TryStreamExt as _;
        let sql = "SELECT id, account, amount, currency, created_at, close_date, closed, won
                   FROM deals WHERE deleted = FALSE ORDER BY id";
        let read = query_error("read deals", "deals");
        with_pool!(self, pool => {
            let mut rows = sqlx::query(sql).fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(read)? {
                let id = row.str_ref("id").map_err(read)?;
                let close_date = row
                    .opt_str_ref("close_date")
                    .map_err(read)?
                    .map(|d| parse_col(d, "deals", "close_date", id))
                    .transpose()?;
                f(ReportDeal {
                    id,
                    account: row.opt_str_ref("account").map_err(read)?,
                    amount: row.opt_real("amount").map_err(read)?,
                    currency: row.opt_str_ref("currency").map_err(read)?,
                    created_at: row.opt_int("created_at").map_err(read)?,
                    close_date,
                    closed: row.opt_flag("closed").map_err(read)?,
                    won: row.opt_flag("won").map_err(read)?,
                });
            }
        });
        Ok(())
    }
}

fn stored_deal_from_row(row: &impl StoreRow) -> Result<StoredDeal, StoreError> {
    let decode = query_error("read deals", "deals");
    let id = row.text("id").map_err(decode)?;
    let close_date = row
        .opt_text("close_date")
        .map_err(decode)?
        .map(|d| parse_col(&d, "deals", "close_date", &id))
        .transpose()?;
    Ok(StoredDeal {
        account: row.opt_text("account").map_err(decode)?,
        pipeline: row.opt_text("pipeline").map_err(decode)?,
        stage: row.opt_text("stage").map_err(decode)?,
        amount: row.opt_real("amount").map_err(decode)?,
        currency: row.opt_text("currency").map_err(decode)?,
        created_at: row.opt_int("created_at").map_err(decode)?,
        close_date,
        closed: row.opt_flag("closed").map_err(decode)?,
        won: row.opt_flag("won").map_err(decode)?,
        id,
    })
}
