//! The dashboard: server-rendered HTML pages over the same store reports and API helpers as
//! `/api/v1`, served at `/` of the admin API's address.
//!
//! Pages: the pyramid now and per run, movements between two runs, runs and schedule health,
//! rejected pushes with a retry action, accounts (search, tier filter, paged) and one account,
//! plugins. Each page is a handler that reads one report (`tierd_store::reports`, or the API's
//! `account_detail`, `run_json`, `plugins_json`) and renders a minijinja template; nothing here
//! computes a figure the API does not. A new report page (the funnel, the budget) is one entry
//! in [`NAV`], one handler and one template.
//!
//! Security: every page but the sign-in form needs a session (see `session.rs`): an
//! unauthenticated request gets the sign-in page, never data. Actions are POST forms carrying the
//! session's CSRF token and are refused from another origin. Every answer carries a CSP without
//! inline scripts or styles and `frame-ancestors 'none'`. Templates, styles and the one small
//! script (times in the viewer's zone) are compiled into the binary; pages work without it.
//! Must not know how the daemon runs: it sees what the API sees ([`ApiState`]).

pub mod session;
pub mod svg;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use minijinja::{Environment, Value as Tmpl};
use serde::Deserialize;
use serde_json::{json, Value};
use tierd_core::Tier;
use tierd_store::{AccountQuery, Timestamp};

use crate::api::auth::Token;
use crate::api::{self, ApiError, ApiState};
use crate::schedule::rfc3339;
use session::{Session, Sessions};

/// The pages in the navigation, in order: `(id, label, path)`. Reports still to come (the funnel
/// per tier, the budget per tier) are added here with their handler and template.
pub const NAV: &[(&str, &str, &str)] = &[
    ("pyramid", "Pyramid", "/"),
    ("movements", "Movements", "/movements"),
    ("runs", "Runs", "/runs"),
    ("pending", "Rejected pushes", "/pending"),
    ("accounts", "Accounts", "/accounts"),
    ("plugins", "Plugins", "/plugins"),
];

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("pyramid.html", include_str!("templates/pyramid.html")),
    ("movements.html", include_str!("templates/movements.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("pending.html", include_str!("templates/pending.html")),
    ("accounts.html", include_str!("templates/accounts.html")),
    ("account.html", include_str!("templates/account.html")),
    ("plugins.html", include_str!("templates/plugins.html")),
    ("error.html", include_str!("templates/error.html")),
];
const STYLE: &str = include_str!("assets/style.css");
const TIME_JS: &str = include_str!("assets/time.js");
const ICON: &str = include_str!("assets/icon.svg");

/// Rows per accounts page.
const ACCOUNTS_PER_PAGE: u32 = 50;
/// Rejected records listed on their page at most (the summary counts them all).
const PENDING_SHOWN: usize = 500;
/// Runs shown on the runs page and offered for comparison.
const RUNS_SHOWN: u32 = 50;

/// The policy every answer carries: own assets only, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the pages share.
pub struct Dashboard {
    api: ApiState,
    token: Token,
    sessions: Sessions,
    env: Environment<'static>,
}

fn time_html(rfc: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Utc);
            format!(
                "<time datetime=\"{}\" title=\"{} UTC\">{} UTC</time>",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                t.format("%Y-%m-%d %H:%M:%S"),
                t.format("%Y-%m-%d %H:%M")
            )
        }
        Err(_) => minijinja::HtmlEscape(rfc).to_string(),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // The templates are compiled in and tested: this is a build defect.
            panic!("dashboard template {name}: {e}");
        }
    }
    env.add_filter("num", |v: Tmpl| -> String {
        match v.as_i64() {
            Some(n) if n >= 0 => svg::thousands(n as u64),
            Some(n) => format!("-{}", svg::thousands(n.unsigned_abs())),
            None => v.to_string(),
        }
    });
    env.add_filter("score", |v: f64| format!("{v:.2}"));
    env.add_filter("time", |ms: i64| {
        Tmpl::from_safe_string(time_html(&rfc3339(Timestamp::from_millis(ms))))
    });
    env.add_filter("rfc", |v: Tmpl| match v.as_str() {
        Some(s) => Tmpl::from_safe_string(time_html(s)),
        None => Tmpl::from(""),
    });
    env
}

