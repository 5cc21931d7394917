//! The admin API (axum): health, readiness, Prometheus metrics, runs, accounts, tiers, plugins.
//!
//! Every route but `/healthz` and `/readyz` needs `Authorization: Bearer <token>` — `/metrics`
//! included, because run counts and tier sizes are business data and Prometheus scrapers send
//! bearer tokens (`authorization: {credentials_file: ...}`). Errors are JSON `{"error": "..."}`.
//! The routes are described in `openapi.json`, served at `/api/v1/openapi.json`; a test keeps the
//! two in step.
//!
//! The API reads the store directly and learns the rest of the daemon through [`DaemonView`]
//! (readiness, plugins, HTTP counters), so it does not depend on how the pipeline is built and is
//! tested with a stand-in. Manual runs go into [`RunQueue`], which only the leader's loop drains.

pub mod auth;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tierd_core::tier::Tier;
use tierd_plugin_host::PluginInfo;
use tierd_store::{RunId, RunKind, Store, Timestamp};
use tokio::sync::Notify;

use crate::schedule::{rfc3339, NextRuns};
use tierd_engine::metrics::{ExtraGauges, Metrics};

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest page of `GET /api/v1/tiers?tier=` and `GET /api/v1/runs`.
const MAX_LIMIT: u32 = 1000;
/// Manual runs waiting at most: more is a client looping, not an operator.
const MAX_QUEUED: usize = 16;

/// What the API needs of the running daemon besides the store.
pub trait DaemonView: Send + Sync {
    /// Whether the store and the connector answer; the reason when not.
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
    /// The running plugins.
    fn plugins(&self) -> Vec<PluginInfo>;
    /// Snapshots of the connector's and plugins' HTTP counters.
    fn http_gauges(&self) -> ExtraGauges;
}

/// A run asked for through the API, waiting for the leader.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManualRun {
    /// `full`, `incremental`, `dry_run` or `pilot`.
    pub kind: RunKind,
    /// Pilot only: a candidate model file on the server (default: the live model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<std::path::PathBuf>,
    /// Pilot only: which accounts, e.g. `firmographic.region=EMEA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Pilot only: the share of accounts (0..1], chosen by account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<f64>,
}

impl ManualRun {
    fn problem(&self) -> Option<String> {
        let pilot_only = self.model.is_some() || self.filter.is_some() || self.sample.is_some();
        if pilot_only && self.kind != RunKind::Pilot {
            return Some("model, filter and sample apply to pilot runs only".into());
        }
        match self.sample {
            Some(s) if !(s > 0.0 && s <= 1.0) => Some(format!("sample {s} is not a share in (0, 1]")),
            _ => None,
        }
    }
}

/// Manual runs waiting for the leader, plus what the leader tells the API about itself.
#[derive(Default)]
pub struct RunQueue {
    queued: Mutex<VecDeque<ManualRun>>,
    added: Notify,
    leading: AtomicBool,
    next: Mutex<Option<NextRuns>>,
}

