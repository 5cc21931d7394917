//! Deals: after tiering, a committing run pulls the deals of the accounts it looked at (a full
//! run: every stored account; an incremental one: the accounts it pulled) and keeps them with
//! their history in the store, for the funnel per tier. `tierd sync --once --job deals` runs this
//! stage alone over every account ([`crate::Pipeline::sync_deals`]).
//!
//! A deal the CRM no longer returns for an account it was asked about is marked deleted; one seen
//! under another account is recorded as moved; one closed and open again, as reopened. A deal
//! without an account is stored without one and reported by the funnel, never dropped.

use std::collections::HashSet;

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

/// Pulls the deals of `accounts` and stores them as seen by `run`.
pub(crate) async fn pull(
    p: &Pipeline,
    run: Option<RunId>,
    accounts: &[String],
) -> anyhow::Result<DealsReport> {
    let mut report = DealsReport {
        accounts: accounts.len() as u64,
        ..DealsReport::default()
    };
    let before: HashSet<String> = p
        .store
        .live_deal_ids(accounts)
        .await
        .context("read the stored deals")?
        .into_iter()
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    // The next chunk's deals are pulled while this chunk's are stored: the CRM's answers and the
    // store's writes overlap (at 1M accounts on PostgreSQL the stage was one after the other).
    let chunks: Vec<&[String]> = accounts.chunks(ACCOUNTS_PER_CALL).collect();
    let mut fetched = deals_of(p, chunks.first().copied()).await;
    for next in 1..=chunks.len() {
        let deals = fetched?;
        // A deal already seen in an earlier chunk (one without an account) is counted once.
        let records: Vec<DealRecord> = deals
            .into_iter()
            .filter(|d| !seen.contains(&d.id))
            .map(record_of)
            .collect();
        report.pulled += records.len() as u64;
        report.without_account += records.iter().filter(|r| r.account.is_none()).count() as u64;
        seen.extend(records.iter().map(|r| r.id.clone()));
        let (stored, next_deals) = tokio::join!(
            p.store.record_deals(run, &records),
            deals_of(p, chunks.get(next).copied())
        );
        let sync = stored.context("store deals")?;
        fetched = next_deals;
        report.sync.new += sync.new;
        report.sync.changed += sync.changed;
        report.sync.moved += sync.moved;
        report.sync.reopened += sync.reopened;
        report.sync.restored += sync.restored;
    }
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