/// The dashboard's routes, to merge with the API's router.
pub fn router(state: ApiState, token: Token) -> Router {
    let d = Arc::new(Dashboard {
        api: state,
        token,
        sessions: Sessions::default(),
        env: environment(),
    });
    let pages = Router::new()
        .route("/", get(pyramid_page))
        .route("/movements", get(movements_page))
        .route("/runs", get(runs_page))
        .route("/pending", get(pending_page))
        .route("/pending/retry", post(retry_action))
        .route("/accounts", get(accounts_page))
        .route("/accounts/{id}", get(account_page))
        .route("/plugins", get(plugins_page))
        .route("/logout", post(logout))
        .route_layer(axum::middleware::from_fn_with_state(d.clone(), require_session));
    Router::new()
        .route("/login", get(login_form).post(login))
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/assets/time.js",
            get(|| async { asset("text/javascript; charset=utf-8", TIME_JS) }),
        )
        .route("/assets/icon.svg", get(|| async { asset("image/svg+xml", ICON) }))
        .merge(pages)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(d)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether the browser reached us over TLS (through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

impl Dashboard {
    fn session_of(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let cookie = headers.get(header::COOKIE)?.to_str().ok()?;
        let id = session::cookie_value(cookie)?;
        self.sessions.get(id).map(|s| (id.to_string(), s))
    }

    /// Renders `template` for page `id` with the shared fields (navigation, CSRF token) added.
    fn render(
        &self,
        template: &str,
        id: &str,
        title: &str,
        session: Option<&Session>,
        mut ctx: Value,
    ) -> Response {
        let nav: Vec<Value> = match session {
            Some(_) => NAV
                .iter()
                .map(|(id, label, href)| json!({"id": id, "label": label, "href": href}))
                .collect(),
            None => Vec::new(),
        };
        ctx["nav"] = json!(nav);
        ctx["page"] = json!(id);
        ctx["title"] = json!(title);
        ctx["csrf"] = json!(session.map(|s| s.csrf.clone()));
        match self
            .env
            .get_template(template)
            .and_then(|t| t.render(Tmpl::from_serialize(&ctx)))
        {
            Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template, "dashboard: cannot render a page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered; see the log",
                )
                    .into_response()
            }
        }
    }

    fn login_page(&self, next: &str, error: Option<&str>, status: StatusCode) -> Response {
        let mut r = self.render(
            "login.html",
            "login",
            "Sign in to tierd",
            None,
            json!({"next": next, "error": error}),
        );
        *r.status_mut() = status;
        r
    }

    fn error_page(&self, session: &Session, e: ApiError) -> Response {
        let (status, message) = e.parts();
        let mut r = self.render(
            "error.html",
            "error",
            "Something went wrong",
            Some(session),
            json!({"message": message}),
        );
        *r.status_mut() = status;
        r
    }
}

/// Middleware: a page needs a session; without one the answer is the sign-in form.
async fn require_session(State(d): State<Arc<Dashboard>>, mut request: Request, next: Next) -> Response {
    match d.session_of(request.headers()) {
        Some((_, s)) => {
            request.extensions_mut().insert(s);
            next.run(request).await
        }
        None => {
            let next_path = match request.method() {
                &axum::http::Method::GET => request
                    .uri()
                    .path_and_query()
                    .map_or("/".to_string(), |p| p.to_string()),
                _ => "/".to_string(),
            };
            d.login_page(&next_path, None, StatusCode::OK)
        }
    }
}

