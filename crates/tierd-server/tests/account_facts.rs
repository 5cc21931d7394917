//! The account route over what a real run stored: the facts the pipeline wrote, read back through
//! the one codec, with when each was observed and its age on the scoring date.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tierd_config::engine::ConnectorSettings;
use tierd_config::Settings;
use tierd_emulators::{HubSpotConfig, HubSpotEmulator};
use tierd_engine::metrics::Metrics;
use tierd_engine::{Pipeline, RunRequest};
use tierd_plugin_host::{Mode, PluginConfig};
use tierd_server::api::{self, ApiState, RunQueue};
use tierd_store::{RunKind, RunStatus};
use tower::ServiceExt as _;

const TOKEN: &str = "0123456789abcdef-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_route_shows_when_each_stored_fact_was_observed_and_its_age() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(200, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    std::env::set_var("TIERD_TEST_API_HUBSPOT_TOKEN", "test-token");
    let mut settings = match Settings::load(None) {
        Ok(s) => s,
        Err(_) => panic!("the built-in configuration loads"),
    };
    settings.store.url = format!("sqlite://{}", dir.path().join("tierd.db").display());
    let Value::Object(table) = json!({
        "type": "hubspot", "base_url": emulator.base_url(), "token_env": "TIERD_TEST_API_HUBSPOT_TOKEN",
        "rate_limit": 0, "search_rate_per_sec": 0, "search_overlap_ms": 0,
    }) else {
        unreachable!("a JSON object")
    };
    settings.connector = Some(ConnectorSettings::from_table(table).expect("connector"));
    settings.pipeline.as_of = Some("2026-11-24".into());
    settings.plugins.clear();
    settings.plugins.insert(
        "contract-renewals".into(),
        PluginConfig {
            cache_ttl_secs: 0,
            ..PluginConfig::library(tierd_test_support::cdylib("contract-renewals"), Mode::InProcess)
        },
    );
    let pipeline = Arc::new(
        Pipeline::start(Arc::new(settings), Arc::new(Metrics::default()), "test:1".into())
            .await
            .expect("pipeline"),
    );
    let (_stop, stopped) = tierd_engine::shutdown::never();
    let report = pipeline
        .run(RunRequest::new(RunKind::Full), stopped, None)
        .await
        .expect("run starts");
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);

    let queue = Arc::new(RunQueue::default());
    let state = ApiState {
        store: pipeline.store().clone(),
        view: pipeline.clone(),
        metrics: Arc::new(Metrics::default()),
        runs: queue,
        instance: "test:1".into(),
        schema: Arc::new(pipeline.schema().clone()),
    };
    let router = api::router(state, api::auth::Token::new(TOKEN.into()).expect("token"));
    // An account the plugin answered for.
    let ids: Vec<String> = (0..200)
        .map(|n| format!("hubspot:{}", 1_000_000_000 + n))
        .collect();
    let states = pipeline.store().accounts(&ids).await.expect("states");
    let id = ids
        .iter()
        .find(|id| states[*id].facts["contracts.renewal_date"]["source"] == "contract-renewals")
        .expect("an account with a renewal");
    let request = Request::get(format!("/api/v1/accounts/{id}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    let response = router.oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let account: Value = serde_json::from_slice(&bytes).expect("JSON");
    let renewal = &account["facts"]["contracts.renewal_date"];
    assert_eq!(renewal["source"], "contract-renewals", "{account}");
    assert_eq!(
        (renewal["observed_at"].as_str(), renewal["age_days"].as_i64()),
        (Some("2026-11-24"), Some(0))
    );
    // The CRM's own value it replaced is shown too, and every plugin fact has an observation date.
    assert_eq!(renewal["replaced"]["source"], "hubspot", "{renewal}");
    for (name, fact) in account["facts"].as_object().expect("facts") {
        if fact["source"] == "contract-renewals" {
            assert!(
                fact["observed_at"].is_string(),
                "{name} has no observation date: {fact}"
            );
        }
    }
    pipeline.store().close().await;
}
