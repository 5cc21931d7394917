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

use self::schema::{
    AccountBody, ErrorBody, HistoryEntry, NextScheduled, PendingBody, PendingList, PluginBody, PluginHttp,
    PluginList, PushedBody, Queued, Role, RunBody, RunDetail, RunsPage, ScheduleBody, SignalBody, Status,
};

/// The OpenAPI document of this API, generated from the handlers and their types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "tierd admin API", description = "Every route but /healthz and /readyz needs `Authorization: Bearer <token>`, /api/v1/openapi.json included."),
    paths(healthz, readyz, metrics, list_runs, queue_run, get_run, schedule, list_accounts, get_account, tiers, pyramid, movements, pending_pushes, retry_pending, webhook_deliveries, funnel_report, plugins, openapi),
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
    /// The funnel report's query over every deal for `model`, with the configured comparison
    /// groups (`[outcomes]`); without a configuration, none.
    fn funnel_query(&self, model: &str) -> tierd_outcomes::FunnelQuery {
        tierd_outcomes::FunnelQuery {
            model: model.to_string(),
            ..tierd_outcomes::FunnelQuery::default()
        }
    }
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
        .route("/api/v1/webhooks/deliveries", get(webhook_deliveries))
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
        [(header::CONTENT_TYPE, tierd_engine::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct FunnelParams {
    /// Count deals created on or after this day (YYYY-MM-DD).
    from: Option<String>,
    /// Count deals created on or before this day (YYYY-MM-DD).
    to: Option<String>,
    /// Count amounts in this currency only (ISO 4217); other deals are counted and listed.
    currency: Option<String>,
    /// Whose tiers: `live` (default) or `shadow` (the `[shadow]` model's, never pushed).
    model: Option<String>,
}

/// The funnel per tier against the untiered baseline: a deal counts under the tier its account
/// held on the day it was created. The same figures as `tierd report funnel --format json`.
#[utoipa::path(get, path = "/api/v1/reports/funnel", params(FunnelParams), responses(
    (status = 200, description = "`rows` (tier_1, tier_2, tier_3, untiered: accounts, conversion, deals, win_rate, won amounts, days to close, pipeline, velocity and each figure's lift with its interval), `not_in_target_list` (the same figures for the accounts off the CRM's target list, with `fact`, `accounts_on_list` and `accounts_without_fact`; null unless `[outcomes] target_list_fact` is set), `deals_in_period`, `deals_before_tiering`, `issue_counts`, `issues`", body = Object),
    (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody),
))]
async fn funnel_report(State(s): State<ApiState>, query: Query<FunnelParams>) -> ApiResult {
    let date = |key: &str, v: &Option<String>| -> Result<Option<tierd_core::Date>, ApiError> {
        v.as_deref()
            .map(|d| {
                d.parse()
                    .map_err(|e| ApiError::bad_request(format!("{key}: {e}")))
            })
            .transpose()
    };
    let model = match query.model.as_deref() {
        None | Some("live") => "live",
        Some("shadow") => "shadow",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "model: '{other}' (expected live or shadow)"
            )))
        }
    };
    let q = tierd_outcomes::FunnelQuery {
        from: date("from", &query.from)?,
        to: date("to", &query.to)?,
        currency: query.currency.clone(),
        ..s.view.funnel_query(model)
    };
    let funnel = tierd_outcomes::funnel_from_store(&s.store, &q).await?;
    Ok(Json(funnel).into_response())
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
    let facts = facts_json(&s.schema, &account.facts, fact_as_of(&account.explanation, now));
    let body = AccountBody {
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
    };
    Ok(Some(serde_json::to_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render account {id}: {e}"),
        )
    })?))
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
#[utoipa::path(get, path = "/api/v1/tiers", params(TiersQuery), responses(
    (status = 200, description = "`counts`, `total`; with `tier`: `tier`, `accounts` and `next_after`", body = Object),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct AccountsQuery {
    /// An account id, or the start of a name or domain.
    q: Option<String>,
    /// Only this tier.
    tier: Option<String>,
    /// Accounts per page (1..=1000, default 50).
    limit: Option<u32>,
    /// Continue after this cursor (the previous page's `next_after`).
    after: Option<String>,
}

/// Accounts found by id, name or domain prefix, optionally of one tier, paged by cursor.
#[utoipa::path(get, path = "/api/v1/accounts", params(AccountsQuery), responses(
    (status = 200, description = "`accounts` and `next_after`", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct PyramidQuery {
    /// How many recent runs (default 30).
    runs: Option<u32>,
}

/// The pyramid now and after each recent committed run.
#[utoipa::path(get, path = "/api/v1/pyramid", params(PyramidQuery), responses(
    (status = 200, description = "`now` and `history`", body = Object), (status = 401, body = ErrorBody),
))]
async fn pyramid(State(s): State<ApiState>, query: Query<PyramidQuery>) -> ApiResult {
    let now = s.store.tier_totals().await?;
    let history = s
        .store
        .pyramid_history(query.runs.unwrap_or(30).clamp(1, MAX_LIMIT))
        .await?;
    Ok(Json(json!({ "now": now, "history": history })).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct MovementsQuery {
    /// The earlier run (default: the one before `to`).
    from: Option<i64>,
    /// The later run (default: the last committed run).
    to: Option<i64>,
    /// Moves per page (1..=1000, default 100).
    limit: Option<u32>,
    /// Continue after this account id.
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
#[utoipa::path(get, path = "/api/v1/movements", params(MovementsQuery), responses(
    (status = 200, description = "The matrix and a page of moves with their reasons", body = Object),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Every held rejection.
    #[serde(default)]
    pub all: bool,
    /// These accounts' rejections.
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// Makes held rejections due at the next run: `{"all": true}` or `{"accounts": [...]}`.
#[utoipa::path(post, path = "/api/v1/pending-pushes/retry", request_body = RetryRequest, responses(
    (status = 200, description = "`retried`: how many", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
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
async fn plugins(State(s): State<ApiState>) -> Json<Value> {
    Json(plugins_json(&s))
}

/// The running plugins with their HTTP counters (the API's and the dashboard's).
pub(crate) fn plugins_json(s: &ApiState) -> Value {
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
    serde_json::to_value(PluginList { plugins }).unwrap_or(Value::Null)
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
