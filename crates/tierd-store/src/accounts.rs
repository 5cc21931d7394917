//! Account state, tier history, pending pushes and checkpoints, and the batch commit that writes
//! them together (the crash-safety contract in the crate doc).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tierd_core::{Date, Tier};

use crate::error::{query_error, StoreError};
use crate::outbox::{write_events, NewEvent};
use crate::row::{
    anonymous_tuples, column, json_col, last_per_key, parse_col, placeholders_for, tuples_for, StoreRow,
    WritePool,
};
use crate::runs::RunId;
use crate::{with_pool, Store, Timestamp};

/// A JSON document already written as text: what the store keeps in a JSON column. Built once
/// from whatever the caller holds ([`JsonText::of`] serialises straight to text, with no
/// `serde_json::Value` tree in between), written as it is: a run stores 100k accounts' facts and
/// explanations, and building, printing and dropping a tree for each was a quarter of a run's CPU.
/// Two texts are equal when their text is.
#[derive(Debug, Clone, Default)]
pub struct JsonText {
    text: String,
    /// The top-level `reasons` of an explanation built by [`JsonText::explanation`], kept so
    /// that [`JsonText::reasons`] need not parse the text back.
    reasons: Option<String>,
}

impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.text == other.text
    }
}

impl Eq for JsonText {}

impl JsonText {
    /// `value` as JSON text.
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> JsonText {
        // Serialising to a String fails only for maps with non-string keys, which tierd's
        // documents do not have; `null` stands in rather than losing the account.
        JsonText::from_stored(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
    }

    /// An explanation: the fields of `rest` (which serialises to a JSON object with no
    /// `reasons` of its own), then `reasons`, the line the store keeps beside the explanation
    /// (`accounts.reasons`). Built this way, the store has that line without parsing it back out
    /// of the text: a parse of a 4 KB explanation was some 56k instructions an account, a tenth
    /// of a daemon run's. The text is the same as `rest` with a last field `reasons` would give.
    pub fn explanation<T: serde::Serialize + ?Sized>(rest: &T, reasons: &str) -> JsonText {
        let mut text = serde_json::to_string(rest).unwrap_or_else(|_| "null".into());
        if text.starts_with('{') && text.ends_with('}') {
            text.pop();
            if text.len() > 1 {
                text.push(',');
            }
        } else {
            // Not an object: kept whole, under `detail`.
            text = format!("{{\"detail\":{text},");
        }
        text.push_str("\"reasons\":");
        text.push_str(&serde_json::to_string(reasons).unwrap_or_else(|_| "null".into()));
        text.push('}');
        JsonText {
            text,
            reasons: Some(reasons.to_string()),
        }
    }

    /// Text read back from a JSON column, as the store wrote it.
    pub(crate) fn from_stored(text: String) -> JsonText {
        JsonText { text, reasons: None }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The document parsed back (for tests and the rare reader of a batch before it is stored).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or(serde_json::Value::Null)
    }

    /// An explanation's top-level `reasons` text, `None` when it has none (or it is no text):
    /// what `accounts.reasons` keeps beside the explanation, for the push to read without the
    /// rest ([`Store::accounts_for_push`]). Parsed out of the text unless it was built with them
    /// ([`JsonText::explanation`]).
    fn reasons(&self) -> Option<Cow<'_, str>> {
        #[derive(serde::Deserialize)]
        struct Reasons {
            reasons: Option<serde_json::Value>,
        }
        if let Some(reasons) = &self.reasons {
            return Some(Cow::Borrowed(reasons));
        }
        match serde_json::from_str::<Reasons>(&self.text).ok()?.reasons? {
            serde_json::Value::String(s) => Some(Cow::Owned(s)),
            _ => None,
        }
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(v: serde_json::Value) -> JsonText {
        JsonText::from_stored(v.to_string())
    }
}

impl From<&serde_json::Value> for JsonText {
    fn from(v: &serde_json::Value) -> JsonText {
        JsonText::from_stored(v.to_string())
    }
}

/// One account as scored and tiered in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredAccount {
    /// Its id in the CRM (`hubspot:123`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its domain, when known.
    pub domain: Option<String>,
    /// Its facts as JSON, each with its value, source and observed_at (`tierd_core::fact::Facts`
    /// serialises to this shape).
    pub facts: JsonText,
    /// A hash of the facts, to tell cheaply whether they changed since the last run.
    pub facts_hash: String,
    /// The score, `0..=5`.
    pub score: f64,
    /// Share of the model's weight backed by data, `0..=1`.
    pub coverage: f64,
    /// Estimated potential annual value (0 when unknown): a tie-breaker of tiering's caps.
    pub potential_value: f64,
    /// The tier it was given.
    pub tier: Tier,
    /// The score's explanation as JSON.
    pub explanation: JsonText,
    /// Why the tier is what it is, in a seller's words; recorded in the history when it changed.
    pub reason: String,
    /// The model's `name@version`.
    pub model_version: String,
    /// The tier the CRM showed when the account was pulled.
    pub crm_tier_seen: Option<Tier>,
    /// Whether a person locked the tier in the CRM.
    pub locked: bool,
}

/// An engagement override that lifts an account one tier until a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Engagement {
    /// The last day the lift holds.
    pub until: Date,
    /// Which override (its index in the tiering policy).
    pub by: u16,
}

/// An account rescored by a run, before tiering: see [`Store::commit_scores`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rescored {
    /// Its new state; `tier` is its *base* tier (thresholds, hysteresis, lock), before the
    /// engagement lift and the pyramid caps.
    pub account: ScoredAccount,
    /// The engagement override lifting it, and until when.
    pub engagement: Option<Engagement>,
}

/// A record the CRM accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRecord {
    /// The account.
    pub account: String,
    /// The tier written.
    pub tier: Tier,
    /// The score bucket written.
    pub score_bucket: f64,
    /// The reason text written.
    pub reason: String,
}

/// A record the CRM rejected: kept in `pending_pushes` and retried on later runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedPush {
    /// The account.
    pub account: String,
    /// The tier that was to be written.
    pub tier: Tier,
    /// The score bucket that was to be written.
    pub score_bucket: f64,
    /// The reason text that was to be written.
    pub reason: String,
    /// The CRM's reason for rejecting it.
    pub error: String,
    /// The CRM said the record can never be accepted as it is: stop retrying, keep listing it.
    pub permanent: bool,
    /// Wait at least this long before the next attempt (none: at the next run).
    pub retry_after: Option<Duration>,
}

