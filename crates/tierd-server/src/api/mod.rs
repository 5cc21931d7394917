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
pub mod schema;

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

use self::schema::{
    AccountBody, ErrorBody, HistoryEntry, NextScheduled, PendingBody, PendingList, PluginBody, PluginHttp,
    PluginList, PushedBody, Queued, Role, RunBody, RunDetail, RunsPage, ScheduleBody, SignalBody, Status,
};

/// The OpenAPI document of this API, generated from the handlers and their types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "tierd admin API", description = "Every route but /healthz and /readyz needs `Authorization: Bearer <token>`, /api/v1/openapi.json included."),
    paths(healthz, readyz, metrics, list_runs, queue_run, get_run, schedule, get_account, tiers, pending_pushes, webhook_deliveries, plugins, openapi),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// The bearer token scheme, required on every route but the health checks.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            if path == "/healthz" || path == "/readyz" {
                continue;
            }
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                op.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
            }
        }
    }
}

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
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualRun {
    /// `full`, `incremental`, `dry_run` or `pilot`.
    #[schema(value_type = String)]
    pub kind: RunKind,
    /// Pilot only: a candidate model file on the server (default: the live model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
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
        .route("/api/v1/webhooks/deliveries", get(webhook_deliveries))
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

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok".into() })
}

/// Readiness: the store answers and the CRM has tierd's fields (checked at most once a minute).
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, body = Status),
    (status = 503, description = "Not ready, with the reason", body = ErrorBody),
))]
async fn readyz(State(s): State<ApiState>) -> ApiResult {
    match s.view.ready().await {
        Ok(()) => Ok(Json(Status {
            status: "ready".into(),
        })
        .into_response()),
        Err(reason) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason)),
    }
}

/// The counters in OpenMetrics text: runs, tiers, pushes, errors, plugins, HTTP.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, content_type = "application/openmetrics-text", body = String),
    (status = 401, body = ErrorBody),
))]
async fn metrics(State(s): State<ApiState>) -> Response {
    let mut extra = s.view.http_gauges();
    extra.webhook_deliveries = match s.store.webhook_delivery_counts().await {
        Ok(counts) => Some(counts),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count webhook deliveries for /metrics");
            None
        }
    };
    let text = s.metrics.render(&extra);
    (
        [(header::CONTENT_TYPE, tierd_engine::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    /// How many runs, newest first (1..=1000, default 20).
    limit: Option<u32>,
}

/// Recent runs, queued manual runs, this instance's role and the next scheduled times.
#[utoipa::path(get, path = "/api/v1/runs", params(RunsQuery), responses(
    (status = 200, body = RunsPage), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
))]
async fn list_runs(State(s): State<ApiState>, query: Query<RunsQuery>) -> ApiResult {
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
    let runs = s.store.runs(limit).await?;
    Ok(Json(RunsPage {
        instance: s.instance.clone(),
        role: Role::of(s.runs.is_leading()),
        next_scheduled: NextScheduled::of(s.runs.next()),
        queued: s.runs.snapshot(),
        runs: runs.iter().map(RunBody::from).collect(),
    })
    .into_response())
}

/// Queue a manual run; the leader starts it once no run is in flight.
#[utoipa::path(post, path = "/api/v1/runs", request_body = ManualRun, responses(
    (status = 202, body = Queued),
    (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody),
    (status = 409, description = "This instance is a standby", body = ErrorBody),
    (status = 429, description = "Too many runs queued", body = ErrorBody),
))]
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
        Json(Queued {
            queued: run,
            position,
        }),
    )
        .into_response())
}

/// One run with its statistics and its work items by state.
#[utoipa::path(get, path = "/api/v1/runs/{id}", params(("id" = i64, Path, description = "The run's id")), responses(
    (status = 200, body = RunDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody),
))]
async fn get_run(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{id}' is not a run id (a number)")))?;
    let Some(run) = s.store.run(RunId(id)).await? else {
        return Err(ApiError::not_found(format!("no run {id}")));
    };
    let work = s.store.work_progress(run.id).await?.into();
    Ok(Json(RunDetail {
        run: RunBody::from(&run),
        work,
    })
    .into_response())
}

/// This instance's role and when each scheduled job runs next.
#[utoipa::path(get, path = "/api/v1/schedule", responses((status = 200, body = ScheduleBody), (status = 401, body = ErrorBody)))]
async fn schedule(State(s): State<ApiState>) -> ApiResult {
    Ok(Json(ScheduleBody {
        role: Role::of(s.runs.is_leading()),
        next_scheduled: NextScheduled::of(s.runs.next()),
    })
    .into_response())
}

