//! Creating and deleting records through the REST API, as far as tierd's campaigns need it:
//! `POST /sobjects/{Campaign|CampaignMember}`, sObject Collections create
//! (`POST /composite/sobjects`) and delete (`DELETE /composite/sobjects?ids=…`), each at most
//! 200 records, answered per record in request order.
//!
//! Behaviour kept from Salesforce: a CampaignMember needs a `CampaignId` and a person, lead or
//! (with the Accounts as Campaign Members setting, whose `AccountId` field exists only then) an
//! account; the same account twice in one campaign is `DUPLICATE_VALUE`; a deleted record is
//! `ENTITY_IS_DELETED` and leaves queries (`IsDeleted`); `allOrNone` rolls back the whole call.
//! Departures, all deliberate: only Campaign and CampaignMember records can be created or
//! deleted (tierd creates nothing else), and a member names an account only (contacts and leads
//! are not emulated). Knows nothing of tierd.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value as Json};

use super::world::{well_formed_id, Object, World, V};
use super::{sf_error, Org, Shared, COMPOSITE_MAX};
use crate::server::{form_pairs, json_value};

use super::RecordError;

fn text(v: &V) -> Option<&str> {
    match v {
        V::Str(s) => Some(s),
        _ => None,
    }
}

/// Checks one new record of `object`: the values to store, or the error Salesforce gives.
/// `pending` holds the (campaign, account) pairs created earlier in the same call.
fn check_new(
    world: &World,
    object: Object,
    fields: &serde_json::Map<String, Json>,
    pending: &HashSet<(String, String)>,
) -> Result<Vec<(usize, V)>, RecordError> {
    if !matches!(object, Object::Campaign | Object::CampaignMember) {
        return Err((
            "INVALID_TYPE",
            format!(
                "this emulator creates Campaign and CampaignMember records only, not {}",
                object.name()
            ),
            vec![],
        ));
    }
    let table = world.table(object);
    let values = super::record_values(table, object, fields, false)?;
    let value = |name: &str| {
        let f = table.field(name)?;
        values.iter().find(|(i, _)| *i == f).and_then(|(_, v)| text(v))
    };
    let missing = |names: &[&str]| {
        Err((
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", names.join(", ")),
            names.iter().map(|n| n.to_string()).collect(),
        ))
    };
    if object == Object::Campaign {
        return match value("Name") {
            Some(n) if !n.trim().is_empty() => Ok(values),
            _ => missing(&["Name"]),
        };
    }
    let Some(campaign) = value("CampaignId") else {
        return missing(&["CampaignId"]);
    };
    let live = |t: Object, id: &str| {
        let table = world.table(t);
        table.row(id).is_some_and(|k| !table.is_deleted(&table.rows[k]))
    };
    if !live(Object::Campaign, campaign) {
        return Err((
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: Campaign ID: {campaign}"),
            vec!["CampaignId".into()],
        ));
    }
    let Some(account) = value("AccountId") else {
        // Contacts and leads are not emulated: an account is the only member there can be.
        return missing(&["AccountId"]);
    };
    if !live(Object::Account, account) {
        return Err((
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: Account ID: {account}"),
            vec!["AccountId".into()],
        ));
    }
    let pair = (campaign.to_ascii_lowercase(), account.to_ascii_lowercase());
    if pending.contains(&pair) || members(world).contains(&pair) {
        return Err(("DUPLICATE_VALUE", "Already a campaign member.".into(), vec![]));
    }
    Ok(values)
}

/// The (campaign, account) pairs of the live CampaignMembers, lower-cased (18-character Ids
/// compare without case).
fn members(world: &World) -> HashSet<(String, String)> {
    let t = &world.campaign_members;
    let (Some(c), Some(a)) = (t.field("CampaignId"), t.field("AccountId")) else {
        return HashSet::new();
    };
    t.rows
        .iter()
        .filter(|row| !t.is_deleted(row))
        .filter_map(|row| {
            Some((
                text(&row[c])?.to_ascii_lowercase(),
                text(&row[a])?.to_ascii_lowercase(),
            ))
        })
        .collect()
}

/// The (campaign, account) pair a new CampaignMember's values name.
fn pair_of(world: &World, values: &[(usize, V)]) -> Option<(String, String)> {
    let t = &world.campaign_members;
    let get = |name: &str| {
        let f = t.field(name)?;
        values.iter().find(|(i, _)| *i == f).and_then(|(_, v)| text(v))
    };
    Some((
        get("CampaignId")?.to_ascii_lowercase(),
        get("AccountId")?.to_ascii_lowercase(),
    ))
}