/// Everything one batch of a run changes, committed in one transaction by
/// [`Store::commit_batch`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchCommit {
    /// The run the batch belongs to.
    pub run: RunId,
    /// Accounts scored and tiered.
    pub scored: Vec<ScoredAccount>,
    /// Records the CRM accepted.
    pub pushed: Vec<PushRecord>,
    /// Records the CRM rejected.
    pub rejected: Vec<RejectedPush>,
    /// Accounts whose pending push is no longer wanted (their tier went back to what the CRM has).
    pub cleared: Vec<String>,
    /// The run's progress after this batch: `(stage, position)`.
    pub checkpoint: Option<(String, String)>,
    /// Webhook events this batch causes (`tier.changed`, `push.rejected`, ...): written to the
    /// outbox in the same transaction, so they exist exactly when the batch does.
    pub events: Vec<NewEvent>,
    /// When the tier changes took effect, for `tier_history.at`: the run's scoring date when it
    /// is pinned (`[pipeline] as_of`: a backfill, a simulation), so the history says which tier
    /// each account held on that day; `None`: now.
    pub history_at: Option<Timestamp>,
}

/// What was last written to the CRM for an account.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PushedState {
    /// The tier.
    pub tier: Tier,
    /// The score bucket.
    pub score_bucket: f64,
    /// The reason text.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// An account's latest state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccountState {
    /// Its id in the CRM.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its domain.
    pub domain: Option<String>,
    /// Its facts, with sources and observation times.
    pub facts: serde_json::Value,
    /// The hash of the facts.
    pub facts_hash: String,
    /// The score.
    pub score: f64,
    /// The coverage.
    pub coverage: f64,
    /// The estimated potential annual value (0 when unknown).
    pub potential_value: f64,
    /// The tier.
    pub tier: Tier,
    /// The score's explanation.
    pub explanation: serde_json::Value,
    /// The model's `name@version` that scored it.
    pub model_version: String,
    /// When it was scored.
    pub scored_at: Timestamp,
    /// What was last pushed, if anything.
    pub pushed: Option<PushedState>,
    /// The tier the CRM showed at the last pull.
    pub crm_tier_seen: Option<Tier>,
    /// Whether the tier is locked by a person.
    pub locked: bool,
    /// The run that last wrote it.
    pub updated_run: Option<RunId>,
    /// Its tier before the engagement lift and the pyramid caps, as of its last scoring (the
    /// tier itself for accounts stored by [`Store::commit_batch`] alone).
    pub base_tier: Tier,
    /// The engagement override lifting it, as of its last scoring.
    pub engagement: Option<Engagement>,
    /// False while it was scored ([`Store::commit_scores`]) but never tiered.
    pub tiered: bool,
}

/// The few columns tiering needs of every account (see [`Store::account_summaries`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccountSummary {
    /// Its id.
    pub id: String,
    /// The score.
    pub score: f64,
    /// The coverage.
    pub coverage: f64,
    /// The estimated potential annual value (0 when unknown).
    pub potential_value: f64,
    /// The tier.
    pub tier: Tier,
    /// The tier last pushed.
    pub pushed_tier: Option<Tier>,
    /// Whether the tier is locked.
    pub locked: bool,
    /// Its tier before the engagement lift and the pyramid caps (see [`AccountState::base_tier`]).
    pub base_tier: Tier,
    /// The engagement override lifting it, as of its last scoring.
    pub engagement: Option<Engagement>,
    /// False while it was scored but never tiered.
    pub tiered: bool,
}

/// One change of an account's tier.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TierChange {
    /// The run that made it.
    pub run: RunId,
    /// When.
    pub at: Timestamp,
    /// The tier before (`None`: first tiering).
    pub from: Option<Tier>,
    /// The tier after.
    pub to: Tier,
    /// The score then.
    pub score: f64,
    /// Why, in a seller's words.
    pub reason: String,
    /// The model's `name@version`.
    pub model_version: String,
}

/// A record the CRM rejected, waiting for a retry (or listed as permanently invalid).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PendingPush {
    /// The account.
    pub account: String,
    /// The tier to write.
    pub tier: Tier,
    /// The score bucket to write.
    pub score_bucket: f64,
    /// The reason text to write.
    pub reason: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The CRM's reason for the last rejection.
    pub last_error: String,
    /// Never retried: the CRM called the record invalid.
    pub permanent: bool,
    /// Not retried before this.
    pub next_attempt_at: Timestamp,
    /// The run of the first rejection.
    pub first_failed_run: RunId,
    /// When it was first rejected.
    pub first_failed_at: Timestamp,
    /// When it was last rejected.
    pub last_failed_at: Timestamp,
}

/// A run's progress in one stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Checkpoint {
    /// Where the stage is (opaque: a page cursor, a batch number).
    pub position: String,
    /// When it was written.
    pub at: Timestamp,
}

// The batch statements are multi-row (`VALUES (...), (...)`, read back as `v.column1...`, the
// column names both backends give a VALUES list) so a batch costs a few round trips, not a few
// per account. Every value is bound in its row, the commit time and the run included, so the
// statements' placeholders can be SQLite's anonymous `?` (`row::tuples_for`: numbered ones cost
// the square of their count to bind there).

/// Columns bound per scored account in [`upsert_accounts_sql`]: its 11 fields in `accounts`, its
/// explanation's reasons (`NULL` for an account already stored), the commit time, the run, and
/// what this batch pushed for it (4, all `NULL` when nothing).
const ACCOUNT_PARAMS: usize = 18;
/// Per row of [`insert_texts_sql`] and [`upsert_texts_sql`]: id, facts, explanation.
const TEXT_PARAMS: usize = 3;
/// Per row of [`record_tier_changes_sql`]: account, tier, score, reason, model, run, time.
const HISTORY_PARAMS: usize = 7;
/// Per row of [`record_pushes_sql`]: account, tier, bucket, reason, time.
const PUSH_PARAMS: usize = 5;
/// Per row of [`record_rejections_sql`]: 7 fields, the run, the time twice.
const REJECTION_PARAMS: usize = 10;

