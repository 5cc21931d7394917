//! Webhook delivery against real HTTP receivers, on SQLite and PostgreSQL.
//!
//! The receivers are axum servers on ephemeral ports that answer from a script of statuses and
//! keep what they got; signatures are checked by `verify_standard_webhooks.py`, an implementation
//! of the spec in Python's standard library, not by tierd's signing code. The clock is the tests':
//! retries are reached by moving `now` to the stored next attempt, never by sleeping.

#[allow(dead_code)]
#[path = "../../tierd-store/tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use tierd_activation::webhooks::{AccountRef, Event, RawWebhook, Webhooks};
use tierd_core::Tier;
use tierd_store::{BatchCommit, DeliveryState, NewEvent, RunKind, ScoredAccount, Store, Timestamp};

use common::TestDb;

const SECRET: &str = "whsec_dGllcmQtdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyE=";
/// Far from the wall clock on purpose: nothing may depend on it.
const T0: i64 = 1_900_000_000_000;

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    statuses: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Starts a receiver answering `statuses` in turn, then 200. Returns it and its URL.
    async fn start(statuses: &[u16]) -> (Receiver, String) {
        let receiver = Receiver {
            statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
            got: Arc::default(),
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        (receiver, url)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    r.got.lock().expect("lock").push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    let status = r.statuses.lock().expect("lock").pop_front().unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

/// What the independent Python verifier says of each message.
fn python_verifies(messages: &[Received]) -> Vec<bool> {
    let messages: Vec<tierd_test_support::SignedMessage> = messages
        .iter()
        .map(|m| tierd_test_support::SignedMessage {
            id: m.id.clone(),
            timestamp: m.timestamp.clone(),
            signature: m.signature.clone(),
            body: m.body.clone(),
        })
        .collect();
    tierd_test_support::python_verifies(SECRET, &messages)
}

fn webhooks(entries: &[(&str, &str, &str)]) -> Webhooks {
    #[derive(Deserialize)]
    struct File {
        webhooks: Vec<RawWebhook>,
    }
    let mut text = String::new();
    for (name, url, format) in entries {
        text.push_str(&format!(
            "[[webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret_env = \"HOOK_SECRET\"\n\
             events = [\"tier.changed\", \"run.finished\"]\nformat = \"{format}\"\n\n"
        ));
    }
    let raw = toml::from_str::<File>(&text).expect("parse").webhooks;
    Webhooks::compile(
        &raw,
        |k| (k == "HOOK_SECRET").then(|| SECRET.to_string()),
        "webhooks",
    )
    .expect("valid webhooks")
}

fn tier_changed(id: &str) -> Event {
    Event::TierChanged {
        account: AccountRef {
            id: id.to_string(),
            name: format!("Account {id}"),
            domain: Some(format!("{id}.example")),
            tier: Tier::Tier1,
        },
        from: Some(Tier::Tier2),
        score: 4.6,
        reason: "uses Snowflake".to_string(),
        run: None,
    }
}

fn scored(id: &str) -> ScoredAccount {
    ScoredAccount {
        id: id.to_string(),
        name: format!("Account {id}"),
        domain: Some(format!("{id}.example")),
        facts: json!({}).into(),
        facts_hash: "h".to_string(),
        score: 4.6,
        coverage: 1.0,
        potential_value: 0.0,
        tier: Tier::Tier1,
        explanation: json!({}).into(),
        reason: "uses Snowflake".to_string(),
        model_version: "default@1".to_string(),
        crm_tier_seen: None,
        locked: false,
    }
}

fn event(hooks: &Webhooks, e: &Event) -> NewEvent {
    hooks
        .outbox_event(e, Timestamp::from_millis(T0))
        .expect("some endpoint wants it")
}

/// The next attempt time of the delivery to `endpoint`.
async fn next_attempt(store: &Store, endpoint: &str) -> Timestamp {
    store
        .webhook_deliveries(Some(endpoint), None, 1)
        .await
        .expect("log")[0]
        .next_attempt_at
}

async fn a_receiver_that_fails_then_recovers_gets_the_same_id_every_time(db: TestDb) {
    let (flaky, flaky_url) = Receiver::start(&[500, 503]).await;
    let (slack, slack_url) = Receiver::start(&[]).await;
    let hooks = webhooks(&[("flaky", &flaky_url, "standard"), ("slack", &slack_url, "slack")]);
    let http = Webhooks::http_client().expect("client");

    // The event is committed with the batch that caused it.
    let run = db
        .store
        .begin_run(RunKind::Full, "default@1", "test")
        .await
        .expect("run");
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("acme")],
            events: vec![event(&hooks, &tier_changed("acme"))],
            ..BatchCommit::default()
        })
        .await
        .expect("commit");

    let now = Timestamp::from_millis(T0);
    let first = hooks
        .deliver_due(&db.store, &http, "a", now)
        .await
        .expect("deliver");
    assert_eq!((first.attempted, first.delivered, first.retrying), (2, 1, 1));
    assert!(
        hooks
            .deliver_due(&db.store, &http, "a", now)
            .await
            .expect("again")
            .is_idle(),
        "retry not due yet"
    );

    let second_at = next_attempt(&db.store, "flaky").await;
    assert!(second_at > now, "the retry is later");
    let second = hooks
        .deliver_due(&db.store, &http, "a", second_at)
        .await
        .expect("retry 1");
    assert_eq!((second.attempted, second.retrying), (1, 1));
    let third_at = next_attempt(&db.store, "flaky").await;
    let third = hooks
        .deliver_due(&db.store, &http, "a", third_at)
        .await
        .expect("retry 2");
    assert_eq!((third.attempted, third.delivered), (1, 1));

    let got = flaky.got();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|m| m.id == got[0].id && m.body == got[0].body),
        "same id and body"
    );
    assert_eq!(
        got.iter()
            .map(|m| m.timestamp.parse::<i64>().expect("seconds"))
            .collect::<Vec<_>>(),
        [
            now.millis() / 1000,
            second_at.millis() / 1000,
            third_at.millis() / 1000
        ],
        "each attempt carries its own timestamp"
    );
    let body: serde_json::Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["type"], "tier.changed");
    assert_eq!(body["data"]["account"]["id"], "acme");
    let slack_got = slack.got();
    assert_eq!(slack_got.len(), 1);
    assert_eq!(
        slack_got[0].id, got[0].id,
        "one event, one id, whatever the endpoint"
    );
    assert_eq!(
        slack_got[0].body,
        r#"{"text":"*Account acme* (acme.example) moved from Tier 2 to Tier 1: uses Snowflake"}"#
    );

    // Python checks every signature; a tampered body must fail, or the check proves nothing.
    let mut messages = got.clone();
    messages.extend(slack_got);
    let mut tampered = got[0].clone();
    tampered.body = tampered.body.replace("tier_1", "tier_3");
    messages.push(tampered);
    assert_eq!(python_verifies(&messages), [true, true, true, true, false]);

    let log = db
        .store
        .webhook_deliveries(Some("flaky"), None, 10)
        .await
        .expect("log");
    assert_eq!(log[0].state, DeliveryState::Delivered);
    let attempts = db.store.webhook_attempts(log[0].id).await.expect("attempts");
    assert_eq!(
        attempts.iter().map(|a| (a.attempt, a.status)).collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(503)), (3, Some(200))]
    );
}
on_both_backends!(a_receiver_that_fails_then_recovers_gets_the_same_id_every_time);

