//! The HubSpot CRM emulator: companies (list, get, search, batch read and update,
//! properties and property groups), deals and company-deal associations, contacts (get,
//! batch read) and company-contact associations (paged per company with `after`), company lists
//! (`lists.rs`: create, find by name, memberships, add-and-remove), behind a
//! private-app bearer token, HubSpot's rate-limit windows and its error bodies.
//!
//! Paths and shapes follow HubSpot's v3 CRM API (v4 for associations). Departures from
//! the real service, all deliberate: rate-limit windows and the daily count start with
//! the emulator (no midnight reset); search requests count against the per-second
//! search limit and the daily limit but not the ten-second window, and their responses
//! carry no `X-HubSpot-RateLimit-*` headers (as HubSpot documents); a batch update where
//! every record fails still answers 207.

mod lists;
mod search;
mod world;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use tierd_gen::GenOptions;

use self::search::SearchRequest;
use self::world::{garbage_for, NewProperty, PropertyDef, Val, View, World, DEAL_PROPERTIES, SPOILABLE};
use crate::clock::{self, WriteClock};
use crate::faults::Faults;
use crate::server::{self, form_pairs, json_bytes, json_value, EmulatorStats, Gate, Running, Stats};
use crate::writes::{WriteCounter, WriteLog};

/// How the HubSpot emulator's world and limits are set up.
#[derive(Debug, Clone)]
pub struct HubSpotConfig {
    /// How many companies to seed (company `k` is generator account `k + 1`).
    pub accounts: u64,
    /// The generator seed (also seeds fault injection).
    pub seed: u64,
    /// The generator's `as_of` date, `YYYY-MM-DD`.
    pub as_of: String,
    /// The private-app token every request must carry as `Authorization: Bearer <token>`.
    pub token: String,
    /// Requests per rolling 10 seconds (HubSpot: 100 to 190 by subscription); `None` = off.
    pub rate_limit: Option<u32>,
    /// Search requests per second; `None` = off.
    pub search_rate_per_sec: Option<u32>,
    /// Requests per day (counted from start); `None` = off.
    pub daily_limit: Option<u64>,
    /// How long a write takes to become visible to search.
    pub search_index_lag: Duration,
    /// Start with tierd's `tierd_*` properties (group `tierd`) already created.
    pub tierd_properties: bool,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Results one search can page through (HubSpot: 10,000); smaller values make the cap testable.
    pub search_result_cap: usize,
    /// Record ids one list add-and-remove call may name. HubSpot documents no limit; the default,
    /// [`LIST_BATCH_MAX`], is the largest membership count it documents for one call.
    pub list_batch_max: usize,
    /// Associations per company per page of a v4 association batch read, before the answer
    /// carries `paging.next.after` for that company; smaller values make paging testable.
    pub association_page_size: usize,
}

/// HubSpot's documented limits for a private app on the lowest subscription (Free and
/// Starter): 100 requests per rolling 10 seconds, 250,000 per day. Professional and
/// Enterprise allow 190 per 10 seconds (650,000 and 1,000,000 per day).
pub const PRIVATE_APP_TEN_SECONDLY: u32 = 100;
/// Requests per day of a Free or Starter private app.
pub const PRIVATE_APP_DAILY: u64 = 250_000;
/// CRM search requests per second, per account, on every subscription.
pub const SEARCH_PER_SECOND: u32 = 5;
/// The emulator's default limit of ids per list membership change: 100,000, the largest
/// membership count HubSpot documents for one call (copying a list of fewer than 100,000).
pub const LIST_BATCH_MAX: usize = 100_000;

impl HubSpotConfig {
    /// `accounts` companies from `seed`, as of 2026-11-24, token `test-token`, HubSpot's
    /// limits for a Free/Starter private app ([`PRIVATE_APP_TEN_SECONDLY`] per 10 seconds,
    /// [`SEARCH_PER_SECOND`] searches per second, [`PRIVATE_APP_DAILY`] per day), no search
    /// lag, no tierd properties, any free port, HubSpot's 10,000 search cap.
    pub fn new(accounts: u64, seed: u64) -> Self {
        HubSpotConfig {
            accounts,
            seed,
            as_of: "2026-11-24".into(),
            token: "test-token".into(),
            rate_limit: Some(PRIVATE_APP_TEN_SECONDLY),
            search_rate_per_sec: Some(SEARCH_PER_SECOND),
            daily_limit: Some(PRIVATE_APP_DAILY),
            search_index_lag: Duration::ZERO,
            tierd_properties: false,
            port: 0,
            search_result_cap: 10_000,
            list_batch_max: LIST_BATCH_MAX,
            association_page_size: ASSOCIATION_PAGE,
        }
    }

    /// As [`HubSpotConfig::new`] with every rate limit off: for the demo and for tests that
    /// exercise something else and must not wait out a window.
    pub fn unlimited(accounts: u64, seed: u64) -> Self {
        HubSpotConfig {
            rate_limit: None,
            search_rate_per_sec: None,
            daily_limit: None,
            ..HubSpotConfig::new(accounts, seed)
        }
    }
}

/// A running HubSpot emulator.
pub struct HubSpotEmulator {
    hub: Arc<Hub>,
    running: Running,
}

#[derive(Debug, Default)]
struct Windows {
    ten_seconds: VecDeque<Instant>,
    search_second: VecDeque<Instant>,
    daily_used: u64,
}

struct Hub {
    cfg: HubSpotConfig,
    world: RwLock<World>,
    windows: Mutex<Windows>,
    writes: WriteCounter,
    faults: Faults,
    stats: Arc<Stats>,
    clock: WriteClock,
    search_cache: Mutex<SearchCache>,
    lists: lists::Lists,
    base_url: OnceLock<String>,
}

type Shared = State<Arc<Hub>>;

/// Result sets by search (filters, sorts, query), tagged with the world generation they saw:
/// paging through one search then costs O(page), not a scan per page.
type SearchCache = HashMap<String, (u64, Arc<Vec<u32>>)>;