/// Rows per statement: about 1,200 bind parameters, well below both backends' limits.
const ROWS_PER_STATEMENT: usize = 100;

/// Leaves the tiering basis (`base_tier`, `engaged_*`) as [`Store::commit_scores`] set it. An
/// account already stored takes only its tier and run from here: the rest of its state is what
/// `commit_scores` (or an earlier run) stored, which the batch was read from. Its facts and
/// explanation are in `account_texts` ([`insert_texts_sql`]), so this update writes a small row.
///
/// The account's pushed state comes with it when the batch pushed it (`pushed_at` not `NULL`;
/// a stored push keeps its value otherwise), so a pushed batch updates each row once, not once
/// for its tier and again for its push ([`record_pushes_sql`] takes only the pushed accounts
/// the batch does not tier).
fn upsert_accounts_sql(backend: &crate::Backend, rows: usize) -> String {
    format!(
        "INSERT INTO accounts (id, name, domain, facts_hash, score, coverage, potential_value, tier,
            model_version, crm_tier_seen, locked, reasons, scored_at, updated_run,
            pushed_tier, pushed_score_bucket, pushed_reason, pushed_at, tiered)
        VALUES {}
        ON CONFLICT (id) DO UPDATE SET tier = excluded.tier, scored_at = excluded.scored_at,
            updated_run = excluded.updated_run, tiered = TRUE,
            pushed_tier = CASE WHEN excluded.pushed_at IS NULL THEN accounts.pushed_tier ELSE excluded.pushed_tier END,
            pushed_score_bucket = CASE WHEN excluded.pushed_at IS NULL THEN accounts.pushed_score_bucket
                ELSE excluded.pushed_score_bucket END,
            pushed_reason = CASE WHEN excluded.pushed_at IS NULL THEN accounts.pushed_reason ELSE excluded.pushed_reason END,
            pushed_at = COALESCE(excluded.pushed_at, accounts.pushed_at)",
        tuples_for(backend, rows, ACCOUNT_PARAMS, ", TRUE")
    )
}

/// Columns bound per account in SQLite's [`SCORES_COLUMNS`] upsert: the 11 fields in `accounts`, the
/// explanation's reasons, the engagement (2), the commit time, the run, and the tier again as
/// the base tier.
const SCORES_PARAMS: usize = 17;

/// A new account's facts and explanation, beside [`upsert_accounts_sql`]; a stored account keeps
/// those `commit_scores` wrote.
fn insert_texts_sql(backend: &crate::Backend, rows: usize) -> String {
    format!(
        "{TEXTS_COLUMNS} VALUES {} ON CONFLICT (id) DO NOTHING",
        tuples_for(backend, rows, TEXT_PARAMS, "")
    )
}

/// A rescored account's facts and explanation, beside [`SCORES_COLUMNS`]'s upsert.
const TEXTS_COLUMNS: &str = "INSERT INTO account_texts (id, facts, explanation)";

const TEXTS_TAIL: &str =
    " ON CONFLICT (id) DO UPDATE SET facts = excluded.facts, explanation = excluded.explanation";

/// A rescored account's state without its tier: an existing account keeps the tier it has until
/// tiering commits one; a new one is stored with its base tier, not yet `tiered`.
const SCORES_COLUMNS: &str = "INSERT INTO accounts (id, name, domain, facts_hash, score, coverage, potential_value, tier,
    model_version, crm_tier_seen, locked, reasons, engaged_until, engaged_by, scored_at, updated_run, base_tier,
    tiered)";

const SCORES_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET name = excluded.name, domain = excluded.domain,
    reasons = excluded.reasons, facts_hash = excluded.facts_hash, score = excluded.score,
    coverage = excluded.coverage, potential_value = excluded.potential_value,
    model_version = excluded.model_version, scored_at = excluded.scored_at,
    crm_tier_seen = excluded.crm_tier_seen, locked = excluded.locked, updated_run = excluded.updated_run,
    base_tier = excluded.base_tier, engaged_until = excluded.engaged_until, engaged_by = excluded.engaged_by";

/// Binds an account's state columns, `id` to `locked` in `accounts`' order, as both upserts of
/// `accounts` (the scores commit's and the batch commit's) list them first. A macro, not a
/// function: the query's type differs per backend.
macro_rules! bind_account_state {
    ($query:expr, $account:expr) => {{
        let a: &ScoredAccount = $account;
        $query
            .bind(&a.id)
            .bind(&a.name)
            .bind(a.domain.as_deref())
            .bind(&a.facts_hash)
            .bind(a.score)
            .bind(a.coverage)
            .bind(a.potential_value)
            .bind(a.tier.as_str())
            .bind(&a.model_version)
            .bind(a.crm_tier_seen.map(Tier::as_str))
            .bind(a.locked)
    }};
}

