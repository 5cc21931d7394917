//! The HubSpot connector: companies in, tiers out, over HubSpot's CRM v3 API with a
//! private-app token.
//!
//! - **Full pull**: `GET /crm/v3/objects/companies` (100 per page, `after` cursor).
//! - **Incremental pull**: `POST /crm/v3/objects/companies/search` on
//!   `hs_lastmodifieddate GTE since` (minus an overlap for the search index lag), sorted
//!   by `hs_object_id` so that, before paging reaches the 10,000-result cap, the search
//!   restarts with `hs_object_id GT <last id>` and never loses or repeats a record.
//! - **Schema**: the `tierd` property group and `tierd_*` properties, created when
//!   missing (409 counts as present).
//! - **Push**: `batch/update` in batches of 100, reading 207 answers per record; a batch
//!   refused whole (400) is split until the bad record is isolated; records refused for
//!   a reason that may pass are retried with back-off within the run.
//! - **Deals**: v4 company→deal associations, then a batch read of the deals.
//! - **Lists**: a MANUAL company list per tier kept in step (`lists.rs`).
//! - **Contacts**: v4 company→contact associations (1,000 companies per call, each company's
//!   further pages asked for with its `after`), then `contacts/batch/read` (100 per call) of
//!   `email, phone, mobilephone, firstname, lastname, country, zip`.
//!
//! Everything over the wire goes through [`crate::http`]; this module knows HubSpot's
//! JSON and nothing about scoring.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures_util::stream;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::connector::{
    AccountPage, BoxFuture, Connector, ConnectorError, Contacts, CrmAccount, CrmContact, Deal, PageStream,
    PushOutcome, Quarantined, SchemaReport, TierUpdate, Watermark,
};
use crate::http::{HttpClient, HttpStats, RateLimiter, Reply, RetryPolicy, Secret, Vendor};
use crate::mapping::{self, FieldMapping};

mod lists;

const ID_PREFIX: &str = "hubspot:";
const NAME: &str = "hubspot";
/// Companies per association batch read: HubSpot's limit since February 2025 (developer
/// changelog, "Batch Read Limit for HubSpot Associations API").
const ASSOCIATION_BATCH: usize = 1000;
/// Records per object batch read.
const READ_BATCH: usize = 100;
/// The contact properties read for audiences (HubSpot's default contact properties).
const CONTACT_PROPERTIES: [&str; 7] = [
    "email",
    "phone",
    "mobilephone",
    "firstname",
    "lastname",
    "country",
    "zip",
];

/// Config of the `hubspot` connector. Defaults follow HubSpot's documented limits for
/// private apps and the shared CRM contract's property names.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubSpotConfig {
    /// API root: `https://api.hubapi.com`, or an emulator's URL.
    pub base_url: String,
    /// The private app's access token.
    pub token: Secret,
    /// CRM properties read as facts; the contract's defaults when not set.
    pub mapping: Vec<FieldMapping>,
    /// The property holding the tier (tierd's, or a custom one a team already uses).
    pub tier_property: String,
    /// The property a person sets to `true` to lock the tier.
    pub lock_property: String,
    /// Also write HubSpot's native "Ideal customer profile tier" (`hs_ideal_customer_profile`).
    pub write_native_icp: bool,
    /// Requests per rolling `rate_window_ms` (HubSpot: 100 per 10 s for most private apps); 0 = no limit.
    pub rate_limit: u32,
    /// The window of `rate_limit`, in milliseconds.
    pub rate_window_ms: u64,
    /// Search requests per second (HubSpot: 5); 0 = no limit.
    pub search_rate_per_sec: u32,
    /// Companies per list page (at most 100).
    pub page_size: usize,
    /// Companies per search page (at most 200).
    pub search_page_size: usize,
    /// Results one search can page through before it must restart (HubSpot: 10,000).
    pub search_result_cap: usize,
    /// How far back an incremental pull reaches before its watermark, to cover the search
    /// index lag (records written just before the last pull but not yet searchable).
    pub search_overlap_ms: u64,
    /// Inputs per batch update (at most 100).
    pub batch_size: usize,
    /// Extra rounds, within one push, for records refused for a reason that may pass.
    pub record_retries: u32,
    /// Where the Lists API lives: `/crm/lists/2026-03` (HubSpot's current date-versioned
    /// path) or `/crm/v3/lists` (the legacy v3 path, same calls).
    pub lists_path: String,
    /// List members read per page (HubSpot: at most 250).
    pub list_page_size: usize,
    /// Record ids (added and removed together) per membership change.
    pub list_batch_size: usize,
    /// Retries and timeouts of single requests.
    pub retry: RetryPolicy,
}

