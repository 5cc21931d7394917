//! The Salesforce REST API emulator: OAuth client-credentials tokens that expire, SOQL
//! queries (a subset, see `soql`; Account, Contract, Opportunity, OpportunityHistory, Contact,
//! Campaign and CampaignMember) with server-side cursors and `nextRecordsUrl`, request URIs of at
//! most 16,384 bytes (414 beyond), `describe`, record get/update, sObject Collections updates with
//! per-record results, Campaigns and their members created and deleted (`campaigns.rs`),
//! `limits`, and the daily API request limit reported in `Sforce-Limit-Info`.
//!
//! Departures from the real service, all deliberate: the daily count starts with the
//! emulator (no rolling 24 hours); `/services/oauth2/token` does not count as an API
//! request (as in Salesforce); the 429 of an injected storm carries `Retry-After: 1`
//! (Salesforce itself rarely answers 429), so clients can be tested with and without it.

mod campaigns;
mod soql;
mod world;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::{json, Value as Json};
use tierd_gen::GenOptions;

use self::world::{convert, well_formed_id, Object, World, V};
use crate::clock::{self, WriteClock};
use crate::faults::{hash_str, Faults};
use crate::server::{self, form_pairs, json_bytes, json_value, EmulatorStats, Gate, Running, Stats};
use crate::writes::{WriteCounter, WriteLog};

/// How the Salesforce emulator's org is set up.
#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    /// How many Accounts to seed (row `k` is generator account `k + 1`).
    pub accounts: u64,
    /// The generator seed (also seeds fault injection).
    pub seed: u64,
    /// The generator's `as_of` date, `YYYY-MM-DD`.
    pub as_of: String,
    /// The OAuth client secret the token endpoint accepts (with any client id).
    pub client_secret: String,
    /// The API version in paths, e.g. `v61.0` (any `vNN.N` is served).
    pub api_version: String,
    /// How long an access token stays valid.
    pub token_ttl: Duration,
    /// API requests allowed (counted from start) before `REQUEST_LIMIT_EXCEEDED`.
    pub daily_api_limit: u64,
    /// Account fields the org lacks (e.g. `Tier__c`), to test the describe check.
    pub omit_fields: Vec<String>,
    /// Record Ids whose next update fails once with `UNABLE_TO_LOCK_ROW`.
    pub lock_once: Vec<String>,
    /// The org's "Accounts as Campaign Members" setting: CampaignMember has `AccountId` only
    /// when it is on.
    pub accounts_as_campaign_members: bool,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl SalesforceConfig {
    /// `accounts` Accounts from `seed`, as of 2026-11-24, secret `test-secret`, API v61.0,
    /// 2-hour tokens, [`DAILY_API_REQUESTS`] API requests, every tierd field present, any
    /// free port.
    pub fn new(accounts: u64, seed: u64) -> Self {
        SalesforceConfig {
            accounts,
            seed,
            as_of: "2026-11-24".into(),
            client_secret: "test-secret".into(),
            api_version: "v61.0".into(),
            token_ttl: Duration::from_secs(2 * 3600),
            daily_api_limit: DAILY_API_REQUESTS,
            omit_fields: Vec::new(),
            lock_once: Vec::new(),
            accounts_as_campaign_members: true,
            port: 0,
        }
    }

    /// As [`SalesforceConfig::new`] with no daily API limit: for the demo and for tests that
    /// exercise something else.
    pub fn unlimited(accounts: u64, seed: u64) -> Self {
        SalesforceConfig {
            daily_api_limit: u64::MAX,
            ..SalesforceConfig::new(accounts, seed)
        }
    }
}

/// The daily API request allocation of an Enterprise Edition org before per-licence
/// additions (Salesforce: 100,000 per 24 hours plus 1,000 per user licence).
pub const DAILY_API_REQUESTS: u64 = 100_000;