/// [`Store::commit_scores`]'s writes, as each backend runs them best, in its open transaction.
/// SQLite takes multi-row `VALUES` lists of anonymous placeholders, a hundred rows a statement.
/// PostgreSQL takes the whole batch as one array per column (`UNNEST`), as the deals do: with
/// `VALUES` lists of 1,700 parameters the server planned each statement again with its values
/// as constants, a large part of its CPU in a run (docs/benchmarks.md).
trait ScoreStatements {
    /// Upserts `accounts` (distinct ids) and their texts, with their `reasons` (in order).
    async fn store_rescored(
        &mut self,
        accounts: &[&Rescored],
        reasons: &[Option<Cow<'_, str>>],
        now: i64,
        run: i64,
    ) -> Result<(), StoreError>;
}

impl ScoreStatements for crate::row::WriteTx<sqlx::Sqlite> {
    async fn store_rescored(
        &mut self,
        accounts: &[&Rescored],
        reasons: &[Option<Cow<'_, str>>],
        now: i64,
        run: i64,
    ) -> Result<(), StoreError> {
        for (chunk, reasons) in accounts
            .chunks(ROWS_PER_STATEMENT)
            .zip(reasons.chunks(ROWS_PER_STATEMENT))
        {
            let sql = format!(
                "{SCORES_COLUMNS} VALUES {}{SCORES_TAIL}",
                anonymous_tuples(chunk.len(), SCORES_PARAMS, ", FALSE")
            );
            let mut upsert = sqlx::query(&sql);
            for (r, reason) in chunk.iter().zip(reasons) {
                upsert = bind_account_state!(upsert, &r.account)
                    .bind(reason.as_deref())
                    .bind(r.engagement.map(|e| e.until.to_string()))
                    .bind(r.engagement.map(|e| i64::from(e.by)))
                    .bind(now)
                    .bind(run)
                    .bind(r.account.tier.as_str());
            }
            upsert
                .execute(&mut **self)
                .await
                .map_err(query_error("store rescored accounts", "accounts"))?;
            let sql = format!(
                "{TEXTS_COLUMNS} VALUES {}{TEXTS_TAIL}",
                anonymous_tuples(chunk.len(), TEXT_PARAMS, "")
            );
            let mut texts = sqlx::query(&sql);
            for r in chunk {
                let a = &r.account;
                texts = texts
                    .bind(&a.id)
                    .bind(a.facts.as_str())
                    .bind(a.explanation.as_str());
            }
            texts
                .execute(&mut **self)
                .await
                .map_err(query_error("store rescored accounts' facts", "account_texts"))?;
        }
        Ok(())
    }
}

impl ScoreStatements for crate::row::WriteTx<sqlx::Postgres> {
    async fn store_rescored(
        &mut self,
        accounts: &[&Rescored],
        reasons: &[Option<Cow<'_, str>>],
        now: i64,
        run: i64,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "{SCORES_COLUMNS}
            SELECT v.id, v.name, v.domain, v.facts_hash, v.score, v.coverage, v.potential_value, v.tier,
                v.model_version, v.crm_tier_seen, v.locked, v.reasons, v.engaged_until, v.engaged_by, $15, $16,
                v.tier, FALSE
            FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[],
                $7::float8[], $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[], $13::text[],
                $14::int8[])
                AS v (id, name, domain, facts_hash, score, coverage, potential_value, tier, model_version,
                    crm_tier_seen, locked, reasons, engaged_until, engaged_by)
            {SCORES_TAIL}"
        );
        sqlx::query(&sql)
            .bind(column(accounts, |r| r.account.id.as_str()))
            .bind(column(accounts, |r| r.account.name.as_str()))
            .bind(column(accounts, |r| r.account.domain.as_deref()))
            .bind(column(accounts, |r| r.account.facts_hash.as_str()))
            .bind(column(accounts, |r| r.account.score))
            .bind(column(accounts, |r| r.account.coverage))
            .bind(column(accounts, |r| r.account.potential_value))
            .bind(column(accounts, |r| r.account.tier.as_str()))
            .bind(column(accounts, |r| r.account.model_version.as_str()))
            .bind(column(accounts, |r| r.account.crm_tier_seen.map(Tier::as_str)))
            .bind(column(accounts, |r| r.account.locked))
            .bind(column(reasons, |r| r.as_deref()))
            .bind(column(accounts, |r| r.engagement.map(|e| e.until.to_string())))
            .bind(column(accounts, |r| r.engagement.map(|e| i64::from(e.by))))
            .bind(now)
            .bind(run)
            .execute(&mut **self)
            .await
            .map_err(query_error("store rescored accounts", "accounts"))?;
        sqlx::query(&format!(
            "{TEXTS_COLUMNS} SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]){TEXTS_TAIL}"
        ))
        .bind(column(accounts, |r| r.account.id.as_str()))
        .bind(column(accounts, |r| r.account.facts.as_str()))
        .bind(column(accounts, |r| r.account.explanation.as_str()))
        .execute(&mut **self)
        .await
        .map_err(query_error("store rescored accounts' facts", "account_texts"))?;
        Ok(())
    }
}

/// Runs before the upsert, so it still sees the previous tier; skips accounts whose tier is the
/// same, unless they were never tiered (then the change is from nothing).
fn record_tier_changes_sql(backend: &crate::Backend, rows: usize) -> String {
    format!(
        "INSERT INTO tier_history (account, run, at, from_tier, to_tier, score, reason, model_version)
        SELECT v.column1, v.column6, v.column7, CASE WHEN a.tiered THEN a.tier END, v.column2, v.column3, v.column4,
            v.column5
        FROM (VALUES {}) AS v
        LEFT JOIN accounts a ON a.id = v.column1
        WHERE a.tier IS NULL OR a.tier <> v.column2 OR NOT a.tiered",
        tuples_for(backend, rows, HISTORY_PARAMS, "")
    )
}

/// The pushed state of accounts the batch pushed without tiering them.
fn record_pushes_sql(backend: &crate::Backend, rows: usize) -> String {
    format!(
        "UPDATE accounts SET pushed_tier = v.column2, pushed_score_bucket = v.column3,
            pushed_reason = v.column4, pushed_at = v.column5
        FROM (VALUES {}) AS v
        WHERE accounts.id = v.column1",
        tuples_for(backend, rows, PUSH_PARAMS, "")
    )
}

fn record_rejections_sql(backend: &crate::Backend, rows: usize) -> String {
    format!(
        "INSERT INTO pending_pushes (account, tier, score_bucket, reason, last_error, permanent, next_attempt_at,
            first_failed_run, first_failed_at, last_failed_at, attempts)
        VALUES {}
        ON CONFLICT (account) DO UPDATE SET tier = excluded.tier, score_bucket = excluded.score_bucket,
            reason = excluded.reason, attempts = pending_pushes.attempts + 1, last_error = excluded.last_error,
            permanent = excluded.permanent, next_attempt_at = excluded.next_attempt_at,
            last_failed_at = excluded.last_failed_at",
        tuples_for(backend, rows, REJECTION_PARAMS, ", 1")
    )
}

fn clear_pending_sql(backend: &crate::Backend, rows: usize) -> String {
    format!(
        "DELETE FROM pending_pushes WHERE account IN ({})",
        placeholders_for(backend, rows)
    )
}

const WRITE_CHECKPOINT: &str = "INSERT INTO checkpoints (run, stage, position, at) VALUES ($2, $3, $4, $1)
    ON CONFLICT (run, stage) DO UPDATE SET position = excluded.position, at = excluded.at";

