//! Admin API tests through the router itself (`tower::ServiceExt::oneshot`), over an in-memory
//! store and a stand-in for the rest of the daemon.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tierd_core::tier::Tier;
use tierd_store::{BatchCommit, RejectedPush, RunKind, RunStatus, ScoredAccount, Store};
use tower::ServiceExt as _;

use super::*;

const TOKEN: &str = "test-token-4f9c2a7e1b3d5f60";

struct StandIn {
    ready: Result<(), String>,
}

impl DaemonView for StandIn {
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        let ready = self.ready.clone();
        Box::pin(async move { ready })
    }
    fn plugins(&self) -> Vec<PluginInfo> {
        Vec::new()
    }
    fn http_gauges(&self) -> ExtraGauges {
        ExtraGauges {
            connector: Some(("hubspot".into(), Default::default())),
            plugins: Vec::new(),
            webhook_deliveries: None,
            rejections: None,
        }
    }
}

struct Api {
    router: Router,
    store: Store,
    runs: Arc<RunQueue>,
    metrics: Arc<Metrics>,
}

async fn api(ready: Result<(), String>) -> Api {
    let store = Store::connect("sqlite::memory:").await.expect("in-memory store");
    let runs = Arc::new(RunQueue::default());
    let metrics = Arc::new(Metrics::default());
    let state = ApiState {
        store: store.clone(),
        view: Arc::new(StandIn { ready }),
        metrics: metrics.clone(),
        runs: runs.clone(),
        instance: "test-1".into(),
        schema: Arc::new(match tierd_config::Settings::load(None) {
            Ok(s) => s.schema,
            Err(_) => panic!("the built-in configuration loads"),
        }),
    };
    let token = auth::Token::new(TOKEN.into()).expect("long enough");
    Api {
        router: router(state, token),
        store,
        runs,
        metrics,
    }
}