/// A running Salesforce emulator.
pub struct SalesforceEmulator {
    org: Arc<Org>,
    running: Running,
}

struct Cursor {
    object: Object,
    fields: Vec<usize>,
    rows: Arc<Vec<u32>>,
}

struct Org {
    cfg: SalesforceConfig,
    world: RwLock<World>,
    /// token -> (issued at, token epoch)
    tokens: Mutex<HashMap<String, (Instant, u64)>>,
    token_epoch: AtomicU64,
    api_used: AtomicU64,
    cursors: Mutex<(HashMap<String, Cursor>, VecDeque<String>)>,
    next_cursor: AtomicU64,
    lock_once: Mutex<HashSet<String>>,
    writes: WriteCounter,
    faults: Faults,
    stats: Arc<Stats>,
    clock: WriteClock,
    base_url: std::sync::OnceLock<String>,
}

type Shared = State<Arc<Org>>;

const PAGE_MAX: usize = 2000;
/// Salesforce: "the maximum length for the combined URI and headers is 16,384 bytes"; a URI
/// alone beyond it is refused with 414 URI Too Long (help article 000386264).
const URI_MAX: usize = 16_384;
const COMPOSITE_MAX: usize = 200;
/// Open query cursors kept; older ones answer `INVALID_QUERY_LOCATOR`, as expired ones do.
const CURSORS_KEPT: usize = 64;

fn sf_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_value(status, &json!([{"message": message.into(), "errorCode": code}]))
}

impl SalesforceEmulator {
    /// Seeds the org and starts serving on 127.0.0.1 (`cfg.port`, 0 = any free port).
    pub async fn start(cfg: SalesforceConfig) -> anyhow::Result<SalesforceEmulator> {
        let as_of = cfg
            .as_of
            .parse()
            .map_err(|e| anyhow::anyhow!("Salesforce emulator: as_of is not a date: {e}"))?;
        let opts = GenOptions {
            seed: cfg.seed,
            as_of,
        };
        let (accounts, mut omit) = (cfg.accounts, cfg.omit_fields.clone());
        if !cfg.accounts_as_campaign_members {
            omit.push("AccountId".into());
        }
        let world = tokio::task::spawn_blocking(move || World::seed(opts, accounts, &omit)).await?;
        let org = Arc::new(Org {
            clock: WriteClock::starting_after(world.seeded_until_ms),
            world: RwLock::new(world),
            tokens: Mutex::default(),
            token_epoch: AtomicU64::new(0),
            api_used: AtomicU64::new(0),
            cursors: Mutex::default(),
            next_cursor: AtomicU64::new(1),
            lock_once: Mutex::new(cfg.lock_once.iter().cloned().collect()),
            writes: WriteCounter::default(),
            faults: Faults::new(cfg.seed),
            stats: Arc::default(),
            base_url: std::sync::OnceLock::new(),
            cfg,
        });
        let running = Running::start(router(org.clone()), org.cfg.port, "Salesforce").await?;
        let _ = org.base_url.set(running.base_url());
        Ok(SalesforceEmulator { org, running })
    }

    /// `http://127.0.0.1:PORT`: serves `/services/oauth2/token` and is the `instance_url`.
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// Fault injection for this emulator.
    pub fn faults(&self) -> &Faults {
        &self.org.faults
    }

    /// The record writes received so far.
    pub fn writes(&self) -> WriteLog {
        self.org.writes.snapshot()
    }

    /// Requests, 429s, injected faults and writes served so far.
    pub fn stats(&self) -> EmulatorStats {
        self.org.stats.snapshot(&self.org.writes)
    }

    /// API requests counted against the daily limit so far.
    pub fn api_usage(&self) -> u64 {
        self.org.api_used.load(Ordering::Relaxed)
    }

