//! Salesforce Campaigns of accounts kept in step with a tier, over the REST API the connector
//! already uses.
//!
//! Accounts join a Campaign as CampaignMembers with `AccountId`, which exists only in orgs with
//! the **Accounts as Campaign Members** setting on (API 50.0 and later); without it the sync
//! stops with a message naming the setting, checked with `describe` before anything is written.
//! The alternative, the contacts of each account, would make the Campaign a list of people,
//! which a tier is not.
//!
//! - **Find**: `SELECT Id FROM Campaign WHERE Name = … ORDER BY CreatedDate, Id LIMIT 1` (the
//!   oldest of that name: Salesforce does not keep Campaign names unique).
//! - **Create**: `POST /sobjects/Campaign` with `Name` and `IsActive`.
//! - **Read**: `SELECT Id, AccountId FROM CampaignMember WHERE CampaignId = … AND AccountId !=
//!   null ORDER BY Id`, following `nextRecordsUrl` (members that are contacts or leads are
//!   someone else's and left alone).
//! - **Change**: sObject Collections create (`POST /composite/sobjects`) and delete
//!   (`DELETE /composite/sobjects?ids=…`), `batch_size` (at most 200) records per call,
//!   `allOrNone: false`, read per record. `DUPLICATE_VALUE` (already a member) counts as
//!   unchanged; a member someone else deleted meanwhile (`ENTITY_IS_DELETED`) is gone as wanted.
//!   Writing stops at the configured API reserve, the rest reported as refused.
//!
//! Knows Salesforce's JSON and SOQL and nothing of tiers or the store.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::{quote, SalesforceConnector, SfError, ID_PREFIX, NAME};
use crate::connector::CrmLists;
use crate::connector::{BoxFuture, ConnectorError};
use crate::lists::{native_ids, ListDiff, ListRefusal, ListSync};

/// One result of an sObject Collections create or delete.
#[derive(Deserialize)]
struct SaveResult {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<SfError>,
}

impl SaveResult {
    fn code(&self) -> &str {
        self.errors.first().map_or("UNKNOWN", SfError::code)
    }

    fn reason(&self) -> String {
        let all: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code(), e.message))
            .collect();
        all.join("; ")
    }
}

impl SalesforceConnector {
    /// Refuses to start unless CampaignMember has `AccountId` (the org's Accounts as Campaign
    /// Members setting).
    async fn accounts_can_be_members(&self) -> Result<(), ConnectorError> {
        #[derive(Deserialize)]
        struct Describe {
            fields: Vec<Field>,
        }
        #[derive(Deserialize)]
        struct Field {
            name: String,
        }
        let what = "describe CampaignMember";
        let reply = self
            .call(
                what,
                &self.data_path("/sobjects/CampaignMember/describe"),
                |c, url| c.get(url),
            )
            .await?;
        if !reply.status.is_success() {
            return Err(Self::fail(what, &reply));
        }
        let d: Describe = reply.json(what)?;
        if d.fields.iter().any(|f| f.name == "AccountId") {
            return Ok(());
        }
        Err(ConnectorError::SchemaMissing {
            connector: NAME,
            fields: vec![
                "CampaignMember.AccountId (turn on Accounts as Campaign Members in Setup, Campaign Settings)"
                    .into(),
            ],
        })
    }

    /// The oldest Campaign called `name`, created when there is none.
    async fn find_or_create_campaign(&self, name: &str) -> Result<(String, bool), ConnectorError> {
        let soql = format!(
            "SELECT Id FROM Campaign WHERE Name = {} ORDER BY CreatedDate, Id LIMIT 1",
            quote(name)
        );
        let found = self
            .query_all(&format!("find the Campaign '{name}'"), &soql)
            .await?;
        if let Some(id) = found.first().and_then(|r| r.get("Id")).and_then(Json::as_str) {
            return Ok((id.to_string(), false));
        }
        let what = format!("create the Campaign '{name}'");
        let body = json!({"Name": name, "IsActive": true});
        let reply = self
            .call(&what, &self.data_path("/sobjects/Campaign"), |c, url| {
                c.post(url).json(&body)
            })
            .await?;
        if !reply.status.is_success() {
            return Err(Self::fail(&what, &reply));
        }
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = reply.json(&what)?;
        tracing::info!(campaign = name, id = %created.id, "Salesforce Campaign created");
        Ok((created.id, true))
    }

    /// The Campaign's account members: Account Id -> CampaignMember Id.
    async fn campaign_accounts(
        &self,
        campaign: &str,
        name: &str,
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let soql = format!(
            "SELECT Id, AccountId FROM CampaignMember WHERE CampaignId = {} AND AccountId != null ORDER BY Id",
            quote(campaign)
        );
        let rows = self
            .query_all(&format!("read the members of the Campaign '{name}'"), &soql)
            .await?;
        let mut members = HashMap::with_capacity(rows.len());
        for r in rows {
            let text = |k: &str| r.get(k).and_then(Json::as_str).map(str::to_string);
            if let (Some(account), Some(member)) = (text("AccountId"), text("Id")) {
                members.entry(account).or_insert(member);
            }
        }
        Ok(members)
    }

