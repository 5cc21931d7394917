//! The dashboard over a real store through the router: sign-in, the session cookie's flags,
//! pages only for sessions, CSRF on actions, and pages showing the store's reports. The same
//! flows run in headless Chromium in `tests/dashboard/`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::json;
use tierd_core::Tier;
use tierd_engine::metrics::{ExtraGauges, Metrics};
use tierd_plugin_host::PluginInfo;
use tierd_store::{BatchCommit, RejectedPush, RunKind, RunStatus, ScoredAccount, Store};
use tower::ServiceExt as _;

use crate::api::{auth, ApiState, DaemonView, RunQueue};

const TOKEN: &str = "dashboard-test-token-0123456789";

struct StandIn;

impl DaemonView for StandIn {
    fn ready(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }
    fn plugins(&self) -> Vec<PluginInfo> {
        Vec::new()
    }
    fn http_gauges(&self) -> ExtraGauges {
        ExtraGauges::default()
    }
}

fn scored(id: &str, name: &str, tier: Tier, score: f64) -> ScoredAccount {
    ScoredAccount {
        id: id.into(),
        name: name.into(),
        domain: Some(format!("{id}.example")),
        facts: json!({"firmographic.industry": {"value": "Software", "source": "crm", "observed_at": "2026-11-20"}}).into(),
        facts_hash: "h".into(),
        score,
        coverage: 0.75,
        potential_value: 0.0,
        tier,
        explanation: json!({"as_of": "2026-11-24", "positive": [{"text": "uses Snowflake", "impact": 0.8}],
            "negative": [{"text": "no demo request", "impact": -0.4}],
            "criteria": [{"criterion": "industry", "component": "fit", "value": "Software", "points": 5.0,
                "share": 0.5, "contribution": 2.5, "reason": "in Software"}]}).into(),
        reason: "fits the ICP".into(),
        model_version: "m@1".into(),
        crm_tier_seen: None,
        locked: false,
    }
}