    /// Invalidates every access token issued so far (the next call gets `INVALID_SESSION_ID`).
    pub fn expire_tokens(&self) {
        self.org.token_epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes the next update of each of these record Ids fail once with `UNABLE_TO_LOCK_ROW`.
    pub fn lock_rows_once(&self, ids: &[&str]) {
        let mut set = self.org.lock_once.lock().unwrap_or_else(PoisonError::into_inner);
        set.extend(ids.iter().map(|s| s.to_string()));
    }

    /// A person's edit in Salesforce: sets fields from text (numbers, `true`/`false`,
    /// dates, ISO datetimes; empty clears) and bumps `SystemModstamp`. Not counted as a
    /// write received.
    ///
    /// # Panics
    /// When the record or a field does not exist or the value does not fit the field:
    /// this is a test's instruction, and a wrong one should stop the test.
    pub fn set_fields(&self, id: &str, fields: &[(&str, &str)]) {
        let mut world = self.org.world_mut();
        let object = World::object_of(id).unwrap_or_else(|| panic!("no Salesforce record with id {id}"));
        let table = world.table_mut(object);
        let k = table
            .row(id)
            .unwrap_or_else(|| panic!("no {} with id {id}", object.name()));
        for (name, value) in fields {
            let f = table
                .field(name)
                .unwrap_or_else(|| panic!("no field {name} on {}", object.name()));
            let def = &table.fields[f];
            let v = if value.is_empty() {
                V::Null
            } else {
                let json = match def.ty {
                    t if t.is_number() || t == world::FieldType::Boolean => {
                        serde_json::from_str(value).unwrap_or(Json::String(value.to_string()))
                    }
                    _ => Json::String(value.to_string()),
                };
                convert(def, &json).unwrap_or_else(|e| panic!("{e}"))
            };
            table.rows[k][f] = v;
        }
        let stamp = self.org.clock.next();
        table.touch(k, stamp);
    }

    /// Lets the org's opportunity history run on to `day` (midnight UTC): the opportunities its
    /// seeded script opens by then appear, and open ones past their close date close won or
    /// lost, each change with its OpportunityHistory row. Accounts are not modified (Salesforce
    /// does not touch an Account when its Opportunities change). Returns (opened, closed).
    pub fn advance_deals_to(&self, day: tierd_gen::Date) -> (u64, u64) {
        self.org
            .world_mut()
            .advance_deals(i64::from(day.days()) * clock::DAY_MS)
    }

    /// A field's current value as text (datetimes as Salesforce prints them).
    pub fn field(&self, id: &str, name: &str) -> Option<String> {
        let world = self.org.world();
        let table = world.table(World::object_of(id)?);
        let k = table.row(id)?;
        let f = table.field(name)?;
        table.rows[k][f].to_text(table.fields[f].ty)
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

fn router(org: Arc<Org>) -> Router {
    let gate = Arc::new(Gate {
        faults: org.faults.clone(),
        stats: org.stats.clone(),
        rate_limited: |_| {
            let mut r = sf_error(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                "Too many requests; retry later.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        },
        server_error: |_| {
            sf_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server temporarily unavailable.",
            )
        },
    });
    // Salesforce serves every REST resource with or without a trailing slash (simple-salesforce
    // asks for `query/?q=` and `sobjects/Account/describe/`), and `queryAll` as `query` plus
    // deleted records, which this org never has.
    let data = [
        ("/services/data/{version}", get(resources)),
        ("/services/data/{version}/query", get(query)),
        ("/services/data/{version}/queryAll", get(query)),
        ("/services/data/{version}/query/{locator}", get(query_more)),
        ("/services/data/{version}/queryAll/{locator}", get(query_more)),
        (
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe),
        ),
        (
            "/services/data/{version}/sobjects/{object}",
            post(campaigns::create_record),
        ),
        (
            "/services/data/{version}/sobjects/{object}/{id}",
            get(get_record).patch(patch_record),
        ),
        (
            "/services/data/{version}/composite/sobjects",
            patch(composite_update)
                .post(campaigns::composite_create)
                .delete(campaigns::composite_delete),
        ),
        ("/services/data/{version}/limits", get(limits)),
    ]
    .into_iter()
    .fold(Router::new(), |r, (path, handler)| {
        r.route(path, handler.clone()).route(&format!("{path}/"), handler)
    })
    .layer(middleware::from_fn_with_state(org.clone(), guard));
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .merge(data)
        .layer(middleware::from_fn_with_state(gate, server::fault_gate))
        .with_state(org.clone())
        .merge(server::admin_routes(
            org.faults.clone(),
            org.stats.clone(),
            org.writes.clone(),
        ))
}

impl Org {
    fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn world_mut(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn limit_info(&self) -> HeaderValue {
        let used = self.api_used.load(Ordering::Relaxed);
        HeaderValue::from_str(&format!("api-usage={used}/{}", self.cfg.daily_api_limit))
            .unwrap_or(HeaderValue::from_static("api-usage=0/0"))
    }
}

/// URI length, token check, then the daily API limit; `Sforce-Limit-Info` goes on every
/// answer that reaches the API.
async fn guard(State(org): Shared, req: Request, next: Next) -> Response {
    if req.uri().to_string().len() > URI_MAX {
        return (StatusCode::URI_TOO_LONG, "URI Too Long").into_response();
    }
    let with_info = |mut r: Response, org: &Org| {
        r.headers_mut().insert("sforce-limit-info", org.limit_info());
        r
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = bearer.and_then(|b| b.strip_prefix("Bearer ").or_else(|| b.strip_prefix("OAuth ")));
    let valid = token.is_some_and(|t| {
        let tokens = org.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.get(t.trim()).is_some_and(|(issued, epoch)| {
            *epoch == org.token_epoch.load(Ordering::Relaxed) && issued.elapsed() < org.cfg.token_ttl
        })
    });
    if !valid {
        let r = sf_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        );
        return with_info(r, &org);
    }
    let counted = org
        .api_used
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            (used < org.cfg.daily_api_limit).then_some(used + 1)
        });
    if counted.is_err() {
        let r = sf_error(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        );
        return with_info(r, &org);
    }
    let version = req.uri().path().split('/').nth(3).unwrap_or("");
    let v = version.strip_prefix('v').unwrap_or("");
    let version_ok = v.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    });
    if !version_ok {
        let r = sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
        return with_info(r, &org);
    }
    let r = next.run(req).await;
    with_info(r, &org)
}

