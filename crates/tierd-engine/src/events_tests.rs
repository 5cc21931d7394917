//! The webhook events runs write to the outbox with their causes, delivered to a real HTTP
//! receiver: which events a run causes, that first tierings and repeated refusals announce
//! nothing, and that each event matches what the store committed.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tempfile::TempDir;
use tierd_emulators::{HubSpotConfig, HubSpotEmulator};
use tierd_store::{RunKind, RunStatus, Timestamp};

use crate::tests::{emulator_post, hubspot_id, run, sqlite_pipeline, ACCOUNTS};
use crate::Pipeline;

const SECRET_ENV: &str = "TIERD_TEST_EVENTS_SECRET";
const SECRET: &str = "whsec_dGllcmQtdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyE=";

/// A receiver keeping (webhook-id, body) of every request, answering 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn keep(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    r.got.lock().expect("lock").push((id, body));
    StatusCode::OK
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/hook", post(keep))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        (receiver, url)
    }

    /// What arrived since the last call, by event type.
    fn take(&self, kind: &str) -> Vec<Value> {
        let got = self.got.lock().expect("lock");
        got.iter()
            .filter(|(_, b)| b["type"] == kind)
            .map(|(_, b)| b["data"].clone())
            .collect()
    }

    fn clear(&self) {
        self.got.lock().expect("lock").clear();
    }
}

/// A pipeline whose one endpoint hears every event, plus whatever `tweak` adds.
async fn pipeline(emulator: &HubSpotEmulator, dir: &TempDir, url: &str, contracts: bool) -> Pipeline {
    std::env::set_var(SECRET_ENV, SECRET);
    let hooks = json!([{
        "name": "all",
        "url": url,
        "secret_env": SECRET_ENV,
        "events": ["tier.changed", "technology.adopted", "technology.removed", "renewal.due",
                   "account.locked", "push.rejected", "run.finished", "run.failed"],
    }]);
    let tweak = move |s: &mut tierd_config::Settings| {
        s.webhooks = serde_json::from_value(hooks).expect("webhooks");
        if contracts {
            crate::tests::add_contract_renewals(s);
        }
    };
    sqlite_pipeline(emulator, dir, "2026-11-24", tweak).await
}

