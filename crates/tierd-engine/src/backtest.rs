//! Backtests over what the store holds: the stored accounts laid out for a model's schema, the
//! live policy re-slotted for a candidate, and a pilot's backtest (the live model and the pilot's
//! candidate on the pilot's subset of accounts and their closed deals). The figures are
//! `tierd_outcomes::backtest_model`'s; this module only reads the store and picks the accounts.
//! Used by `tierd calibrate` and by pilots (`tierd sync --once --pilot`). Knows no CRM.
//!
//! The store is read a page of accounts at a time ([`stored_accounts`]): a stored state (facts
//! with their sources and observation times, the explanation) is tens of kilobytes in memory,
//! and only the facts laid out for the models are kept.

use std::path::Path;

use anyhow::Context as _;
use tierd_core::codec;
use tierd_core::tier::Lock;
use tierd_core::{FactSchema, Model, TierPolicy};
use tierd_outcomes::{BacktestAccount, BacktestSection};
use tierd_store::{AccountState, Store};

use crate::{PilotSpec, Pipeline};

/// Accounts read from the store per page by [`stored_accounts`]'s callers.
pub const PAGE: u32 = 1000;

/// The stored accounts a backtest or a calibration reads, in id order.
#[derive(Debug, Default)]
pub struct StoredAccounts {
    /// Per account: its lock (a locked account keeps its stored tier).
    pub locks: Vec<Lock>,
    /// Per schema asked for, in that order: the accounts laid out for it (in the order of
    /// `locks`).
    pub laid_out: Vec<Vec<BacktestAccount>>,
    /// Per schema: the stored facts that could not be read (they count as unknown), named by
    /// account and fact.
    pub unreadable: Vec<Vec<String>>,
}

impl StoredAccounts {
    /// How many accounts were read.
    pub fn len(&self) -> usize {
        self.locks.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    /// Lays `state` out for each of `schemas` (as many as `laid_out` holds).
    fn push(&mut self, state: &AccountState, schemas: &[&FactSchema]) -> anyhow::Result<()> {
        self.locks.push(if state.locked {
            Lock::At(state.tier)
        } else {
            Lock::Unlocked
        });
        for (i, schema) in schemas.iter().enumerate() {
            let (stored, problems) = codec::decode(schema, &state.facts);
            self.unreadable[i].extend(
                problems
                    .into_iter()
                    .map(|p| format!("{} {}: {}", state.id, p.fact, p.problem)),
            );
            let account = BacktestAccount::new(state.id.clone(), schema, &codec::current(&stored))
                .map_err(|e| anyhow::anyhow!("account {}: {e}", state.id))?;
            self.laid_out[i].push(account);
        }
        Ok(())
    }
}

/// `model`'s schema, and the live policy over it: the engagement overrides' facts slotted after
/// the model's, so the policy can tier the model's rows (a pilot's candidate, the shadow model, a
/// backtested model).
pub fn policy_for(model: &Model, live: &TierPolicy) -> anyhow::Result<(FactSchema, TierPolicy)> {
    let mut schema = model.schema().clone();
    let mut policy = live.clone();
    for o in &mut policy.overrides {
        o.slot = schema
            .require(&o.fact, tierd_core::fact::FactType::DateList)
            .map_err(|e| anyhow::anyhow!("tiering override {}: {e}", o.fact))?;
    }
    Ok((schema, policy))
}

/// The candidate model at `path` (a pilot's, or one `tierd calibrate --model` backtests), its
/// schema and the live policy over it ([`policy_for`]). Fails naming the file.
pub fn load_candidate(path: &Path, live: &TierPolicy) -> anyhow::Result<(Model, FactSchema, TierPolicy)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the candidate model {}", path.display()))?;
    let model = Model::from_toml(&text, "model")
        .map_err(|e| anyhow::anyhow!("the candidate model {} is not valid:\n{e}", path.display()))?;
    let (schema, policy) = policy_for(&model, live)?;
    Ok((model, schema, policy))
}