/// One account: its facts with their ages, score breakdown, tier history, signals and pending push.
#[utoipa::path(get, path = "/api/v1/accounts/{id}", params(("id" = String, Path, description = "The account's id, `hubspot:123`")), responses(
    (status = 200, body = AccountBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
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
    let facts = facts_json(&s.schema, &account.facts, fact_as_of(&account.explanation, now));
    Ok(Json(AccountBody {
        scored_at: rfc3339(account.scored_at),
        scored_age_seconds: (now.millis() - account.scored_at.millis()).max(0) / 1000,
        tier: account.tier.as_str().to_string(),
        pushed: account.pushed.map(|p| PushedBody {
            tier: p.tier.as_str().to_string(),
            score_bucket: p.score_bucket,
            reason: p.reason,
            at: rfc3339(p.at),
        }),
        crm_tier_seen: account.crm_tier_seen.map(|t| t.as_str().to_string()),
        pending_push: pending.as_ref().map(PendingBody::from),
        tier_history: history.iter().map(HistoryEntry::from).collect(),
        signals: signals.iter().map(SignalBody::from).collect(),
        facts,
        id: account.id,
        name: account.name,
        domain: account.domain,
        score: account.score,
        coverage: account.coverage,
        potential_value: account.potential_value,
        locked: account.locked,
        model_version: account.model_version,
        explanation: account.explanation,
    })
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct TiersQuery {
    /// List the accounts of this tier (`tier_1`, `tier_2`, `tier_3`, `untiered`).
    tier: Option<String>,
    /// Accounts per page (1..=1000, default 100).
    limit: Option<u32>,
    /// Continue after this account id (the previous page's `next_after`).
    after: Option<String>,
}

/// Accounts per tier; with `tier`, that tier's accounts, paged.
#[utoipa::path(get, path = "/api/v1/tiers", params(TiersQuery), responses(
    (status = 200, description = "`counts`, `total`; with `tier`: `accounts` and `next_after`", body = Object),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    /// Only this endpoint's deliveries (its `[[webhooks]]` name).
    endpoint: Option<String>,
    /// Deliveries older than this id (the previous page's `next_before`).
    before: Option<i64>,
    /// Deliveries per page (1..=1000, default 50).
    limit: Option<u32>,
}

/// The webhook delivery log, newest first, with each delivery's attempts, the endpoints switched
/// off and the counts per state. Of an endpoint only its name is shown, never its URL or secret.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", params(DeliveriesQuery), responses(
    (status = 200, description = "`deliveries` (each with its `attempt_log`), `next_before`, `disabled`, `counts`", body = Object),
    (status = 401, body = ErrorBody),
))]
async fn webhook_deliveries(State(s): State<ApiState>, query: Query<DeliveriesQuery>) -> ApiResult {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let deliveries = s
        .store
        .webhook_deliveries(
            query.endpoint.as_deref(),
            query.before.map(tierd_store::DeliveryId),
            limit,
        )
        .await?;
    let mut out = Vec::with_capacity(deliveries.len());
    for d in &deliveries {
        let attempts = s.store.webhook_attempts(d.id).await?;
        let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
        v["attempt_log"] = serde_json::to_value(attempts).unwrap_or(Value::Null);
        out.push(v);
    }
    let next_before = (deliveries.len() as u32 == limit)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(Json(json!({
        "deliveries": out,
        "next_before": next_before,
        "disabled": s.store.disabled_webhook_endpoints().await?,
        "counts": s.store.webhook_delivery_counts().await?,
    }))
    .into_response())
}

/// Tier updates the CRM refused or deferred, kept to retry, with the CRM's reason.
#[utoipa::path(get, path = "/api/v1/pending-pushes", responses((status = 200, body = PendingList), (status = 401, body = ErrorBody)))]
async fn pending_pushes(State(s): State<ApiState>) -> ApiResult {
    let pending = s.store.pending_pushes(true).await?;
    Ok(Json(PendingList {
        pending: pending.iter().map(PendingBody::from).collect(),
    })
    .into_response())
}

/// The running plugins, what they declared, and their HTTP counters.
#[utoipa::path(get, path = "/api/v1/plugins", responses((status = 200, body = PluginList), (status = 401, body = ErrorBody)))]
async fn plugins(State(s): State<ApiState>) -> Json<PluginList> {
    let gauges = s.view.http_gauges();
    let plugins = s
        .view
        .plugins()
        .into_iter()
        .map(|p| {
            let http = gauges
                .plugins
                .iter()
                .find(|(name, _)| *name == p.name)
                .map(|(_, c)| PluginHttp {
                    requests: c.requests,
                    errors: c.errors,
                    refused: c.refused,
                    latency_seconds_total: c.latency_micros as f64 / 1e6,
                });
            PluginBody::of(p, http)
        })
        .collect();
    Json(PluginList { plugins })
}

/// This document (OpenAPI 3.1), generated from the handlers and their types.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "The OpenAPI document", body = Object), (status = 401, body = ErrorBody)))]
async fn openapi() -> Response {
    use utoipa::OpenApi as _;
    match ApiDoc::openapi().to_json() {
        Ok(doc) => ([(header::CONTENT_TYPE, "application/json")], doc).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the OpenAPI document: {e}"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests;