/// Delivers everything due, as `sync --once` does.
async fn deliver(p: &Pipeline) {
    let http = tierd_activation::webhooks::Webhooks::http_client().expect("client");
    let report = p
        .webhooks()
        .deliver_until_idle(
            p.store(),
            &http,
            "test",
            Timestamp::now,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("deliver");
    assert_eq!(report.attempted, report.delivered, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_announce_real_moves_locks_and_their_end_not_first_tierings() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let (receiver, url) = Receiver::start().await;
    let p = pipeline(&emulator, &dir, &url, false).await;

    let first = run(&p, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    deliver(&p).await;
    assert!(
        receiver.take("tier.changed").is_empty(),
        "a first tiering is not a move"
    );
    let finished = receiver.take("run.finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["run"], json!(first.run.0));
    assert_eq!(finished[0]["kind"], "full");
    assert_eq!(finished[0]["stats"]["accounts"], json!(ACCOUNTS));
    receiver.clear();

    // A person locks a tier_3 account at tier_2; another account shrinks to one employee.
    let locked = (0..ACCOUNTS)
        .map(hubspot_id)
        .find(|id| emulator.property(id, "tierd_tier").as_deref() == Some("tier_3"))
        .expect("a tier_3 account");
    emulator.set_properties(
        &locked,
        &[("tierd_tier", "tier_2"), ("tierd_tier_locked", "true")],
    );
    let shrunk = (0..ACCOUNTS)
        .map(hubspot_id)
        .find(|id| id != &locked && emulator.property(id, "tierd_tier").as_deref() == Some("tier_2"))
        .expect("a tier_2 account");
    emulator.set_properties(&shrunk, &[("numberofemployees", "1"), ("annualrevenue", "1")]);
    let second = run(&p, RunKind::Incremental).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    deliver(&p).await;

    // Every committed move of this run, and only those, is announced with its history row.
    let changed = receiver.take("tier.changed");
    let mut expected = 0;
    for n in 0..ACCOUNTS {
        let id = format!("hubspot:{}", hubspot_id(n));
        let history = p.store().tier_history(&id, 10).await.expect("history");
        for h in history.iter().filter(|h| h.run == second.run && h.from.is_some()) {
            expected += 1;
            let event = changed
                .iter()
                .find(|e| e["account"]["id"] == json!(id))
                .unwrap_or_else(|| panic!("{id}'s move is announced: {changed:?}"));
            assert_eq!(event["from"], json!(h.from.map(|t| t.as_str())));
            assert_eq!(event["to"], json!(h.to.as_str()));
            assert_eq!(event["account"]["tier"], json!(h.to.as_str()));
            assert_eq!(event["reason"], json!(h.reason));
            assert_eq!(event["run"], json!(second.run.0));
        }
    }
    assert!(expected >= 2, "the lock and the shrunk account moved: {expected}");
    assert_eq!(changed.len(), expected, "{changed:?}");
    let locks = receiver.take("account.locked");
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0]["account"]["id"], json!(format!("hubspot:{locked}")));
    assert_eq!(locks[0]["account"]["tier"], "tier_2");
    assert_eq!(locks[0]["tierd_tier"], "tier_3");
    assert_eq!(receiver.take("run.finished").len(), 1);
    receiver.clear();

    // Nothing moved since: a run announces only its end; the lock is not announced again.
    let third = run(&p, RunKind::Full).await;
    assert_eq!(third.status, RunStatus::Succeeded, "{:?}", third.error);
    deliver(&p).await;
    assert!(receiver.take("tier.changed").is_empty());
    assert!(receiver.take("account.locked").is_empty());
    assert_eq!(receiver.take("run.finished").len(), 1);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_is_announced_once_and_a_failed_run_says_why() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let (receiver, url) = Receiver::start().await;
    // tierd's tier property without a tier_3 option: every tier_3 update is refused.
    let base = emulator.base_url();
    let group = json!({"name": "tierd", "label": "tierd", "displayOrder": -1});
    assert_eq!(
        emulator_post(&base, "/crm/v3/properties/companies/groups", &group).await,
        201
    );
    let options: Vec<Value> = ["tier_1", "tier_2", "untiered"]
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"label": v, "value": v, "displayOrder": i, "hidden": false}))
        .collect();
    let tier = json!({"name": "tierd_tier", "label": "Tier", "type": "enumeration", "fieldType": "select",
        "groupName": "tierd", "options": options});
    assert_eq!(
        emulator_post(&base, "/crm/v3/properties/companies", &tier).await,
        201
    );
    let p = pipeline(&emulator, &dir, &url, false).await;

    let first = run(&p, RunKind::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    deliver(&p).await;
    let rejected = receiver.take("push.rejected");
    assert_eq!(rejected.len() as u64, first.rejected);
    let pending = p.store().pending_pushes(true).await.expect("pending");
    for pp in &pending {
        let event = rejected
            .iter()
            .find(|e| e["account"]["id"] == json!(pp.account))
            .unwrap_or_else(|| panic!("{} announced", pp.account));
        assert_eq!(event["permanent"], json!(true));
        assert_eq!(event["account"]["tier"], "tier_3");
        assert_eq!(event["error"], json!(pp.last_error));
    }
    receiver.clear();
    let second = run(&p, RunKind::Full).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    deliver(&p).await;
    assert!(receiver.take("push.rejected").is_empty(), "announced once");
    receiver.clear();

    // The CRM goes away: the run fails, and its end is announced with the error.
    emulator.faults().set_error_rate(1.0);
    let failed = run(&p, RunKind::Full).await;
    assert_eq!(failed.status, RunStatus::Failed);
    deliver(&p).await;
    let failures = receiver.take("run.failed");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["run"], json!(failed.run.0));
    assert_eq!(
        failures[0]["error"],
        json!(failed.error.clone().unwrap_or_default())
    );
    assert!(receiver.take("run.finished").is_empty());
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_signals_are_announced_when_first_recorded() {
    let emulator = HubSpotEmulator::start(HubSpotConfig::unlimited(ACCOUNTS, 7))
        .await
        .expect("emulator");
    let dir = TempDir::new().expect("temp dir");
    let (receiver, url) = Receiver::start().await;
    let p = pipeline(&emulator, &dir, &url, true).await;
    let full = run(&p, RunKind::Full).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{:?}", full.error);
    deliver(&p).await;
    let due = receiver.take("renewal.due");
    let mut signals = 0;
    for n in 0..ACCOUNTS {
        let id = format!("hubspot:{}", hubspot_id(n));
        for s in p.store().signals(&id).await.expect("signals") {
            if s.kind != "renewal_within" {
                continue;
            }
            signals += 1;
            let event = due
                .iter()
                .find(|e| e["account"]["id"] == json!(id) && e["plugin"] == "contract-renewals")
                .unwrap_or_else(|| panic!("{id}'s renewal is announced"));
            let renewal: tierd_core::Date = event["renewal_date"]
                .as_str()
                .expect("date")
                .parse()
                .expect("date");
            assert_eq!(event["days_until"], json!(s.date.days_until(renewal)));
            assert!(
                event["days_until"].as_i64().expect("days")
                    <= i64::from(s.subject.parse::<u32>().expect("window"))
            );
        }
    }
    assert!(signals > 10, "the plugin signalled renewals: {signals}");
    assert_eq!(due.len(), signals, "one event per signal");
    receiver.clear();
    // The same day again: the signals are known, nothing is announced twice.
    let again = run(&p, RunKind::Incremental).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
    deliver(&p).await;
    assert!(receiver.take("renewal.due").is_empty());
    p.shutdown().await;
}