fn record_error((code, message, fields): RecordError) -> Json {
    json!({"statusCode": code, "message": message, "fields": fields})
}

/// `POST /sobjects/{object}`: one record; 201 with its Id, or 400 with Salesforce's error array.
pub(super) async fn create_record(
    State(org): Shared,
    Path((_version, object)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(o) = Object::parse(&object) else {
        return super::unknown_object(&object);
    };
    let fields: serde_json::Map<String, Json> = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return sf_error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                format!("The request body is not valid JSON: {e}"),
            )
        }
    };
    let mut world = org.world_mut();
    match check_new(&world, o, &fields, &HashSet::new()) {
        Ok(values) => {
            let id = insert(&org, &mut world, o, values);
            json_value(
                StatusCode::CREATED,
                &json!({"id": id, "success": true, "errors": []}),
            )
        }
        Err((code, message, fields)) => json_value(
            StatusCode::BAD_REQUEST,
            &json!([{"message": message, "errorCode": code, "fields": fields}]),
        ),
    }
}

fn insert(org: &Org, world: &mut World, object: Object, values: Vec<(usize, V)>) -> String {
    let stamp = org.clock.next();
    let (_, id) = world.table_mut(object).insert(values, stamp);
    org.writes.record([id.as_str()]);
    id
}