/// Every stored account `keep` takes, in id order, laid out for each of `schemas`. The store is
/// read `page` accounts at a time and each page's states are dropped once laid out, so memory
/// holds the laid-out facts, never every account's stored state. Fails, naming the account and
/// fact, when a stored fact's type is not the one a schema reads.
pub async fn stored_accounts(
    store: &Store,
    schemas: &[&FactSchema],
    page: u32,
    mut keep: impl FnMut(&AccountState) -> bool,
) -> anyhow::Result<StoredAccounts> {
    let mut out = StoredAccounts {
        laid_out: schemas.iter().map(|_| Vec::new()).collect(),
        unreadable: schemas.iter().map(|_| Vec::new()).collect(),
        ..StoredAccounts::default()
    };
    let mut after: Option<String> = None;
    loop {
        let summaries = store
            .account_summaries(after.as_deref(), page.max(1))
            .await
            .context("cannot read the accounts from the store")?;
        let Some(last) = summaries.last() else {
            return Ok(out);
        };
        after = Some(last.id.clone());
        let ids: Vec<String> = summaries.into_iter().map(|s| s.id).collect();
        let mut states = store
            .accounts_facts(&ids)
            .await
            .context("cannot read the accounts from the store")?;
        // In the summaries' order (the store's id order); an account gone since is skipped.
        for id in &ids {
            if let Some(state) = states.remove(id) {
                if keep(&state) {
                    out.push(&state, schemas)?;
                }
            }
        }
    }
}

impl Pipeline {
    /// A backtest of the live model and the pilot's candidate (when it has one), each as if it
    /// had tiered the accounts `spec` picks (its sample and filter, as a pilot run picks them;
    /// every stored account with the default spec) on each of their closed deals' creation days.
    /// Deals of accounts outside the pick are left out, not reported.
    pub async fn backtest(&self, spec: &PilotSpec) -> anyhow::Result<BacktestSection> {
        let candidate = match &spec.model {
            Some(path) => {
                let (model, schema, policy) = load_candidate(path, &self.settings.policy)?;
                Some((path.display().to_string(), model, schema, policy))
            }
            None => None,
        };
        let live_schema = &self.settings.schema;
        let mut schemas = vec![live_schema];
        schemas.extend(candidate.as_ref().map(|(_, _, schema, _)| schema));
        let subset = stored_accounts(&self.store, &schemas, PAGE, |s| {
            // Only a filter reads facts: a sample picks by id.
            let stored = match &spec.filter {
                Some(_) => codec::decode(live_schema, &s.facts).0,
                None => codec::StoredFacts::new(),
            };
            crate::pilot::includes(spec, &s.id, &stored)
        })
        .await?;
        let mut laid_out = subset.laid_out.into_iter();
        let live_accounts = laid_out.next().unwrap_or_default();
        let ids: std::collections::HashSet<&str> = live_accounts.iter().map(|a| a.id.as_str()).collect();
        let deals: Vec<_> = self
            .store
            .deals_for_report()
            .await?
            .into_iter()
            .filter(|d| d.account.as_deref().is_some_and(|a| ids.contains(a)))
            .collect();
        let labelled = tierd_outcomes::label_deals(&deals, ids.iter().copied());
        let (live, _) = tierd_outcomes::backtest_model(
            "live",
            &self.settings.model,
            &self.settings.policy,
            &live_accounts,
            &labelled.deals,
            None,
        );
        let mut models = vec![live];
        if let (Some((label, model, _, policy)), Some(accounts)) = (&candidate, laid_out.next()) {
            let (b, _) =
                tierd_outcomes::backtest_model(label, model, policy, &accounts, &labelled.deals, None);
            models.push(b);
        }
        Ok(BacktestSection {
            deals: labelled.deals.len() as u64,
            not_closed: labelled.not_closed,
            left_out: labelled.issues,
            models,
        })
    }
}