/// A store with 1,234 accounts (so separators show): 2 in Tier 1, 1 in Tier 2, the rest untiered;
/// one finished run; one permanently rejected push.
async fn app() -> (Router, Store) {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    let run = store.begin_run(RunKind::Full, "m@1", "t").await.expect("run");
    let mut accounts = vec![
        scored("hubspot:1", "Acme Corp", Tier::Tier1, 4.8),
        scored("hubspot:2", "Beta <b>Labs</b>", Tier::Tier1, 4.6),
        scored("hubspot:3", "Gamma", Tier::Tier2, 4.0),
    ];
    accounts.extend((0..1231).map(|i| {
        scored(
            &format!("hubspot:u{i:04}"),
            &format!("Untiered {i}"),
            Tier::Untiered,
            1.0,
        )
    }));
    for chunk in accounts.chunks(500) {
        store
            .commit_batch(&BatchCommit {
                run,
                scored: chunk.to_vec(),
                ..BatchCommit::default()
            })
            .await
            .expect("commit");
    }
    store
        .commit_batch(&BatchCommit {
            run,
            rejected: vec![RejectedPush {
                account: "hubspot:3".into(),
                tier: Tier::Tier2,
                score_bucket: 4.0,
                reason: "fits".into(),
                error: "INVALID_OPTION: tier_2 is not a picklist value".into(),
                permanent: true,
                retry_after: None,
            }],
            ..BatchCommit::default()
        })
        .await
        .expect("reject");
    store
        .finish_run(
            run,
            RunStatus::Succeeded,
            &json!({"pyramid": [2, 1, 0, 1231], "accounts": 1234}),
            None,
        )
        .await
        .expect("finish");
    let state = ApiState {
        store: store.clone(),
        view: Arc::new(StandIn),
        metrics: Arc::new(Metrics::default()),
        runs: Arc::new(RunQueue::default()),
        instance: "test".into(),
        schema: Arc::new(match tierd_config::Settings::load(None) {
            Ok(s) => s.schema,
            Err(_) => panic!("the built-in configuration loads"),
        }),
    };
    let token = auth::Token::new(TOKEN.into()).expect("token");
    (crate::app(state, token), store)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:8686");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let req = match form {
        Some(f) => req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(f.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let response = router.clone().oneshot(req).await.expect("router");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn sign_in(router: &Router) -> String {
    let a = send(
        router,
        Method::POST,
        "/login",
        None,
        Some(&format!("token={TOKEN}&next=%2Fruns")),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/runs");
    let cookie = a.headers[header::SET_COOKIE].to_str().expect("ascii");
    cookie.split(';').next().expect("name=value").to_string()
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..at + 64].to_string()
}

#[tokio::test]
async fn signed_out_requests_get_the_sign_in_page_and_never_data() {
    let (router, _) = app().await;
    for uri in [
        "/",
        "/movements",
        "/runs",
        "/pending",
        "/accounts?q=acme",
        "/accounts/hubspot:1",
        "/plugins",
    ] {
        let a = send(&router, Method::GET, uri, None, None).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}");
        assert!(a.body.contains("Sign in to tierd"), "{uri}: {}", a.body);
        for data in ["Acme", "1,231", "INVALID_OPTION", "Sign out"] {
            assert!(!a.body.contains(data), "{uri} leaked {data}");
        }
        let csp = a.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("csp");
        assert!(
            csp.contains("frame-ancestors 'none'")
                && csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
        );
    }
    // A forged session cookie is no session, and an action without one does nothing.
    let a = send(&router, Method::GET, "/", Some("tierd_session=00"), None).await;
    assert!(a.body.contains("Sign in to tierd"));
    let a = send(
        &router,
        Method::POST,
        "/pending/retry",
        None,
        Some("csrf=x&all=true"),
    )
    .await;
    assert!(a.body.contains("Sign in to tierd"));
    // The token goes in a POST body only; a wrong one is refused.
    let a = send(
        &router,
        Method::POST,
        "/login",
        None,
        Some("token=wrong-token-wrong-token"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_secure_behind_tls() {
    let (router, _) = app().await;
    let a = send(
        &router,
        Method::POST,
        "/login",
        None,
        Some(&format!("token={TOKEN}")),
    )
    .await;
    let cookie = a.headers[header::SET_COOKIE].to_str().expect("ascii").to_string();
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict") && cookie.contains("; Path=/")
    );
    assert!(!cookie.contains("Secure"));
    assert!(!cookie.contains(TOKEN));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("x-forwarded-proto", "https")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={TOKEN}&next=//evil.example/")))
        .expect("request");
    let response = router.clone().oneshot(req).await.expect("router");
    assert!(response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .ends_with("; Secure"));
    // Never redirected off the site.
    assert_eq!(response.headers()[header::LOCATION], "/");
}

#[tokio::test]
async fn pages_show_the_stores_reports() {
    let (router, _) = app().await;
    let cookie = sign_in(&router).await;
    let page = |uri: &'static str| {
        let router = router.clone();
        let cookie = cookie.clone();
        async move {
            let a = send(&router, Method::GET, uri, Some(&cookie), None).await;
            assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
            a.body
        }
    };
    let pyramid = page("/").await;
    // Counts with separators, in the table and the chart; names escaped everywhere.
    assert!(
        pyramid.contains("<td class=\"n\" data-tier=\"untiered\">1,231</td>"),
        "{pyramid}"
    );
    assert!(pyramid.contains("<td class=\"n\" data-tier=\"tier_1\">2</td>"));
    assert!(pyramid.contains("Untiered: 1,231"));
    assert!(pyramid.contains("Now: 1,234 accounts"));
    assert!(!pyramid.contains("<script>") && !pyramid.contains("style=\""));

    let runs = page("/runs").await;
    assert!(runs.contains("succeeded") && runs.contains("1,234"));
    let movements = page("/movements").await;
    assert!(movements.contains("Acme Corp") && movements.contains("fits the ICP"));
    let accounts = page("/accounts?q=ACME").await;
    assert!(
        accounts.contains("href=\"/accounts/hubspot%3A1\">Acme Corp</a>"),
        "{accounts}"
    );
    assert!(!accounts.contains("Gamma"));
    let beta = page("/accounts?tier=tier_1").await;
    assert!(beta.contains("Beta &lt;b&gt;Labs&lt;&#x2f;b&gt;"), "{beta}");
    let paged = page("/accounts?tier=untiered").await;
    assert!(
        paged.contains("rel=\"next\" href=\"&#x2f;accounts?tier=untiered&amp;after=hubspot%3Au0049\""),
        "{paged}"
    );
    let account = page("/accounts/hubspot:3").await;
    for text in [
        "uses Snowflake",
        "no demo request",
        "in Software",
        "INVALID_OPTION",
        "firmographic.industry",
        "crm",
    ] {
        assert!(account.contains(text), "{text} on the account page");
    }
    assert!(page("/plugins").await.contains("No plugin configured"));
}

#[tokio::test]
async fn a_rejected_push_is_retried_from_its_page_with_the_csrf_token() {
    let (router, store) = app().await;
    let cookie = sign_in(&router).await;
    let pending = send(&router, Method::GET, "/pending", Some(&cookie), None)
        .await
        .body;
    assert!(pending.contains("INVALID_OPTION: tier_2 is not a picklist value"));
    let csrf = csrf_of(&pending);

    let a = send(
        &router,
        Method::POST,
        "/pending/retry",
        Some(&cookie),
        Some("csrf=forged&account=hubspot%3A3"),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(store.pending_pushes(false).await.expect("pending").is_empty());

    let form = format!("csrf={csrf}&account=hubspot%3A3");
    let a = send(
        &router,
        Method::POST,
        "/pending/retry",
        Some(&cookie),
        Some(&form),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/pending?retried=1");
    let held = store.pending_pushes(false).await.expect("pending");
    assert_eq!(held.len(), 1, "no longer permanent: retried at the next run");
    let page = send(&router, Method::GET, "/pending?retried=1", Some(&cookie), None)
        .await
        .body;
    assert!(page.contains("1 rejected pushes will be retried"));
    assert!(
        !page.contains("aria-label=\"Retry hubspot:3\""),
        "no retry button for a due record"
    );

    // Signing out ends the session.
    let a = send(
        &router,
        Method::POST,
        "/logout",
        Some(&cookie),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(a.headers[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .contains("Max-Age=0"));
    let a = send(&router, Method::GET, "/", Some(&cookie), None).await;
    assert!(a.body.contains("Sign in to tierd"));
}