const LIST_MAX: usize = 100;
const SEARCH_MAX: usize = 200;
const BATCH_MAX: usize = 100;
/// Inputs per association batch read (HubSpot's limit since February 2025).
const ASSOCIATION_BATCH_MAX: usize = 1000;
/// Associations per company per page of a v4 batch read (HubSpot pages associations per
/// object; this emulator takes 500, the v4 single-object read's `limit` maximum).
pub const ASSOCIATION_PAGE: usize = 500;
const DEFAULT_PROPERTIES: [&str; 2] = ["name", "domain"];

impl HubSpotEmulator {
    /// Seeds the world and starts serving on 127.0.0.1 (`cfg.port`, 0 = any free port).
    pub async fn start(cfg: HubSpotConfig) -> anyhow::Result<HubSpotEmulator> {
        let as_of = cfg
            .as_of
            .parse()
            .map_err(|e| anyhow::anyhow!("HubSpot emulator: as_of is not a date: {e}"))?;
        let opts = GenOptions {
            seed: cfg.seed,
            as_of,
        };
        let (accounts, tierd) = (cfg.accounts, cfg.tierd_properties);
        let world = tokio::task::spawn_blocking(move || World::seed(opts, accounts, tierd)).await?;
        let hub = Arc::new(Hub {
            clock: WriteClock::starting_after(world.seeded_until_ms),
            world: RwLock::new(world),
            windows: Mutex::default(),
            writes: WriteCounter::default(),
            faults: Faults::new(cfg.seed),
            stats: Arc::default(),
            search_cache: Mutex::default(),
            lists: lists::Lists::default(),
            base_url: OnceLock::new(),
            cfg,
        });
        let running = Running::start(router(hub.clone()), hub.cfg.port, "HubSpot").await?;
        let _ = hub.base_url.set(running.base_url());
        Ok(HubSpotEmulator { hub, running })
    }

    /// `http://127.0.0.1:PORT`: what `https://api.hubapi.com` is to the real service.
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// Fault injection for this emulator.
    pub fn faults(&self) -> &Faults {
        &self.hub.faults
    }

    /// The record writes received so far.
    pub fn writes(&self) -> WriteLog {
        self.hub.writes.snapshot()
    }

    /// Requests, 429s, injected faults and writes served so far.
    pub fn stats(&self) -> EmulatorStats {
        self.hub.stats.snapshot(&self.hub.writes)
    }

    /// A person's edit in HubSpot: sets properties (an empty value clears one) and bumps
    /// `hs_lastmodifieddate`. Not counted as a write received.
    ///
    /// # Panics
    /// When the company or a property does not exist, or the property is read-only:
    /// this is a test's instruction, and a wrong one should stop the test.
    pub fn set_properties(&self, id: &str, props: &[(&str, &str)]) {
        let mut world = self.hub.world_mut();
        let k = world
            .company_index(id)
            .unwrap_or_else(|| panic!("no HubSpot company with id {id}"));
        let values = props
            .iter()
            .map(|(name, value)| {
                let def = world
                    .schema
                    .get(name)
                    .unwrap_or_else(|| panic!("no company property {name}"));
                match def.storage {
                    world::Storage::Slot(slot) => (slot, (!value.is_empty()).then(|| Box::from(*value))),
                    _ => panic!("company property {name} is read-only"),
                }
            })
            .collect();
        let stamp = self.hub.clock.next();
        world.write(k, values, stamp, self.hub.cfg.search_index_lag, Instant::now());
    }

    /// Lets the CRM's deal history run on to `day` (midnight UTC; never back): the deals the
    /// seeded script opens by then appear, open deals past their close date close won or lost,
    /// and their companies are modified now (their deal roll-ups changed), so an incremental
    /// pull sees them. Returns (deals opened, deals closed).
    pub fn advance_deals_to(&self, day: tierd_gen::Date) -> (u64, u64) {
        let mut world = self.hub.world_mut();
        let stamp = self.hub.clock.next();
        world.advance_deals(
            i64::from(day.days()) * clock::DAY_MS,
            stamp,
            self.hub.cfg.search_index_lag,
            Instant::now(),
        )
    }

    /// The current (not search-lagged) value of a company property.
    pub fn property(&self, id: &str, name: &str) -> Option<String> {
        let world = self.hub.world();
        let k = world.company_index(id)?;
        let def = world.schema.get(name)?;
        world.value(k, def, View::Live).to_owned_string()
    }

    /// A person creates a company list (`processing_type` MANUAL, SNAPSHOT or DYNAMIC) in
    /// HubSpot; its list id.
    ///
    /// # Panics
    /// When a list of that name exists: this is a test's instruction, and a wrong one should stop
    /// the test.
    pub fn create_company_list(&self, name: &str, processing_type: &str) -> String {
        self.hub
            .lists
            .create(name, "0-2", processing_type)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    }

    /// The record ids (ascending) in the list called `name` (any case), `None` when there is none.
    pub fn list_members(&self, name: &str) -> Option<Vec<String>> {
        self.hub.lists.members(name)
    }

    /// A person adds (`true`) or removes company `record` in the list called `name` by hand.
    ///
    /// # Panics
    /// When there is no such list or `record` is not a company id.
    pub fn edit_list(&self, name: &str, record: &str, add: bool) {
        let id = record
            .parse()
            .unwrap_or_else(|_| panic!("{record} is not a company id"));
        assert!(self.hub.lists.edit(name, id, add), "no list named {name}");
    }

    /// Membership changes (add-and-remove calls) answered so far.
    pub fn list_membership_calls(&self) -> u64 {
        self.hub.lists.membership_calls()
    }

