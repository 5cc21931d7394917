//! CRM lists kept in step after a committing run (`[crm_lists]`): each configured tier's list
//! (a HubSpot list, a Salesforce Campaign) brought to exactly the accounts the store holds in
//! that tier, through the connector's [`CrmLists`](tierd_connectors::connector::CrmLists).
//!
//! Runs after the run has ended and been recorded, like audience exports: a list that cannot be
//! kept in step is logged with its name and key and counted (`tierd_errors{stage="crm_lists"}`),
//! and never fails the run; the next run tries again from the CRM's own state, so nothing is
//! remembered here. Must not know any CRM's API: the connector speaks it.

use std::collections::HashMap;

use tierd_config::activation::CrmList;
use tierd_connectors::lists::ListSync;
use tierd_core::Tier;

use crate::Pipeline;

/// Accounts read from the store per page.
const PAGE: u32 = 2_000;
/// Refusals logged one by one per list; the rest are counted.
const REFUSALS_LOGGED: usize = 20;

/// What happened to one configured list.
#[derive(Debug, Clone)]
pub struct CrmListOutcome {
    /// The list as configured (tier, name, key).
    pub list: CrmList,
    /// The sync's counts, or why the list was not kept in step.
    pub result: Result<ListSync, String>,
}

impl Pipeline {
    /// Keeps every `[crm_lists]` list in step with its tier as the store holds it now. A failure
    /// is logged with the list's name and key and never fails the run.
    pub async fn sync_crm_lists(&self) -> Vec<CrmListOutcome> {
        let lists = &self.settings.crm_lists.lists;
        if lists.is_empty() {
            return Vec::new();
        }
        let members = match self.members_by_tier(lists).await {
            Ok(m) => m,
            Err(e) => return lists.iter().map(|l| self.failed(l, e.clone())).collect(),
        };
        let Some(crm) = self.connector.lists() else {
            let why = format!("the {} connector keeps no CRM lists", self.connector.kind());
            return lists.iter().map(|l| self.failed(l, why.clone())).collect();
        };
        let mut out = Vec::with_capacity(lists.len());
        for list in lists {
            let ids = members.get(&list.tier).map_or(&[][..], Vec::as_slice);
            let outcome = match crm.sync_list(&list.name, ids).await {
                Ok(sync) => {
                    self.report(list, ids.len(), &sync);
                    CrmListOutcome {
                        list: list.clone(),
                        result: Ok(sync),
                    }
                }
                Err(e) => self.failed(list, e.to_string()),
            };
            out.push(outcome);
        }
        out
    }

    /// The ids of the tiered accounts in each of the lists' tiers, from the store, paged.
    async fn members_by_tier(&self, lists: &[CrmList]) -> Result<HashMap<Tier, Vec<String>>, String> {
        let mut members: HashMap<Tier, Vec<String>> = lists.iter().map(|l| (l.tier, Vec::new())).collect();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .account_summaries(after.as_deref(), PAGE)
                .await
                .map_err(|e| format!("cannot read the tiers' accounts from the store: {e}"))?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for a in page {
                if !a.tiered {
                    continue;
                }
                if let Some(ids) = members.get_mut(&a.tier) {
                    ids.push(a.id);
                }
            }
        }
        Ok(members)
    }

    fn report(&self, list: &CrmList, members: usize, sync: &ListSync) {
        let tier = list.tier.as_str();
        self.metrics.crm_list_members(tier, "added", sync.added);
        self.metrics.crm_list_members(tier, "removed", sync.removed);
        self.metrics
            .crm_list_members(tier, "refused", sync.refused.len() as u64);
        tracing::info!(list = %list.name, key = %list.key, list_id = %sync.list_id, created = sync.created,
            members, added = sync.added, removed = sync.removed, unchanged = sync.unchanged,
            refused = sync.refused.len(), "CRM list kept in step");
        for r in sync.refused.iter().take(REFUSALS_LOGGED) {
            tracing::warn!(list = %list.name, key = %list.key, account = %r.id, reason = %r.reason, "CRM list member refused");
        }
        if sync.refused.len() > REFUSALS_LOGGED {
            tracing::warn!(list = %list.name, key = %list.key, more = sync.refused.len() - REFUSALS_LOGGED,
                "more CRM list members refused");
        }
    }

    fn failed(&self, list: &CrmList, error: String) -> CrmListOutcome {
        self.metrics.error("crm_lists");
        tracing::error!(list = %list.name, key = %list.key, error = %error, "CRM list not kept in step; the next run tries again");
        CrmListOutcome {
            list: list.clone(),
            result: Err(error),
        }
    }
}
