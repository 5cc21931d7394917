//! The store's reports: the paged, indexed queries behind the admin API, the dashboard, the CLI
//! and `/metrics` (accounts by tier and search, tier counts, the pyramid per run, movements
//! between two runs, rejected pushes by reason, retrying them). Each is one function returning a
//! serialisable struct; callers format it and never compute the same figure again.
//!
//! Every query reads through an index (migration 6): a tier's accounts through `(tier, id)`, a
//! search through `lower(name)` / `lower(domain)` / the primary key, the counts from
//! `tier_counts` (kept by triggers), movements from `tier_history` by run. None scans
//! `accounts`, so a page costs the same at 1M accounts as at 1k; the one exception is a search
//! during a store's first load, whose search indexes are built once its accounts are in
//! ([`Store::defer_search_indexes`]). Knows nothing of how the rows were produced.

use tierd_core::Tier;

use crate::error::{query_error, StoreError};
use crate::row::{json_col, json_col_as, parse_col, StoreRow, WritePool};
use crate::runs::RunId;
use crate::{with_pool, Store, Timestamp};

/// Largest page any report returns.
pub const MAX_PAGE: u32 = 1000;

/// The indexes a search of accounts reads (name, indexed expression), as migration 6 creates
/// them (its SQL files; PostgreSQL's with `text_pattern_ops`), for
/// [`Store::build_search_indexes`].
const SEARCH_INDEXES: [(&str, &str); 2] = [
    ("accounts_by_lower_name", "lower(name)"),
    ("accounts_by_lower_domain", "lower(domain)"),
];

/// The statements that build the search indexes where they are missing, for this backend, one
/// each. On PostgreSQL the catalog is asked first: `CREATE INDEX IF NOT EXISTS` would lock the
/// table against writers and send a notice (logged) each time the index is there. They run
/// through `sqlx::query`: a future awaiting `sqlx::raw_sql` is not `Send` for every lifetime,
/// and the server spawns the runs.
pub(crate) fn build_search_indexes_sql(postgres: bool) -> Vec<String> {
    SEARCH_INDEXES
        .iter()
        .map(|(name, expr)| {
            if postgres {
                format!(
                    "DO $$ BEGIN
                    IF NOT EXISTS (SELECT 1 FROM pg_indexes
                                   WHERE schemaname = current_schema() AND indexname = '{name}') THEN
                        CREATE INDEX {name} ON accounts ({expr} text_pattern_ops);
                    END IF;
                END $$"
                )
            } else {
                format!("CREATE INDEX IF NOT EXISTS {name} ON accounts ({expr})")
            }
        })
        .collect()
}

impl Store {
    /// Before a load into a store that holds no account yet (a first full run): drops the search
    /// indexes, so that the load does not insert into them account by account, and returns
    /// whether it did. Names and domains come in no order, so each insert lands on a page of its
    /// own: without the two indexes a first run of 300k accounts from a file on SQLite took 0.78
    /// of the time. [`Store::build_search_indexes`] builds them again from the sorted keys once
    /// the accounts are in; meanwhile a search reads the table instead (the same answers,
    /// slower), and a store opened after a load that stopped half-way builds them as it opens.
    pub async fn defer_search_indexes(&self) -> Result<bool, StoreError> {
        let failed = query_error("put the search indexes off", "accounts");
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(failed)?;
            let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM accounts)")
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
            if empty {
                for (index, _) in SEARCH_INDEXES {
                    sqlx::query(&format!("DROP INDEX IF EXISTS {index}"))
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                }
            }
            tx.commit().await.map_err(failed)?;
            Ok(empty)
        })
    }

    /// Builds the search indexes where they are missing ([`Store::defer_search_indexes`]); does
    /// nothing when they are there.
    pub async fn build_search_indexes(&self) -> Result<(), StoreError> {
        let failed = query_error("build the search indexes", "accounts");
        let postgres = self.is_shared();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(failed)?;
            for sql in build_search_indexes_sql(postgres) {
                sqlx::query(&sql).execute(&mut *tx).await.map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        })
    }
}