    /// How many lists the portal holds.
    pub fn list_count(&self) -> usize {
        self.hub.lists.count()
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

fn router(hub: Arc<Hub>) -> Router {
    let gate = Arc::new(Gate {
        faults: hub.faults.clone(),
        stats: hub.stats.clone(),
        rate_limited: |stats| rate_limited_body(stats, Policy::TenSecondly),
        server_error: |stats| {
            let body = json!({"status": "error", "message": "internal error", "correlationId": stats.correlation_id(),
                "category": "INTERNAL_ERROR"});
            json_value(StatusCode::INTERNAL_SERVER_ERROR, &body)
        },
    });
    let api = Router::new()
        .route("/crm/v3/objects/companies", get(list_companies))
        .route("/crm/v3/objects/companies/search", post(search_companies))
        .route("/crm/v3/objects/companies/batch/read", post(batch_read_companies))
        .route(
            "/crm/v3/objects/companies/batch/update",
            post(batch_update_companies),
        )
        .route(
            "/crm/v3/objects/companies/{id}",
            get(get_company).patch(patch_company),
        )
        .route(
            "/crm/v3/properties/companies",
            get(list_properties).post(create_property),
        )
        .route(
            "/crm/v3/properties/companies/groups",
            get(list_groups).post(create_group),
        )
        .route("/crm/v3/properties/companies/{name}", get(get_property))
        .route("/crm/v3/objects/deals", get(list_deals))
        .route("/crm/v3/objects/deals/batch/read", post(batch_read_deals))
        .route("/crm/v3/objects/deals/{id}", get(get_deal))
        .route(
            "/crm/v4/associations/companies/deals/batch/read",
            post(company_deal_associations),
        )
        .merge(lists::routes())
        .route(
            "/crm/v4/associations/companies/contacts/batch/read",
            post(company_contact_associations),
        )
        .route("/crm/v3/objects/contacts/batch/read", post(batch_read_contacts))
        .route("/crm/v3/objects/contacts/{id}", get(get_contact))
        .layer(middleware::from_fn_with_state(hub.clone(), guard))
        .layer(middleware::from_fn_with_state(gate, server::fault_gate))
        .with_state(hub.clone());
    api.merge(server::admin_routes(
        hub.faults.clone(),
        hub.stats.clone(),
        hub.writes.clone(),
    ))
}

#[derive(Debug, Clone, Copy)]
enum Policy {
    TenSecondly,
    Secondly,
    Daily,
}

fn rate_limited_body(stats: &Stats, policy: Policy) -> Response {
    let (message, name) = match policy {
        Policy::TenSecondly => (
            "You have reached your ten_secondly_rolling limit.",
            "TEN_SECONDLY_ROLLING",
        ),
        Policy::Secondly => ("You have reached your secondly limit.", "SECONDLY"),
        Policy::Daily => ("You have reached your daily limit.", "DAILY"),
    };
    let body = json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
        "correlationId": stats.correlation_id(), "policyName": name});
    json_value(StatusCode::TOO_MANY_REQUESTS, &body)
}

fn header_pair(name: &'static str, value: impl ToString) -> (HeaderName, HeaderValue) {
    let v = HeaderValue::from_str(&value.to_string()).unwrap_or(HeaderValue::from_static("0"));
    (HeaderName::from_static(name), v)
}

impl Hub {
    fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn world_mut(&self) -> std::sync::RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, status: StatusCode, category: &str, message: impl Into<String>) -> Response {
        let body = json!({"status": "error", "message": message.into(), "correlationId": self.stats.correlation_id(),
            "category": category});
        json_value(status, &body)
    }

    fn invalid(&self, message: impl Into<String>) -> Response {
        self.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// Counts the request against the limits in force, or answers 429.
    fn admit(&self, is_search: bool) -> Result<Vec<(HeaderName, HeaderValue)>, Response> {
        let cfg = &self.cfg;
        let now = Instant::now();
        let mut w = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let refuse = |policy| {
            self.stats.count_rate_limited();
            Err(rate_limited_body(&self.stats, policy))
        };
        if cfg.daily_limit.is_some_and(|max| w.daily_used >= max) {
            return refuse(Policy::Daily);
        }
        if is_search {
            if let Some(max) = cfg.search_rate_per_sec {
                while w
                    .search_second
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
                {
                    w.search_second.pop_front();
                }
                if w.search_second.len() >= max as usize {
                    return refuse(Policy::Secondly);
                }
                w.search_second.push_back(now);
                self.stats.count_window(w.search_second.len());
            }
        } else if let Some(max) = cfg.rate_limit {
            while w
                .ten_seconds
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(10))
            {
                w.ten_seconds.pop_front();
            }
            if w.ten_seconds.len() >= max as usize {
                return refuse(Policy::TenSecondly);
            }
            w.ten_seconds.push_back(now);
            self.stats.count_window(w.ten_seconds.len());
        }
        w.daily_used += 1;
        let mut headers = Vec::new();
        if is_search {
            return Ok(headers);
        }
        if let Some(max) = cfg.rate_limit {
            headers.push(header_pair("x-hubspot-ratelimit-max", max));
            headers.push(header_pair(
                "x-hubspot-ratelimit-remaining",
                max as usize - w.ten_seconds.len(),
            ));
            headers.push(header_pair("x-hubspot-ratelimit-interval-milliseconds", 10_000));
        }
        if let Some(max) = cfg.daily_limit {
            headers.push(header_pair("x-hubspot-ratelimit-daily", max));
            headers.push(header_pair(
                "x-hubspot-ratelimit-daily-remaining",
                max - w.daily_used,
            ));
        }
        Ok(headers)
    }

    /// Resolves property names to schema indexes (unknown names are skipped, as HubSpot
    /// does on reads), always adding `createdate`, `hs_lastmodifieddate` and `hs_object_id`.
    fn resolve(&self, world: &World, names: &[String]) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let requested: Vec<&str> = if names.is_empty() {
            DEFAULT_PROPERTIES.to_vec()
        } else {
            names.iter().map(String::as_str).collect()
        };
        for name in requested
            .into_iter()
            .chain(["createdate", "hs_lastmodifieddate", "hs_object_id"])
        {
            if let Some(i) = world.schema.index(name.trim()) {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    /// Appends one company object as HubSpot serves it.
    fn render_company(&self, world: &World, k: u32, props: &[usize], view: View, out: &mut Vec<u8>) {
        let c = &world.companies[k as usize];
        let id = world::FIRST_COMPANY_ID + u64::from(k);
        let id_text = id.to_string();
        let spoiled = self.faults.malformed(&id_text).and_then(|pick| {
            (0..SPOILABLE.len()).find_map(|i| {
                let name = SPOILABLE[(pick as usize + i) % SPOILABLE.len()];
                world
                    .schema
                    .index(name)
                    .filter(|ix| props.contains(ix))
                    .map(|ix| (ix, pick))
            })
        });
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(id_text.as_bytes());
        out.extend_from_slice(b"\",\"properties\":{");
        for (i, &ix) in props.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let def = &world.schema.defs[ix];
            server::push_json_str(out, &def.name);
            out.push(b':');
            match spoiled {
                Some((bad, pick)) if bad == ix => server::push_json_str(out, garbage_for(def, pick)),
                _ => world.value(k, def, view).render(out),
            }
        }
        out.extend_from_slice(b"},\"createdAt\":");
        Val::Ms(c.created_ms).render(out);
        out.extend_from_slice(b",\"updatedAt\":");
        // updatedAt is hs_lastmodifieddate (schema index 2, see `Schema::seeded`).
        world.value(k, &world.schema.defs[2], view).render(out);
        out.extend_from_slice(b",\"archived\":false}");
    }

    fn paging(&self, out: &mut Vec<u8>, path: &str, after: &str) {
        out.extend_from_slice(b",\"paging\":{\"next\":{\"after\":\"");
        out.extend_from_slice(after.as_bytes());
        out.extend_from_slice(b"\",\"link\":");
        let link = format!(
            "{}{path}?after={after}",
            self.base_url.get().map_or("", String::as_str)
        );
        server::push_json_str(out, &link);
        out.extend_from_slice(b"}}");
    }
}