impl Default for HubSpotConfig {
    fn default() -> Self {
        HubSpotConfig {
            base_url: "https://api.hubapi.com".into(),
            token: Secret::new(""),
            mapping: mapping::hubspot_defaults(),
            tier_property: "tierd_tier".into(),
            lock_property: "tierd_tier_locked".into(),
            write_native_icp: false,
            rate_limit: 100,
            rate_window_ms: 10_000,
            search_rate_per_sec: 5,
            page_size: 100,
            search_page_size: 200,
            search_result_cap: 10_000,
            search_overlap_ms: 30_000,
            batch_size: 100,
            record_retries: 3,
            lists_path: lists::CURRENT_PATH.into(),
            list_page_size: lists::PAGE_MAX,
            list_batch_size: lists::DEFAULT_BATCH,
            retry: RetryPolicy::default(),
        }
    }
}

impl HubSpotConfig {
    /// Checks every value, naming the key of the first problem.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        if self.token.is_empty() {
            return Err(ConnectorError::config(
                "token",
                "is empty: set the private app's access token (or token_env)",
            ));
        }
        if reqwest::Url::parse(&self.base_url).is_err() {
            return Err(ConnectorError::config(
                "base_url",
                format!("'{}' is not a URL", self.base_url),
            ));
        }
        for (key, value, max) in [
            ("page_size", self.page_size, 100),
            ("search_page_size", self.search_page_size, 200),
            ("batch_size", self.batch_size, 100),
            ("list_page_size", self.list_page_size, lists::PAGE_MAX),
            ("list_batch_size", self.list_batch_size, lists::BATCH_MAX),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConnectorError::config(
                    key,
                    format!("must be within 1..={max}, got {value}"),
                ));
            }
        }
        if !lists::PATHS.contains(&self.lists_path.trim_end_matches('/')) {
            return Err(ConnectorError::config(
                "lists_path",
                format!(
                    "'{}' is not a HubSpot Lists API path (expected one of: {})",
                    self.lists_path,
                    lists::PATHS.join(", ")
                ),
            ));
        }
        if self.search_result_cap < self.search_page_size {
            return Err(ConnectorError::config(
                "search_result_cap",
                "must be at least search_page_size",
            ));
        }
        Ok(())
    }

    /// Validates the config and builds the connector.
    pub fn build(self) -> Result<HubSpotConnector, ConnectorError> {
        self.validate()?;
        let window = Duration::from_millis(self.rate_window_ms.max(1));
        let limiter = match self.rate_limit {
            0 => RateLimiter::unlimited(),
            n => RateLimiter::for_window(n, window),
        };
        let search_limiter = match self.search_rate_per_sec {
            0 => RateLimiter::unlimited(),
            n => RateLimiter::for_window(n, Duration::from_secs(1)),
        };
        let http = HttpClient::new(Vendor::HubSpot, self.retry.clone())?;
        let mut properties: Vec<String> = ["name", "domain", "hs_lastmodifieddate"]
            .into_iter()
            .map(str::to_string)
            .chain(self.mapping.iter().map(|m| m.field.clone()))
            .chain([self.tier_property.clone(), self.lock_property.clone()])
            .collect();
        let mut seen = HashSet::new();
        properties.retain(|p| seen.insert(p.clone()));
        Ok(HubSpotConnector {
            base: self.base_url.trim_end_matches('/').to_string(),
            properties,
            http,
            limiter,
            search_limiter,
            config: self,
        })
    }
}

/// A connected HubSpot portal.
pub struct HubSpotConnector {
    config: HubSpotConfig,
    base: String,
    /// Properties requested on every read.
    properties: Vec<String>,
    http: HttpClient,
    limiter: RateLimiter,
    search_limiter: RateLimiter,
}

#[derive(Deserialize)]
struct Page {
    results: Vec<Company>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<Next>,
}

#[derive(Deserialize)]
struct Next {
    after: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Company {
    id: String,
    #[serde(default)]
    properties: HashMap<String, Option<String>>,
    updated_at: Option<String>,
}

/// The deal properties read: HubSpot's own names (`hs_is_closed` and `hs_is_closed_won` say
/// closed and won whatever the pipeline's stage ids; `deal_currency_code` is the amount's currency).
const DEAL_PROPERTIES: [&str; 8] = [
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "createdate",
    "hs_is_closed",
    "hs_is_closed_won",
    "deal_currency_code",
];

/// The stage ids of HubSpot's default sales pipeline; `hs_v2_date_entered_<stage id>` dates when a
/// deal entered each (custom pipelines' stage ids are not asked for).
const DEFAULT_STAGES: [&str; 7] = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];

/// Prefix of the stage-calculated "date entered" properties.
const STAGE_ENTERED: &str = "hs_v2_date_entered_";

