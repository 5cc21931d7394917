//! HubSpot's Lists API, as much of it as tierd uses: create a list, find one by name, page
//! through its memberships, add and remove members in one call. Served under both the
//! current date-versioned path (`/crm/lists/2026-03`) and the legacy `/crm/v3/lists`, which
//! differ only in how the answer to add-and-remove spells the added ids (`recordsIdsAdded` in
//! 2026-03's reference, `recordIdsAdded` in v3's).
//!
//! Behaviour kept from HubSpot's reference: names are unique across lists and matched without
//! regard to case; memberships come in record-id order, at most 250 a page; only MANUAL and
//! SNAPSHOT lists take membership changes; ids of records that do not exist come back in
//! `recordIdsMissing`, and adding a member or removing a non-member changes nothing. Departures,
//! all deliberate: a DYNAMIC list is never filled from its filters (it holds what the Rust API
//! puts in it); HubSpot documents no per-call limit on add-and-remove, so the emulator's is
//! [`super::HubSpotConfig::list_batch_max`]; the wording of its refusals is the emulator's, in
//! HubSpot's error envelope. Knows nothing of tierd: it speaks HubSpot's JSON only.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::{list_query, parse_body, parse_limit, Hub, Shared};
use crate::clock;
use crate::server::json_value;

/// The list paths served: HubSpot's current date-versioned one, then the legacy v3 one, with
/// the key each spells the added ids with.
const PREFIXES: [(&str, &str); 2] = [
    ("/crm/lists/2026-03", "recordsIdsAdded"),
    ("/crm/v3/lists", "recordIdsAdded"),
];
/// Memberships per page: HubSpot's documented maximum `limit`.
const PAGE_MAX: usize = 250;
const PAGE_DEFAULT: usize = 100;
/// Object types a list may hold (contacts, companies, deals, tickets).
const OBJECT_TYPES: [&str; 4] = ["0-1", "0-2", "0-3", "0-5"];
const PROCESSING_TYPES: [&str; 3] = ["MANUAL", "SNAPSHOT", "DYNAMIC"];

/// The portal's lists.
#[derive(Debug, Default)]
pub(super) struct Lists {
    state: Mutex<State_>,
}

#[derive(Debug)]
struct State_ {
    next_id: u64,
    lists: BTreeMap<u64, List>,
    /// add-and-remove calls answered 200.
    membership_calls: u64,
}

impl Default for State_ {
    fn default() -> Self {
        State_ {
            next_id: 1,
            lists: BTreeMap::new(),
            membership_calls: 0,
        }
    }
}

#[derive(Debug)]
struct List {
    name: String,
    object_type_id: String,
    processing_type: String,
    version: u64,
    created_ms: i64,
    updated_ms: i64,
    /// Record id -> when it joined (epoch ms).
    members: BTreeMap<u64, i64>,
}

impl List {
    fn to_json(&self, id: u64) -> Json {
        json!({
            "listId": id.to_string(),
            "listVersion": self.version,
            "name": self.name,
            "objectTypeId": self.object_type_id,
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "createdAt": clock::iso_utc(self.created_ms),
            "updatedAt": clock::iso_utc(self.updated_ms),
            "size": self.members.len(),
        })
    }
}