async fn a_410_disables_the_endpoint_and_is_reported(db: TestDb) {
    let (gone, gone_url) = Receiver::start(&[410]).await;
    let hooks = webhooks(&[("gone", &gone_url, "standard")]);
    let http = Webhooks::http_client().expect("client");
    let now = Timestamp::from_millis(T0);

    db.store
        .enqueue_events(&[event(&hooks, &tier_changed("a"))])
        .await
        .expect("enqueue");
    let report = hooks
        .deliver_due(&db.store, &http, "a", now)
        .await
        .expect("deliver");
    assert_eq!((report.attempted, report.failed), (1, 1));
    assert_eq!(report.disabled.len(), 1);
    assert_eq!(report.disabled[0].endpoint, "gone");
    assert_eq!(report.disabled[0].reason, "the endpoint answered 410 Gone");

    // Nothing more is sent to it, however late; its new events wait for it to be re-enabled.
    db.store
        .enqueue_events(&[event(&hooks, &tier_changed("b"))])
        .await
        .expect("enqueue");
    let later = now.plus(Duration::from_secs(7 * 24 * 3600));
    assert!(hooks
        .deliver_due(&db.store, &http, "a", later)
        .await
        .expect("deliver")
        .is_idle());
    assert_eq!(gone.got().len(), 1);
    let disabled = db.store.disabled_webhook_endpoints().await.expect("disabled");
    assert_eq!(
        disabled.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["gone"]
    );

    assert!(db.store.enable_webhook_endpoint("gone").await.expect("enable"));
    let resumed = hooks
        .deliver_due(&db.store, &http, "a", later)
        .await
        .expect("deliver");
    assert_eq!((resumed.attempted, resumed.delivered), (1, 1));
    let bodies: Vec<String> = gone.got().into_iter().map(|m| m.body).collect();
    assert!(bodies[1].contains(r#""id":"b""#), "{}", bodies[1]);
}
on_both_backends!(a_410_disables_the_endpoint_and_is_reported);

async fn a_receiver_that_never_recovers_gets_ten_tries_then_is_disabled(db: TestDb) {
    let (down, down_url) = Receiver::start(&[500; 10]).await;
    let hooks = webhooks(&[("down", &down_url, "standard")]);
    let http = Webhooks::http_client().expect("client");
    db.store
        .enqueue_events(&[event(&hooks, &tier_changed("a"))])
        .await
        .expect("enqueue");

    let mut now = Timestamp::from_millis(T0);
    let mut reports = Vec::new();
    for _ in 0..10 {
        let report = hooks
            .deliver_due(&db.store, &http, "a", now)
            .await
            .expect("deliver");
        reports.push((
            report.attempted,
            report.retrying,
            report.failed,
            report.disabled.len(),
        ));
        now = next_attempt(&db.store, "down").await;
    }
    let mut expected = vec![(1, 1, 0, 0); 9];
    expected.push((1, 0, 1, 1));
    assert_eq!(reports, expected);
    let got = down.got();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|m| m.id == got[0].id));
    let disabled = db.store.disabled_webhook_endpoints().await.expect("disabled");
    assert_eq!(
        disabled[0].reason,
        "all 10 attempts failed, the last with: the endpoint answered HTTP 500"
    );
    let log = db.store.webhook_deliveries(None, None, 1).await.expect("log");
    assert_eq!((log[0].state, log[0].attempts), (DeliveryState::Failed, 10));
}
on_both_backends!(a_receiver_that_never_recovers_gets_ten_tries_then_is_disabled);