/// `GET /services/data`: the API versions served (no session needed, as in Salesforce).
async fn versions(State(org): Shared) -> Response {
    let configured = org.cfg.api_version.trim_start_matches('v');
    let mut list: Vec<String> = ["59.0", "60.0", "61.0", "62.0"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    if !list.iter().any(|v| v == configured) {
        list.push(configured.to_string());
    }
    let body: Vec<Json> = list
        .iter()
        .map(|v| json!({"label": format!("API {v}"), "url": format!("/services/data/v{v}"), "version": v}))
        .collect();
    json_value(StatusCode::OK, &Json::Array(body))
}

/// `GET /services/data/vXX.X`: the resources of one version, by name.
async fn resources(Path(version): Path<String>) -> Response {
    let base = format!("/services/data/{version}");
    let body = json!({
        "composite": format!("{base}/composite"),
        "limits": format!("{base}/limits"),
        "query": format!("{base}/query"),
        "queryAll": format!("{base}/queryAll"),
        "sobjects": format!("{base}/sobjects"),
    });
    json_value(StatusCode::OK, &body)
}

async fn token(State(org): Shared, body: Bytes) -> Response {
    let form = form_pairs(&String::from_utf8_lossy(&body));
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        let body =
            json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"});
        return json_value(StatusCode::BAD_REQUEST, &body);
    }
    if get("client_id").is_none_or(str::is_empty)
        || get("client_secret") != Some(org.cfg.client_secret.as_str())
    {
        let body = json!({"error": "invalid_client", "error_description": "invalid client credentials"});
        return json_value(StatusCode::BAD_REQUEST, &body);
    }
    let n = org.next_cursor.fetch_add(1, Ordering::Relaxed);
    let issued_at = clock::now_ms();
    // Not a secret generator: unguessable enough for a local emulator that accepts any client id.
    let token = format!(
        "00DEMU0000000001!{:016x}{:016x}",
        hash_str(issued_at as u64, &org.cfg.client_secret),
        hash_str(n, "token")
    );
    let epoch = org.token_epoch.load(Ordering::Relaxed);
    org.tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token.clone(), (Instant::now(), epoch));
    let body = json!({
        "access_token": token,
        "instance_url": org.base_url.get().cloned().unwrap_or_default(),
        "id": format!("{}/id/00DEMU0000000001/005EMU0000000001", org.base_url.get().cloned().unwrap_or_default()),
        "token_type": "Bearer",
        "issued_at": issued_at.to_string(),
        "signature": format!("{:016x}", hash_str(n, &token)),
    });
    json_value(StatusCode::OK, &body)
}

fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| p.trim().strip_prefix("batchSize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(PAGE_MAX, |n| n.clamp(200, PAGE_MAX))
}

fn page(org: &Org, version: &str, locator: &str, cursor: &Cursor, offset: usize, size: usize) -> Response {
    let world = org.world();
    let table = world.table(cursor.object);
    let end = offset.saturating_add(size).min(cursor.rows.len());
    let done = end >= cursor.rows.len();
    let mut out = Vec::with_capacity(64 + (end.saturating_sub(offset)) * 64 * (cursor.fields.len() + 2));
    out.extend_from_slice(format!("{{\"totalSize\":{},\"done\":{done},", cursor.rows.len()).as_bytes());
    if !done {
        out.extend_from_slice(
            format!("\"nextRecordsUrl\":\"/services/data/{version}/query/{locator}-{end}\",").as_bytes(),
        );
    }
    out.extend_from_slice(b"\"records\":[");
    for (i, &k) in cursor.rows.get(offset..end).unwrap_or(&[]).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let spoil = table.id(k as usize).and_then(|id| org.faults.malformed(id));
        table.render(k as usize, &cursor.fields, version, spoil, &mut out);
    }
    out.extend_from_slice(b"]}");
    json_bytes(StatusCode::OK, out)
}

async fn query(
    State(org): Shared,
    Path(version): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = form_pairs(raw.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v);
    let Some(q) = q else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        );
    };
    let (object, fields, rows) = {
        let world = org.world();
        let parsed = match soql::parse(&q, &world) {
            Ok(p) => p,
            Err(e) => return sf_error(StatusCode::BAD_REQUEST, e.code, e.message),
        };
        let rows = parsed.run(&world);
        (parsed.object, parsed.fields, rows)
    };
    let cursor = Cursor {
        object,
        fields,
        rows: Arc::new(rows),
    };
    let size = batch_size(&headers);
    let n = org.next_cursor.fetch_add(1, Ordering::Relaxed);
    let locator = format!("01g{}", world::record_id("", n));
    let resp = page(&org, &version, &locator, &cursor, 0, size);
    if cursor.rows.len() > size {
        let mut c = org.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *c;
        map.insert(locator.clone(), cursor);
        order.push_back(locator);
        while order.len() > CURSORS_KEPT {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
    resp
}

async fn query_more(
    State(org): Shared,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let invalid = || {
        sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    };
    let Some((id, offset)) = locator.rsplit_once('-') else {
        return invalid();
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return invalid();
    };
    let c = org.cursors.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(cursor) = c.0.get(id) else {
        return invalid();
    };
    let cursor = Cursor {
        object: cursor.object,
        fields: cursor.fields.clone(),
        rows: cursor.rows.clone(),
    };
    drop(c);
    page(&org, &version, id, &cursor, offset, batch_size(&headers))
}

fn unknown_object(name: &str) -> Response {
    sf_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The requested resource does not exist: sObject type '{name}'"),
    )
}