/// Auth, then rate limits, then the handler; rate-limit headers go on the answer.
async fn guard(State(hub): Shared, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match token.and_then(|t| t.strip_prefix("Bearer ")) {
        None => return hub.error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can \
                 find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        ),
        Some(t) if t.trim() != hub.cfg.token => return hub.error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "The access token provided is not valid for this account. Check that the private app token is \
                 correct and has not been rotated.",
        ),
        Some(_) => {}
    }
    let is_search = req.uri().path().ends_with("/search");
    let headers = match hub.admit(is_search) {
        Ok(h) => h,
        Err(refused) => return refused,
    };
    let mut resp = next.run(req).await;
    resp.headers_mut().extend(headers);
    resp
}

/// Query parameters of list and get calls: `limit`, `after`, `properties` (comma-separated
/// and/or repeated).
struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
    properties: Vec<String>,
}

fn list_query(raw: Option<String>) -> ListQuery {
    let mut q = ListQuery {
        limit: None,
        after: None,
        properties: Vec::new(),
    };
    for (k, v) in form_pairs(raw.as_deref().unwrap_or("")) {
        match k.as_str() {
            "limit" => q.limit = Some(v),
            "after" => q.after = Some(v),
            "properties" => q
                .properties
                .extend(v.split(',').filter(|p| !p.is_empty()).map(str::to_string)),
            _ => {}
        }
    }
    q
}

fn parse_limit(hub: &Hub, raw: Option<&str>, default: usize, max: usize) -> Result<usize, Response> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<usize>() {
        Ok(n) if n > max => Err(hub.invalid(format!("limit must be at most {max}, got {n}"))),
        Ok(0) | Err(_) => Err(hub.invalid(format!("limit must be a positive integer, got '{raw}'"))),
        Ok(n) => Ok(n),
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(hub: &Hub, body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| hub.invalid(format!("Invalid input JSON: {e}")))
}

async fn list_companies(State(hub): Shared, RawQuery(raw): RawQuery) -> Response {
    let q = list_query(raw);
    let limit = match parse_limit(&hub, q.limit.as_deref(), 10, LIST_MAX) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let start = match q.after.as_deref().map(|a| a.trim().parse::<u64>()) {
        None => 0,
        Some(Ok(a)) => a.saturating_sub(world::FIRST_COMPANY_ID) as usize,
        Some(Err(_)) => return hub.invalid("after must be a paging cursor returned by a previous page"),
    };
    let world = hub.world();
    let props = hub.resolve(&world, &q.properties);
    let n = world.companies.len();
    let end = start.saturating_add(limit).min(n);
    let mut out = Vec::with_capacity(64 + (end.saturating_sub(start)) * 160 * props.len().max(1) / 4);
    out.extend_from_slice(b"{\"results\":[");
    for k in start..end.max(start) {
        if k > start {
            out.push(b',');
        }
        hub.render_company(&world, k as u32, &props, View::Live, &mut out);
    }
    out.push(b']');
    if end < n {
        let after = (world::FIRST_COMPANY_ID + end as u64).to_string();
        hub.paging(&mut out, "/crm/v3/objects/companies", &after);
    }
    out.push(b'}');
    json_bytes(StatusCode::OK, out)
}

fn not_found(hub: &Hub, what: &str, id: &str) -> Response {
    hub.error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        format!("resource not found: no {what} with id {id}"),
    )
}

async fn get_company(State(hub): Shared, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = list_query(raw);
    let world = hub.world();
    let Some(k) = world.company_index(&id) else {
        return not_found(&hub, "company", &id);
    };
    let props = hub.resolve(&world, &q.properties);
    let mut out = Vec::with_capacity(1024);
    hub.render_company(&world, k, &props, View::Live, &mut out);
    json_bytes(StatusCode::OK, out)
}

fn json_after(v: &Option<Json>) -> Result<usize, String> {
    match v {
        None | Some(Json::Null) => Ok(0),
        Some(Json::Number(n)) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("bad after: {n}")),
        Some(Json::String(s)) if s.is_empty() => Ok(0),
        Some(Json::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("after must be a number, got '{s}'")),
        Some(other) => Err(format!("after must be a number, got {other}")),
    }
}

