//! Deals: after tiering, a committing run pulls the deals of the accounts it looked at (a full
//! run: every stored account; an incremental one: the accounts it pulled) and keeps them with
//! their history in the store, for the funnel per tier. `tierd sync --once --job deals` runs this
//! stage alone over every account ([`crate::Pipeline::sync_deals`]).
//!
//! A deal the CRM no longer returns for an account it was asked about is marked deleted; one seen
//! under another account is recorded as moved; one closed and open again, as reopened. A deal
//! without an account is stored without one and reported by the funnel, never dropped.

use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::Context as _;
use tierd_connectors::connector::Deal;
use tierd_store::{DealRecord, DealSync, RunId, Timestamp};

use crate::Pipeline;

/// Accounts asked about per call to the connector.
const ACCOUNTS_PER_CALL: usize = 1000;

/// What the deals stage did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DealsReport {
    /// Accounts whose deals were pulled.
    pub accounts: u64,
    /// Deals the CRM returned.
    pub pulled: u64,
    /// New, changed, moved, reopened and restored deals.
    pub sync: DealSync,
    /// Deals no longer returned for their account: marked deleted.
    pub deleted: u64,
    /// Deals returned without an account (kept without one, reported by the funnel).
    pub without_account: u64,
}

impl DealsReport {
    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &DealsReport) {
        self.accounts += other.accounts;
        self.pulled += other.pulled;
        self.sync.new += other.sync.new;
        self.sync.changed += other.sync.changed;
        self.sync.moved += other.sync.moved;
        self.sync.reopened += other.sync.reopened;
        self.sync.restored += other.sync.restored;
        self.deleted += other.deleted;
        self.without_account += other.without_account;
    }
}

/// The store's record of a connector's deal.
fn record_of(d: Deal) -> DealRecord {
    DealRecord {
        account: Some(d.account_id).filter(|a| !a.is_empty()),
        pipeline: d.pipeline,
        stage: d.stage,
        amount: d.amount,
        currency: d.currency,
        created_at: d.created.map(|w| Timestamp::from_millis(w.millis())),
        close_date: d.close_date,
        closed: d.closed,
        won: d.won,
        stage_entries: d
            .stage_entries
            .into_iter()
            .map(|(s, w)| (s, Timestamp::from_millis(w.millis())))
            .collect(),
        id: d.id,
    }
}

/// Lanes of chunks pulled and stored side by side. Storing is most of the stage (at 1M accounts
/// on PostgreSQL, 815,532 deals and their history: the server's one core at a time with one
/// lane); with two, two transactions use two of its cores. SQLite takes the writers in turn.
const LANES: usize = 2;

/// Pulls the deals of `accounts` and stores them as seen by `run`.
pub(crate) async fn pull(
    p: &Pipeline,
    run: Option<RunId>,
    accounts: &[String],
) -> anyhow::Result<DealsReport> {
    let before: HashSet<String> = p
        .store
        .live_deal_ids(accounts)
        .await
        .context("read the stored deals")?
        .into_iter()
        .collect();
    // Chunk i goes to lane i % LANES; the lanes share which deals were seen (held only between
    // reading and adding to it, never across a wait: a deal returned in two chunks is stored once).
    let seen = Mutex::new(HashSet::new());
    let chunks: Vec<&[String]> = accounts.chunks(ACCOUNTS_PER_CALL).collect();
    let lanes =
        (0..LANES).map(|lane| pull_lane(p, run, chunks.iter().copied().skip(lane).step_by(LANES), &seen));
    let mut report = DealsReport {
        accounts: accounts.len() as u64,
        ..DealsReport::default()
    };
    for lane in futures_util::future::try_join_all(lanes).await? {
        report.add(&lane);
    }
    let seen = seen
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut gone: Vec<String> = before.difference(&seen).cloned().collect();
    gone.sort();
    report.deleted = p
        .store
        .delete_deals(run, &gone)
        .await
        .context("mark deleted deals")?;
    tracing::info!(
        accounts = report.accounts,
        pulled = report.pulled,
        new = report.sync.new,
        changed = report.sync.changed,
        deleted = report.deleted,
        "deals pulled"
    );
    Ok(report)
}

/// One lane of [`pull`]: its chunks' deals pulled and stored in turn, the next chunk's pulled
/// while this one's are stored.
async fn pull_lane<'a>(
    p: &Pipeline,
    run: Option<RunId>,
    mut chunks: impl Iterator<Item = &'a [String]>,
    seen: &Mutex<HashSet<String>>,
) -> anyhow::Result<DealsReport> {
    let mut report = DealsReport::default();
    let Some(first) = chunks.next() else {
        return Ok(report);
    };
    let mut fetched = deals_of(p, Some(first)).await;
    loop {
        let deals = fetched?;
        let next = chunks.next();
        // A deal already seen in an earlier chunk (one without an account) is counted once.
        let records: Vec<DealRecord> = {
            let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let records: Vec<DealRecord> = deals
                .into_iter()
                .filter(|d| !seen.contains(&d.id))
                .map(record_of)
                .collect();
            seen.extend(records.iter().map(|r| r.id.clone()));
            records
        };
        report.pulled += records.len() as u64;
        report.without_account += records.iter().filter(|r| r.account.is_none()).count() as u64;
        let (stored, next_deals) = tokio::join!(p.store.record_deals(run, &records), deals_of(p, next));
        report.add(&DealsReport {
            sync: stored.context("store deals")?,
            ..DealsReport::default()
        });
        if next.is_none() {
            return Ok(report);
        }
        fetched = next_deals;
    }
}

/// The deals of `accounts` (none when there are none to ask about).
async fn deals_of(p: &Pipeline, accounts: Option<&[String]>) -> anyhow::Result<Vec<Deal>> {
    let Some(accounts) = accounts else {
        return Ok(Vec::new());
    };
    p.connector.deals_for(accounts).await.map_err(|e| {
        p.metrics.error("deals");
        anyhow::Error::new(e).context("pull deals from the CRM")
    })
}

/// Every stored account's id, in pages.
pub(crate) async fn all_accounts(p: &Pipeline) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let page = p
            .store
            .account_summaries(ids.last().map(String::as_str), 10_000)
            .await
            .context("list accounts")?;
        if page.is_empty() {
            return Ok(ids);
        }
        ids.extend(page.into_iter().map(|a| a.id));
    }
}