impl RunQueue {
    /// Queues `run`; `Err` with the reason when this instance does not lead or the queue is full.
    fn push(&self, run: ManualRun) -> Result<usize, ApiError> {
        if !self.is_leading() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this instance is a standby: send the request to the leader (GET /api/v1/runs shows \
                 the role of each instance)",
            ));
        }
        let mut q = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_QUEUED {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{MAX_QUEUED} runs are already queued; wait for them to start"),
            ));
        }
        q.push_back(run);
        let position = q.len();
        drop(q);
        self.added.notify_one();
        Ok(position)
    }

    /// The next queued run, if any.
    pub fn pop(&self) -> Option<ManualRun> {
        self.queued.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }

    /// Waits until a run is queued (returns at once if one was queued since the last wait).
    pub async fn added(&self) {
        self.added.notified().await;
    }

    pub(crate) fn snapshot(&self) -> Vec<ManualRun> {
        self.queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Records whether this instance leads; a standby drops nothing it never accepted.
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
    }

    /// Whether this instance leads.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// Records the scheduler's next fire times, for `GET /api/v1/runs` and `/schedule`.
    pub fn set_next(&self, next: Option<NextRuns>) {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = next;
    }

    pub(crate) fn next(&self) -> Option<NextRuns> {
        *self.next.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Everything a handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Store,
    /// The rest of the daemon.
    pub view: Arc<dyn DaemonView>,
    /// The counters rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Manual runs and leadership.
    pub runs: Arc<RunQueue>,
    /// This instance's id.
    pub instance: String,
    /// The facts the live model reads, to read stored facts back typed.
    pub schema: Arc<tierd_core::FactSchema>,
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// The status and the message.
    pub(crate) fn parts(self) -> (StatusCode, String) {
        (self.status, self.message)
    }

    fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 with the `WWW-Authenticate` header clients expect.
    fn into_response_with_challenge(self) -> Response {
        let mut response = self.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

/// Store errors say what failed on which table; they carry no secret (the store redacts URLs).
impl From<tierd_store::StoreError> for ApiError {
    fn from(e: tierd_store::StoreError) -> Self {
        tracing::warn!(error = %e, "admin API: store error");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// The router: open health routes, everything else behind the bearer token.
pub fn router(state: ApiState, token: auth::Token) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/runs", get(list_runs).post(queue_run))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/schedule", get(schedule))
        .route("/api/v1/accounts", get(list_accounts))
        .route("/api/v1/accounts/{id}", get(get_account))
        .route("/api/v1/tiers", get(tiers))
        .route("/api/v1/pyramid", get(pyramid))
        .route("/api/v1/movements", get(movements))
        .route("/api/v1/pending-pushes", get(pending_pushes))
        .route("/api/v1/pending-pushes/retry", post(retry_pending))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/openapi.json", get(openapi))
        .route_layer(axum::middleware::from_fn_with_state(token, auth::require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .fallback(|| async { ApiError::not_found("no such route; see /api/v1/openapi.json") })
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` says stop; requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: tierd_engine::shutdown::ShutdownSignal,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { tierd_engine::shutdown::requested(&mut shutdown).await })
        .await
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(s): State<ApiState>) -> ApiResult {
    match s.view.ready().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" })).into_response()),
        Err(reason) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason)),
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    let mut extra = s.view.http_gauges();
    // Rejections held in the store, whichever process or run recorded them.
    match s.store.rejection_summary().await {
        Ok(groups) => {
            extra.rejections = Some(
                groups
                    .into_iter()
                    .map(|g| (g.reason, g.permanent, g.records))
                    .collect(),
            );
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read rejected pushes"),
    }
    let text = s.metrics.render(&extra);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    limit: Option<u32>,
}

pub(crate) fn schedule_json(next: Option<NextRuns>) -> Value {
    let time = |t: Option<Timestamp>| t.map(rfc3339);
    match next {
        Some(n) => json!({ "full": time(n.full), "incremental": time(n.incremental) }),
        None => Value::Null,
    }
}

async fn list_runs(State(s): State<ApiState>, query: Query<RunsQuery>) -> ApiResult {
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
    let runs = s.store.runs(limit).await?;
    let runs: Vec<Value> = runs.iter().map(run_json).collect();
    Ok(Json(json!({
        "instance": s.instance,
        "role": if s.runs.is_leading() { "leader" } else { "standby" },
        "next_scheduled": schedule_json(s.runs.next()),
        "queued": s.runs.snapshot(),
        "runs": runs,
    }))
    .into_response())
}

pub(crate) fn run_json(run: &tierd_store::Run) -> Value {
    json!({
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "model_version": run.model_version,
        "owner": run.owner,
        "started_at": rfc3339(run.started_at),
        "finished_at": run.finished_at.map(rfc3339),
        "watermark": run.watermark,
        "stats": run.stats,
        "error": run.error,
    })
}

async fn queue_run(State(s): State<ApiState>, body: Option<Json<Value>>) -> ApiResult {
    let Some(Json(body)) = body else {
        return Err(ApiError::bad_request(
            "send a JSON body such as {\"kind\": \"incremental\"} with Content-Type: application/json",
        ));
    };
    let run: ManualRun = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "not a run request ({e}); expected {{\"kind\": \"full\"|\"incremental\"|\"dry_run\"|\"pilot\", \
             \"model\"?, \"filter\"?, \"sample\"?}}"
        ))
    })?;
    if let Some(problem) = run.problem() {
        return Err(ApiError::bad_request(problem));
    }
    let position = s.runs.push(run.clone())?;
    tracing::info!(kind = %run.kind, position, "manual run queued through the admin API");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "queued": run, "position": position })),
    )
        .into_response())
}

async fn get_run(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{id}' is not a run id (a number)")))?;
    let Some(run) = s.store.run(RunId(id)).await? else {
        return Err(ApiError::not_found(format!("no run {id}")));
    };
    let mut body = run_json(&run);
    let progress = s.store.work_progress(run.id).await?;
    body["work"] = serde_json::to_value(progress).unwrap_or(Value::Null);
    Ok(Json(body).into_response())
}

async fn schedule(State(s): State<ApiState>) -> ApiResult {
    Ok(Json(json!({
        "role": if s.runs.is_leading() { "leader" } else { "standby" },
        "next_scheduled": schedule_json(s.runs.next()),
    }))
    .into_response())
}

async fn get_account(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    match account_detail(&s, &id).await? {
        Some(body) => Ok(Json(body).into_response()),
        None => Err(ApiError::not_found(format!("no account '{id}' in the store"))),
    }
}

/// One account as the API and the dashboard show it: facts with sources and ages, score
/// breakdown, tier history, signals, what was pushed, a pending push, the lock.
pub(crate) async fn account_detail(s: &ApiState, id: &str) -> Result<Option<Value>, ApiError> {
    let id = id.to_string();
    let Some(account) = s.store.account(&id).await? else {
        return Ok(None);
    };
    let history = s.store.tier_history(&id, 50).await?;
    let signals = s.store.signals(&id).await?;
    let pending = s
        .store
        .pending_pushes(true)
        .await?
        .into_iter()
        .find(|p| p.account == id);
    let now = Timestamp::now();
    let age = |t: Timestamp| (now.millis() - t.millis()).max(0) / 1000;
    let history: Vec<Value> = history
        .iter()
        .map(|h| {
            json!({
                "run": h.run, "at": rfc3339(h.at), "from": h.from.map(Tier::as_str), "to": h.to.as_str(),
                "score": h.score, "reason": h.reason, "model_version": h.model_version,
            })
        })
        .collect();
    let pending = pending.map(|p| {
        json!({
            "tier": p.tier.as_str(), "score_bucket": p.score_bucket, "reason": p.reason,
            "attempts": p.attempts, "last_error": p.last_error, "permanent": p.permanent,
            "next_attempt_at": rfc3339(p.next_attempt_at), "first_failed_at": rfc3339(p.first_failed_at),
        })
    });
    Ok(Some(json!({
        "id": account.id,
        "name": account.name,
        "domain": account.domain,
        "score": account.score,
        "coverage": account.coverage,
        "potential_value": account.potential_value,
        "tier": account.tier.as_str(),
        "locked": account.locked,
        "model_version": account.model_version,
        "scored_at": rfc3339(account.scored_at),
        "scored_age_seconds": age(account.scored_at),
        "facts": facts_json(&s.schema, &account.facts, fact_as_of(&account.explanation, now)),
        "explanation": account.explanation,
        "pushed": account.pushed.map(|p| json!({
            "tier": p.tier.as_str(), "score_bucket": p.score_bucket, "reason": p.reason, "at": rfc3339(p.at),
        })),
        "crm_tier_seen": account.crm_tier_seen.map(Tier::as_str),
        "pending_push": pending,
        "tier_history": history,
        "signals": signals,
    })))
}

/// The date an account's facts were scored as of (stored with its explanation), else today.
fn fact_as_of(explanation: &Value, now: Timestamp) -> tierd_core::Date {
    explanation["as_of"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| tierd_core::Date::from_unix_seconds(now.millis().div_euclid(1000)))
}

/// Stored facts as the API shows them, read through the one codec (`tierd_core::codec`): each
/// with its value, source, when it was observed and its age on the scoring date (`age_days`),
/// whether it is a failed plugin's previous answer (`stale`), and the value it replaced.
fn facts_json(schema: &tierd_core::FactSchema, stored: &Value, as_of: tierd_core::Date) -> Value {
    use tierd_core::codec;
    let fact = |f: &tierd_core::fact::Fact| {
        let mut out = json!({ "value": codec::value_to_json(&f.value), "source": f.source });
        if let Some(observed) = f.observed_at {
            out["observed_at"] = json!(observed.to_string());
            out["age_days"] = json!(observed.days_until(as_of));
        }
        out
    };
    let (facts, problems) = codec::decode(schema, stored);
    let mut out = serde_json::Map::new();
    for (name, s) in &facts {
        let mut entry = fact(&s.fact);
        if s.stale {
            entry["stale"] = json!(true);
        }
        if let Some(replaced) = &s.replaced {
            entry["replaced"] = fact(replaced);
        }
        out.insert(name.as_str().to_string(), entry);
    }
    for p in problems {
        out.insert(p.fact, json!({ "error": p.problem }));
    }
    Value::Object(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TiersQuery {
    tier: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

fn parse_tier(tier: Option<&str>) -> Result<Option<Tier>, ApiError> {
    tier.filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|e| ApiError::bad_request(format!("tier: {e}"))))
        .transpose()
}

fn counts_json(totals: &tierd_store::TierCounts) -> Value {
    json!({
        "counts": Tier::ALL.iter().zip(totals.counts).map(|(t, n)| (t.as_str().to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "total": totals.total,
    })
}

/// Counts per tier (kept by the store, not recomputed) and, with `tier`, a page of that tier's
/// accounts read through the `(tier, id)` index: name, tier, score, coverage and reasons.
async fn tiers(State(s): State<ApiState>, query: Query<TiersQuery>) -> ApiResult {
    let mut body = counts_json(&s.store.tier_totals().await?);
    let Some(tier) = parse_tier(query.tier.as_deref())? else {
        return Ok(Json(body).into_response());
    };
    let page = s
        .store
        .account_page(&tierd_store::AccountQuery {
            tier: Some(tier),
            search: None,
            after: query.after.clone(),
            limit: query.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
        })
        .await?;
    body["tier"] = json!(tier.as_str());
    body["accounts"] = serde_json::to_value(&page.accounts).unwrap_or(Value::Null);
    body["next_after"] = json!(page.next_after);
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsQuery {
    q: Option<String>,
    tier: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

/// Accounts found by id, name or domain prefix, optionally of one tier, paged by cursor.
async fn list_accounts(State(s): State<ApiState>, query: Query<AccountsQuery>) -> ApiResult {
    let page = s
        .store
        .account_page(&tierd_store::AccountQuery {
            tier: parse_tier(query.tier.as_deref())?,
            search: query.q.clone(),
            after: query.after.clone(),
            limit: query.limit.unwrap_or(50).clamp(1, MAX_LIMIT),
        })
        .await?;
    Ok(Json(page).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PyramidQuery {
    runs: Option<u32>,
}

/// The pyramid now and after each recent committed run.
async fn pyramid(State(s): State<ApiState>, query: Query<PyramidQuery>) -> ApiResult {
    let now = s.store.tier_totals().await?;
    let history = s
        .store
        .pyramid_history(query.runs.unwrap_or(30).clamp(1, MAX_LIMIT))
        .await?;
    Ok(Json(json!({ "now": now, "history": history })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MovementsQuery {
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<u32>,
    after: Option<String>,
}

/// The two runs a movements report compares: as asked, else the last two committed runs.
pub(crate) async fn movement_runs(
    store: &Store,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Option<(RunId, RunId)>, ApiError> {
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(ApiError::bad_request(format!(
                "from ({from}) must be an earlier run than to ({to})"
            )));
        }
        return Ok(Some((RunId(from), RunId(to))));
    }
    let last = store.pyramid_history(2).await?;
    Ok(match (last.as_slice(), from, to) {
        ([.., latest], Some(from), None) => Some((RunId(from), latest.run)),
        ([earlier, latest], None, None) => Some((earlier.run, latest.run)),
        ([only], None, None) => Some((RunId(0), only.run)),
        (_, None, Some(to)) => Some((RunId(0), RunId(to))),
        _ => None,
    })
}

/// How tiers moved between two runs (default: the last two committed runs).
async fn movements(State(s): State<ApiState>, query: Query<MovementsQuery>) -> ApiResult {
    let Some((from, to)) = movement_runs(&s.store, query.from, query.to).await? else {
        return Err(ApiError::not_found("no committed run yet"));
    };
    let report = s
        .store
        .movements(
            from,
            to,
            query.after.as_deref(),
            query.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
        )
        .await?;
    Ok(Json(report).into_response())
}

/// What `POST /api/v1/pending-pushes/retry` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Every held rejection.
    #[serde(default)]
    pub all: bool,
    /// These accounts' rejections.
    #[serde(default)]
    pub accounts: Vec<String>,
}

async fn retry_pending(State(s): State<ApiState>, body: Option<Json<RetryRequest>>) -> ApiResult {
    let Some(Json(request)) = body else {
        return Err(ApiError::bad_request(
            "send {\"all\": true} or {\"accounts\": [\"hubspot:1\", ...]} with Content-Type: application/json",
        ));
    };
    let retried = retry(&s.store, &request).await?;
    Ok(Json(json!({ "retried": retried })).into_response())
}

/// Makes the asked rejections due at the next run (the API's and the dashboard's one way).
pub(crate) async fn retry(store: &Store, request: &RetryRequest) -> Result<u64, ApiError> {
    let retried = match (request.all, request.accounts.is_empty()) {
        (true, true) => store.retry_pending(None).await?,
        (false, false) => store.retry_pending(Some(&request.accounts)).await?,
        _ => {
            return Err(ApiError::bad_request(
                "give either all: true or a list of accounts",
            ))
        }
    };
    tracing::info!(retried, "rejected pushes rescheduled for the next run");
    Ok(retried)
}

async fn pending_pushes(State(s): State<ApiState>) -> ApiResult {
    let pending = s.store.pending_pushes(true).await?;
    Ok(Json(json!({ "pending": pending })).into_response())
}

async fn plugins(State(s): State<ApiState>) -> Json<Value> {
    Json(plugins_json(&s))
}

/// The running plugins with their HTTP counters (the API's and the dashboard's).
pub(crate) fn plugins_json(s: &ApiState) -> Value {
    let gauges = s.view.http_gauges();
    let plugins: Vec<Value> = s
        .view
        .plugins()
        .into_iter()
        .map(|p| {
            let http = gauges
                .plugins
                .iter()
                .find(|(name, _)| *name == p.name)
                .map(|(_, c)| {
                    json!({ "requests": c.requests, "errors": c.errors, "refused": c.refused,
                        "latency_seconds_total": c.latency_micros as f64 / 1e6 })
                });
            json!({
                "name": p.name, "version": p.version, "abi": p.abi, "mode": p.mode.as_str(),
                "facts": p.facts, "signals": p.signals, "allowed_hosts": p.allowed_hosts,
                "batch_size": p.batch_size, "http": http,
            })
        })
        .collect();
    json!({ "plugins": plugins })
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests;