/// Which of `$ids` (an iterator of `&str`, at most a few hundred) `accounts` holds, read in the
/// open transaction `$tx`, as a `HashSet<String>`; a failure returns `$op`'s error. A macro, not
/// a function, because each backend's transaction is its own type (see `with_pool!`).
macro_rules! stored_ids {
    ($tx:expr, $backend:expr, $ids:expr, $op:expr) => {{
        let ids: Vec<&str> = $ids.collect();
        let sql = format!(
            "SELECT id FROM accounts WHERE id IN ({})",
            placeholders_for($backend, ids.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for id in ids {
            query = query.bind(id);
        }
        query
            .fetch_all(&mut *$tx)
            .await
            .map_err(query_error($op, "accounts"))?
            .into_iter()
            .collect::<HashSet<String>>()
    }};
}

/// An account's whole state: `accounts` with its facts and explanation from `account_texts`.
const ACCOUNT_FROM: &str = "accounts JOIN account_texts USING (id)";

const ACCOUNT_COLUMNS: &str =
    "id, name, domain, facts, facts_hash, score, coverage, potential_value, tier, explanation, model_version,
    scored_at, pushed_tier, pushed_score_bucket, pushed_reason, pushed_at, crm_tier_seen, locked, updated_run,
    COALESCE(base_tier, tier) AS base_tier, engaged_until, engaged_by, tiered";

/// A page of [`Store::account_summaries`]: the first (`$1`: the limit), or the one after a
/// cursor (`$2`). The cursor gets a statement of its own, not `($2 IS NULL OR id > $2)`: SQLite
/// does not fold that away and walked the key's index from its start for every page, so paging
/// a million accounts read some 50 million rows.
fn summaries_sql(after_cursor: bool) -> String {
    format!(
        "SELECT id, score, coverage, potential_value, tier, pushed_tier, locked,
            COALESCE(base_tier, tier) AS base_tier, engaged_until, engaged_by, tiered FROM accounts
        {} ORDER BY id LIMIT $1",
        if after_cursor { "WHERE id > $2" } else { "" }
    )
}

/// The tiering basis columns of a row (selected as in [`ACCOUNT_COLUMNS`]).
fn basis_from_row(row: &impl StoreRow, id: &str) -> Result<(Tier, Option<Engagement>, bool), StoreError> {
    let decode = query_error("read an account's tiering basis", "accounts");
    let base_tier = parse_col(
        &row.text("base_tier").map_err(decode)?,
        "accounts",
        "base_tier",
        id,
    )?;
    let until = row.opt_text("engaged_until").map_err(decode)?;
    let by = row.opt_int("engaged_by").map_err(decode)?;
    let engagement = match (until, by) {
        (Some(until), Some(by)) => Some(Engagement {
            until: parse_col(&until, "accounts", "engaged_until", id)?,
            by: u16::try_from(by).unwrap_or(u16::MAX),
        }),
        _ => None,
    };
    Ok((base_tier, engagement, row.flag("tiered").map_err(decode)?))
}

/// Bind parameters per `IN (...)` chunk: far below both backends' limits.
const IN_CHUNK: usize = 500;

fn pushed_from_row(row: &impl StoreRow, key: &str) -> Result<Option<PushedState>, StoreError> {
    let decode = query_error("read pushed state", "accounts");
    let Some(tier) = row.opt_text("pushed_tier").map_err(decode)? else {
        return Ok(None);
    };
    Ok(Some(PushedState {
        tier: parse_col(&tier, "accounts", "pushed_tier", key)?,
        score_bucket: row
            .opt_real("pushed_score_bucket")
            .map_err(decode)?
            .unwrap_or(0.0),
        reason: row.opt_text("pushed_reason").map_err(decode)?.unwrap_or_default(),
        at: Timestamp(row.opt_int("pushed_at").map_err(decode)?.unwrap_or(0)),
    }))
}

/// Which of an account's texts a read of its state takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Texts {
    /// Its facts and explanation, from `account_texts` ([`ACCOUNT_COLUMNS`]).
    Whole,
    /// No facts, and an explanation of only its `reasons`, selected from `accounts.reasons` as
    /// `explanation` ([`Store::accounts_for_push`]).
    Reasons,
    /// Its facts, and no explanation ([`Store::accounts_facts`]).
    Facts,
}

fn account_from_row(row: &impl StoreRow, texts: Texts) -> Result<AccountState, StoreError> {
    let decode = query_error("read account state", "accounts");
    let id = row.text("id").map_err(decode)?;
    let (facts, explanation) = match texts {
        Texts::Whole => (
            json_col(&row.text("facts").map_err(decode)?, "account_texts", "facts", &id)?,
            json_col(
                &row.text("explanation").map_err(decode)?,
                "account_texts",
                "explanation",
                &id,
            )?,
        ),
        Texts::Reasons => (
            serde_json::Value::Null,
            serde_json::json!({ "reasons": row.opt_text("explanation").map_err(decode)? }),
        ),
        Texts::Facts => (
            json_col(&row.text("facts").map_err(decode)?, "account_texts", "facts", &id)?,
            serde_json::Value::Null,
        ),
    };
    let crm_tier_seen = row.opt_text("crm_tier_seen").map_err(decode)?;
    let (base_tier, engagement, tiered) = basis_from_row(row, &id)?;
    Ok(AccountState {
        base_tier,
        engagement,
        tiered,
        name: row.text("name").map_err(decode)?,
        domain: row.opt_text("domain").map_err(decode)?,
        facts,
        facts_hash: row.text("facts_hash").map_err(decode)?,
        score: row.real("score").map_err(decode)?,
        coverage: row.real("coverage").map_err(decode)?,
        potential_value: row.real("potential_value").map_err(decode)?,
        tier: parse_col(&row.text("tier").map_err(decode)?, "accounts", "tier", &id)?,
        explanation,
        model_version: row.text("model_version").map_err(decode)?,
        scored_at: Timestamp(row.int("scored_at").map_err(decode)?),
        pushed: pushed_from_row(row, &id)?,
        crm_tier_seen: crm_tier_seen
            .map(|t| parse_col(&t, "accounts", "crm_tier_seen", &id))
            .transpose()?,
        locked: row.flag("locked").map_err(decode)?,
        updated_run: row.opt_int("updated_run").map_err(decode)?.map(RunId),
        id,
    })
}

fn summary_from_row(row: &impl StoreRow) -> Result<AccountSummary, StoreError> {
    let decode = query_error("read account scores", "accounts");
    let id = row.text("id").map_err(decode)?;
    let pushed_tier = row.opt_text("pushed_tier").map_err(decode)?;
    let (base_tier, engagement, tiered) = basis_from_row(row, &id)?;
    Ok(AccountSummary {
        base_tier,
        engagement,
        tiered,
        score: row.real("score").map_err(decode)?,
        coverage: row.real("coverage").map_err(decode)?,
        potential_value: row.real("potential_value").map_err(decode)?,
        tier: parse_col(&row.text("tier").map_err(decode)?, "accounts", "tier", &id)?,
        pushed_tier: pushed_tier
            .map(|t| parse_col(&t, "accounts", "pushed_tier", &id))
            .transpose()?,
        locked: row.flag("locked").map_err(decode)?,
        id,
    })
}

fn tier_change_from_row(row: &impl StoreRow, account: &str) -> Result<TierChange, StoreError> {
    let decode = query_error("read tier history", "tier_history");
    let from = row.opt_text("from_tier").map_err(decode)?;
    Ok(TierChange {
        run: RunId(row.int("run").map_err(decode)?),
        at: Timestamp(row.int("at").map_err(decode)?),
        from: from
            .map(|t| parse_col(&t, "tier_history", "from_tier", account))
            .transpose()?,
        to: parse_col(
            &row.text("to_tier").map_err(decode)?,
            "tier_history",
            "to_tier",
            account,
        )?,
        score: row.real("score").map_err(decode)?,
        reason: row.text("reason").map_err(decode)?,
        model_version: row.text("model_version").map_err(decode)?,
    })
}

fn pending_from_row(row: &impl StoreRow) -> Result<PendingPush, StoreError> {
    let decode = query_error("read pending pushes", "pending_pushes");
    let account = row.text("account").map_err(decode)?;
    Ok(PendingPush {
        tier: parse_col(
            &row.text("tier").map_err(decode)?,
            "pending_pushes",
            "tier",
            &account,
        )?,
        score_bucket: row.real("score_bucket").map_err(decode)?,
        reason: row.text("reason").map_err(decode)?,
        attempts: u32::try_from(row.int("attempts").map_err(decode)?).unwrap_or(u32::MAX),
        last_error: row.text("last_error").map_err(decode)?,
        permanent: row.flag("permanent").map_err(decode)?,
        next_attempt_at: Timestamp(row.int("next_attempt_at").map_err(decode)?),
        first_failed_run: RunId(row.int("first_failed_run").map_err(decode)?),
        first_failed_at: Timestamp(row.int("first_failed_at").map_err(decode)?),
        last_failed_at: Timestamp(row.int("last_failed_at").map_err(decode)?),
        account,
    })
}

impl Store {
    /// Commits one batch in a single transaction: each account's final tier (a new account is
    /// inserted with its whole state; a stored one keeps the rest of what it has), a tier-history row for
    /// each account whose tier changed (or that is tiered for the first time), pushed state for
    /// every accepted record (and its pending push cleared), a pending push for every rejected one
    /// (attempts counted), the `cleared` pending pushes dropped, the checkpoint, and the webhook
    /// events the batch causes with their deliveries (the outbox). If any part
    /// fails nothing is written. Accepted records must belong to accounts that have state, in the
    /// store already or in `scored`.
    ///
    /// The batch is committed even when its run is no longer `running` (e.g. marked interrupted
    /// by a new leader): the pushes it records did happen.
    pub async fn commit_batch(&self, batch: &BatchCommit) -> Result<(), StoreError> {
        let now = Timestamp::now().millis();
        let run = batch.run.0;
        let scored = last_per_key(&batch.scored, |a| &a.id);
        let pushed = last_per_key(&batch.pushed, |p| &p.account);
        // A tiered account's push is written with its tier (`upsert_accounts_sql`); the rest here.
        let pushed_with_tier: HashMap<&str, &PushRecord> = {
            let tiered: HashSet<&str> = scored.iter().map(|a| a.id.as_str()).collect();
            pushed
                .iter()
                .filter(|p| tiered.contains(p.account.as_str()))
                .map(|p| (p.account.as_str(), *p))
                .collect()
        };
        let pushed_alone: Vec<&PushRecord> = pushed
            .iter()
            .filter(|p| !pushed_with_tier.contains_key(p.account.as_str()))
            .copied()
            .collect();
        let rejected = last_per_key(&batch.rejected, |r| &r.account);
        // A pushed record settles its pending push; so does an explicit clear.
        let mut cleared: Vec<&str> = pushed.iter().map(|p| p.account.as_str()).collect();
        cleared.extend(batch.cleared.iter().map(String::as_str));
        let unknown_push = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin a batch commit", "accounts"))?;
            let history_at = batch.history_at.map_or(now, Timestamp::millis);
            for chunk in scored.chunks(ROWS_PER_STATEMENT) {
                let sql = record_tier_changes_sql(&self.backend, chunk.len());
                let mut history = sqlx::query(&sql);
                for a in chunk {
                    history = history
                        .bind(&a.id)
                        .bind(a.tier.as_str())
                        .bind(a.score)
                        .bind(&a.reason)
                        .bind(&a.model_version)
                        .bind(run)
                        .bind(history_at);
                }
                history
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("record tier changes", "tier_history"))?;
                // Only accounts not stored yet take their facts and explanation from here: the
                // daemon's have them from `commit_scores`, and sending every account's texts
                // again (most of its bytes) only for `DO NOTHING` to drop them would cost a
                // PostgreSQL run its whole facts and explanations over the wire a second time.
                let known = stored_ids!(tx, &self.backend, chunk.iter().map(|a| a.id.as_str()), "find new accounts");
                let new: Vec<&&ScoredAccount> = chunk.iter().filter(|a| !known.contains(&a.id)).collect();
                if !new.is_empty() {
                    let sql = insert_texts_sql(&self.backend, new.len());
                    let mut texts = sqlx::query(&sql);
                    for a in new {
                        texts = texts.bind(&a.id).bind(a.facts.as_str()).bind(a.explanation.as_str());
                    }
                    texts.execute(&mut *tx).await.map_err(query_error("store new accounts' facts", "account_texts"))?;
                }
                let sql = upsert_accounts_sql(&self.backend, chunk.len());
                let mut upsert = sqlx::query(&sql);
                for a in chunk {
                    let p = pushed_with_tier.get(a.id.as_str());
                    upsert = bind_account_state!(upsert, a)
                        .bind(if known.contains(&a.id) { None } else { a.explanation.reasons() })
                        .bind(now)
                        .bind(run)
                        .bind(p.map(|p| p.tier.as_str()))
                        .bind(p.map(|p| p.score_bucket))
                        .bind(p.map(|p| p.reason.as_str()))
                        .bind(p.map(|_| now));
                }
                upsert.execute(&mut *tx).await.map_err(query_error("upsert account state", "accounts"))?;
            }
            let mut unknown_push = None;
            for chunk in pushed_alone.chunks(ROWS_PER_STATEMENT) {
                let sql = record_pushes_sql(&self.backend, chunk.len());
                let mut update = sqlx::query(&sql);
                for p in chunk {
                    update = update
                        .bind(&p.account)
                        .bind(p.tier.as_str())
                        .bind(p.score_bucket)
                        .bind(&p.reason)
                        .bind(now);
                }
                let updated = update
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("record pushed tiers", "accounts"))?
                    .rows_affected();
                if updated < chunk.len() as u64 {
                    // Rare, and fatal to the batch: find which account it was, for the message.
                    let known = stored_ids!(tx, &self.backend, chunk.iter().map(|p| p.account.as_str()), "record pushed tiers");
                    unknown_push = chunk.iter().find(|p| !known.contains(&p.account)).map(|p| p.account.clone());
                    break;
                }
            }
            if unknown_push.is_none() {
                for chunk in cleared.chunks(ROWS_PER_STATEMENT) {
                    let sql = clear_pending_sql(&self.backend, chunk.len());
                    let mut delete = sqlx::query(&sql);
                    for account in chunk {
                        delete = delete.bind(*account);
                    }
                    delete.execute(&mut *tx).await.map_err(query_error("clear pending pushes", "pending_pushes"))?;
                }
                for chunk in rejected.chunks(ROWS_PER_STATEMENT) {
                    let sql = record_rejections_sql(&self.backend, chunk.len());
                    let mut upsert = sqlx::query(&sql);
                    for r in chunk {
                        upsert = upsert
                            .bind(&r.account)
                            .bind(r.tier.as_str())
                            .bind(r.score_bucket)
                            .bind(&r.reason)
                            .bind(&r.error)
                            .bind(r.permanent)
                            .bind(Timestamp(now).plus(r.retry_after.unwrap_or_default()).millis())
                            .bind(run)
                            .bind(now)
                            .bind(now);
                    }
                    upsert
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("record rejected pushes", "pending_pushes"))?;
                }
                if let Some((stage, position)) = &batch.checkpoint {
                    sqlx::query(WRITE_CHECKPOINT)
                        .bind(now)
                        .bind(run)
                        .bind(stage)
                        .bind(position)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("write a checkpoint", "checkpoints"))?;
                }
                write_events!(tx, now, &batch.events)?;
                tx.commit().await.map_err(query_error("commit a batch", "accounts"))?;
            }
            // Otherwise the transaction is dropped here, which rolls it back.
            unknown_push
        });
        match unknown_push {
            Some(account) => Err(StoreError::UnknownAccount {
                op: "record a pushed tier",
                account,
            }),
            None => Ok(()),
        }
    }

    /// Stores the new state of rescored accounts, in one transaction, without deciding their
    /// tiers: an existing account keeps its tier (and history) until tiering commits its final
    /// tier with [`Store::commit_batch`], which records one history row per real change; a new
    /// account is stored with its base tier and marked not yet tiered, so that commit records its
    /// first tier as a change from nothing. Each account's tiering basis (base tier, engagement)
    /// is kept so later runs re-tier it without rescoring it.
    pub async fn commit_scores(&self, run: RunId, accounts: &[Rescored]) -> Result<(), StoreError> {
        let now = Timestamp::now().millis();
        let accounts = last_per_key(accounts, |r| &r.account.id);
        // Taken out of the explanations before the write lock is: one not built with its
        // reasons is parsed for them, microseconds SQLite's other writers would wait for.
        let reasons: Vec<Option<Cow<'_, str>>> =
            accounts.iter().map(|r| r.account.explanation.reasons()).collect();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(query_error("begin a scores commit", "accounts"))?;
            tx.store_rescored(&accounts, &reasons, now, run.0).await?;
            tx.commit().await.map_err(query_error("commit rescored accounts", "accounts"))?;
        });
        Ok(())
    }

    /// An account's latest state.
    pub async fn account(&self, id: &str) -> Result<Option<AccountState>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} WHERE id = $1");
        let account = with_pool!(self, pool => sqlx::query(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(query_error("read account state", "accounts"))?
            .map(|r| account_from_row(&r, Texts::Whole))
            .transpose()?);
        Ok(account)
    }

    /// The latest state of each of `ids` the store knows, by id: one round trip per few hundred
    /// ids, for a batch of a run.
    pub async fn accounts(&self, ids: &[String]) -> Result<HashMap<String, AccountState>, StoreError> {
        self.accounts_as(ACCOUNT_COLUMNS, ACCOUNT_FROM, Texts::Whole, ids)
            .await
    }

    /// [`Store::accounts`] reading `columns` (the account columns, some as stand-ins) from `from`,
    /// with the `texts` they hold.
    async fn accounts_as(
        &self,
        columns: &str,
        from: &str,
        texts: Texts,
        ids: &[String],
    ) -> Result<HashMap<String, AccountState>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT {columns} FROM {from} WHERE id IN ({})",
                placeholders_for(&self.backend, chunk.len())
            );
            with_pool!(self, pool => {
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                let rows = query.fetch_all(pool).await.map_err(query_error("read account states", "accounts"))?;
                for row in &rows {
                    let account = account_from_row(row, texts)?;
                    out.insert(account.id.clone(), account);
                }
            });
        }
        Ok(out)
    }

    /// [`Store::accounts`] without what the push stage does not read: `facts` is `null` and
    /// `explanation` holds only its `reasons`, read from `accounts.reasons` (the explanation's
    /// reasons, kept beside it when it is written). Only `accounts` is read: the facts and
    /// explanation in `account_texts` are most of an account's bytes, and taking the reasons out
    /// of the explanation in SQL parsed every account's explanation on every push. The reasons
    /// come as their text, not as a JSON object to parse (20k instructions an account). The
    /// stand-ins never reach the store: a batch commit writes neither the texts nor the reasons
    /// of an account it already has (see [`Store::commit_batch`]).
    pub async fn accounts_for_push(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, AccountState>, StoreError> {
        let columns =
            ACCOUNT_COLUMNS
                .replacen("facts, ", "", 1)
                .replacen("explanation,", "reasons AS explanation,", 1);
        self.accounts_as(&columns, "accounts", Texts::Reasons, ids).await
    }

    /// [`Store::accounts`] without the explanation (`null`): for reading the stored facts of
    /// many accounts (a backtest), where the explanation would be most of the bytes read and
    /// parsed.
    pub async fn accounts_facts(&self, ids: &[String]) -> Result<HashMap<String, AccountState>, StoreError> {
        let columns = ACCOUNT_COLUMNS.replacen(" explanation,", "", 1);
        self.accounts_as(&columns, ACCOUNT_FROM, Texts::Facts, ids).await
    }

    /// Up to `limit` accounts' scores and tiers in id order, starting after `after`: page through
    /// the whole population (for tiering) without holding it all.
    pub async fn account_summaries(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccountSummary>, StoreError> {
        let sql = summaries_sql(after.is_some());
        let page = with_pool!(self, pool => {
            let mut query = sqlx::query(&sql).bind(i64::from(limit));
            if let Some(after) = after {
                query = query.bind(after);
            }
            query
                .fetch_all(pool)
                .await
                .map_err(query_error("read account scores", "accounts"))?
                .iter()
                .map(summary_from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(page)
    }

    /// An account's latest `limit` tier changes, newest first.
    pub async fn tier_history(&self, account: &str, limit: u32) -> Result<Vec<TierChange>, StoreError> {
        let sql = "SELECT run, at, from_tier, to_tier, score, reason, model_version FROM tier_history
                   WHERE account = $1 ORDER BY id DESC LIMIT $2";
        let changes = with_pool!(self, pool => sqlx::query(sql)
            .bind(account)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(query_error("read tier history", "tier_history"))?
            .iter()
            .map(|r| tier_change_from_row(r, account))
            .collect::<Result<Vec<_>, _>>()?);
        Ok(changes)
    }

    /// What was last pushed for each of `ids` that has been pushed at all.
    pub async fn last_pushed(&self, ids: &[String]) -> Result<HashMap<String, PushedState>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT id, pushed_tier, pushed_score_bucket, pushed_reason, pushed_at FROM accounts
                 WHERE pushed_tier IS NOT NULL AND id IN ({})",
                placeholders_for(&self.backend, chunk.len())
            );
            with_pool!(self, pool => {
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                let rows = query.fetch_all(pool).await.map_err(query_error("read pushed state", "accounts"))?;
                for row in &rows {
                    let id = row.text("id").map_err(query_error("read pushed state", "accounts"))?;
                    if let Some(pushed) = pushed_from_row(row, &id)? {
                        out.insert(id, pushed);
                    }
                }
            });
        }
        Ok(out)
    }

    /// A run's checkpoint in `stage`.
    pub async fn checkpoint(&self, run: RunId, stage: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row: Option<(String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT position, at FROM checkpoints WHERE run = $1 AND stage = $2",
        )
        .bind(run.0)
        .bind(stage)
        .fetch_optional(pool)
        .await)
        .map_err(query_error("read a checkpoint", "checkpoints"))?;
        Ok(row.map(|(position, at)| Checkpoint {
            position,
            at: Timestamp(at),
        }))
    }

    /// Records the CRM rejected, oldest first; the permanently invalid ones only when asked.
    pub async fn pending_pushes(&self, include_permanent: bool) -> Result<Vec<PendingPush>, StoreError> {
        let sql =
            "SELECT account, tier, score_bucket, reason, attempts, last_error, permanent, next_attempt_at,
                       first_failed_run, first_failed_at, last_failed_at
                   FROM pending_pushes WHERE ($1 OR NOT permanent) ORDER BY first_failed_at, account";
        let pending = with_pool!(self, pool => sqlx::query(sql)
            .bind(include_permanent)
            .fetch_all(pool)
            .await
            .map_err(query_error("list pending pushes", "pending_pushes"))?
            .iter()
            .map(pending_from_row)
            .collect::<Result<Vec<_>, _>>()?);
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explanation built with its reasons is the text the same document with a last field
    /// `reasons` serialises to, and gives the same reasons as that text parsed back.
    #[test]
    fn an_explanation_built_with_its_reasons_reads_as_the_text_it_is() {
        let reasons = "uses \"Snowflake\" (+0.2); é ☺\n";
        let cases = [
            (
                serde_json::json!({"as_of": "2026-11-24", "detail": {"score": 3.0, "criteria": []}}),
                serde_json::json!({"as_of": "2026-11-24", "detail": {"score": 3.0, "criteria": []}, "reasons": reasons}),
            ),
            (serde_json::json!({}), serde_json::json!({"reasons": reasons})),
            (
                serde_json::json!([1, 2]),
                serde_json::json!({"detail": [1, 2], "reasons": reasons}),
            ),
        ];
        for (rest, whole) in cases {
            let built = JsonText::explanation(&rest, reasons);
            assert_eq!(built.as_str(), whole.to_string(), "{rest}");
            assert_eq!(built, JsonText::from(&whole));
            assert_eq!(built.reasons().as_deref(), Some(reasons));
            assert_eq!(JsonText::from(&whole).reasons(), built.reasons(), "{rest}");
        }
    }

    /// Paging after a cursor seeks to it in the key's index (a `SEARCH` of `id>?` in SQLite's
    /// plan), rather than scanning the index from its start on every page.
    #[tokio::test]
    async fn a_page_of_summaries_after_a_cursor_seeks_to_the_cursor() {
        let steps =
            crate::sqlite_plan(&summaries_sql(true), |q| q.bind(10_000i64).bind("acc-00500000")).await;
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("SEARCH accounts") && s.contains("(id>?)")),
            "{steps:?}"
        );
    }
}
