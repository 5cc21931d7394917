//! CRM lists kept in step with tiers: one named list per tier (a HubSpot list of companies, a
//! Salesforce Campaign of accounts) whose membership tierd brings to exactly the accounts the
//! caller names, adding the missing and removing the extra.
//!
//! Owns what one sync did ([`ListSync`]; the contract every connector with lists implements,
//! `CrmLists`, stands beside `Connector` in `connector.rs`) and the pure diff between what a list holds and what it should hold
//! ([`ListDiff`]). Each CRM's wire format stays in its own module (`hubspot/lists.rs`,
//! `salesforce/campaigns.rs`).
//!
//! Stateless and self-healing by design: every sync reads the list's current membership from
//! the CRM and diffs against it, so a member a person added or removed by hand, a sync that
//! failed half-way, or a list emptied in the CRM is put right on the next run, and nothing is
//! remembered between runs. Must not know the store, tiers or configuration: the caller names
//! the list and hands over the members.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

/// What one [`CrmLists::sync_list`](crate::connector::CrmLists::sync_list) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSync {
    /// The list's id in the CRM (HubSpot list id, Salesforce Campaign Id).
    pub list_id: String,
    /// Whether the list was created by this sync.
    pub created: bool,
    /// Members added.
    pub added: u64,
    /// Members removed.
    pub removed: u64,
    /// Members that were already there and stay.
    pub unchanged: u64,
    /// Members that could not be added or removed, with the CRM's reason.
    pub refused: Vec<ListRefusal>,
}

/// A member a sync could not add or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRefusal {
    /// The account id (`hubspot:123`), or the CRM's own id when the CRM named it.
    pub id: String,
    /// Why, in the CRM's words where it gave any.
    pub reason: String,
}

impl fmt::Display for ListRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.id, self.reason)
    }
}

/// What to change in a list: CRM-native ids, each in ascending order, so calls repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDiff {
    /// Wanted and not there.
    pub add: Vec<String>,
    /// There and not wanted.
    pub remove: Vec<String>,
    /// Wanted and there.
    pub unchanged: u64,
}

impl ListDiff {
    /// The difference between what a list holds and what it should hold (duplicates count once).
    pub fn between(current: &HashSet<String>, desired: &HashSet<String>) -> ListDiff {
        let add: BTreeSet<&String> = desired.difference(current).collect();
        let remove: BTreeSet<&String> = current.difference(desired).collect();
        ListDiff {
            add: add.into_iter().cloned().collect(),
            remove: remove.into_iter().cloned().collect(),
            unchanged: desired.intersection(current).count() as u64,
        }
    }
}

/// Splits tierd account ids into the CRM's own ids (`hubspot:123` → `123` for `prefix`
/// `hubspot:`) and refusals for ids of another CRM; duplicates count once.
pub(crate) fn native_ids(members: &[String], prefix: &str, crm: &str) -> (HashSet<String>, Vec<ListRefusal>) {
    let mut ids = HashSet::with_capacity(members.len());
    let mut refused = Vec::new();
    for m in members {
        match m.strip_prefix(prefix).filter(|id| !id.is_empty()) {
            Some(id) => {
                ids.insert(id.to_string());
            }
            None => refused.push(ListRefusal {
                id: m.clone(),
                reason: format!("not a {crm} account id ({prefix}<id>)"),
            }),
        }
    }
    (ids, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_diff_adds_the_missing_and_removes_the_extra_in_order() {
        let d = ListDiff::between(&set(&["3", "1", "7"]), &set(&["9", "1", "2", "3"]));
        assert_eq!(d.add, ["2", "9"]);
        assert_eq!(d.remove, ["7"]);
        assert_eq!(d.unchanged, 2);
        let same = ListDiff::between(&set(&["1"]), &set(&["1"]));
        assert_eq!((same.add.len(), same.remove.len(), same.unchanged), (0, 0, 1));
    }

    #[test]
    fn ids_of_another_crm_are_refused_and_duplicates_count_once() {
        let members: Vec<String> = ["hubspot:1", "hubspot:1", "salesforce:001", "hubspot:"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (ids, refused) = native_ids(&members, "hubspot:", "HubSpot");
        assert_eq!(ids, set(&["1"]));
        let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
        assert_eq!(
            refused,
            [
                "salesforce:001: not a HubSpot account id (hubspot:<id>)",
                "hubspot:: not a HubSpot account id (hubspot:<id>)"
            ]
        );
    }
}