async fn describe(State(org): Shared, Path((version, object)): Path<(String, String)>) -> Response {
    let Some(o) = Object::parse(&object) else {
        return unknown_object(&object);
    };
    let world = org.world();
    let table = world.table(o);
    let fields: Vec<Json> = table.fields.iter().map(world::FieldDef::to_json).collect();
    let name = o.name();
    let body = json!({"name": name, "label": name, "custom": false, "queryable": true, "updateable": true,
        "createable": true, "keyPrefix": o.prefix(), "fields": fields,
        "urls": {"describe": format!("/services/data/{version}/sobjects/{name}/describe"),
            "rowTemplate": format!("/services/data/{version}/sobjects/{name}/{{ID}}")}});
    json_value(StatusCode::OK, &body)
}

async fn get_record(
    State(org): Shared,
    Path((version, object, id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(o) = Object::parse(&object) else {
        return unknown_object(&object);
    };
    let world = org.world();
    let table = world.table(o);
    let Some(k) = table.row(&id) else {
        return sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    let wanted = form_pairs(raw.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v);
    let fields: Vec<usize> = match wanted {
        Some(list) => {
            let mut out = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match table.field(name) {
                    Some(f) => out.push(f),
                    None => {
                        return sf_error(
                            StatusCode::BAD_REQUEST,
                            "INVALID_FIELD",
                            format!("No such column '{name}' on sobject of type {}", o.name()),
                        )
                    }
                }
            }
            out
        }
        None => (0..table.fields.len()).collect(),
    };
    let mut out = Vec::new();
    let spoil = table.id(k).and_then(|id| org.faults.malformed(id));
    table.render(k, &fields, &version, spoil, &mut out);
    json_bytes(StatusCode::OK, out)
}

/// One record error: (statusCode, message, fields).
pub(super) type RecordError = (&'static str, String, Vec<String>);

/// A record's field values as the table stores them (`attributes` skipped, and `Id` on an update,
/// where it names the record), or the error Salesforce gives for the first field that does not
/// exist, may not be written (`Id` on a create among them), or does not convert to its type (a
/// restricted picklist with its own code). Shared by create and update.
pub(super) fn record_values(
    table: &world::Table,
    object: Object,
    fields: &serde_json::Map<String, Json>,
    update: bool,
) -> Result<Vec<(usize, V)>, RecordError> {
    let mut values = Vec::with_capacity(fields.len());
    for (name, raw) in fields {
        if name == "attributes" || (update && name.eq_ignore_ascii_case("id")) {
            continue;
        }
        let Some(f) = table.field(name) else {
            return Err((
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {}", object.name()),
                vec![name.clone()],
            ));
        };
        let def = &table.fields[f];
        if !def.updateable {
            return Err((
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {name}. Please check the security settings of this field and \
                     verify that it is read/write for your profile or permission set."
                ),
                vec![def.name.to_string()],
            ));
        }
        match convert(def, raw) {
            Ok(v) => values.push((f, v)),
            Err(msg) if def.restricted => {
                return Err((
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    msg,
                    vec![def.name.to_string()],
                ))
            }
            Err(msg) => return Err(("INVALID_TYPE_ON_FIELD_IN_RECORD", msg, vec![def.name.to_string()])),
        }
    }
    Ok(values)
}

/// Checks and converts one record's fields; the first problem wins, as in Salesforce.
fn check_record(
    org: &Org,
    world: &World,
    object: Object,
    id: &str,
    fields: &serde_json::Map<String, Json>,
) -> Result<(usize, Vec<(usize, V)>), RecordError> {
    if !well_formed_id(id) {
        return Err((
            "MALFORMED_ID",
            format!("{} ID: id value of incorrect type: {id}", object.name()),
            vec!["Id".into()],
        ));
    }
    let table = world.table(object);
    let Some(k) = table.row(id) else {
        return Err((
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id".into(),
            vec![],
        ));
    };
    let values = record_values(table, object, fields, true)?;
    if org
        .lock_once
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(id)
    {
        return Err((
            "UNABLE_TO_LOCK_ROW",
            format!("unable to obtain exclusive access to this record or 1 records: {id}"),
            vec![],
        ));
    }
    Ok((k, values))
}

fn apply(org: &Org, world: &mut World, object: Object, k: usize, values: Vec<(usize, V)>) {
    let table = world.table_mut(object);
    for (f, v) in values {
        table.rows[k][f] = v;
    }
    table.touch(k, org.clock.next());
}

async fn patch_record(
    State(org): Shared,
    Path((_version, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let Some(o) = Object::parse(&object) else {
        return unknown_object(&object);
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
    if world.table(o).row(&id).is_none() {
        return sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    }
    match check_record(&org, &world, o, &id, &fields) {
        Ok((k, values)) => {
            apply(&org, &mut world, o, k, values);
            org.writes.record([id.as_str()]);
            StatusCode::NO_CONTENT.into_response()
        }
        Err((code, message, fields)) => json_value(
            StatusCode::BAD_REQUEST,
            &json!([{"message": message, "errorCode": code, "fields": fields}]),
        ),
    }
}

/// An sObject Collections request body (create or update).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Collection {
    #[serde(default)]
    pub(super) all_or_none: bool,
    pub(super) records: Vec<serde_json::Map<String, Json>>,
}

/// Parses a collection, refused as Salesforce does when it is not JSON or holds more than
/// [`COMPOSITE_MAX`] records.
pub(super) fn parse_collection(body: &Bytes) -> Result<Collection, Response> {
    let req: Collection = serde_json::from_slice(body).map_err(|e| {
        sf_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            format!("The request body is not valid: {e}"),
        )
    })?;
    if req.records.len() > COMPOSITE_MAX {
        return Err(sf_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    Ok(req)
}

async fn composite_update(State(org): Shared, body: Bytes) -> Response {
    let req = match parse_collection(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut world = org.world_mut();
    let mut outcomes = Vec::with_capacity(req.records.len());
    for rec in &req.records {
        let id = rec
            .get("id")
            .or_else(|| rec.get("Id"))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
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
            Some((_, Some(_))) if id.is_empty() => Err((
                "MISSING_ARGUMENT",
                "Id not specified in an update call".to_string(),
                vec![],
            )),
            Some((_, Some(o))) => check_record(&org, &world, o, &id, rec).map(|(k, v)| (o, k, v)),
        };
        outcomes.push((id, outcome));
    }
    let any_failed = outcomes.iter().any(|(_, o)| o.is_err());
    let mut results = Vec::with_capacity(outcomes.len());
    let mut written = Vec::new();
    for (id, outcome) in outcomes {
        match outcome {
            Ok(_) if req.all_or_none && any_failed => results.push(json!({"id": id, "success": false, "errors": [{
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": []}]})),
            Ok((o, k, values)) => {
                apply(&org, &mut world, o, k, values);
                written.push(id.clone());
                results.push(json!({"id": id, "success": true, "errors": []}));
            }
            Err((code, message, fields)) => results.push(json!({"id": id, "success": false,
                "errors": [{"statusCode": code, "message": message, "fields": fields}]})),
        }
    }
    org.writes.record(written.iter().map(String::as_str));
    json_value(StatusCode::OK, &Json::Array(results))
}

async fn limits(State(org): Shared) -> Response {
    let max = org.cfg.daily_api_limit;
    let remaining = max.saturating_sub(org.api_used.load(Ordering::Relaxed));
    let body = json!({"DailyApiRequests": {"Max": max, "Remaining": remaining},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000}});
    json_value(StatusCode::OK, &body)
}
