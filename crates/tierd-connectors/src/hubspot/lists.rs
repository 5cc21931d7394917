//! HubSpot lists of companies kept in step with a tier, over the Lists API.
//!
//! - **Find**: `GET {lists}/object-type-id/0-2/name/{name}` (HubSpot matches names without
//!   regard to case); a 404 means there is none.
//! - **Create**: `POST {lists}/` with `{name, objectTypeId: "0-2", processingType: "MANUAL"}`.
//! - **Read**: `GET {lists}/{listId}/memberships?limit=250&after=…`, by record id.
//! - **Change**: `PUT {lists}/{listId}/memberships/add-and-remove` with `recordIdsToAdd` and
//!   `recordIdsToRemove`, `list_batch_size` ids per call. HubSpot changes members of MANUAL and
//!   SNAPSHOT lists only: a DYNAMIC list of the same name is refused with HubSpot's words.
//!
//! `{lists}` is `lists_path`: `/crm/lists/2026-03`, the path HubSpot's reference calls current,
//! by default, or the legacy `/crm/v3/lists`. The two spell the added ids differently in their
//! answer (`recordsIdsAdded` and `recordIdsAdded`); both are read. Knows HubSpot's list JSON and
//! nothing of tiers or the store.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::json;

use super::{HubSpotConnector, ID_PREFIX};
use crate::connector::CrmLists;
use crate::connector::{BoxFuture, ConnectorError};
use crate::lists::{native_ids, ListDiff, ListRefusal, ListSync};

/// The Lists API path HubSpot's reference documents as current (date-versioned, 2026-03).
pub(super) const CURRENT_PATH: &str = "/crm/lists/2026-03";
/// The paths tierd knows: the current one and the legacy v3 one.
pub(super) const PATHS: [&str; 2] = [CURRENT_PATH, "/crm/v3/lists"];
/// Members per page: HubSpot documents a maximum `limit` of 250 for list memberships.
pub(super) const PAGE_MAX: usize = 250;
/// Ids per membership change by default. HubSpot documents no per-call limit for
/// add-and-remove; a thousand keeps each call small.
pub(super) const DEFAULT_BATCH: usize = 1_000;
/// The most ids per call `list_batch_size` may ask for: 100,000 is the largest membership
/// count HubSpot documents for one call (copying a source list with fewer than 100,000 members).
pub(super) const BATCH_MAX: usize = 100_000;
/// HubSpot's object type id of companies.
const COMPANIES: &str = "0-2";

