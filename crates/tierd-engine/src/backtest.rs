//! Backtests over what the store holds: the stored accounts laid out for a model's schema, the
//! live policy re-slotted for a candidate, and a pilot's backtest (the live model and the pilot's
//! candidate on the pilot's subset of accounts and their closed deals). The figures are
//! `tierd_outcomes::backtest_model`'s; this module only reads the store and picks the accounts.
//! Used by `tierd calibrate` and by pilots (`tierd sync --once --pilot`). Knows no CRM.

use tierd_core::codec;
use tierd_core::{FactSchema, Model, TierPolicy};
use tierd_outcomes::{BacktestAccount, BacktestSection};
use tierd_store::{AccountState, Store};

use crate::{PilotSpec, Pipeline};

/// The stored accounts' facts laid out for `schema`, and the stored facts that could not be read
/// (they count as unknown), named by account and fact.
pub fn accounts_for(
    states: &[AccountState],
    schema: &FactSchema,
) -> anyhow::Result<(Vec<BacktestAccount>, Vec<String>)> {
    let mut out = Vec::with_capacity(states.len());
    let mut unreadable = Vec::new();
    for s in states {
        let (stored, problems) = codec::decode(schema, &s.facts);
        unreadable.extend(
            problems
                .into_iter()
                .map(|p| format!("{} {}: {}", s.id, p.fact, p.problem)),
        );
        let account = BacktestAccount::new(s.id.clone(), schema, &codec::current(&stored))
            .map_err(|e| anyhow::anyhow!("account {}: {e}", s.id))?;
        out.push(account);
    }
    Ok((out, unreadable))
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

/// Every stored account's state, by id.
pub async fn stored_states(store: &Store) -> anyhow::Result<Vec<AccountState>> {
    let summaries = crate::all_summaries(store).await?;
    let ids: Vec<String> = summaries.into_iter().map(|s| s.id).collect();
    let mut states: Vec<AccountState> = store.accounts(&ids).await?.into_values().collect();
    states.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(states)
}

impl Pipeline {
    /// A backtest of the live model and the pilot's candidate (when it has one), each as if it
    /// had tiered the accounts `spec` picks (its sample and filter, as a pilot run picks them;
    /// every stored account with the default spec) on each of their closed deals' creation days.
    /// Deals of accounts outside the pick are left out, not reported.
    pub async fn backtest(&self, spec: &PilotSpec) -> anyhow::Result<BacktestSection> {
        let states = stored_states(&self.store).await?;
        let live_schema = &self.settings.schema;
        let subset: Vec<AccountState> = states
            .into_iter()
            .filter(|s| {
                // Only a filter reads facts: a sample picks by id.
                let stored = match &spec.filter {
                    Some(_) => codec::decode(live_schema, &s.facts).0,
                    None => codec::StoredFacts::new(),
                };
                crate::pilot::includes(spec, &s.id, &stored)
            })
            .collect();
        let ids: std::collections::HashSet<&str> = subset.iter().map(|s| s.id.as_str()).collect();
        let deals: Vec<_> = self
            .store
            .deals_for_report()
            .await?
            .into_iter()
            .filter(|d| d.account.as_deref().is_some_and(|a| ids.contains(a)))
            .collect();
        let labelled = tierd_outcomes::label_deals(&deals, ids.iter().copied());
        let (accounts, _) = accounts_for(&subset, live_schema)?;
        let policy = &self.settings.policy;
        let (live, _) = tierd_outcomes::backtest_model(
            "live",
            &self.settings.model,
            policy,
            &accounts,
            &labelled.deals,
            None,
        );
        let mut models = vec![live];
        if let Some(path) = &spec.model {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the candidate model {}: {e}", path.display()))?;
            let candidate = Model::from_toml(&text, "model")
                .map_err(|e| anyhow::anyhow!("the candidate model {} is not valid:\n{e}", path.display()))?;
            let (schema, cand_policy) = policy_for(&candidate, policy)?;
            let (accounts, _) = accounts_for(&subset, &schema)?;
            let (b, _) = tierd_outcomes::backtest_model(
                &path.display().to_string(),
                &candidate,
                &cand_policy,
                &accounts,
                &labelled.deals,
                None,
            );
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