    async fn sync_campaign(&self, name: &str, members: &[String]) -> Result<ListSync, ConnectorError> {
        let (desired, mut refused) = native_ids(members, ID_PREFIX, "Salesforce");
        self.accounts_can_be_members().await?;
        let (campaign, created) = self.find_or_create_campaign(name).await?;
        let current = if created {
            HashMap::new()
        } else {
            self.campaign_accounts(&campaign, name).await?
        };
        let present: HashSet<String> = current.keys().cloned().collect();
        let diff = ListDiff::between(&present, &desired);
        let mut sync = ListSync {
            list_id: campaign.clone(),
            created,
            unchanged: diff.unchanged,
            ..ListSync::default()
        };
        let size = self.config.batch_size;
        let mut ops: Vec<(&[String], bool)> = diff.add.chunks(size).map(|c| (c, true)).collect();
        ops.extend(diff.remove.chunks(size).map(|c| (c, false)));
        for (n, (batch, add)) in ops.iter().enumerate() {
            if let Some(reason) = self.within_reserve() {
                let left = ops[n..].iter().flat_map(|(batch, _)| batch.iter());
                refused.extend(left.map(|id| ListRefusal {
                    id: format!("{ID_PREFIX}{id}"),
                    reason: format!("not sent: {reason}"),
                }));
                break;
            }
            if *add {
                self.add_members(name, &campaign, batch, &mut sync, &mut refused)
                    .await?;
            } else {
                let ids: Vec<&str> = batch
                    .iter()
                    .filter_map(|a| current.get(a).map(String::as_str))
                    .collect();
                self.remove_members(name, batch, &ids, &mut sync, &mut refused)
                    .await?;
            }
        }
        sync.refused = refused;
        Ok(sync)
    }

    async fn add_members(
        &self,
        name: &str,
        campaign: &str,
        accounts: &[String],
        sync: &mut ListSync,
        refused: &mut Vec<ListRefusal>,
    ) -> Result<(), ConnectorError> {
        let records: Vec<Json> = accounts
            .iter()
            .map(
                |a| json!({"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, "AccountId": a}),
            )
            .collect();
        let what = format!(
            "add {} accounts to the Campaign '{name}' ({campaign})",
            records.len()
        );
        let body = json!({"allOrNone": false, "records": records});
        let reply = self
            .call(&what, &self.data_path("/composite/sobjects"), |c, url| {
                c.post(url).json(&body)
            })
            .await?;
        if !reply.status.is_success() {
            return Err(Self::fail(&what, &reply));
        }
        let results: Vec<SaveResult> = reply.json(&what)?;
        for (n, account) in accounts.iter().enumerate() {
            match results.get(n) {
                Some(r) if r.success => sync.added += 1,
                Some(r) if r.code() == "DUPLICATE_VALUE" => sync.unchanged += 1,
                Some(r) => refused.push(ListRefusal {
                    id: format!("{ID_PREFIX}{account}"),
                    reason: r.reason(),
                }),
                None => refused.push(ListRefusal {
                    id: format!("{ID_PREFIX}{account}"),
                    reason: "Salesforce returned no result for this member".into(),
                }),
            }
        }
        Ok(())
    }

    /// Deletes the CampaignMembers `ids` of `accounts` (same order).
    async fn remove_members(
        &self,
        name: &str,
        accounts: &[String],
        ids: &[&str],
        sync: &mut ListSync,
        refused: &mut Vec<ListRefusal>,
    ) -> Result<(), ConnectorError> {
        let what = format!("remove {} accounts from the Campaign '{name}'", ids.len());
        // Salesforce Ids are alphanumeric: nothing to escape.
        let path = format!(
            "{}?ids={}&allOrNone=false",
            self.data_path("/composite/sobjects"),
            ids.join(",")
        );
        let reply = self.call(&what, &path, |c, url| c.delete(url)).await?;
        if !reply.status.is_success() {
            return Err(Self::fail(&what, &reply));
        }
        let results: Vec<SaveResult> = reply.json(&what)?;
        for (n, account) in accounts.iter().enumerate() {
            match results.get(n) {
                Some(r) if r.success => sync.removed += 1,
                // Someone else removed it meanwhile: gone, as wanted, but not by this sync.
                Some(r) if r.code() == "ENTITY_IS_DELETED" => {}
                Some(r) => refused.push(ListRefusal {
                    id: format!("{ID_PREFIX}{account}"),
                    reason: r.reason(),
                }),
                None => refused.push(ListRefusal {
                    id: format!("{ID_PREFIX}{account}"),
                    reason: "Salesforce returned no result for this member".into(),
                }),
            }
        }
        Ok(())
    }
}

impl CrmLists for SalesforceConnector {
    fn sync_list<'a>(
        &'a self,
        name: &'a str,
        members: &'a [String],
    ) -> BoxFuture<'a, Result<ListSync, ConnectorError>> {
        Box::pin(self.sync_campaign(name, members))
    }
}