/// Refuses a form sent from another origin or without this session's CSRF token.
fn check_action(headers: &HeaderMap, session: &Session, csrf: &str) -> Result<(), ApiError> {
    if let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        let origin = origin.to_str().unwrap_or("");
        let host = host.to_str().unwrap_or("");
        let same = origin.split_once("://").is_some_and(|(_, rest)| rest == host);
        if !same {
            return Err(ApiError::forbidden("this form was sent from another site"));
        }
    }
    if !Sessions::csrf_ok(session, csrf) {
        return Err(ApiError::forbidden(
            "the form's CSRF token is missing or stale: reload the page",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only a path of this site: never an absolute or protocol-relative URL (an open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

async fn login_form(State(d): State<Arc<Dashboard>>, headers: HeaderMap, q: Query<NextQuery>) -> Response {
    if d.session_of(&headers).is_some() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    d.login_page(&safe_next(q.next.as_deref()), None, StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login(State(d): State<Arc<Dashboard>>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    if !d.token.matches(form.token.trim().as_bytes()) {
        tracing::warn!("dashboard: sign-in with a wrong token");
        return d.login_page(
            &next,
            Some("That is not the admin token."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let id = match d.sessions.start() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: no randomness for a session id");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot start a session").into_response();
        }
    };
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, over_tls(&headers))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(d): State<Arc<Dashboard>>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(e) = check_action(&headers, &s, &form.csrf) {
        return d.error_page(&s, e);
    }
    if let Some((id, _)) = d.session_of(&headers) {
        d.sessions.end(&id);
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(over_tls(&headers))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn tier_label(i: usize) -> &'static str {
    svg::TIER_LABELS[i]
}

fn tiers_ctx() -> Vec<Value> {
    Tier::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": t.as_str(), "label": tier_label(i)}))
        .collect()
}

async fn pyramid_page(State(d): State<Arc<Dashboard>>, Extension(s): Extension<Session>) -> Response {
    let store = &d.api.store;
    let result: Result<Value, ApiError> = async {
        let now = store.tier_totals().await?;
        let history = store.pyramid_history(30).await?;
        let tiers: Vec<Value> = Tier::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let share = match now.total {
                    0 => "–".to_string(),
                    total => format!("{:.1}%", now.counts[i] as f64 * 100.0 / total as f64),
                };
                json!({"id": t.as_str(), "label": tier_label(i), "count": now.counts[i], "share": share})
            })
            .collect();
        let points: Vec<(String, [u64; 4])> = history
            .iter()
            .map(|p| (format!("#{}", p.run), p.counts))
            .collect();
        // A line needs two runs; the table below shows the first one alone.
        let history_svg = if points.len() >= 2 {
            svg::history(&points)
        } else {
            String::new()
        };
        Ok(json!({
            "total": now.total,
            "tiers": tiers,
            "pyramid_svg": svg::pyramid(now.counts),
            "history": history,
            "history_svg": history_svg,
        }))
    }
    .await;
    match result {
        Ok(ctx) => d.render("pyramid.html", "pyramid", "Pyramid", Some(&s), ctx),
        Err(e) => d.error_page(&s, e),
    }
}

#[derive(Deserialize)]
struct MovementsQuery {
    from: Option<i64>,
    to: Option<i64>,
    after: Option<String>,
}

async fn movements_page(
    State(d): State<Arc<Dashboard>>,
    Extension(s): Extension<Session>,
    q: Query<MovementsQuery>,
) -> Response {
    let store = &d.api.store;
    let result: Result<Value, ApiError> = async {
        let mut runs = store.pyramid_history(RUNS_SHOWN).await?;
        runs.reverse();
        let runs: Vec<Value> = runs.iter().map(|p| json!({"id": p.run, "kind": p.kind})).collect();
        let Some((from, to)) = api::movement_runs(store, q.from, q.to).await? else {
            return Ok(json!({"runs": runs, "report": null}));
        };
        let report = store.movements(from, to, q.after.as_deref(), 100).await?;
        let labels: Vec<&str> = (0..4).map(tier_label).collect();
        let matrix: Vec<Value> = report
            .matrix
            .iter()
            .enumerate()
            .map(|(i, row)| json!({"label": if i < 4 { tier_label(i) } else { "New" }, "cells": row}))
            .collect();
        Ok(json!({"runs": runs, "from_run": from, "to_run": to, "report": report, "labels": labels, "matrix": matrix}))
    }
    .await;
    match result {
        Ok(ctx) => d.render(
            "movements.html",
            "movements",
            "Movements between runs",
            Some(&s),
            ctx,
        ),
        Err(e) => d.error_page(&s, e),
    }
}

fn duration_text(ms: i64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = secs.round() as i64;
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

async fn runs_page(State(d): State<Arc<Dashboard>>, Extension(s): Extension<Session>) -> Response {
    let result: Result<Value, ApiError> = async {
        let runs = d.api.store.runs(RUNS_SHOWN).await?;
        let now = Timestamp::now();
        let rows: Vec<Value> = runs
            .iter()
            .map(|r| {
                let stats = r.stats.clone().unwrap_or(Value::Null);
                json!({
                    "id": r.id, "kind": r.kind, "status": r.status, "owner": r.owner,
                    "started_at": r.started_at.millis(),
                    "duration": duration_text(r.finished_at.unwrap_or(now).millis() - r.started_at.millis()),
                    "accounts": stats["accounts"].as_u64().unwrap_or(0),
                    "pushed": stats["pushed"].as_u64().unwrap_or(0),
                    "rejected": stats["rejected"].as_u64().unwrap_or(0),
                    "error": r.error,
                })
            })
            .collect();
        let next = d.api.runs.next();
        let job = |kind: &str, next: Option<Timestamp>| {
            let last = rows.iter().find(|r| r["kind"] == kind).cloned();
            json!({
                "kind": kind, "last": last, "next": next.map(|t| t.millis()),
                "due": next.is_some_and(|t| t <= now),
            })
        };
        let jobs = vec![
            job("full", next.and_then(|n| n.full)),
            job("incremental", next.and_then(|n| n.incremental)),
        ];
        Ok(json!({
            "role": if d.api.runs.is_leading() { "leader" } else { "standby" },
            "jobs": jobs,
            "queued": d.api.runs.snapshot(),
            "runs": rows,
        }))
    }
    .await;
    match result {
        Ok(ctx) => d.render("runs.html", "runs", "Runs and schedule", Some(&s), ctx),
        Err(e) => d.error_page(&s, e),
    }
}

#[derive(Deserialize)]
struct NoticeQuery {
    retried: Option<u64>,
}

async fn pending_page(
    State(d): State<Arc<Dashboard>>,
    Extension(s): Extension<Session>,
    q: Query<NoticeQuery>,
) -> Response {
    let store = &d.api.store;
    let result: Result<Value, ApiError> = async {
        let groups = store.rejection_summary().await?;
        let now = Timestamp::now();
        let pending: Vec<Value> = store
            .pending_pushes(true)
            .await?
            .into_iter()
            .take(PENDING_SHOWN)
            .map(|p| {
                json!({
                    "account": p.account, "tier": p.tier.as_str(),
                    "state": if p.permanent { "permanent" } else { "pending" },
                    "permanent": p.permanent, "attempts": p.attempts, "last_error": p.last_error,
                    "first_failed_at": p.first_failed_at.millis(), "next_attempt_at": p.next_attempt_at.millis(),
                    "due": !p.permanent && p.next_attempt_at <= now,
                })
            })
            .collect();
        let notice = q
            .retried
            .map(|n| format!("{} rejected pushes will be retried at the next run.", svg::thousands(n)));
        Ok(json!({"groups": groups, "pending": pending, "notice": notice}))
    }
    .await;
    match result {
        Ok(ctx) => d.render("pending.html", "pending", "Rejected pushes", Some(&s), ctx),
        Err(e) => d.error_page(&s, e),
    }
}

#[derive(Deserialize)]
struct RetryForm {
    csrf: String,
    #[serde(default)]
    all: Option<String>,
    #[serde(default)]
    account: Option<String>,
}

async fn retry_action(
    State(d): State<Arc<Dashboard>>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<RetryForm>,
) -> Response {
    if let Err(e) = check_action(&headers, &s, &form.csrf) {
        return d.error_page(&s, e);
    }
    let request = api::RetryRequest {
        all: form.all.as_deref() == Some("true"),
        accounts: form.account.into_iter().collect(),
    };
    match api::retry(&d.api.store, &request).await {
        // Post/redirect/get: a reload does not send the form again.
        Ok(n) => Redirect::to(&format!("/pending?retried={n}")).into_response(),
        Err(e) => d.error_page(&s, e),
    }
}

#[derive(Deserialize)]
struct AccountsQuery {
    q: Option<String>,
    tier: Option<String>,
    after: Option<String>,
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    out
}

async fn accounts_page(
    State(d): State<Arc<Dashboard>>,
    Extension(s): Extension<Session>,
    q: Query<AccountsQuery>,
) -> Response {
    let result: Result<Value, ApiError> = async {
        let tier: Option<Tier> = match q.tier.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => Some(
                t.parse()
                    .map_err(|e| ApiError::bad_request(format!("tier: {e}")))?,
            ),
            None => None,
        };
        let search = q.q.clone().unwrap_or_default();
        let page = d
            .api
            .store
            .account_page(&AccountQuery {
                tier,
                search: Some(search.clone()),
                after: q.after.clone(),
                limit: ACCOUNTS_PER_PAGE,
            })
            .await?;
        let accounts: Vec<Value> = page
            .accounts
            .iter()
            .map(|a| {
                let mut reasons: Vec<String> =
                    a.reasons_up.iter().take(2).map(|r| format!("+ {r}")).collect();
                reasons.extend(a.reasons_down.iter().take(1).map(|r| format!("− {r}")));
                json!({
                    "id": a.id, "name": a.name, "domain": a.domain, "tier": a.tier.as_str(),
                    "score": format!("{:.2}", a.score), "coverage": format!("{:.0}%", a.coverage * 100.0),
                    "locked": a.locked, "reasons": reasons.join("; "),
                })
            })
            .collect();
        let tier_id = tier.map_or("", Tier::as_str);
        let next_href = page.next_after.as_deref().map(|after| {
            format!(
                "/accounts{}",
                query_string(&[("q", &search), ("tier", tier_id), ("after", after)])
            )
        });
        Ok(json!({
            "accounts": accounts, "q": search, "tier": tier_id,
            "tier_label": tier.map(|t| tier_label(Tier::ALL.iter().position(|x| *x == t).unwrap_or(3))),
            "tiers": tiers_ctx(), "next_href": next_href,
        }))
    }
    .await;
    match result {
        Ok(ctx) => d.render("accounts.html", "accounts", "Accounts", Some(&s), ctx),
        Err(e) => d.error_page(&s, e),
    }
}

fn fact_value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => "unknown".into(),
        other => other.to_string(),
    }
}

async fn account_page(
    State(d): State<Arc<Dashboard>>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let detail = match api::account_detail(&d.api, &id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return d.error_page(
                &s,
                ApiError::not_found(format!("No account '{id}' in the store.")),
            )
        }
        Err(e) => return d.error_page(&s, e),
    };
    let facts: Vec<Value> = detail["facts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, f)| {
                    json!({
                        "name": name,
                        "value": f.get("error").map_or_else(|| fact_value_text(&f["value"]), |e| format!("unreadable: {}", fact_value_text(e))),
                        "source": f["source"].as_str().unwrap_or(""),
                        "observed": f["observed_at"].as_str().unwrap_or(""),
                        "age": f["age_days"].as_i64().map_or(String::new(), |d| d.to_string()),
                        "stale": f["stale"].as_bool().unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    // The engine stores the model's explanation under `detail`, beside the one-line reasons.
    let explanation = detail["explanation"]
        .get("detail")
        .unwrap_or(&detail["explanation"]);
    let texts = |key: &str| -> Vec<String> {
        explanation[key]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|r| r["text"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let criteria: Vec<Value> = explanation["criteria"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|c| {
                    let num = |k: &str| c[k].as_f64().map(|v| format!("{v:.2}"));
                    json!({
                        "criterion": c["criterion"], "component": c["component"], "value": c["value"],
                        "points": num("points"), "share": c["share"].as_f64().map(|v| format!("{:.0}%", v * 100.0)),
                        "contribution": num("contribution"), "reason": c["reason"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let score = detail["score"]
        .as_f64()
        .map_or(String::new(), |v| format!("{v:.2}"));
    let coverage = detail["coverage"]
        .as_f64()
        .map_or(String::new(), |c| format!("{:.0}%", c * 100.0));
    let title = detail["name"].as_str().unwrap_or(&id).to_string();
    d.render(
        "account.html",
        "accounts",
        &title,
        Some(&s),
        json!({
            "a": detail, "facts": facts, "up": texts("positive"), "down": texts("negative"),
            "criteria": criteria, "coverage": coverage, "score": score,
        }),
    )
}

async fn plugins_page(State(d): State<Arc<Dashboard>>, Extension(s): Extension<Session>) -> Response {
    let listed = api::plugins_json(&d.api);
    let calls = d.api.metrics.plugin_calls();
    let plugins: Vec<Value> = listed["plugins"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or("");
                    let (ok, failed, secs) = calls
                        .iter()
                        .find(|(n, ..)| n == name)
                        .map_or((0, 0, 0.0), |(_, ok, failed, secs)| (*ok, *failed, *secs));
                    let total = ok + failed;
                    json!({
                        "name": name, "version": p["version"], "mode": p["mode"],
                        "facts": p["facts"].as_array().map_or(0, Vec::len),
                        "calls": total, "failures": failed,
                        "mean_ms": if total == 0 { "–".to_string() } else { format!("{:.1}", secs * 1000.0 / total as f64) },
                        "requests": p["http"]["requests"].as_u64().unwrap_or(0),
                        "errors": p["http"]["errors"].as_u64().unwrap_or(0),
                        "refused": p["http"]["refused"].as_u64().unwrap_or(0),
                        "hosts": p["allowed_hosts"].as_array().map_or(String::new(), |h| {
                            h.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                        }),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    d.render(
        "plugins.html",
        "plugins",
        "Plugins",
        Some(&s),
        json!({"plugins": plugins}),
    )
}

#[cfg(test)]
mod tests;