/// Which accounts to list: [`Store::account_page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountQuery {
    /// Only this tier.
    pub tier: Option<Tier>,
    /// An id (exactly), or the start of a name or domain (any case).
    pub search: Option<String>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
    /// Accounts per page (1..=[`MAX_PAGE`]).
    pub limit: u32,
}

/// One account in a listing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccountListing {
    /// Its id in the CRM.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its domain.
    pub domain: Option<String>,
    /// Its tier.
    pub tier: Tier,
    /// Its score, `0..=5`.
    pub score: f64,
    /// Share of the model's weight backed by data.
    pub coverage: f64,
    /// Whether a person locked its tier.
    pub locked: bool,
    /// The tier last written to the CRM.
    pub pushed_tier: Option<Tier>,
    /// The strongest reasons up, best first (from the stored explanation).
    pub reasons_up: Vec<String>,
    /// The strongest reasons down, worst first.
    pub reasons_down: Vec<String>,
}

/// A page of accounts and where the next one starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccountPage {
    /// The accounts, in id order.
    pub accounts: Vec<AccountListing>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// Accounts per tier now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TierCounts {
    /// `[tier_1, tier_2, tier_3, untiered]`.
    pub counts: [u64; 4],
    /// Their sum.
    pub total: u64,
}

/// The pyramid after one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PyramidPoint {
    /// The run.
    pub run: RunId,
    /// Its kind (`full`, `incremental`).
    pub kind: String,
    /// When it finished.
    pub at: Timestamp,
    /// `[tier_1, tier_2, tier_3, untiered]` after it.
    pub counts: [u64; 4],
}

/// One account's move between two runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Movement {
    /// The account.
    pub account: String,
    /// Its name.
    pub name: String,
    /// Its tier after the first run (`None`: not tiered then).
    pub from: Option<Tier>,
    /// Its tier after the second run.
    pub to: Tier,
    /// Its score then.
    pub score: f64,
    /// Why, in a seller's words (the last change's reason).
    pub reason: String,
}

/// How tiers moved between two runs: [`Store::movements`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MovementReport {
    /// The earlier run (exclusive).
    pub from_run: RunId,
    /// The later run (inclusive).
    pub to_run: RunId,
    /// `matrix[from][to]`: accounts that moved; row 4 is "not tiered before" (new accounts).
    /// Indices follow [`Tier::ALL`].
    pub matrix: [[u64; 4]; 5],
    /// A page of the moves, in account id order.
    pub moves: Vec<Movement>,
    /// Pass as `after` for the next page.
    pub next_after: Option<String>,
}

/// Rejected pushes held, by the CRM's reason: [`Store::rejection_summary`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RejectionGroup {
    /// The CRM's reason for the last rejection.
    pub reason: String,
    /// Permanently invalid (not retried) or pending (retried on later runs).
    pub permanent: bool,
    /// How many records.
    pub records: u64,
}

fn tier_index(t: Tier) -> usize {
    Tier::ALL.iter().position(|x| *x == t).unwrap_or(3)
}

