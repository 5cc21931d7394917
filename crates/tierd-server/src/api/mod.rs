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
use axum::routing::get;
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
/// Accounts read per store page while filtering a tier listing.
const SCAN_PAGE: u32 = 1000;
/// Accounts scanned at most per tier-listing request; the answer's `next_after` continues.
const MAX_SCAN: usize = 50_000;
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

    fn snapshot(&self) -> Vec<ManualRun> {
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

    fn next(&self) -> Option<NextRuns> {
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

    fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    fn bad_request(message: impl Into<String>) -> Self {
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
        .route("/api/v1/accounts/{id}", get(get_account))
        .route("/api/v1/tiers", get(tiers))
        .route("/api/v1/pending-pushes", get(pending_pushes))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/reports/funnel", get(funnel_report))
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
    let text = s.metrics.render(&s.view.http_gauges());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunnelParams {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
}

/// The funnel per tier against the untiered baseline (`tierd_outcomes::Funnel` as JSON).
async fn funnel_report(State(s): State<ApiState>, query: Query<FunnelParams>) -> ApiResult {
    let date = |key: &str, v: &Option<String>| -> Result<Option<tierd_core::Date>, ApiError> {
        v.as_deref()
            .map(|d| {
                d.parse()
                    .map_err(|e| ApiError::bad_request(format!("{key}: {e}")))
            })
            .transpose()
    };
    let q = tierd_outcomes::FunnelQuery {
        from: date("from", &query.from)?,
        to: date("to", &query.to)?,
        currency: query.currency.clone(),
        model: "live".into(),
    };
    let funnel = tierd_outcomes::funnel_from_store(&s.store, &q).await?;
    Ok(Json(funnel).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    limit: Option<u32>,
}

fn schedule_json(next: Option<NextRuns>) -> Value {
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

fn run_json(run: &tierd_store::Run) -> Value {
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
    let Some(account) = s.store.account(&id).await? else {
        return Err(ApiError::not_found(format!("no account '{id}' in the store")));
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
    Ok(Json(json!({
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
    }))
    .into_response())
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

async fn tiers(State(s): State<ApiState>, query: Query<TiersQuery>) -> ApiResult {
    let counts = s.store.tier_counts().await?;
    let mut body = json!({
        "counts": Tier::ALL.iter().zip(counts).map(|(t, n)| (t.as_str().to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "total": counts.iter().sum::<u64>(),
    });
    let Some(tier) = &query.tier else {
        return Ok(Json(body).into_response());
    };
    let tier: Tier = tier
        .parse()
        .map_err(|e| ApiError::bad_request(format!("tier: {e}")))?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT) as usize;
    // The store pages accounts by id; the tier filter is applied here with a bound on the rows
    // read per request, and `next_after` tells the client where to continue.
    let mut accounts = Vec::new();
    let mut after = query.after.clone();
    let mut scanned = 0;
    let mut exhausted = false;
    while accounts.len() < limit && scanned < MAX_SCAN {
        let page = s.store.account_summaries(after.as_deref(), SCAN_PAGE).await?;
        if page.is_empty() {
            exhausted = true;
            break;
        }
        for a in page {
            scanned += 1;
            after = Some(a.id.clone());
            if a.tier == tier {
                accounts.push(json!({
                    "id": a.id, "score": a.score, "coverage": a.coverage,
                    "potential_value": a.potential_value, "locked": a.locked,
                    "pushed_tier": a.pushed_tier.map(Tier::as_str),
                }));
                if accounts.len() == limit {
                    break;
                }
            }
        }
    }
    body["tier"] = json!(tier.as_str());
    body["accounts"] = Value::Array(accounts);
    body["next_after"] = if exhausted { Value::Null } else { json!(after) };
    Ok(Json(body).into_response())
}

async fn pending_pushes(State(s): State<ApiState>) -> ApiResult {
    let pending = s.store.pending_pushes(true).await?;
    Ok(Json(json!({ "pending": pending })).into_response())
}

async fn plugins(State(s): State<ApiState>) -> Json<Value> {
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
    Json(json!({ "plugins": plugins }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests;