impl Lists {
    fn with<R>(&self, f: impl FnOnce(&mut State_) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A person creates a list in HubSpot; its id.
    pub(super) fn create(
        &self,
        name: &str,
        object_type_id: &str,
        processing_type: &str,
    ) -> Result<u64, String> {
        self.with(|s| {
            if s.lists.values().any(|l| l.name.eq_ignore_ascii_case(name)) {
                return Err(format!("A list named '{name}' already exists."));
            }
            let id = s.next_id;
            s.next_id += 1;
            let now = clock::now_ms();
            s.lists.insert(
                id,
                List {
                    name: name.to_string(),
                    object_type_id: object_type_id.to_string(),
                    processing_type: processing_type.to_string(),
                    version: 1,
                    created_ms: now,
                    updated_ms: now,
                    members: BTreeMap::new(),
                },
            );
            Ok(id)
        })
    }

    /// The members (record ids, ascending) of the list called `name`, any case.
    pub(super) fn members(&self, name: &str) -> Option<Vec<String>> {
        self.with(|s| {
            s.lists
                .values()
                .find(|l| l.name.eq_ignore_ascii_case(name))
                .map(|l| l.members.keys().map(u64::to_string).collect())
        })
    }

    /// A person adds (`true`) or removes a record by hand; false when there is no such list.
    pub(super) fn edit(&self, name: &str, record: u64, add: bool) -> bool {
        self.with(|s| {
            let Some(l) = s.lists.values_mut().find(|l| l.name.eq_ignore_ascii_case(name)) else {
                return false;
            };
            if add {
                l.members.entry(record).or_insert_with(clock::now_ms);
            } else {
                l.members.remove(&record);
            }
            true
        })
    }

    /// Membership changes answered so far.
    pub(super) fn membership_calls(&self) -> u64 {
        self.with(|s| s.membership_calls)
    }

    /// How many lists the portal has.
    pub(super) fn count(&self) -> usize {
        self.with(|s| s.lists.len())
    }
}

/// The list routes under both paths.
pub(super) fn routes() -> Router<std::sync::Arc<Hub>> {
    PREFIXES
        .into_iter()
        .fold(Router::new(), |r, (prefix, added_key)| {
            r.route(&format!("{prefix}/"), post(create_list))
                .route(prefix, post(create_list))
                .route(
                    &format!("{prefix}/object-type-id/{{object_type_id}}/name/{{name}}"),
                    get(list_by_name),
                )
                .route(&format!("{prefix}/{{list_id}}/memberships"), get(memberships))
                .route(
                    &format!("{prefix}/{{list_id}}/memberships/add-and-remove"),
                    put(move |hub: Shared, id: Path<String>, body: Bytes| {
                        add_and_remove(hub, id, body, added_key)
                    }),
                )
        })
}

fn list_error(hub: &Hub, status: StatusCode, category: &str, sub: &str, message: String) -> Response {
    let body = json!({"status": "error", "message": message, "correlationId": hub.stats.correlation_id(),
        "category": category, "subCategory": sub});
    json_value(status, &body)
}

fn list_not_found(hub: &Hub, id: &str) -> Response {
    list_error(
        hub,
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "ListError.LIST_DOES_NOT_EXIST",
        format!("List with id {id} does not exist."),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    name: String,
    object_type_id: String,
    processing_type: String,
}

async fn create_list(State(hub): Shared, body: Bytes) -> Response {
    let req: CreateRequest = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let name = req.name.trim();
    if name.is_empty() {
        return hub.invalid("name must not be empty");
    }
    if !OBJECT_TYPES.contains(&req.object_type_id.as_str()) {
        return list_error(
            &hub,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "ListError.INVALID_OBJECT_TYPE_FOR_LIST",
            format!(
                "The objectTypeId {} provided for the list is not valid for this portal.",
                req.object_type_id
            ),
        );
    }
    if !PROCESSING_TYPES.contains(&req.processing_type.as_str()) {
        return hub.invalid(format!(
            "processingType must be one of MANUAL, SNAPSHOT, DYNAMIC, got '{}'",
            req.processing_type
        ));
    }
    match hub.lists.create(name, &req.object_type_id, &req.processing_type) {
        Ok(id) => {
            let list = hub.lists.with(|s| s.lists.get(&id).map(|l| l.to_json(id)));
            json_value(StatusCode::OK, &json!({"list": list}))
        }
        Err(message) => list_error(
            &hub,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "ListError.LIST_NAME_ALREADY_EXISTS",
            message,
        ),
    }
}

async fn list_by_name(State(hub): Shared, Path((object_type_id, name)): Path<(String, String)>) -> Response {
    let found = hub.lists.with(|s| {
        s.lists
            .iter()
            .find(|(_, l)| l.object_type_id == object_type_id && l.name.eq_ignore_ascii_case(&name))
            .map(|(id, l)| l.to_json(*id))
    });
    match found {
        Some(list) => json_value(StatusCode::OK, &json!({"list": list})),
        None => list_error(
            &hub,
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "ListError.LIST_DOES_NOT_EXIST",
            format!("List with name {name} does not exist for objectTypeId {object_type_id}."),
        ),
    }
}

async fn memberships(State(hub): Shared, Path(list_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = list_query(raw);
    let limit = match parse_limit(&hub, q.limit.as_deref(), PAGE_DEFAULT, PAGE_MAX) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let after = match q.after.as_deref().map(|a| a.trim().parse::<u64>()) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => return hub.invalid("after must be a paging cursor returned by a previous page"),
    };
    let page = hub.lists.with(|s| {
        let list = list_id.parse::<u64>().ok().and_then(|id| s.lists.get(&id))?;
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut rows = list.members.range((from, std::ops::Bound::Unbounded));
        let results: Vec<Json> = rows
            .by_ref()
            .take(limit)
            .map(|(id, at)| json!({"recordId": id.to_string(), "membershipTimestamp": clock::iso_utc(*at)}))
            .collect();
        let more = rows.next().is_some();
        Some((results, more))
    });
    let Some((results, more)) = page else {
        return list_not_found(&hub, &list_id);
    };
    let mut body = json!({"results": results});
    if more {
        let last = results
            .last()
            .and_then(|r| r["recordId"].as_str())
            .unwrap_or_default()
            .to_string();
        let link = format!(
            "{}{}/{list_id}/memberships?after={last}",
            hub.base_url.get().map_or("", String::as_str),
            PREFIXES[0].0
        );
        body["paging"] = json!({"next": {"after": last, "link": link}});
    }
    json_value(StatusCode::OK, &body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipChange {
    record_ids_to_add: Vec<String>,
    record_ids_to_remove: Vec<String>,
}

async fn add_and_remove(
    State(hub): Shared,
    Path(list_id): Path<String>,
    body: Bytes,
    added_key: &str,
) -> Response {
    let req: MembershipChange = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let n = req.record_ids_to_add.len() + req.record_ids_to_remove.len();
    if n > hub.cfg.list_batch_max {
        return list_error(
            &hub,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "ListError.TOO_MANY_RECORDS",
            format!(
                "The request names {n} records; at most {} may be added or removed in one request.",
                hub.cfg.list_batch_max
            ),
        );
    }
    // Which ids are companies, before taking the lists' lock (the world has its own).
    let exists = {
        let world = hub.world();
        move |id: &str| world.company_index(id.trim()).is_some()
    };
    let known = |ids: &[String]| -> (Vec<u64>, Vec<String>) {
        let mut ok = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match id.trim().parse::<u64>() {
                Ok(n) if exists(id) => ok.push(n),
                _ => missing.push(id.clone()),
            }
        }
        (ok, missing)
    };
    let (add, mut missing) = known(&req.record_ids_to_add);
    let (remove, missing_removes) = known(&req.record_ids_to_remove);
    missing.extend(missing_removes);
    let outcome = hub.lists.with(|s| {
        let Some(list) = list_id.parse::<u64>().ok().and_then(|id| s.lists.get_mut(&id)) else {
            return Err(None);
        };
        if list.processing_type == "DYNAMIC" {
            return Err(Some(list.processing_type.clone()));
        }
        let now = clock::now_ms();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for id in add {
            if list.members.insert(id, now).is_none() {
                added.push(id.to_string());
            }
        }
        for id in remove {
            if list.members.remove(&id).is_some() {
                removed.push(id.to_string());
            }
        }
        if !added.is_empty() || !removed.is_empty() {
            list.updated_ms = now;
        }
        s.membership_calls += 1;
        Ok((added, removed))
    });
    match outcome {
        Ok((added, removed)) => {
            let mut body = serde_json::Map::new();
            body.insert("recordIdsMissing".into(), json!(missing));
            body.insert("recordIdsRemoved".into(), json!(removed));
            body.insert(added_key.into(), json!(added));
            json_value(StatusCode::OK, &Json::Object(body))
        }
        Err(None) => list_not_found(&hub, &list_id),
        Err(Some(kind)) => list_error(
            &hub,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "ListError.INVALID_PROCESSING_TYPE",
            format!(
                "List {list_id} has processingType {kind}: records can only be added to or removed from lists \
                 with processingType MANUAL or SNAPSHOT."
            ),
        ),
    }
}