/// A deal from its properties (all strings or null, as HubSpot sends them). `hs_is_closed` /
/// `hs_is_closed_won` decide closed and won when present; otherwise the default pipeline's
/// `closedwon` / `closedlost` stages do, and any other stage is open.
fn deal_of(id: String, account: Option<String>, props: &HashMap<String, Option<String>>) -> Deal {
    let prop = |n: &str| props.get(n).and_then(|v| v.as_deref()).filter(|s| !s.is_empty());
    let flag = |n: &str| prop(n).map(|v| v.eq_ignore_ascii_case("true"));
    let stage = prop("dealstage").map(str::to_string);
    let closed =
        flag("hs_is_closed").or_else(|| stage.as_deref().map(|s| s == "closedwon" || s == "closedlost"));
    let won = flag("hs_is_closed_won").or_else(|| stage.as_deref().map(|s| s == "closedwon"));
    let mut stage_entries: Vec<(String, Watermark)> = props
        .iter()
        .filter_map(|(name, v)| {
            let stage = name.strip_prefix(STAGE_ENTERED)?;
            let at = v.as_deref().and_then(Watermark::parse)?;
            Some((stage.to_string(), at))
        })
        .collect();
    stage_entries.sort();
    stage_entries.sort_by_key(|(_, at)| *at);
    Deal {
        account_id: account.unwrap_or_default(),
        amount: prop("amount").and_then(|a| a.parse().ok()),
        won,
        closed,
        stage,
        close_date: prop("closedate")
            .and_then(Watermark::parse)
            .map(|w| tierd_core::Date::from_unix_seconds(w.millis().div_euclid(1000))),
        created: prop("createdate").and_then(Watermark::parse),
        pipeline: prop("pipeline").map(str::to_string),
        currency: prop("deal_currency_code").map(str::to_string),
        stage_entries,
        id,
    }
}

/// HubSpot's error body.
#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    context: ErrorContext,
}

#[derive(Deserialize, Default)]
struct ErrorContext {
    #[serde(default)]
    ids: Vec<String>,
}

/// Where a pull is.
enum Cursor {
    /// Listing all companies.
    List {
        after: Option<String>,
    },
    /// Searching changes since `since`: `after` is the offset within the current search,
    /// `above` the last id of the previous search segment.
    Search {
        since: Watermark,
        above: Option<String>,
        after: Option<String>,
    },
    Done,
}

impl HubSpotConnector {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The API's error message, or the start of the body.
    fn api_error(reply: &Reply) -> ApiError {
        serde_json::from_slice(&reply.body).unwrap_or_else(|_| ApiError {
            message: reply.snippet(),
            ..ApiError::default()
        })
    }