async fn search_companies(State(hub): Shared, body: Bytes) -> Response {
    let req: SearchRequest = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let limit = match &req.limit {
        None | Some(Json::Null) => 10,
        Some(v) => {
            let raw = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            match parse_limit(&hub, Some(&raw), 10, SEARCH_MAX) {
                Ok(l) => l,
                Err(r) => return r,
            }
        }
    };
    let after = match json_after(&req.after) {
        Ok(a) => a,
        Err(e) => return hub.invalid(e),
    };
    let cap = hub.cfg.search_result_cap;
    if after >= cap {
        return hub.invalid(format!(
            "There was a problem with the request. Paging beyond {cap} results is not supported \
             (after={after}); narrow the search, e.g. sort by hs_object_id and filter hs_object_id GT the last id"
        ));
    }
    let now = Instant::now();
    if hub.world().search_catch_up_due(now) {
        hub.world_mut().search_catch_up(now);
    }
    let world = hub.world();
    let key = req.cache_key();
    let cached = {
        let cache = hub.search_cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(&key)
            .filter(|(g, _)| *g == world.generation)
            .map(|(_, hits)| hits.clone())
    };
    let hits = match cached {
        Some(h) => h,
        None => {
            let compiled = match req.compile(&world) {
                Ok(c) => c,
                Err(e) => return hub.invalid(e),
            };
            let hits = Arc::new(compiled.run(&world));
            let mut cache = hub.search_cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= 32 {
                cache.clear();
            }
            cache.insert(key, (world.generation, hits.clone()));
            hits
        }
    };
    let props = hub.resolve(&world, &req.properties);
    let end = after.saturating_add(limit).min(hits.len()).min(cap);
    let mut out = Vec::with_capacity(64 + end.saturating_sub(after) * 400);
    out.extend_from_slice(format!("{{\"total\":{},\"results\":[", hits.len()).as_bytes());
    for (i, &k) in hits.get(after..end).unwrap_or(&[]).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        hub.render_company(&world, k, &props, View::Search, &mut out);
    }
    out.push(b']');
    if end < hits.len() {
        out.extend_from_slice(format!(",\"paging\":{{\"next\":{{\"after\":\"{end}\"}}}}").as_bytes());
    }
    out.push(b'}');
    json_bytes(StatusCode::OK, out)
}