/// Sends a request; returns the status and the body (JSON when it parses, else a string).
async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let response = router.clone().oneshot(req).await.expect("infallible router");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get_ok(router: &Router, uri: &str) -> Value {
    let (status, body) = send(router, Method::GET, uri, Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

#[tokio::test]
async fn health_needs_no_token_and_readiness_reports_the_reason() {
    let a = api(Ok(())).await;
    let (status, body) = send(&a.router, Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = send(&a.router, Method::GET, "/readyz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));

    let down = api(Err("connector: api.hubapi.com did not answer".into())).await;
    let (status, body) = send(&down.router, Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, json!({"error": "connector: api.hubapi.com did not answer"}));
    // Liveness does not depend on readiness.
    let (status, _) = send(&down.router, Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_other_route_needs_the_right_token() {
    let a = api(Ok(())).await;
    for uri in [
        "/metrics",
        "/api/v1/runs",
        "/api/v1/runs/1",
        "/api/v1/schedule",
        "/api/v1/accounts/x",
        "/api/v1/tiers",
        "/api/v1/pending-pushes",
        "/api/v1/plugins",
        "/api/v1/webhooks/deliveries",
        "/api/v1/openapi.json",
    ] {
        let (status, body) = send(&a.router, Method::GET, uri, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} without a token");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("Bearer")),
            "{uri}: {body}"
        );
        let wrong = format!("{TOKEN}x");
        let (status, body) = send(&a.router, Method::GET, uri, Some(&wrong), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with a wrong token");
        assert_eq!(body, json!({"error": "the bearer token is wrong"}));
        let (status, _) = send(&a.router, Method::GET, uri, Some(TOKEN), None).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{uri} with the token");
    }
    let (status, _) = send(
        &a.router,
        Method::POST,
        "/api/v1/runs",
        None,
        Some(json!({"kind": "full"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        a.runs.pop().is_none(),
        "an unauthenticated request queued nothing"
    );
}

#[tokio::test]
async fn manual_runs_are_queued_on_the_leader_and_refused_on_a_standby() {
    let a = api(Ok(())).await;
    let (status, body) = send(
        &a.router,
        Method::POST,
        "/api/v1/runs",
        Some(TOKEN),
        Some(json!({"kind": "full"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("standby")));

    a.runs.set_leading(true);
    let pilot = json!({"kind": "pilot", "filter": "firmographic.region=EMEA", "sample": 0.25});
    let (status, body) = send(
        &a.router,
        Method::POST,
        "/api/v1/runs",
        Some(TOKEN),
        Some(pilot.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"queued": pilot, "position": 1}));
    let listed = get_ok(&a.router, "/api/v1/runs").await;
    assert_eq!(listed["role"], "leader");
    assert_eq!(listed["queued"], json!([pilot]));

    for (bad, why) in [
        (json!({"kind": "weekly"}), "not a run request"),
        (json!({"kind": "full", "sample": 0.5}), "pilot runs only"),
        (json!({"kind": "pilot", "sample": 1.5}), "not a share"),
        (json!({"kind": "full", "extra": 1}), "not a run request"),
    ] {
        let (status, body) = send(
            &a.router,
            Method::POST,
            "/api/v1/runs",
            Some(TOKEN),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(why)),
            "{bad}: {body}"
        );
    }
    let queued = a.runs.pop().expect("the pilot run");
    assert_eq!(queued.kind, RunKind::Pilot);
    assert_eq!(queued.sample, Some(0.25));
    assert!(a.runs.pop().is_none(), "bad requests queued nothing");
}

#[tokio::test]
async fn runs_show_the_store_history_and_the_next_scheduled_times() {
    let a = api(Ok(())).await;
    let id = a
        .store
        .begin_run(RunKind::Incremental, "m@1", "test-1")
        .await
        .expect("begin");
    a.store
        .finish_run(id, RunStatus::Succeeded, &json!({"accounts": 3}), None)
        .await
        .expect("finish");
    a.runs.set_next(Some(NextRuns {
        full: Some(Timestamp::from_millis(1_743_487_200_000)),
        incremental: Some(Timestamp::from_millis(1_739_181_600_000)),
    }));
    let listed = get_ok(&a.router, "/api/v1/runs?limit=5").await;
    assert_eq!(listed["role"], "standby");
    assert_eq!(listed["runs"][0]["id"], id.0);
    assert_eq!(listed["runs"][0]["status"], "succeeded");
    assert_eq!(listed["runs"][0]["stats"], json!({"accounts": 3}));
    assert_eq!(listed["next_scheduled"]["full"], "2025-04-01T06:00:00Z");
    assert_eq!(listed["next_scheduled"]["incremental"], "2025-02-10T10:00:00Z");
    let schedule = get_ok(&a.router, "/api/v1/schedule").await;
    assert_eq!(schedule["next_scheduled"], listed["next_scheduled"]);

    let one = get_ok(&a.router, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(one["kind"], "incremental");
    assert_eq!(
        one["work"],
        json!({"queued": 0, "claimed": 0, "done": 0, "failed": 0})
    );
    let (status, body) = send(&a.router, Method::GET, "/api/v1/runs/999", Some(TOKEN), None).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"error": "no run 999"}))
    );
    let (status, _) = send(&a.router, Method::GET, "/api/v1/runs/abc", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn scored(id: &str, tier: Tier, score: f64) -> ScoredAccount {
    ScoredAccount {
        id: id.into(),
        name: format!("Account {id}"),
        domain: Some(format!("{id}.example")),
        facts: json!({"firmographic.industry": {"value": "Software", "source": "crm", "observed_at": "2026-11-20"}}).into(),
        facts_hash: "h".into(),
        score,
        coverage: 0.8,
        potential_value: 0.0,
        tier,
        explanation: json!({"score": score, "as_of": "2026-11-24", "contributions": [{"criterion": "industry", "points": 1.0}]}).into(),
        reason: "fits the ICP".into(),
        model_version: "m@1".into(),
        crm_tier_seen: None,
        locked: false,
    }
}

#[tokio::test]
async fn accounts_and_tiers_read_the_stored_state() {
    let a = api(Ok(())).await;
    let run = a
        .store
        .begin_run(RunKind::Full, "m@1", "test-1")
        .await
        .expect("begin");
    let tiers = [Tier::Tier1, Tier::Tier2, Tier::Tier1, Tier::Tier3, Tier::Tier1];
    let batch = BatchCommit {
        run,
        scored: tiers
            .iter()
            .enumerate()
            .map(|(i, t)| scored(&format!("acc-{i}"), *t, 4.0 - i as f64 * 0.5))
            .collect(),
        rejected: vec![RejectedPush {
            account: "acc-0".into(),
            tier: Tier::Tier1,
            score_bucket: 4.0,
            reason: "fits the ICP".into(),
            error: "PROPERTY_DOESNT_EXIST: tier".into(),
            permanent: false,
            retry_after: None,
        }],
        ..BatchCommit::default()
    };
    a.store.commit_batch(&batch).await.expect("commit");

    let account = get_ok(&a.router, "/api/v1/accounts/acc-0").await;
    assert_eq!(account["tier"], "tier_1");
    assert_eq!(
        account["explanation"]["contributions"][0]["criterion"],
        "industry"
    );
    assert_eq!(account["facts"]["firmographic.industry"]["source"], "crm");
    assert_eq!(account["facts"]["firmographic.industry"]["age_days"], 4);
    assert_eq!(account["tier_history"][0]["to"], "tier_1");
    assert_eq!(
        account["pending_push"]["last_error"],
        "PROPERTY_DOESNT_EXIST: tier"
    );
    let (status, body) = send(&a.router, Method::GET, "/api/v1/accounts/nope", Some(TOKEN), None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "no account 'nope' in the store"})
        )
    );

    let counts = get_ok(&a.router, "/api/v1/tiers").await;
    assert_eq!(
        counts["counts"],
        json!({"tier_1": 3, "tier_2": 1, "tier_3": 1, "untiered": 0})
    );
    assert_eq!(counts["total"], 5);
    let page = get_ok(&a.router, "/api/v1/tiers?tier=tier_1&limit=2").await;
    let ids: Vec<&str> = page["accounts"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["acc-0", "acc-2"]);
    assert_eq!(page["accounts"][0]["name"], "Account acc-0");
    assert_eq!(page["accounts"][0]["tier"], "tier_1");
    assert_eq!(page["accounts"][0]["coverage"], 0.8);
    assert!(page["accounts"][0]["reasons_up"].is_array());
    let next = page["next_after"].as_str().expect("more to come");
    let rest = get_ok(
        &a.router,
        &format!("/api/v1/tiers?tier=tier_1&limit=2&after={next}"),
    )
    .await;
    assert_eq!(rest["accounts"][0]["id"], "acc-4");
    assert_eq!(rest["next_after"], Value::Null);
    let (status, body) = send(
        &a.router,
        Method::GET,
        "/api/v1/tiers?tier=gold",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("not a tier")));

    let pending = get_ok(&a.router, "/api/v1/pending-pushes").await;
    assert_eq!(pending["pending"][0]["account"], "acc-0");
}

/// Rejections recorded before this process started (by `sync --once`, say) are in `/metrics`, and
/// retrying one through the API makes it due at the next run.
#[tokio::test]
async fn held_rejections_are_metrics_and_can_be_retried() {
    let a = api(Ok(())).await;
    let run = a
        .store
        .begin_run(RunKind::Full, "m@1", "earlier")
        .await
        .expect("begin");
    let reject = |id: &str, error: &str, permanent| RejectedPush {
        account: id.into(),
        tier: Tier::Tier1,
        score_bucket: 4.0,
        reason: "fits the ICP".into(),
        error: error.into(),
        permanent,
        retry_after: Some(std::time::Duration::from_secs(86_400)),
    };
    let batch = BatchCommit {
        run,
        scored: (0..3)
            .map(|i| scored(&format!("acc-{i}"), Tier::Tier1, 4.6))
            .collect(),
        rejected: vec![
            reject("acc-0", "INVALID_OPTION: tier_1", true),
            reject("acc-1", "INVALID_OPTION: tier_1", true),
            reject("acc-2", "UNABLE_TO_LOCK_ROW", false),
        ],
        ..BatchCommit::default()
    };
    a.store.commit_batch(&batch).await.expect("commit");

    let (_, text) = send(&a.router, Method::GET, "/metrics", Some(TOKEN), None).await;
    let text = text.as_str().expect("text");
    assert!(
        text.contains("tierd_rejected_pushes{state=\"permanent\",reason=\"INVALID_OPTION: tier_1\"} 2"),
        "{text}"
    );
    assert!(text.contains("tierd_rejected_pushes{state=\"pending\",reason=\"UNABLE_TO_LOCK_ROW\"} 1"));

    let (status, body) = send(
        &a.router,
        Method::POST,
        "/api/v1/pending-pushes/retry",
        Some(TOKEN),
        Some(json!({"accounts": ["acc-1"]})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"retried": 1})));
    let due: Vec<String> = a
        .store
        .pending_pushes(true)
        .await
        .expect("pending")
        .into_iter()
        .filter(|p| !p.permanent && p.next_attempt_at <= Timestamp::now())
        .map(|p| p.account)
        .collect();
    assert_eq!(due, ["acc-1"]);
    let (status, _) = send(
        &a.router,
        Method::POST,
        "/api/v1/pending-pushes/retry",
        Some(TOKEN),
        Some(json!({"all": true, "accounts": ["acc-1"]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = send(
        &a.router,
        Method::POST,
        "/api/v1/pending-pushes/retry",
        Some(TOKEN),
        Some(json!({"all": true})),
    )
    .await;
    assert_eq!(body, json!({"retried": 3}));

    // The listing, search and pyramid routes answer from the same store.
    let found = get_ok(&a.router, "/api/v1/accounts?q=ACCOUNT%20ACC-2").await;
    assert_eq!(found["accounts"][0]["id"], "acc-2");
    assert_eq!(found["accounts"].as_array().map(Vec::len), Some(1));
    let pyramid = get_ok(&a.router, "/api/v1/pyramid").await;
    assert_eq!(pyramid["now"]["counts"], json!([3, 0, 0, 0]));
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let a = api(Ok(())).await;
    a.metrics.pushes("written", 4);
    let (status, body) = send(&a.router, Method::GET, "/metrics", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().expect("text");
    assert!(
        text.contains("tierd_pushes_total{outcome=\"written\"} 4"),
        "{text}"
    );
    assert!(text.contains("tierd_connector_http_rate_limited_total{connector=\"hubspot\"} 0"));
}

/// The secrets of a deployment never show in metrics, error bodies or the JSON log, even on the
/// paths that handle them (a wrong token, a token too short, a failing store URL).
#[tokio::test]
async fn secrets_stay_out_of_metrics_errors_and_logs() {
    let log = crate::logging::CapturedLog::global();
    let api_key = "pat-na1-SECRETKEY-7e1b3d5f60aa";
    let short = "SHORTSECRET1";
    let a = api(Ok(())).await;
    a.runs.set_leading(true);
    let mut bodies = Vec::new();
    let wrong_token = format!("{api_key}-guess");
    for (method, uri, token, body) in [
        (Method::GET, "/metrics", Some(TOKEN), None),
        (Method::GET, "/metrics", Some(wrong_token.as_str()), None),
        (
            Method::POST,
            "/api/v1/runs",
            Some(TOKEN),
            Some(json!({"kind": "full"})),
        ),
        (Method::GET, "/api/v1/runs", Some(TOKEN), None),
        (Method::GET, "/api/v1/plugins", Some(TOKEN), None),
    ] {
        bodies.push(send(&a.router, method, uri, token, body).await.1.to_string());
    }
    // The token checks and the store's connect errors, as the daemon would log them.
    std::env::set_var("TIERD_TEST_SHORT_TOKEN", short);
    let settings = tierd_config::api::ApiSettings {
        token_env: "TIERD_TEST_SHORT_TOKEN".into(),
        ..tierd_config::api::ApiSettings::default()
    };
    let refused = settings.token().expect_err("too short");
    tracing::error!(error = %refused, "admin API not started");
    bodies.push(refused);
    let url = format!("postgres://tierd:{api_key}@127.0.0.1:1/tierd");
    let connect = Store::connect(&url).await.expect_err("nothing listens on port 1");
    tracing::error!(error = %connect, "store unreachable");
    bodies.push(format!("{connect} {connect:?}"));

    let text = format!("{}\n{}", bodies.join("\n"), log.text());
    assert!(text.contains("admin API not started"), "the log was captured");
    for secret in [TOKEN, api_key, short] {
        assert!(!text.contains(secret), "`{secret}` leaked into:\n{text}");
    }
}

/// Every route the router serves is in the generated OpenAPI document, with its method, and every
/// documented path answers (none falls through to the 404 fallback); the served document is the
/// generated one, and every protected route says it needs the bearer token.
#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    use utoipa::OpenApi as _;
    let doc: Value = serde_json::to_value(ApiDoc::openapi()).expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let open = path == "/healthz" || path == "/readyz";
            assert_eq!(op.get("security").is_none(), open, "{method} {path}: security");
        }
    }
    assert!(doc["components"]["schemas"]["AccountBody"]["properties"]["tier_history"].is_object());
    let paths = doc["paths"].as_object().expect("paths");
    let source = include_str!("mod.rs");
    let mut routes = 0;
    for line in source
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(".route(\""))
    {
        let path = line.split('"').nth(1).expect("a quoted path");
        let documented = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in openapi.json"));
        for method in ["get", "post"] {
            let served = line.contains(&format!(" {method}(")) || line.contains(&format!(".{method}("));
            assert_eq!(
                served,
                documented.get(method).is_some(),
                "{method} {path}: router and openapi.json disagree"
            );
        }
        routes += 1;
    }
    assert_eq!(
        routes,
        paths.len(),
        "openapi.json documents a path the router does not serve"
    );

    let a = api(Ok(())).await;
    let served = get_ok(&a.router, "/api/v1/openapi.json").await;
    assert_eq!(served, doc, "the served document is the generated one");
    for path in paths.keys() {
        let uri = path.replace("{id}", "1");
        let (_, body) = send(&a.router, Method::GET, &uri, Some(TOKEN), None).await;
        assert!(
            !body.to_string().contains("no such route"),
            "{path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn the_webhook_delivery_log_pages_filters_and_counts() {
    use tierd_store::{DeliveryAttempt, DeliveryOutcome, NewEvent, Timestamp};
    let a = api(Ok(())).await;
    let t0 = Timestamp::from_millis(1_900_000_000_000);
    let event = |id: &str| NewEvent {
        id: id.to_string(),
        kind: "tier.changed".into(),
        body: "{}".into(),
        occurred_at: t0,
        endpoints: vec!["sales".into()],
    };
    a.store
        .enqueue_events(&[event("msg_1"), event("msg_2")])
        .await
        .expect("enqueue");
    // The first is delivered with a 200; the second waits.
    let claimed = a
        .store
        .claim_deliveries(
            "test",
            &["sales".to_string()],
            t0,
            std::time::Duration::from_secs(60),
            1,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let attempt = DeliveryAttempt {
        at: t0,
        status: Some(200),
        error: None,
        duration: std::time::Duration::from_millis(12),
        outcome: DeliveryOutcome::Delivered,
    };
    assert!(a
        .store
        .record_delivery_attempt(claimed[0].id, "test", &attempt)
        .await
        .expect("record"));

    let all = get_ok(&a.router, "/api/v1/webhooks/deliveries").await;
    let deliveries = all["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0]["event_id"], "msg_2", "newest first");
    assert_eq!(deliveries[0]["state"], "pending");
    assert_eq!(deliveries[0]["attempt_log"], json!([]));
    assert_eq!(deliveries[1]["event_id"], "msg_1");
    assert_eq!(deliveries[1]["state"], "delivered");
    assert_eq!(deliveries[1]["attempt_log"][0]["status"], 200);
    assert_eq!(deliveries[1]["attempt_log"][0]["duration_ms"], 12);
    assert_eq!(
        all["counts"],
        json!({"pending": 1, "delivering": 0, "delivered": 1, "failed": 0})
    );
    assert_eq!(all["disabled"], json!([]));
    assert_eq!(all["next_before"], Value::Null);

    let first = get_ok(&a.router, "/api/v1/webhooks/deliveries?limit=1").await;
    assert_eq!(first["deliveries"][0]["event_id"], "msg_2");
    let before = first["next_before"].as_i64().expect("a next page");
    let second = get_ok(
        &a.router,
        &format!("/api/v1/webhooks/deliveries?limit=1&before={before}"),
    )
    .await;
    assert_eq!(second["deliveries"][0]["event_id"], "msg_1");
    let other = get_ok(&a.router, "/api/v1/webhooks/deliveries?endpoint=ops").await;
    assert_eq!(other["deliveries"], json!([]));

    let (status, metrics) = send(&a.router, Method::GET, "/metrics", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().expect("text");
    assert!(
        text.contains("tierd_webhook_deliveries{state=\"delivered\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("tierd_webhook_deliveries{state=\"pending\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn the_funnel_report_is_the_library_s_struct_as_json() {
    use tierd_store::{DealRecord, TierEvent};
    let a = api(Ok(())).await;
    let run = a
        .store
        .begin_run(RunKind::Full, "m@1", "test")
        .await
        .expect("run");
    let day = 86_400_000;
    let tiered = |account: &str, tier| TierEvent {
        account: account.into(),
        at: 20_000 * day,
        tier,
    };
    a.store
        .import_tier_history(run, &[tiered("a", Tier::Tier1), tiered("b", Tier::Untiered)])
        .await
        .expect("history");
    let deal = |id: &str, account: &str, won: bool| DealRecord {
        id: id.into(),
        account: Some(account.into()),
        amount: Some(100.0),
        created_at: Some(Timestamp::from_millis(20_001 * day)),
        close_date: Some(tierd_core::Date::from_days(20_011)),
        closed: Some(true),
        won: Some(won),
        ..DealRecord::default()
    };
    a.store
        .record_deals(
            None,
            &[
                deal("d1", "a", true),
                deal("d2", "a", false),
                deal("d3", "b", false),
            ],
        )
        .await
        .expect("deals");
    let body = get_ok(&a.router, "/api/v1/reports/funnel?from=2024-01-01").await;
    // Tier 1: d1 won, d2 lost: 1 of 2; won 100 in 10 days; velocity 2 × 1/2 × 100 / 10 = 10.
    let t1 = &body["rows"][0];
    assert_eq!(
        (
            t1["tier"].clone(),
            t1["win_rate"]["successes"].clone(),
            t1["win_rate"]["trials"].clone()
        ),
        (json!("tier_1"), json!(1), json!(2))
    );
    assert_eq!(t1["velocity"], json!(10.0));
    // The baseline: d3 lost, 0 of 1.
    assert_eq!(body["rows"][3]["win_rate"]["successes"], json!(0));
    let (status, body) = send(
        &a.router,
        Method::GET,
        "/api/v1/reports/funnel?from=soon",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