async fn a_worker_that_dies_mid_delivery_is_replaced_after_its_lease(db: TestDb) {
    let (receiver, url) = Receiver::start(&[]).await;
    let hooks = webhooks(&[("crm", &url, "standard")]);
    let http = Webhooks::http_client().expect("client");
    let now = Timestamp::from_millis(T0);
    db.store
        .finish_run_with_events(
            db.store
                .begin_run(RunKind::Full, "default@1", "test")
                .await
                .expect("run"),
            tierd_store::RunStatus::Succeeded,
            &json!({}),
            None,
            &[event(
                &hooks,
                &Event::RunFinished {
                    run: 1,
                    kind: "full".to_string(),
                    stats: json!({"accounts": 3}),
                },
            )],
        )
        .await
        .expect("finish");

    // A worker claims the delivery and dies before sending it.
    let claimed = db
        .store
        .claim_deliveries("dead", &hooks.names(), now, Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);

    // A restarted process (a new store, nothing carried over) waits out the lease, then sends it.
    let restarted = db.reopen().await.expect("reopen");
    assert!(hooks
        .deliver_due(&restarted, &http, "b", now)
        .await
        .expect("deliver")
        .is_idle());
    let after_lease = now.plus(Duration::from_secs(61));
    let report = hooks
        .deliver_due(&restarted, &http, "b", after_lease)
        .await
        .expect("deliver");
    assert_eq!((report.attempted, report.delivered), (1, 1));
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].id, claimed[0].event_id,
        "the same webhook-id as the dead worker's"
    );
    assert_eq!(python_verifies(&got), [true]);
}
on_both_backends!(a_worker_that_dies_mid_delivery_is_replaced_after_its_lease);