    /// Turns statuses that stop an operation into errors.
    fn check(&self, what: &str, reply: Reply) -> Result<Reply, ConnectorError> {
        let status = reply.status.as_u16();
        if reply.status.is_success() {
            return Ok(reply);
        }
        let message = Self::api_error(&reply).message;
        Err(match status {
            401 | 403 => ConnectorError::Auth {
                connector: NAME,
                what: what.to_string(),
                status,
                message,
            },
            _ => ConnectorError::Api {
                connector: NAME,
                what: what.to_string(),
                status,
                message,
            },
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        limiter: &RateLimiter,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<T, ConnectorError> {
        let token = self.config.token.expose();
        let reply = self
            .http
            .send(what, limiter, |c| build(c).bearer_auth(token))
            .await?;
        Ok(self.check(what, reply)?.json(what)?)
    }

    /// One page of the pull and the cursor after it.
    async fn next_page(&self, cursor: Cursor) -> Result<(AccountPage, Cursor), ConnectorError> {
        let (page, next) = match cursor {
            Cursor::Done => return Ok((AccountPage::default(), Cursor::Done)),
            Cursor::List { after } => {
                let url = self.url("/crm/v3/objects/companies");
                let limit = self.config.page_size.to_string();
                let props = self.properties.join(",");
                let page: Page = self
                    .get_json("list companies", &self.limiter, |c| {
                        let mut q = vec![("limit", limit.as_str()), ("properties", props.as_str())];
                        if let Some(a) = &after {
                            q.push(("after", a.as_str()));
                        }
                        c.get(&url).query(&q)
                    })
                    .await?;
                let next = match page.paging.as_ref().and_then(|p| p.next.as_ref()) {
                    Some(n) => Cursor::List {
                        after: Some(n.after.clone()),
                    },
                    None => Cursor::Done,
                };
                (page, next)
            }
            Cursor::Search { since, above, after } => {
                let mut filters = vec![json!({
                    "propertyName": "hs_lastmodifieddate",
                    "operator": "GTE",
                    "value": since.millis().to_string(),
                })];
                if let Some(id) = &above {
                    filters.push(json!({"propertyName": "hs_object_id", "operator": "GT", "value": id}));
                }
                let limit = self.config.search_page_size;
                let mut body = json!({
                    "filterGroups": [{"filters": filters}],
                    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    "properties": self.properties,
                    "limit": limit,
                });
                if let Some(a) = &after {
                    body["after"] = json!(a);
                }
                let url = self.url("/crm/v3/objects/companies/search");
                let page: Page = self
                    .get_json("search changed companies", &self.search_limiter, |c| {
                        c.post(&url).json(&body)
                    })
                    .await?;
                let next = match page.paging.as_ref().and_then(|p| p.next.as_ref()) {
                    None => Cursor::Done,
                    Some(n) => {
                        let offset: usize = n.after.parse().unwrap_or(usize::MAX);
                        if offset.saturating_add(limit) > self.config.search_result_cap {
                            // The next page would cross the cap: restart above the last id seen.
                            match page.results.last() {
                                Some(last) => Cursor::Search {
                                    since,
                                    above: Some(last.id.clone()),
                                    after: None,
                                },
                                None => Cursor::Done,
                            }
                        } else {
                            Cursor::Search {
                                since,
                                above,
                                after: Some(n.after.clone()),
                            }
                        }
                    }
                };
                (page, next)
            }
        };
        Ok((self.read_page(page.results), next))
    }

    fn read_page(&self, companies: Vec<Company>) -> AccountPage {
        let mut page = AccountPage::default();
        for c in companies {
            let id = format!("{ID_PREFIX}{}", c.id);
            let prop = |name: &str| c.properties.get(name).and_then(|v| v.as_deref());
            let updated_at = prop("hs_lastmodifieddate")
                .or(c.updated_at.as_deref())
                .and_then(Watermark::parse);
            if let Some(u) = updated_at {
                page.watermark = Some(page.watermark.map_or(u, |w| w.max(u)));
            }
            let tier_property = &self.config.tier_property;
            let read = mapping::read_facts(&self.config.mapping, &id, NAME, prop).and_then(|facts| {
                Ok((
                    facts,
                    mapping::read_tier(&id, tier_property, prop(tier_property))?,
                ))
            });
            match read {
                Ok((facts, crm_tier)) => page.accounts.push(CrmAccount {
                    name: prop("name").map(str::to_string),
                    domain: prop("domain").map(str::to_string),
                    facts,
                    crm_tier,
                    locked: prop(&self.config.lock_property).is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    updated_at,
                    id,
                }),
                Err(q) => page.quarantined.push(q),
            }
        }
        page
    }

    /// The properties to set for one update.
    fn properties_of(&self, u: &TierUpdate) -> serde_json::Map<String, Json> {
        let mut p = serde_json::Map::new();
        p.insert(self.config.tier_property.clone(), json!(u.tier.as_str()));
        p.insert("tierd_score".into(), json!(format!("{:.3}", u.score)));
        p.insert("tierd_scored_at".into(), json!(u.scored_at.millis().to_string()));
        p.insert("tierd_model".into(), json!(u.model));
        p.insert("tierd_reason".into(), json!(truncate(&u.reason, 65_000)));
        if self.config.write_native_icp {
            // The native property has tiers 1-3 only; untiered clears it.
            let icp = match u.tier {
                tierd_core::Tier::Untiered => "",
                t => t.as_str(),
            };
            p.insert("hs_ideal_customer_profile".into(), json!(icp));
        }
        p
    }

    /// Sends one batch (indexes into `updates`), recording outcomes; returns indexes to retry.
    /// A batch refused whole is split in halves until the bad record stands alone.
    fn push_batch<'a>(
        &'a self,
        updates: &'a [TierUpdate],
        batch: Vec<usize>,
        outcomes: &'a mut [Option<PushOutcome>],
    ) -> BoxFuture<'a, Result<Vec<usize>, Stop>> {
        Box::pin(async move {
            let mut by_id: HashMap<&str, usize> = HashMap::new();
            let mut inputs = Vec::with_capacity(batch.len());
            for &i in &batch {
                match updates[i].id.strip_prefix(ID_PREFIX) {
                    Some(id) if !id.is_empty() && by_id.insert(id, i).is_none() => {
                        inputs.push(json!({"id": id, "properties": self.properties_of(&updates[i])}));
                    }
                    Some(_) => {
                        outcomes[i] = Some(PushOutcome::Rejected {
                            reason: "the same account twice in one push".into(),
                            permanent: true,
                        })
                    }
                    None => {
                        outcomes[i] = Some(PushOutcome::Rejected {
                            reason: format!("'{}' is not a HubSpot account id (hubspot:<id>)", updates[i].id),
                            permanent: true,
                        })
                    }
                }
            }
            if inputs.is_empty() {
                return Ok(Vec::new());
            }
            let url = self.url("/crm/v3/objects/companies/batch/update");
            let body = json!({ "inputs": inputs });
            let token = self.config.token.expose();
            let what = format!("update {} companies", inputs.len());
            let reply = match self
                .http
                .send(&what, &self.limiter, |c| {
                    c.post(&url).bearer_auth(token).json(&body)
                })
                .await
            {
                Ok(r) => r,
                Err(e) => return Err(Stop::Transient(e.to_string())),
            };
            let status = reply.status.as_u16();
            match status {
                200 | 201 | 207 => {
                    #[derive(Deserialize)]
                    struct BatchReply {
                        #[serde(default)]
                        results: Vec<Company>,
                        #[serde(default)]
                        errors: Vec<ApiError>,
                    }
                    let parsed: BatchReply = reply.json(&what).map_err(|e| Stop::Transient(e.to_string()))?;
                    for c in &parsed.results {
                        if let Some(&i) = by_id.get(c.id.as_str()) {
                            outcomes[i] = Some(PushOutcome::Written);
                        }
                    }
                    let mut retry = Vec::new();
                    for e in &parsed.errors {
                        let permanent = matches!(
                            e.category.as_str(),
                            "VALIDATION_ERROR" | "OBJECT_NOT_FOUND" | "READ_ONLY_VALUE"
                        );
                        for id in &e.context.ids {
                            if let Some(&i) = by_id.get(id.as_str()) {
                                outcomes[i] = Some(PushOutcome::Rejected {
                                    reason: format!("{}: {}", e.category, e.message),
                                    permanent,
                                });
                                if !permanent {
                                    retry.push(i);
                                }
                            }
                        }
                    }
                    // A record neither confirmed nor refused: ask again.
                    for &i in by_id.values() {
                        if outcomes[i].is_none() {
                            outcomes[i] = Some(PushOutcome::Rejected {
                                reason: "HubSpot neither confirmed nor refused the update".into(),
                                permanent: false,
                            });
                            retry.push(i);
                        }
                    }
                    Ok(retry)
                }
                400 if batch.len() > 1 => {
                    let (left, right) = batch.split_at(batch.len() / 2);
                    let (left, right) = (left.to_vec(), right.to_vec());
                    let mut retry = self.push_batch(updates, left, outcomes).await?;
                    retry.extend(self.push_batch(updates, right, outcomes).await?);
                    Ok(retry)
                }
                400 | 404 => {
                    let e = Self::api_error(&reply);
                    for &i in &batch {
                        outcomes[i] = Some(PushOutcome::Rejected {
                            reason: format!("{}: {}", e.category, e.message),
                            permanent: true,
                        });
                    }
                    Ok(Vec::new())
                }
                401 | 403 => Err(Stop::Fatal(ConnectorError::Auth {
                    connector: NAME,
                    what,
                    status,
                    message: Self::api_error(&reply).message,
                })),
                // A 429 the HTTP layer hands back is the daily limit: nothing more today.
                429 => Err(Stop::Transient(format!(
                    "HubSpot's daily API limit is reached: {}",
                    Self::api_error(&reply).message
                ))),
                _ => Err(Stop::Transient(format!(
                    "{what}: HTTP {status}: {}",
                    reply.snippet()
                ))),
            }
        })
    }

    /// Deals of the given companies (`hubspot:<id>`): associations, then the deals in batches.
    async fn deals(&self, account_ids: &[String]) -> Result<Vec<Deal>, ConnectorError> {
        #[derive(Deserialize)]
        struct Assoc {
            results: Vec<AssocResult>,
        }
        #[derive(Deserialize)]
        struct AssocResult {
            from: From,
            #[serde(default)]
            to: Vec<To>,
        }
        #[derive(Deserialize)]
        struct From {
            id: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct To {
            to_object_id: Json,
        }
        let token = self.config.token.expose();
        let ids: Vec<&str> = account_ids
            .iter()
            .filter_map(|i| i.strip_prefix(ID_PREFIX))
            .collect();
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        let url = self.url("/crm/v4/associations/companies/deals/batch/read");
        for chunk in ids.chunks(100) {
            let body = json!({"inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()});
            let what = "read company-deal associations";
            let reply = self
                .http
                .send(what, &self.limiter, |c| {
                    c.post(&url).bearer_auth(token).json(&body)
                })
                .await?;
            // 207 lists companies without deals among the errors; that is not a failure.
            let assoc: Assoc = self.check(what, reply)?.json(what)?;
            for r in assoc.results {
                for t in r.to {
                    let deal_id = match &t.to_object_id {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    owner.insert(deal_id, format!("{ID_PREFIX}{}", r.from.id));
                }
            }
        }
        let deal_ids: Vec<&String> = owner.keys().collect();
        let url = self.url("/crm/v3/objects/deals/batch/read");
        let mut properties: Vec<String> = DEAL_PROPERTIES.iter().map(|p| p.to_string()).collect();
        properties.extend(DEFAULT_STAGES.iter().map(|s| format!("{STAGE_ENTERED}{s}")));
        let mut deals = Vec::with_capacity(deal_ids.len());
        for chunk in deal_ids.chunks(100) {
            let body = json!({
                "properties": properties,
                "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            });
            let page: Page = self
                .get_json("read deals", &self.limiter, |c| c.post(&url).json(&body))
                .await?;
            for d in page.results {
                deals.push(deal_of(d.id.clone(), owner.get(&d.id).cloned(), &d.properties));
            }
        }
        Ok(deals)
    }

    /// Contacts of the given companies: their associations page by page, then the contacts in
    /// batches. A contact associated with several of them is listed under each.
    async fn contacts(&self, account_ids: &[String]) -> Result<Contacts, ConnectorError> {
        #[derive(Deserialize)]
        struct Assoc {
            #[serde(default)]
            results: Vec<AssocResult>,
        }
        #[derive(Deserialize)]
        struct AssocResult {
            from: AssocFrom,
            #[serde(default)]
            to: Vec<AssocTo>,
            paging: Option<Paging>,
        }
        #[derive(Deserialize)]
        struct AssocFrom {
            id: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct AssocTo {
            to_object_id: Json,
        }
        let token = self.config.token.expose();
        // (company id, the `after` of its next page of associations)
        let mut pending: Vec<(String, Option<String>)> = account_ids
            .iter()
            .filter_map(|i| i.strip_prefix(ID_PREFIX))
            .map(|id| (id.to_string(), None))
            .collect();
        let mut companies_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let url = self.url("/crm/v4/associations/companies/contacts/batch/read");
        let what = "read company-contact associations";
        while !pending.is_empty() {
            let mut next = Vec::new();
            for chunk in pending.chunks(ASSOCIATION_BATCH) {
                let inputs: Vec<Json> = chunk
                    .iter()
                    .map(|(id, after)| match after {
                        Some(a) => json!({"id": id, "after": a}),
                        None => json!({"id": id}),
                    })
                    .collect();
                let body = json!({ "inputs": inputs });
                let reply = self
                    .http
                    .send(what, &self.limiter, |c| {
                        c.post(&url).bearer_auth(token).json(&body)
                    })
                    .await?;
                // 207 lists companies without contacts among the errors; that is not a failure.
                let assoc: Assoc = self.check(what, reply)?.json(what)?;
                for r in assoc.results {
                    for t in r.to {
                        let contact = match t.to_object_id {
                            Json::String(s) => s,
                            other => other.to_string(),
                        };
                        companies_of
                            .entry(contact)
                            .or_default()
                            .push(format!("{ID_PREFIX}{}", r.from.id));
                    }
                    if let Some(after) = r.paging.and_then(|p| p.next).map(|n| n.after) {
                        next.push((r.from.id, Some(after)));
                    }
                }
            }
            pending = next;
        }
        let ids: Vec<&String> = companies_of.keys().collect();
        let url = self.url("/crm/v3/objects/contacts/batch/read");
        let mut found = Contacts::default();
        for chunk in ids.chunks(READ_BATCH) {
            let body = json!({
                "properties": CONTACT_PROPERTIES,
                "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            });
            let what = "read contacts";
            let reply = self
                .http
                .send(what, &self.limiter, |c| {
                    c.post(&url).bearer_auth(token).json(&body)
                })
                .await?;
            let page: Page = self.check(what, reply)?.json_personal(what)?;
            let mut seen = HashSet::new();
            for c in page.results {
                seen.insert(c.id.clone());
                let prop = |n: &str| {
                    c.properties
                        .get(n)
                        .and_then(|v| v.as_deref())
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                let contact = CrmContact {
                    id: format!("{ID_PREFIX}{}", c.id),
                    account_id: String::new(),
                    email: prop("email"),
                    phone: prop("phone").or_else(|| prop("mobilephone")),
                    first_name: prop("firstname"),
                    last_name: prop("lastname"),
                    country: prop("country"),
                    zip: prop("zip"),
                };
                for company in companies_of.get(&c.id).into_iter().flatten() {
                    found.contacts.push(CrmContact {
                        account_id: company.clone(),
                        ..contact.clone()
                    });
                }
            }
            // Associated a moment ago, gone now (deleted or merged): named, not silently lost.
            for id in chunk.iter().filter(|id| !seen.contains(id.as_str())) {
                found.unreadable.push(Quarantined {
                    id: format!("{ID_PREFIX}{id}"),
                    field: None,
                    reason: "associated contact not found (deleted or merged since)".into(),
                });
            }
        }
        found.sort();
        Ok(found)
    }

    async fn schema(&self) -> Result<SchemaReport, ConnectorError> {
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        #[derive(Deserialize)]
        struct List {
            results: Vec<Named>,
        }
        let mut report = SchemaReport::default();
        let groups: List = self
            .get_json("list property groups", &self.limiter, |c| {
                c.get(self.url("/crm/v3/properties/companies/groups"))
            })
            .await?;
        let existing: List = self
            .get_json("list company properties", &self.limiter, |c| {
                c.get(self.url("/crm/v3/properties/companies"))
            })
            .await?;
        let have: HashSet<String> = existing.results.into_iter().map(|p| p.name).collect();
        if groups.results.iter().any(|g| g.name == "tierd") {
            report.existing.push("group tierd".into());
        } else {
            let body = json!({"name": "tierd", "label": "tierd", "displayOrder": -1});
            self.create(
                "create property group tierd",
                "/crm/v3/properties/companies/groups",
                &body,
            )
            .await?;
            report.created.push("group tierd".into());
        }
        for (name, body) in self.property_definitions() {
            if have.contains(&name) {
                report.existing.push(name);
            } else if self
                .create(
                    &format!("create property {name}"),
                    "/crm/v3/properties/companies",
                    &body,
                )
                .await?
            {
                report.created.push(name);
            } else {
                report.existing.push(name);
            }
        }
        if self.config.write_native_icp {
            let native = "hs_ideal_customer_profile".to_string();
            if have.contains(&native) {
                report.existing.push(native);
            } else {
                report.missing.push(native);
            }
        }
        Ok(report)
    }

    /// POSTs a definition; true when created, false when it already existed (409).
    async fn create(&self, what: &str, path: &str, body: &Json) -> Result<bool, ConnectorError> {
        let token = self.config.token.expose();
        let url = self.url(path);
        let reply = self
            .http
            .send(what, &self.limiter, |c| {
                c.post(&url).bearer_auth(token).json(body)
            })
            .await?;
        if reply.status.as_u16() == 409 {
            return Ok(false);
        }
        self.check(what, reply).map(|_| true)
    }

    /// tierd's properties: the tier property (when it is tierd's own) and the others.
    fn property_definitions(&self) -> Vec<(String, Json)> {
        let option = |v: &str, i: usize| json!({"label": v, "value": v, "displayOrder": i, "hidden": false});
        let tiers: Vec<Json> = tierd_core::Tier::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| option(t.as_str(), i))
            .collect();
        let def = |name: &str, label: &str, kind: &str, field: &str, options: Vec<Json>| {
            (
                name.to_string(),
                json!({"name": name, "label": label, "type": kind, "fieldType": field,
                       "groupName": "tierd", "options": options,
                       "description": "Written by tierd (account tiering)."}),
            )
        };
        let mut defs = vec![
            def(&self.config.tier_property, "Tier", "enumeration", "select", tiers),
            def("tierd_score", "Tier score", "number", "number", vec![]),
            def("tierd_scored_at", "Tier scored at", "datetime", "date", vec![]),
            def("tierd_model", "Tier model", "string", "text", vec![]),
            def("tierd_reason", "Tier reason", "string", "textarea", vec![]),
            def(
                &self.config.lock_property,
                "Tier locked",
                "enumeration",
                "booleancheckbox",
                vec![
                    json!({"label": "True", "value": "true", "displayOrder": 0}),
                    json!({"label": "False", "value": "false", "displayOrder": 1}),
                ],
            ),
        ];
        let mut seen = HashSet::new();
        defs.retain(|(n, _)| seen.insert(n.clone()));
        defs
    }
}

/// Why a push stopped before the end.
enum Stop {
    /// Nothing more can be written this run (daily limit, service down); the rest is deferred.
    Transient(String),
    /// The push cannot work at all (bad token).
    Fatal(ConnectorError),
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Connector for HubSpotConnector {
    fn kind(&self) -> &'static str {
        NAME
    }

    fn pull(&self, since: Option<Watermark>) -> PageStream<'_> {
        let start = match since {
            None => Cursor::List { after: None },
            Some(w) => Cursor::Search {
                since: w.minus_millis(self.config.search_overlap_ms as i64),
                above: None,
                after: None,
            },
        };
        let state = (start, since);
        Box::pin(stream::unfold(Some(state), move |state| async move {
            let (cursor, mut mark) = state?;
            if matches!(cursor, Cursor::Done) {
                return None;
            }
            match self.next_page(cursor).await {
                Ok((mut page, next)) => {
                    mark = mark.max(page.watermark);
                    page.watermark = mark;
                    Some((Ok(page), Some((next, mark))))
                }
                Err(e) => Some((Err(e), None)),
            }
        }))
    }

    fn push<'a>(
        &'a self,
        updates: &'a [TierUpdate],
    ) -> BoxFuture<'a, Result<Vec<PushOutcome>, ConnectorError>> {
        Box::pin(async move {
            let mut outcomes: Vec<Option<PushOutcome>> = vec![None; updates.len()];
            let mut pending: Vec<usize> = (0..updates.len()).collect();
            let mut stopped: Option<String> = None;
            for round in 0..=self.config.record_retries {
                if pending.is_empty() {
                    break;
                }
                if round > 0 {
                    tokio::time::sleep(self.http.backoff(round)).await;
                }
                let mut retry = Vec::new();
                for batch in pending.chunks(self.config.batch_size) {
                    match self.push_batch(updates, batch.to_vec(), &mut outcomes).await {
                        Ok(r) => retry.extend(r),
                        Err(Stop::Fatal(e)) => return Err(e),
                        Err(Stop::Transient(reason)) => {
                            stopped = Some(reason);
                            break;
                        }
                    }
                }
                if stopped.is_some() {
                    break;
                }
                pending = retry;
            }
            Ok(outcomes
                .into_iter()
                .map(|o| match (o, &stopped) {
                    (Some(PushOutcome::Rejected { permanent: false, .. }) | None, Some(reason)) => {
                        PushOutcome::Deferred {
                            reason: reason.clone(),
                        }
                    }
                    (Some(o), _) => o,
                    (None, None) => PushOutcome::Deferred {
                        reason: "not sent".into(),
                    },
                })
                .collect())
        })
    }

    fn ensure_schema(&self) -> BoxFuture<'_, Result<SchemaReport, ConnectorError>> {
        Box::pin(self.schema())
    }

    fn deals_for<'a>(
        &'a self,
        account_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Deal>, ConnectorError>> {
        Box::pin(self.deals(account_ids))
    }

    fn http_stats(&self) -> HttpStats {
        self.http.stats()
    }

    fn lists(&self) -> Option<&dyn crate::connector::CrmLists> {
        Some(self)
    }

    fn contacts_for<'a>(
        &'a self,
        account_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Contacts, ConnectorError>> {
        Box::pin(self.contacts(account_ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated_with_the_key_named() {
        let err = HubSpotConfig::default().build().err().expect("no token");
        assert!(err.to_string().starts_with("connector.token: is empty"), "{err}");
        let cfg = HubSpotConfig {
            token: Secret::new("t"),
            batch_size: 101,
            ..HubSpotConfig::default()
        };
        let err = cfg.build().err().expect("batch too big");
        assert_eq!(
            err.to_string(),
            "connector.batch_size: must be within 1..=100, got 101"
        );
    }

    /// A HubSpot stand-in that refuses a whole batch (400) when it holds company 13.
    async fn refusing_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/crm/v3/objects/companies/batch/update",
            axum::routing::post(move |axum::Json(body): axum::Json<Json>| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
                    if inputs.iter().any(|i| i["id"] == "13") {
                        let error = json!({"status": "error", "category": "VALIDATION_ERROR",
                            "message": "Property values were not valid"});
                        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(error));
                    }
                    let results: Vec<Json> = inputs
                        .iter()
                        .map(|i| json!({"id": i["id"], "properties": {}}))
                        .collect();
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({"status": "COMPLETE", "results": results})),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), calls)
    }

    #[tokio::test]
    async fn a_batch_refused_whole_is_split_until_the_bad_record_stands_alone() {
        let (url, calls) = refusing_server().await;
        let c = HubSpotConfig {
            base_url: url,
            token: Secret::new("t"),
            rate_limit: 0,
            ..HubSpotConfig::default()
        }
        .build()
        .expect("config");
        let updates: Vec<TierUpdate> = (10..18)
            .map(|n| TierUpdate {
                id: format!("hubspot:{n}"),
                tier: tierd_core::Tier::Tier2,
                score: 3.9,
                coverage: 1.0,
                reason: "fit".into(),
                model: "m@1".into(),
                scored_at: Watermark(0),
            })
            .collect();
        let outcomes = c.push(&updates).await.expect("push");
        for (u, o) in updates.iter().zip(&outcomes) {
            if u.id == "hubspot:13" {
                assert!(
                    matches!(o, PushOutcome::Rejected { permanent: true, .. }),
                    "{o:?}"
                );
            } else {
                assert_eq!(o, &PushOutcome::Written, "{}", u.id);
            }
        }
        // 8 -> 4 + 4 -> 2 + 2 -> 1 + 1: the bad record costs log2(8) extra rounds, not 8 calls.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 7);
    }

    #[test]
    fn the_token_does_not_show_in_debug_output() {
        let cfg = HubSpotConfig {
            token: Secret::new("pat-na1-secret"),
            ..HubSpotConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("pat-na1-secret"));
    }
}