/// `s` with LIKE's wildcards escaped (`\` is the escape character).
fn like_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The smallest string greater than every string starting with `prefix` (its last character
/// incremented), for an index range scan; `None` when no such string is needed.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The parts of a stored explanation a listing shows: the reason texts of its `positive` and
/// `negative` lists (the engine stores the model's explanation under `detail`, beside the
/// one-line `reasons`). Read straight into these few fields, the rest of the explanation (every
/// criterion's breakdown) skipped without building a JSON tree: a listing page reads a hundred.
#[derive(serde::Deserialize, Default)]
struct ListedExplanation {
    #[serde(default)]
    detail: Option<ListedReasons>,
    #[serde(default)]
    positive: Vec<ListedReason>,
    #[serde(default)]
    negative: Vec<ListedReason>,
}

#[derive(serde::Deserialize, Default)]
struct ListedReasons {
    #[serde(default)]
    positive: Vec<ListedReason>,
    #[serde(default)]
    negative: Vec<ListedReason>,
}

#[derive(serde::Deserialize)]
struct ListedReason {
    #[serde(default)]
    text: Option<String>,
}

fn reason_texts(list: &[ListedReason], max: usize) -> Vec<String> {
    list.iter().filter_map(|r| r.text.clone()).take(max).collect()
}

/// Reasons shown per account in a listing, each way.
const LISTING_REASONS: usize = 3;

fn listing_from_row(row: &impl StoreRow) -> Result<AccountListing, StoreError> {
    let decode = query_error("list accounts", "accounts");
    let id = row.text("id").map_err(decode)?;
    let explanation: ListedExplanation = json_col_as(
        &row.text("explanation").map_err(decode)?,
        "account_texts",
        "explanation",
        &id,
    )?;
    let reasons = explanation.detail.unwrap_or(ListedReasons {
        positive: explanation.positive,
        negative: explanation.negative,
    });
    let pushed = row.opt_text("pushed_tier").map_err(decode)?;
    Ok(AccountListing {
        name: row.text("name").map_err(decode)?,
        domain: row.opt_text("domain").map_err(decode)?,
        tier: parse_col(&row.text("tier").map_err(decode)?, "accounts", "tier", &id)?,
        score: row.real("score").map_err(decode)?,
        coverage: row.real("coverage").map_err(decode)?,
        locked: row.flag("locked").map_err(decode)?,
        pushed_tier: pushed
            .map(|t| parse_col(&t, "accounts", "pushed_tier", &id))
            .transpose()?,
        reasons_up: reason_texts(&reasons.positive, LISTING_REASONS),
        reasons_down: reason_texts(&reasons.negative, LISTING_REASONS),
        id,
    })
}

/// The listing's statement: only the conditions asked for, so each backend's planner sees a
/// plain `tier = ? AND id > ? ORDER BY id` and walks the `(tier, id)` index (SQLite does not fold
/// `? IS NULL OR ...` away). `$1` is the limit; the tier, cursor and search follow in that order.
/// A search matches the id exactly, or the lower-cased name or domain by prefix: a range the
/// index serves, plus the same prefix as a LIKE pattern, exact on every collation.
fn page_sql(tier: bool, after: bool, search: bool) -> String {
    let mut conditions = Vec::new();
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    if tier {
        conditions.push(format!("tier = ${}", next()));
    }
    if after {
        conditions.push(format!("id > ${}", next()));
    }
    if search {
        let (id, lo, hi, like) = (next(), next(), next(), next());
        conditions.push(format!(
            "(id = ${id}
              OR (lower(name) >= ${lo} AND lower(name) < ${hi} AND lower(name) LIKE ${like} ESCAPE '\\')
              OR (lower(domain) >= ${lo} AND lower(domain) < ${hi} AND lower(domain) LIKE ${like} ESCAPE '\\'))"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT id, name, domain, tier, score, coverage, locked, pushed_tier, explanation
         FROM accounts JOIN account_texts USING (id) {filter} ORDER BY id LIMIT $1"
    )
}

/// The tiers' pending delta rows beyond which a read folds them (PostgreSQL appends one per tier
/// and statement that changed it; SQLite keeps one row per tier).
const COMPACT_AFTER_ROWS: i64 = 256;

impl Store {
    /// A page of accounts: one tier's or all, optionally matching a search, in id order after
    /// the cursor. Reads only the page's rows through an index.
    pub async fn account_page(&self, q: &AccountQuery) -> Result<AccountPage, StoreError> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let tier = q.tier.map(Tier::as_str);
        // One row more than asked tells whether there is a next page.
        let fetch = i64::from(limit) + 1;
        let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let sql = page_sql(tier.is_some(), q.after.is_some(), search.is_some());
        // SQLite's lower() folds ASCII only; folding the same way keeps both backends' answers
        // the same.
        let prefix = search.map(str::to_ascii_lowercase);
        let end = prefix
            .as_deref()
            .map(|p| prefix_end(p).unwrap_or_else(|| p.to_string()));
        let pattern = prefix.as_deref().map(|p| format!("{}%", like_escaped(p)));
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::query(&sql).bind(fetch);
            if let Some(t) = tier {
                query = query.bind(t);
            }
            if let Some(a) = q.after.as_deref() {
                query = query.bind(a);
            }
            if let (Some(s), Some(p), Some(e), Some(l)) = (search, &prefix, &end, &pattern) {
                query = query.bind(s).bind(p).bind(e).bind(l);
            }
            query
                .fetch_all(pool)
                .await
                .map_err(query_error("list accounts", "accounts"))?
                .iter()
                .map(listing_from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        let mut accounts = rows;
        let next_after = if accounts.len() > limit as usize {
            accounts.truncate(limit as usize);
            accounts.last().map(|a| a.id.clone())
        } else {
            None
        };
        Ok(AccountPage { accounts, next_after })
    }

    /// Accounts per tier, from the counts the database keeps as accounts change (no scan).
    pub async fn tier_counts(&self) -> Result<[u64; 4], StoreError> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT tier, CAST(SUM(accounts) AS BIGINT), COUNT(*) FROM tier_counts GROUP BY tier",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_error("count accounts per tier", "tier_counts"))?;
        let mut counts = [0u64; 4];
        let mut rows_read = 0;
        for (tier, n, parts) in rows {
            let tier: Tier = parse_col(&tier, "tier_counts", "tier", "(count)")?;
            counts[tier_index(tier)] = u64::try_from(n).unwrap_or(0);
            rows_read += parts;
        }
        if rows_read > COMPACT_AFTER_ROWS {
            self.compact_tier_counts().await?;
        }
        Ok(counts)
    }

    /// [`Store::tier_counts`] with their total.
    pub async fn tier_totals(&self) -> Result<TierCounts, StoreError> {
        let counts = self.tier_counts().await?;
        Ok(TierCounts {
            counts,
            total: counts.iter().sum(),
        })
    }

    /// Folds the per-statement deltas of `tier_counts` into one row per tier. Safe beside writers
    /// and other compactions: one statement deletes the rows it sums and inserts their sums.
    pub async fn compact_tier_counts(&self) -> Result<(), StoreError> {
        let sqlite = !self.is_shared();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("compact tier counts", "tier_counts"))?;
            if sqlite {
                // One writer at a time: sum, delete, insert in this transaction.
                sqlx::query(
                    "CREATE TEMP TABLE IF NOT EXISTS tier_counts_fold (tier TEXT, accounts BIGINT)",
                )
                .execute(&mut *tx)
                .await
                .map_err(query_error("compact tier counts", "tier_counts"))?;
                for sql in [
                    "DELETE FROM tier_counts_fold",
                    "INSERT INTO tier_counts_fold SELECT tier, SUM(accounts) FROM tier_counts GROUP BY tier",
                    "DELETE FROM tier_counts",
                    "INSERT INTO tier_counts (tier, accounts) SELECT tier, accounts FROM tier_counts_fold",
                ] {
                    sqlx::query(sql)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("compact tier counts", "tier_counts"))?;
                }
            } else {
                sqlx::query(
                    "WITH gone AS (DELETE FROM tier_counts RETURNING tier, accounts)
                     INSERT INTO tier_counts (tier, accounts) SELECT tier, SUM(accounts) FROM gone GROUP BY tier",
                )
                .execute(&mut *tx)
                .await
                .map_err(query_error("compact tier counts", "tier_counts"))?;
            }
            tx.commit().await.map_err(query_error("compact tier counts", "tier_counts"))?;
        });
        Ok(())
    }

    /// The pyramid after each of the latest `limit` committed runs (full and incremental that
    /// finished), oldest first, as their runs recorded it (`stats.pyramid`, written by the
    /// engine when the run finishes).
    pub async fn pyramid_history(&self, limit: u32) -> Result<Vec<PyramidPoint>, StoreError> {
        let sql = "SELECT id, kind, COALESCE(finished_at, started_at) AS at, stats FROM runs
                   WHERE kind IN ('full', 'incremental') AND status IN ('succeeded', 'interrupted')
                   ORDER BY id DESC LIMIT $1";
        let mut points = with_pool!(self, pool => {
            let rows = sqlx::query(sql)
                .bind(i64::from(limit.clamp(1, MAX_PAGE)))
                .fetch_all(pool)
                .await
                .map_err(query_error("read the pyramid per run", "runs"))?;
            let mut points = Vec::with_capacity(rows.len());
            for row in &rows {
                let decode = query_error("read the pyramid per run", "runs");
                let id = row.int("id").map_err(decode)?;
                let Some(stats) = row.opt_text("stats").map_err(decode)? else { continue };
                let stats = json_col(&stats, "runs", "stats", &id.to_string())?;
                let Some(list) = stats["pyramid"].as_array().filter(|l| l.len() == 4) else { continue };
                let mut counts = [0u64; 4];
                for (c, v) in counts.iter_mut().zip(list) {
                    *c = v.as_u64().unwrap_or(0);
                }
                points.push(PyramidPoint {
                    run: RunId(id),
                    kind: row.text("kind").map_err(decode)?,
                    at: Timestamp(row.int("at").map_err(decode)?),
                    counts,
                });
            }
            points
        });
        points.reverse();
        Ok(points)
    }

    /// How tiers moved after run `from` up to and including run `to`: for each account whose
    /// tier changed in between, its tier before the first change and after the last, with the
    /// last change's reason. The matrix counts every move; `moves` is one page of them.
    pub async fn movements(
        &self,
        from: RunId,
        to: RunId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<MovementReport, StoreError> {
        // first/last change of each account in the span, by the history's insertion order.
        const SPAN: &str = "WITH span AS (
                SELECT account, from_tier, to_tier, score, reason,
                    ROW_NUMBER() OVER (PARTITION BY account ORDER BY id) AS first_n,
                    ROW_NUMBER() OVER (PARTITION BY account ORDER BY id DESC) AS last_n
                FROM tier_history WHERE run > $1 AND run <= $2),
            moved AS (
                SELECT l.account, f.from_tier, l.to_tier, l.score, l.reason
                FROM span l JOIN span f ON f.account = l.account AND f.first_n = 1
                WHERE l.last_n = 1 AND (f.from_tier IS NULL OR f.from_tier <> l.to_tier))";
        let matrix_sql = format!(
            "{SPAN} SELECT COALESCE(from_tier, '-') AS from_tier, to_tier, COUNT(*) AS n FROM moved GROUP BY from_tier, to_tier"
        );
        let list_sql = format!(
            "{SPAN} SELECT m.account, COALESCE(a.name, m.account) AS name, m.from_tier, m.to_tier, m.score, m.reason
             FROM moved m LEFT JOIN accounts a ON a.id = m.account
             WHERE ($3 IS NULL OR m.account > $3) ORDER BY m.account LIMIT $4"
        );
        let limit = limit.clamp(1, MAX_PAGE);
        let mut matrix = [[0u64; 4]; 5];
        let mut moves = Vec::new();
        with_pool!(self, pool => {
            let decode = query_error("read movements", "tier_history");
            let rows = sqlx::query(&matrix_sql)
                .bind(from.0)
                .bind(to.0)
                .fetch_all(pool)
                .await
                .map_err(decode)?;
            for row in &rows {
                let decode = query_error("read movements", "tier_history");
                let f = row.text("from_tier").map_err(decode)?;
                let row_index = if f == "-" {
                    4
                } else {
                    tier_index(parse_col(&f, "tier_history", "from_tier", "(movements)")?)
                };
                let t: Tier = parse_col(&row.text("to_tier").map_err(decode)?, "tier_history", "to_tier", "(movements)")?;
                matrix[row_index][tier_index(t)] = u64::try_from(row.int("n").map_err(decode)?).unwrap_or(0);
            }
            let rows = sqlx::query(&list_sql)
                .bind(from.0)
                .bind(to.0)
                .bind(after)
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await
                .map_err(query_error("read movements", "tier_history"))?;
            for row in &rows {
                let decode = query_error("read movements", "tier_history");
                let account = row.text("account").map_err(decode)?;
                let from_tier = row.opt_text("from_tier").map_err(decode)?;
                moves.push(Movement {
                    name: row.text("name").map_err(decode)?,
                    from: from_tier.map(|t| parse_col(&t, "tier_history", "from_tier", &account)).transpose()?,
                    to: parse_col(&row.text("to_tier").map_err(decode)?, "tier_history", "to_tier", &account)?,
                    score: row.real("score").map_err(decode)?,
                    reason: row.text("reason").map_err(decode)?,
                    account,
                });
            }
        });
        let next_after = if moves.len() > limit as usize {
            moves.truncate(limit as usize);
            moves.last().map(|m| m.account.clone())
        } else {
            None
        };
        Ok(MovementReport {
            from_run: from,
            to_run: to,
            matrix,
            moves,
            next_after,
        })
    }

    /// Rejected pushes held now, grouped by the CRM's reason and whether they are permanent,
    /// most records first: what `/metrics` exports and the run summary names.
    pub async fn rejection_summary(&self) -> Result<Vec<RejectionGroup>, StoreError> {
        let rows: Vec<(String, bool, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT last_error, permanent, COUNT(*) AS n FROM pending_pushes
             GROUP BY last_error, permanent ORDER BY n DESC, last_error, permanent",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_error("summarise rejected pushes", "pending_pushes"))?;
        Ok(rows
            .into_iter()
            .map(|(reason, permanent, n)| RejectionGroup {
                reason,
                permanent,
                records: u64::try_from(n).unwrap_or(0),
            })
            .collect())
    }

    /// Makes held rejected pushes due at the next run: the given accounts', or every one when
    /// `accounts` is `None`. Permanent ones become pending again (the CRM may have been fixed).
    /// Returns how many were rescheduled.
    pub async fn retry_pending(&self, accounts: Option<&[String]>) -> Result<u64, StoreError> {
        let now = Timestamp::now().millis();
        let op = query_error("retry rejected pushes", "pending_pushes");
        let mut changed = 0;
        match accounts {
            None => {
                changed += with_pool!(self, pool => sqlx::query(
                    "UPDATE pending_pushes SET permanent = FALSE, next_attempt_at = $1",
                )
                .bind(now)
                .execute(pool)
                .await
                .map_err(op)?
                .rows_affected());
            }
            Some(ids) => {
                for chunk in ids.chunks(500) {
                    let sql = format!(
                        "UPDATE pending_pushes SET permanent = FALSE, next_attempt_at = $1 WHERE account IN ({})",
                        crate::row::placeholders(2, chunk.len())
                    );
                    changed += with_pool!(self, pool => {
                        let mut q = sqlx::query(&sql).bind(now);
                        for id in chunk {
                            q = q.bind(id);
                        }
                        q.execute(pool).await.map_err(query_error("retry rejected pushes", "pending_pushes"))?.rows_affected()
                    });
                }
            }
        }
        Ok(changed)
    }

    /// Makes every permanently rejected push pending again: called when the CRM's schema check
    /// passes anew, since the fix that was missing (a picklist value, a field) may be in place.
    pub async fn retry_permanent(&self) -> Result<u64, StoreError> {
        let now = Timestamp::now().millis();
        let n = with_pool!(self, pool => sqlx::query(
            "UPDATE pending_pushes SET permanent = FALSE, next_attempt_at = $1 WHERE permanent",
        )
        .bind(now)
        .execute(pool)
        .await
        .map_err(query_error("retry permanent rejections", "pending_pushes"))?
        .rows_affected());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_character() {
        assert_eq!(prefix_end("acme").as_deref(), Some("acmf"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escaped("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