/// `POST /composite/sobjects`: up to 200 new records, a result per record in request order.
pub(super) async fn composite_create(State(org): Shared, body: Bytes) -> Response {
    let req = match super::parse_collection(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut world = org.world_mut();
    let mut pending = HashSet::new();
    let mut checked = Vec::with_capacity(req.records.len());
    for rec in &req.records {
        let ty = rec
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Json::as_str);
        let outcome = match ty.map(|t| (t, Object::parse(t))) {
            None => Err((
                "INVALID_TYPE",
                "Must send a concrete entity type.".to_string(),
                vec![],
            )),
            Some((t, None)) => Err((
                "INVALID_TYPE",
                format!("sObject type '{t}' is not supported."),
                vec![],
            )),
            Some((_, Some(_))) if rec.keys().any(|k| k.eq_ignore_ascii_case("id")) => Err((
                "INVALID_FIELD",
                "cannot specify Id in an insert call".to_string(),
                vec!["Id".into()],
            )),
            Some((_, Some(o))) => check_new(&world, o, rec, &pending).map(|v| (o, v)),
        };
        if let Ok((Object::CampaignMember, values)) = &outcome {
            if let Some(pair) = pair_of(&world, values) {
                pending.insert(pair);
            }
        }
        checked.push(outcome);
    }
    let any_failed = checked.iter().any(Result::is_err);
    let mut results = Vec::with_capacity(checked.len());
    for outcome in checked {
        results.push(match outcome {
            Ok(_) if req.all_or_none && any_failed => json!({"success": false, "errors": [{
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": []}]}),
            Ok((o, values)) => {
                let id = insert(&org, &mut world, o, values);
                json!({"id": id, "success": true, "errors": []})
            }
            Err(e) => json!({"success": false, "errors": [record_error(e)]}),
        });
    }
    json_value(StatusCode::OK, &Json::Array(results))
}

/// `DELETE /composite/sobjects?ids=…&allOrNone=…`: up to 200 records, a result per id in order.
pub(super) async fn composite_delete(State(org): Shared, RawQuery(raw): RawQuery) -> Response {
    let query = form_pairs(raw.as_deref().unwrap_or(""));
    let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let Some(ids) = get("ids").filter(|v| !v.trim().is_empty()) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "MISSING_ARGUMENT",
            "The ids parameter is required and must list the Ids of the records to delete",
        );
    };
    let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
    if ids.len() > COMPOSITE_MAX {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    let all_or_none = get("allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut world = org.world_mut();
    let mut seen = HashSet::new();
    let checked: Vec<Result<(Object, usize), RecordError>> = ids
        .iter()
        .map(|id| {
            if !well_formed_id(id) {
                return Err(("MALFORMED_ID", format!("malformed id {id}"), vec![]));
            }
            let object =
                World::object_of(id).filter(|o| matches!(o, Object::Campaign | Object::CampaignMember));
            let Some(object) = object else {
                return Err((
                    "INVALID_TYPE",
                    format!("this emulator deletes Campaign and CampaignMember records only, not {id}"),
                    vec![],
                ));
            };
            let table = world.table(object);
            let Some(k) = table.row(id) else {
                return Err(("INVALID_ID_FIELD", format!("invalid record id {id}"), vec![]));
            };
            if table.is_deleted(&table.rows[k]) || !seen.insert((object, k)) {
                return Err(("ENTITY_IS_DELETED", "entity is deleted".into(), vec![]));
            }
            Ok((object, k))
        })
        .collect();
    let any_failed = checked.iter().any(Result::is_err);
    let mut results = Vec::with_capacity(ids.len());
    for (id, outcome) in ids.iter().zip(checked) {
        results.push(match outcome {
            Ok(_) if all_or_none && any_failed => json!({"id": id, "success": false, "errors": [{
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": []}]}),
            Ok((object, k)) => {
                let stamp = org.clock.next();
                let table = world.table_mut(object);
                if let Some(f) = table.field("IsDeleted") {
                    table.rows[k][f] = V::Bool(true);
                }
                table.touch(k, stamp);
                org.writes.record([*id]);
                json!({"id": id, "success": true, "errors": []})
            }
            Err(e) => json!({"id": id, "success": false, "errors": [record_error(e)]}),
        });
    }
    json_value(StatusCode::OK, &Json::Array(results))
}

impl super::SalesforceEmulator {
    /// The Ids of the accounts in the oldest live Campaign called `name` (exactly), sorted;
    /// `None` when there is no such Campaign.
    pub fn campaign_accounts(&self, name: &str) -> Option<Vec<String>> {
        let world = self.org.world();
        let campaign = campaign_named(&world, name)?;
        let mut accounts: Vec<String> = members(&world)
            .into_iter()
            .filter(|(c, _)| *c == campaign.to_ascii_lowercase())
            .filter_map(|(_, a)| {
                let k = world.accounts.row(&a)?;
                world.accounts.id(k).map(str::to_string)
            })
            .collect();
        accounts.sort();
        Some(accounts)
    }

    /// How many live Campaigns are called `name`.
    pub fn campaigns_named(&self, name: &str) -> usize {
        let world = self.org.world();
        let t = &world.campaigns;
        let n = t.field("Name").unwrap_or(1);
        t.rows
            .iter()
            .filter(|row| !t.is_deleted(row) && text(&row[n]) == Some(name))
            .count()
    }

    /// A person adds account `account` to the Campaign called `name` by hand (creating the
    /// Campaign first when there is none).
    ///
    /// # Panics
    /// When the account does not exist or is already a member: a test's instruction, and a wrong
    /// one should stop the test.
    pub fn add_campaign_member(&self, name: &str, account: &str) {
        let mut world = self.org.world_mut();
        let stamp = self.org.clock.next();
        let campaign = match campaign_named(&world, name) {
            Some(id) => id,
            None => {
                let n = world.campaigns.field("Name").unwrap_or(1);
                world.campaigns.insert(vec![(n, V::Str(name.into()))], stamp).1
            }
        };
        let mut fields = serde_json::Map::new();
        fields.insert("CampaignId".into(), json!(campaign));
        fields.insert("AccountId".into(), json!(account));
        let values = check_new(&world, Object::CampaignMember, &fields, &HashSet::new())
            .unwrap_or_else(|(code, message, _)| panic!("{code}: {message}"));
        world.campaign_members.insert(values, stamp);
    }

    /// A person removes account `account` from the Campaign called `name` by hand.
    ///
    /// # Panics
    /// When it is not a member.
    pub fn remove_campaign_member(&self, name: &str, account: &str) {
        let mut world = self.org.world_mut();
        let campaign = campaign_named(&world, name).unwrap_or_else(|| panic!("no Campaign named {name}"));
        let t = &mut world.campaign_members;
        let (c, a, d) = (
            t.field("CampaignId").unwrap_or(1),
            t.field("AccountId").unwrap_or(2),
            t.field("IsDeleted").unwrap_or(0),
        );
        let row = t
            .rows
            .iter_mut()
            .find(|row| {
                row[d] != V::Bool(true)
                    && text(&row[c]).is_some_and(|x| x.eq_ignore_ascii_case(&campaign))
                    && text(&row[a]).is_some_and(|x| x.eq_ignore_ascii_case(account))
            })
            .unwrap_or_else(|| panic!("{account} is not a member of {name}"));
        row[d] = V::Bool(true);
    }
}

/// The Id of the oldest live Campaign called exactly `name`.
fn campaign_named(world: &World, name: &str) -> Option<String> {
    let t = &world.campaigns;
    let n = t.field("Name")?;
    t.rows
        .iter()
        .find(|row| !t.is_deleted(row) && text(&row[n]) == Some(name))
        .and_then(|row| text(&row[0]).map(str::to_string))
}