#[tokio::test]
async fn a_test_event_is_sent_signed_at_once() {
    let (receiver, url) = Receiver::start(&[]).await;
    let hooks = webhooks(&[("crm", &url, "standard")]);
    let http = Webhooks::http_client().expect("client");
    let sent = hooks
        .send_test("crm", &http, Timestamp::from_millis(T0))
        .await
        .expect("the endpoint exists");
    assert_eq!((sent.status, sent.error), (Some(200), None));
    let got = receiver.got();
    assert_eq!(got[0].id, sent.event_id);
    assert!(
        got[0]
            .body
            .starts_with(r#"{"type":"webhook.test","timestamp":"2030-03-17T17:46:40.000Z""#),
        "{}",
        got[0].body
    );
    assert_eq!(python_verifies(&got), [true]);
    assert!(hooks
        .send_test("nobody", &http, Timestamp::from_millis(T0))
        .await
        .is_none());
}

#[tokio::test]
async fn an_unreachable_receiver_is_an_error_without_its_url() {
    // A port nobody listens on: bind one, learn it, close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let hooks = webhooks(&[(
        "closed",
        &format!("http://127.0.0.1:{port}/secret-token-path"),
        "standard",
    )]);
    let db = TestDb::sqlite().await;
    db.store
        .enqueue_events(&[event(&hooks, &tier_changed("a"))])
        .await
        .expect("enqueue");
    let http = Webhooks::http_client().expect("client");
    let report = hooks
        .deliver_due(&db.store, &http, "a", Timestamp::from_millis(T0))
        .await
        .expect("deliver");
    assert_eq!((report.attempted, report.retrying), (1, 1));
    let log = db.store.webhook_deliveries(None, None, 1).await.expect("log");
    let error = log[0].last_error.clone().unwrap_or_default();
    assert!(error.starts_with("could not connect"), "{error}");
    assert!(!error.contains("secret-token-path"), "{error}");
}

#[tokio::test]
async fn sync_once_delivers_until_idle_or_out_of_time() {
    let (receiver, url) = Receiver::start(&[]).await;
    let hooks = webhooks(&[("crm", &url, "standard")]);
    let http = Webhooks::http_client().expect("client");
    let db = TestDb::sqlite().await;
    let events: Vec<NewEvent> = (0..40)
        .map(|i| event(&hooks, &tier_changed(&format!("acc-{i}"))))
        .collect();
    db.store.enqueue_events(&events).await.expect("enqueue");

    // A clock that moves one second per reading, and no time at all: nothing is sent.
    let ticks = std::sync::atomic::AtomicI64::new(T0);
    let ticking = || Timestamp::from_millis(ticks.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed));
    let none = hooks
        .deliver_until_idle(&db.store, &http, "a", ticking, Duration::ZERO)
        .await
        .expect("deliver");
    assert_eq!(none.attempted, 0);

    // With time, more than one claim's worth goes out, each once.
    let all = hooks
        .deliver_until_idle(
            &db.store,
            &http,
            "a",
            || Timestamp::from_millis(T0),
            Duration::from_secs(30),
        )
        .await
        .expect("deliver");
    assert_eq!((all.attempted, all.delivered), (40, 40));
    let ids: std::collections::HashSet<String> = receiver.got().into_iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 40);
}