#[derive(Debug, Deserialize)]
struct BatchReadRequest {
    inputs: Vec<IdInput>,
    #[serde(default)]
    properties: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct IdInput {
    id: Json,
}

fn input_id(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn batch_envelope(status: StatusCode, results: Vec<u8>, errors: Vec<Json>, started: i64) -> Response {
    let mut out = Vec::with_capacity(results.len() + 256);
    out.extend_from_slice(b"{\"status\":\"COMPLETE\",\"results\":[");
    out.extend_from_slice(&results);
    out.push(b']');
    let status = if errors.is_empty() {
        status
    } else {
        StatusCode::MULTI_STATUS
    };
    if !errors.is_empty() {
        out.extend_from_slice(format!(",\"numErrors\":{},\"errors\":", errors.len()).as_bytes());
        out.extend_from_slice(&serde_json::to_vec(&errors).unwrap_or_default());
    }
    let stamps = format!(
        ",\"startedAt\":\"{}\",\"completedAt\":\"{}\"}}",
        clock::iso_utc(started),
        clock::iso_utc(clock::now_ms())
    );
    out.extend_from_slice(stamps.as_bytes());
    json_bytes(status, out)
}

fn missing_error(hub: &Hub, object: &str, missing: Vec<String>) -> Json {
    json!({"status": "error", "category": "OBJECT_NOT_FOUND",
        "message": format!("Could not get some {object} objects, they may be deleted or not exist. Check that ids are valid."),
        "context": {"ids": missing}, "correlationId": hub.stats.correlation_id()})
}

async fn batch_read_companies(State(hub): Shared, body: Bytes) -> Response {
    let started = clock::now_ms();
    let req: BatchReadRequest = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if req.inputs.len() > BATCH_MAX {
        return hub.invalid(format!(
            "Batch input limit is {BATCH_MAX}, got {} inputs",
            req.inputs.len()
        ));
    }
    let world = hub.world();
    let props = hub.resolve(&world, &req.properties);
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for input in &req.inputs {
        let id = input_id(&input.id);
        match world.company_index(&id) {
            Some(k) => {
                if !out.is_empty() {
                    out.push(b',');
                }
                hub.render_company(&world, k, &props, View::Live, &mut out);
            }
            None => missing.push(id),
        }
    }
    let errors = if missing.is_empty() {
        vec![]
    } else {
        vec![missing_error(&hub, "COMPANY", missing)]
    };
    batch_envelope(StatusCode::OK, out, errors, started)
}

#[derive(Debug, Deserialize)]
struct UpdateInput {
    id: Json,
    #[serde(default)]
    properties: serde_json::Map<String, Json>,
}

#[derive(Debug, Deserialize)]
struct BatchUpdateRequest {
    inputs: Vec<UpdateInput>,
}

/// One property value a client asked to set, checked against its definition.
struct PropertyProblem {
    name: String,
    code: &'static str,
    message: String,
}

fn check_value(def: &PropertyDef, raw: &Json) -> Result<world::Value, PropertyProblem> {
    let problem = |code, message: String| PropertyProblem {
        name: def.name.clone(),
        code,
        message,
    };
    if let world::Storage::Slot(_) = def.storage {
    } else {
        return Err(problem(
            "READ_ONLY_VALUE",
            format!("{} is a read only property; its value cannot be set.", def.name),
        ));
    }
    let text = match raw {
        Json::Null => return Ok(None),
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        other => {
            return Err(problem(
                "INVALID_VALUE",
                format!("{other} is not a valid value for {}", def.name),
            ))
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    let normalised = match def.kind.as_str() {
        "enumeration" => {
            let allowed: Vec<&str> = def.options.iter().map(|(_, v)| v.as_str()).collect();
            let parts: Vec<&str> = if def.field_type == "checkbox" {
                text.split(';').collect()
            } else {
                vec![text.as_str()]
            };
            if let Some(bad) = parts.iter().find(|p| !allowed.contains(p)) {
                return Err(problem(
                    "INVALID_OPTION",
                    format!(
                        "{bad} was not one of the allowed options: [{}]",
                        allowed.join(", ")
                    ),
                ));
            }
            text
        }
        "number" => match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => text.trim().to_string(),
            _ => {
                return Err(problem(
                    "INVALID_DECIMAL",
                    format!("{text} is not a valid number"),
                ))
            }
        },
        "date" => {
            match clock::parse_date(&text).or_else(|| text.parse::<i64>().ok().map(|ms| ms / clock::DAY_MS)) {
                Some(days) => clock::date_string(days),
                None => {
                    return Err(problem(
                        "INVALID_DATE",
                        format!("{text} is not a valid date (YYYY-MM-DD)"),
                    ))
                }
            }
        }
        "datetime" => match clock::parse_datetime(&text).or_else(|| text.parse::<i64>().ok()) {
            Some(ms) => clock::iso_utc(ms),
            None => {
                return Err(problem(
                    "INVALID_DATETIME",
                    format!("{text} is not a valid datetime (ISO-8601 or epoch ms)"),
                ))
            }
        },
        _ => text,
    };
    Ok(Some(normalised.into_boxed_str()))
}

/// Checks every property of one input: the slot values to write, or HubSpot's error object.
fn check_input(
    hub: &Hub,
    world: &World,
    id: &str,
    props: &serde_json::Map<String, Json>,
) -> Result<Vec<(usize, world::Value)>, Json> {
    let mut values = Vec::with_capacity(props.len());
    let mut problems = Vec::new();
    for (name, raw) in props {
        let Some(def) = world.schema.get(name) else {
            problems.push(PropertyProblem {
                name: name.clone(),
                code: "PROPERTY_DOESNT_EXIST",
                message: format!("Property \"{name}\" does not exist"),
            });
            continue;
        };
        match check_value(def, raw) {
            Ok(v) => {
                if let world::Storage::Slot(slot) = def.storage {
                    values.push((slot, v));
                }
            }
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        return Ok(values);
    }
    let details: Vec<Json> = problems
        .iter()
        .map(|p| json!({"isValid": false, "message": p.message, "error": p.code, "name": p.name}))
        .collect();
    let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
    Err(json!({"status": "error", "category": "VALIDATION_ERROR",
        "message": format!("Property values were not valid: {}", Json::Array(details)),
        "context": {"ids": [id], "propertyName": names},
        "errors": problems.iter().map(|p| json!({"message": p.message, "code": p.code,
            "context": {"propertyName": [p.name]}})).collect::<Vec<_>>(),
        "correlationId": hub.stats.correlation_id()}))
}

async fn batch_update_companies(State(hub): Shared, body: Bytes) -> Response {
    let started = clock::now_ms();
    let req: BatchUpdateRequest = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if req.inputs.len() > BATCH_MAX {
        return hub.invalid(format!(
            "Batch input limit is {BATCH_MAX}, got {} inputs",
            req.inputs.len()
        ));
    }
    let ids: Vec<String> = req.inputs.iter().map(|i| input_id(&i.id)).collect();
    let mut seen = std::collections::HashSet::new();
    let dupes: Vec<&str> = ids
        .iter()
        .filter(|id| !seen.insert(id.as_str()))
        .map(String::as_str)
        .collect();
    if !dupes.is_empty() {
        return hub.invalid(format!(
            "Duplicate IDs found in batch input: [{}]. IDs must be unique",
            dupes.join(", ")
        ));
    }
    let mut world = hub.world_mut();
    let now = Instant::now();
    let mut errors = Vec::new();
    let mut missing = Vec::new();
    let mut written = Vec::new();
    for (input, id) in req.inputs.iter().zip(&ids) {
        let Some(k) = world.company_index(id) else {
            missing.push(id.clone());
            continue;
        };
        match check_input(&hub, &world, id, &input.properties) {
            Ok(values) => {
                let stamp = hub.clock.next();
                world.write(k, values, stamp, hub.cfg.search_index_lag, now);
                written.push((
                    k,
                    id.as_str(),
                    input.properties.keys().cloned().collect::<Vec<_>>(),
                ));
            }
            Err(e) => errors.push(e),
        }
    }
    hub.writes.record(written.iter().map(|(_, id, _)| *id));
    let mut out = Vec::new();
    for (i, (k, _, names)) in written.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let props = hub.resolve(&world, names);
        hub.render_company(&world, *k, &props, View::Live, &mut out);
    }
    if !missing.is_empty() {
        errors.push(missing_error(&hub, "COMPANY", missing));
    }
    batch_envelope(StatusCode::OK, out, errors, started)
}

async fn patch_company(State(hub): Shared, Path(id): Path<String>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Patch {
        #[serde(default)]
        properties: serde_json::Map<String, Json>,
    }
    let req: Patch = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut world = hub.world_mut();
    let Some(k) = world.company_index(&id) else {
        return not_found(&hub, "company", &id);
    };
    match check_input(&hub, &world, &id, &req.properties) {
        Ok(values) => {
            let stamp = hub.clock.next();
            world.write(k, values, stamp, hub.cfg.search_index_lag, Instant::now());
            hub.writes.record([id.as_str()]);
            let names: Vec<String> = req.properties.keys().cloned().collect();
            let props = hub.resolve(&world, &names);
            let mut out = Vec::new();
            hub.render_company(&world, k, &props, View::Live, &mut out);
            json_bytes(StatusCode::OK, out)
        }
        Err(mut e) => {
            e["status"] = json!("error");
            json_value(StatusCode::BAD_REQUEST, &e)
        }
    }
}

async fn list_properties(State(hub): Shared) -> Response {
    let world = hub.world();
    let results: Vec<Json> = world.schema.defs.iter().map(PropertyDef::to_json).collect();
    json_value(StatusCode::OK, &json!({"results": results}))
}

async fn get_property(State(hub): Shared, Path(name): Path<String>) -> Response {
    let world = hub.world();
    match world.schema.get(&name) {
        Some(def) => json_value(StatusCode::OK, &def.to_json()),
        None => hub.error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("Unable to find property with name '{name}' for object type companies"),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyCreate {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    field_type: String,
    group_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    options: Vec<OptionInput>,
}

#[derive(Debug, Deserialize)]
struct OptionInput {
    label: String,
    value: String,
}

fn conflict(hub: &Hub, message: String, name: &str) -> Response {
    let body = json!({"status": "error", "message": message, "correlationId": hub.stats.correlation_id(),
        "category": "OBJECT_ALREADY_EXISTS", "context": {"name": [name]}});
    json_value(StatusCode::CONFLICT, &body)
}

async fn create_property(State(hub): Shared, body: Bytes) -> Response {
    let req: PropertyCreate = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let valid_name = req.name.starts_with(|c: char| c.is_ascii_lowercase())
        && req
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return hub.invalid(format!(
            "Property name '{}' is not valid: use lowercase letters, digits and underscores, starting with a letter",
            req.name
        ));
    }
    if !["string", "number", "date", "datetime", "enumeration", "bool"].contains(&req.kind.as_str()) {
        return hub.invalid(format!("Property type '{}' is not valid", req.kind));
    }
    if req.kind == "enumeration" && req.options.is_empty() {
        return hub.invalid(format!(
            "Enumeration property '{}' needs at least one option",
            req.name
        ));
    }
    let mut world = hub.world_mut();
    if world.schema.get(&req.name).is_some() {
        return conflict(
            &hub,
            format!("Property named '{}' already exists.", req.name),
            &req.name,
        );
    }
    if !world.schema.group_exists(&req.group_name) {
        return hub.invalid(format!("Property group '{}' does not exist", req.group_name));
    }
    let options = req.options.into_iter().map(|o| (o.label, o.value)).collect();
    world.schema.add(
        NewProperty {
            name: &req.name,
            label: &req.label,
            kind: &req.kind,
            field_type: &req.field_type,
            group: &req.group_name,
            options,
            description: &req.description,
        },
        false,
        clock::now_ms(),
    );
    let def = world
        .schema
        .get(&req.name)
        .map(PropertyDef::to_json)
        .unwrap_or(Json::Null);
    json_value(StatusCode::CREATED, &def)
}

async fn list_groups(State(hub): Shared) -> Response {
    let world = hub.world();
    let results: Vec<Json> = world.schema.groups.iter().map(|g| g.to_json()).collect();
    json_value(StatusCode::OK, &json!({"results": results}))
}

async fn create_group(State(hub): Shared, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct GroupCreate {
        name: String,
        label: String,
    }
    let req: GroupCreate = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut world = hub.world_mut();
    if world.schema.group_exists(&req.name) {
        return conflict(
            &hub,
            format!("Property group named '{}' already exists.", req.name),
            &req.name,
        );
    }
    world.schema.add_group(&req.name, &req.label);
    let g = world
        .schema
        .groups
        .last()
        .map(|g| g.to_json())
        .unwrap_or(Json::Null);
    json_value(StatusCode::CREATED, &g)
}

fn deal_props(names: &[String]) -> Vec<&str> {
    if names.is_empty() {
        return DEAL_PROPERTIES[..5].to_vec();
    }
    let mut out: Vec<&str> = Vec::new();
    for n in names {
        if let Some(p) = DEAL_PROPERTIES.iter().find(|p| **p == n.trim()) {
            if !out.contains(p) {
                out.push(p);
            }
        }
    }
    out
}

async fn list_deals(State(hub): Shared, RawQuery(raw): RawQuery) -> Response {
    let q = list_query(raw);
    let limit = match parse_limit(&hub, q.limit.as_deref(), 10, LIST_MAX) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let after = match q.after.as_deref().map(|a| a.trim().parse::<u64>()) {
        None => 0,
        Some(Ok(a)) => a,
        Some(Err(_)) => return hub.invalid("after must be a paging cursor returned by a previous page"),
    };
    let world = hub.world();
    let now = world.deals_now_ms;
    let props = deal_props(&q.properties);
    let start = world.deals.partition_point(|d| d.id < after);
    let mut page = world.deals[start..].iter().filter(|d| d.visible(now));
    let mut out = Vec::with_capacity(64 + limit * 400);
    out.extend_from_slice(b"{\"results\":[");
    for (i, d) in page.by_ref().take(limit).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        d.render(&props, now, &mut out);
    }
    out.push(b']');
    if let Some(next) = page.next() {
        hub.paging(&mut out, "/crm/v3/objects/deals", &next.id.to_string());
    }
    out.push(b'}');
    json_bytes(StatusCode::OK, out)
}

async fn get_deal(State(hub): Shared, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = list_query(raw);
    let world = hub.world();
    let now = world.deals_now_ms;
    let Some(i) = world.deal_index(&id).filter(|i| world.deals[*i].visible(now)) else {
        return not_found(&hub, "deal", &id);
    };
    let mut out = Vec::new();
    world.deals[i].render(&deal_props(&q.properties), now, &mut out);
    json_bytes(StatusCode::OK, out)
}

async fn batch_read_deals(State(hub): Shared, body: Bytes) -> Response {
    batch_read(&hub, &body, "DEAL", |world, id, names, out| {
        let now = world.deals_now_ms;
        let i = world.deal_index(id).filter(|i| world.deals[*i].visible(now))?;
        world.deals[i].render(&deal_props(names), now, out);
        Some(())
    })
}

/// A v3 batch read of one object type: at most [`BATCH_MAX`] inputs; each found record rendered
/// by `render` (which answers `None` for an id it does not hold, with the requested properties),
/// the rest named in one `errors` entry, as HubSpot answers.
fn batch_read(
    hub: &Hub,
    body: &Bytes,
    object: &str,
    render: impl Fn(&World, &str, &[String], &mut Vec<u8>) -> Option<()>,
) -> Response {
    let started = clock::now_ms();
    let req: BatchReadRequest = match parse_body(hub, body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if req.inputs.len() > BATCH_MAX {
        return hub.invalid(format!(
            "Batch input limit is {BATCH_MAX}, got {} inputs",
            req.inputs.len()
        ));
    }
    let world = hub.world();
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for input in &req.inputs {
        let id = input_id(&input.id);
        let mark = out.len();
        if !out.is_empty() {
            out.push(b',');
        }
        if render(&world, &id, &req.properties, &mut out).is_none() {
            out.truncate(mark);
            missing.push(id);
        }
    }
    let errors = if missing.is_empty() {
        vec![]
    } else {
        vec![missing_error(hub, object, missing)]
    };
    batch_envelope(StatusCode::OK, out, errors, started)
}

/// v4 company -> deal associations (type 342). A company with no deals (or unknown) is
/// reported in `errors` with a 207, as the v4 batch read does.
async fn company_deal_associations(State(hub): Shared, body: Bytes) -> Response {
    let started = clock::now_ms();
    let req: BatchReadRequest = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if req.inputs.len() > 1000 {
        return hub.invalid(format!(
            "Batch input limit is 1000, got {} inputs",
            req.inputs.len()
        ));
    }
    let world = hub.world();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &req.inputs {
        let id = input_id(&input.id);
        let deals: Vec<_> = world
            .company_index(&id)
            .map(|k| world.deals_of(k))
            .unwrap_or(&[])
            .iter()
            .filter(|d| d.visible(world.deals_now_ms))
            .collect();
        if deals.is_empty() {
            errors.push(json!({"status": "error", "category": "OBJECT_NOT_FOUND",
                "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                "context": {"fromObjectId": [id]},
                "message": format!("No deal is associated with company {id}.")}));
            continue;
        }
        let to: Vec<Json> = deals
            .iter()
            .map(|d| {
                json!({"toObjectId": d.id, "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 342, "label": null}]})
            })
            .collect();
        results.push(json!({"from": {"id": id}, "to": to}));
    }
    let results = serde_json::to_vec(&results).unwrap_or_default();
    // Strip the array brackets: the envelope writes its own.
    let inner = results
        .get(1..results.len().saturating_sub(1))
        .unwrap_or(&[])
        .to_vec();
    batch_envelope(StatusCode::OK, inner, errors, started)
}

fn contact_props(names: &[String]) -> Vec<&'static str> {
    if names.is_empty() {
        return world::CONTACT_DEFAULTS.to_vec();
    }
    let mut out: Vec<&'static str> = Vec::new();
    for n in names {
        if let Some(p) = world::CONTACT_PROPERTIES.iter().find(|p| **p == n.trim()) {
            if !out.contains(p) {
                out.push(p);
            }
        }
    }
    out
}

async fn get_contact(State(hub): Shared, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = list_query(raw);
    let world = hub.world();
    let Some(i) = world.contact_index(&id) else {
        return not_found(&hub, "contact", &id);
    };
    let mut out = Vec::new();
    world.contacts[i].render(&contact_props(&q.properties), &mut out);
    json_bytes(StatusCode::OK, out)
}

async fn batch_read_contacts(State(hub): Shared, body: Bytes) -> Response {
    batch_read(&hub, &body, "CONTACT", |world, id, names, out| {
        let i = world.contact_index(id)?;
        world.contacts[i].render(&contact_props(names), out);
        Some(())
    })
}

/// v4 company -> contact associations (type 280), `association_page_size` per company per
/// answer: a company with more carries `paging.next.after`, which the next request sends
/// beside its id. A company with no contacts (or unknown) is reported in `errors` with a 207.
async fn company_contact_associations(State(hub): Shared, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Input {
        id: Json,
        #[serde(default)]
        after: Option<Json>,
    }
    #[derive(Deserialize)]
    struct Request {
        inputs: Vec<Input>,
    }
    let started = clock::now_ms();
    let req: Request = match parse_body(&hub, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if req.inputs.len() > ASSOCIATION_BATCH_MAX {
        return hub.invalid(format!(
            "Batch input limit is {ASSOCIATION_BATCH_MAX}, got {} inputs",
            req.inputs.len()
        ));
    }
    let page = hub.cfg.association_page_size.max(1);
    let world = hub.world();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &req.inputs {
        let id = input_id(&input.id);
        let start = match json_after(&input.after) {
            Ok(a) => a,
            Err(e) => return hub.invalid(e),
        };
        let contacts = world
            .company_index(&id)
            .map(|k| world.contacts_of(k))
            .unwrap_or(&[]);
        if contacts.is_empty() {
            errors.push(json!({"status": "error", "category": "OBJECT_NOT_FOUND",
                "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                "context": {"fromObjectId": [id]},
                "message": format!("No contact is associated with company {id}.")}));
            continue;
        }
        let end = start.saturating_add(page).min(contacts.len());
        let to: Vec<Json> = contacts
            .get(start..end)
            .unwrap_or(&[])
            .iter()
            .map(|c| {
                json!({"toObjectId": c.id, "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 280, "label": null}]})
            })
            .collect();
        let mut result = json!({"from": {"id": id}, "to": to});
        if end < contacts.len() {
            result["paging"] = json!({"next": {"after": end.to_string(), "link": null}});
        }
        results.push(result);
    }
    let results = serde_json::to_vec(&results).unwrap_or_default();
    // Strip the array brackets: the envelope writes its own.
    let inner = results
        .get(1..results.len().saturating_sub(1))
        .unwrap_or(&[])
        .to_vec();
    batch_envelope(StatusCode::OK, inner, errors, started)
}
