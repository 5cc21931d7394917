//! Work items: the unit a run's accounts are processed in (enrich, score, keep), as the queue
//! carries them, and the counts processing reports. Data only: the loops that take items from the
//! store's queue are `queue.rs`'s.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tierd_connectors::connector::CrmAccount;
use tierd_core::codec::{self, StoredFacts};
use tierd_core::FactSchema;
use tierd_store::AccountState;

use crate::timings::StageTimes;

/// One account in a work item, as the queue carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkAccount {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) crm_tier: Option<String>,
    pub(crate) locked: bool,
    /// The account's own facts (the CRM's or the file's), in the stored form of `tierd_core::codec`.
    pub(crate) facts: Value,
    /// Pulled from the CRM in this run (else restored from the store: CRM state unknown).
    pub(crate) pulled: bool,
}

impl WorkAccount {
    pub(crate) fn from_crm(a: &CrmAccount) -> Self {
        let facts: StoredFacts = a
            .facts
            .iter()
            .map(|(n, f)| (n.clone(), codec::StoredFact::new(f.clone())))
            .collect();
        WorkAccount {
            id: a.id.clone(),
            name: a.name.clone(),
            domain: a.domain.clone(),
            crm_tier: a.crm_tier.map(|t| t.to_string()),
            locked: a.locked,
            facts: codec::encode(&facts),
            pulled: true,
        }
    }

    /// An account restored from the store to be processed again: its own facts as the CRM last
    /// gave them, plugin answers taken out and the values they replaced put back, so plugins
    /// answer from the same input as when it was pulled.
    pub(crate) fn from_state(s: &AccountState, schema: &FactSchema, is_own: impl Fn(&str) -> bool) -> Self {
        let (stored, _) = codec::decode(schema, &s.facts);
        WorkAccount {
            id: s.id.clone(),
            name: Some(s.name.clone()),
            domain: s.domain.clone(),
            crm_tier: s.crm_tier_seen.map(|t| t.to_string()),
            locked: s.locked,
            facts: codec::encode(&codec::own_facts(&stored, is_own)),
            pulled: false,
        }
    }
}

/// A work item's payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) accounts: Vec<WorkAccount>,
}

/// What processing items found, for the run's report.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BatchCounts {
    pub(crate) accounts: u64,
    pub(crate) stale: u64,
    pub(crate) quarantined: u64,
    /// Where processing the items took its time (items recorded before timings: zero).
    #[serde(default)]
    pub(crate) times: StageTimes,
}

impl BatchCounts {
    pub(crate) fn add(&mut self, other: &BatchCounts) {
        self.accounts += other.accounts;
        self.stale += other.stale;
        self.quarantined += other.quarantined;
        self.times.merge(&other.times);
    }
}

/// Shared between the pull, the enqueuer and the local consumers of one run.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) pull_done: AtomicBool,
    pub(crate) enqueued: tokio::sync::Notify,
    pub(crate) counts: Mutex<BatchCounts>,
    /// The items of a run on a store no other instance shares.
    pub(crate) local: LocalQueue,
}

/// Items in flight between the pull and the workers of a [`LocalQueue`]: enough to keep every
/// worker busy while the pull reads on, few enough that memory does not grow with the run.
const LOCAL_ITEMS: usize = 4;

/// The work items of a run whose store no other instance can share (SQLite): handed from the
/// pull to this instance's workers in memory, in order, never written to the store's queue and
/// read back (a JSON round trip per account that only several instances need). The pull waits
/// when the workers are behind.
pub(crate) struct LocalQueue {
    tx: Mutex<Option<tokio::sync::mpsc::Sender<Vec<WorkAccount>>>>,
    rx: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Vec<WorkAccount>>>,
}

impl Default for LocalQueue {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(LOCAL_ITEMS);
        LocalQueue {
            tx: Mutex::new(Some(tx)),
            rx: tokio::sync::Mutex::new(rx),
        }
    }
}

impl LocalQueue {
    /// Hands `batch` to the workers, waiting while they are behind.
    pub(crate) async fn send(&self, batch: Vec<WorkAccount>) -> anyhow::Result<()> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else {
            anyhow::bail!("work handed over after the pull ended");
        };
        tx.send(batch)
            .await
            .map_err(|_| anyhow::anyhow!("the run's workers stopped (see the error that stopped them)"))
    }

    /// No more items: the workers finish what is queued, then stop.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The next item, or `None` once the queue is closed and empty.
    pub(crate) async fn next(&self) -> Option<Vec<WorkAccount>> {
        self.rx.lock().await.recv().await
    }

    /// A worker failed: the pull's next hand-over fails instead of waiting for it.
    pub(crate) async fn abandon(&self) {
        self.rx.lock().await.close();
    }
}

impl Shared {
    pub(crate) fn merge(&self, counts: &BatchCounts) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).add(counts);
    }
}