#[derive(Deserialize)]
struct ListEnvelope {
    list: ListDefinition,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListDefinition {
    list_id: String,
    #[serde(default)]
    processing_type: String,
}

#[derive(Deserialize)]
struct MembershipPage {
    #[serde(default)]
    results: Vec<Membership>,
    paging: Option<super::Paging>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Membership {
    record_id: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MembershipChange {
    /// `recordIdsAdded` in v3; the 2026-03 reference spells it `recordsIdsAdded`.
    #[serde(rename = "recordIdsAdded", alias = "recordsIdsAdded")]
    added: Vec<String>,
    #[serde(rename = "recordIdsRemoved")]
    removed: Vec<String>,
    #[serde(rename = "recordIdsMissing")]
    missing: Vec<String>,
}

impl HubSpotConnector {
    /// `{base}{lists_path}` followed by `segments`, each escaped as one path segment (list
    /// names hold spaces, colons and slashes).
    fn lists_url(&self, segments: &[&str]) -> Result<reqwest::Url, ConnectorError> {
        let root = format!("{}{}", self.base, self.config.lists_path.trim_end_matches('/'));
        let mut url = reqwest::Url::parse(&root)
            .map_err(|e| ConnectorError::config("lists_path", format!("'{root}' is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| ConnectorError::config("base_url", format!("'{root}' cannot take a path")))?
            .extend(segments);
        Ok(url)
    }

    /// The company list called `name`, created as a MANUAL list when there is none.
    async fn find_or_create_list(&self, name: &str) -> Result<(ListDefinition, bool), ConnectorError> {
        let token = self.config.token.expose();
        let what = format!("find the HubSpot list '{name}'");
        let url = self.lists_url(&["object-type-id", COMPANIES, "name", name])?;
        let reply = self
            .http
            .send(&what, &self.limiter, |c| c.get(url.clone()).bearer_auth(token))
            .await?;
        if reply.status.as_u16() != 404 {
            let found: ListEnvelope = self.check(&what, reply)?.json(&what)?;
            return Ok((found.list, false));
        }
        let what = format!("create the HubSpot list '{name}'");
        // The trailing slash is the documented path of list creation.
        let url = self.lists_url(&[""])?;
        let body = json!({"name": name, "objectTypeId": COMPANIES, "processingType": "MANUAL"});
        let reply = self
            .http
            .send(&what, &self.limiter, |c| {
                c.post(url.clone()).bearer_auth(token).json(&body)
            })
            .await?;
        let created: ListEnvelope = self.check(&what, reply)?.json(&what)?;
        tracing::info!(list = name, list_id = %created.list.list_id, "HubSpot list created");
        Ok((created.list, true))
    }

    /// Every record id in the list, page by page.
    async fn list_members(&self, list_id: &str, name: &str) -> Result<HashSet<String>, ConnectorError> {
        let what = format!("read the members of the HubSpot list '{name}'");
        let url = self.lists_url(&[list_id, "memberships"])?;
        let limit = self.config.list_page_size.to_string();
        let mut members = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page: MembershipPage = self
                .get_json(&what, &self.limiter, |c| {
                    let mut q = vec![("limit", limit.as_str())];
                    if let Some(a) = &after {
                        q.push(("after", a.as_str()));
                    }
                    c.get(url.clone()).query(&q)
                })
                .await?;
            members.extend(page.results.into_iter().map(|m| m.record_id));
            match page.paging.and_then(|p| p.next) {
                Some(next) if Some(&next.after) != after.as_ref() => after = Some(next.after),
                _ => return Ok(members),
            }
        }
    }

    async fn sync_company_list(&self, name: &str, members: &[String]) -> Result<ListSync, ConnectorError> {
        let (desired, mut refused) = native_ids(members, ID_PREFIX, "HubSpot");
        let (list, created) = self.find_or_create_list(name).await?;
        let current = if created {
            HashSet::new()
        } else {
            self.list_members(&list.list_id, name).await?
        };
        let diff = ListDiff::between(&current, &desired);
        let mut sync = ListSync {
            list_id: list.list_id.clone(),
            created,
            unchanged: diff.unchanged,
            ..ListSync::default()
        };
        let url = self.lists_url(&[&list.list_id, "memberships", "add-and-remove"])?;
        let token = self.config.token.expose();
        // Adds first, then removes, cut into calls of `list_batch_size` ids in all.
        let changes: Vec<(&String, bool)> = diff
            .add
            .iter()
            .map(|id| (id, true))
            .chain(diff.remove.iter().map(|id| (id, false)))
            .collect();
        for batch in changes.chunks(self.config.list_batch_size) {
            let add: Vec<&String> = batch.iter().filter(|(_, a)| *a).map(|(id, _)| *id).collect();
            let remove: Vec<&String> = batch.iter().filter(|(_, a)| !*a).map(|(id, _)| *id).collect();
            let what = format!(
                "add {} and remove {} members of the HubSpot list '{name}' (id {}, {})",
                add.len(),
                remove.len(),
                list.list_id,
                list.processing_type
            );
            let body = json!({"recordIdsToAdd": add, "recordIdsToRemove": remove});
            let reply = self
                .http
                .send(&what, &self.limiter, |c| {
                    c.put(url.clone()).bearer_auth(token).json(&body)
                })
                .await?;
            let change: MembershipChange = self.check(&what, reply)?.json(&what)?;
            sync.added += change.added.len() as u64;
            sync.removed += change.removed.len() as u64;
            refused.extend(change.missing.into_iter().map(|id| ListRefusal {
                reason: format!("HubSpot has no company {id}"),
                id: format!("{ID_PREFIX}{id}"),
            }));
        }
        sync.refused = refused;
        Ok(sync)
    }
}

impl CrmLists for HubSpotConnector {
    fn sync_list<'a>(
        &'a self,
        name: &'a str,
        members: &'a [String],
    ) -> BoxFuture<'a, Result<ListSync, ConnectorError>> {
        Box::pin(async move { self.sync_company_list(name, members).await })
    }
}
