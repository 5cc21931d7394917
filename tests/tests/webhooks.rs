//! Webhooks across a `kill -9` of the daemon: events committed with their causes and not yet
//! delivered (the receiver was down) are delivered by the restarted daemon, none lost and none
//! under a new `webhook-id`; every delivered body's signature is checked by an independent
//! implementation (Python's standard library, `crates/tierd-activation/tests/verify_standard_webhooks.py`).

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tierd_e2e::harness::{company_id, free_port, hubspot, wait_until, Api, Config, Database, Tierd};

const ACCOUNTS: u64 = 200;
const SECRET_ENV: &str = "TIERD_E2E_WEBHOOK_SECRET";
const SECRET: &str = "whsec_dGllcmQtdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyE=";

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    status: u16,
}

/// A receiver answering 503 while `down`, else 200; keeps every request with its answer.
struct Receiver {
    url: String,
    down: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let down = Arc::new(AtomicBool::new(true));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (d, g) = (down.clone(), got.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (d, g) = (d.clone(), g.clone());
                std::thread::spawn(move || serve(stream, &d, &g));
            }
        });
        Receiver { url, down, got }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

fn serve(mut stream: std::net::TcpStream, down: &AtomicBool, got: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let status = if down.load(Ordering::SeqCst) { 503 } else { 200 };
    let header = |k: &str| headers.get(k).cloned().unwrap_or_default();
    got.lock().expect("lock").push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    let reason = if status == 200 {
        "OK"
    } else {
        "Service Unavailable"
    };
    let _ = stream.write_all(
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
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

async fn run_and_wait(api: &Api, daemon: &Tierd, after: i64) -> i64 {
    let (status, body) = api.post("/api/v1/runs", &json!({"kind": "full"})).await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(runs) = api.get("/api/v1/runs?limit=1").await {
            let run = &runs["runs"][0];
            let id = run["id"].as_i64().unwrap_or(0);
            if id > after && run["status"] == "succeeded" {
                return id;
            }
            assert!(
                !(id > after && (run["status"] == "failed" || run["status"] == "interrupted")),
                "{run}\n{}",
                daemon.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no successful run\n{}",
            daemon.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn killed_between_commit_and_delivery(db: Database) {
    std::env::set_var(SECRET_ENV, SECRET);
    let root = tempfile::tempdir().expect("tempdir");
    let crm = hubspot(ACCOUNTS, 11).await;
    let receiver = Receiver::start();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut cfg = Config::new(db.url(), &crm.base_url());
    cfg.api_listen = Some(listen.clone());
    cfg.extra = format!(
        "[[webhooks]]\nname = \"crm-watch\"\nurl = \"{}\"\nsecret_env = \"{SECRET_ENV}\"\n\
         events = [\"tier.changed\", \"run.finished\", \"run.failed\", \"push.rejected\", \"account.locked\"]\n\
         timeout_secs = 5\n",
        receiver.url
    );
    let config = cfg.write(root.path());
    let api = Api::new(&listen);
    let mut daemon = Tierd::spawn("first", root.path(), &config, &["run"]);
    wait_until("the API", Duration::from_secs(30), || async {
        api.role().await.as_deref() == Some("leader")
    })
    .await;

    // A first tiering (announces only its end), then a run that moves accounts: their sizes fall.
    let first = run_and_wait(&api, &daemon, 0).await;
    for k in 0..40 {
        crm.set_properties(
            &company_id(k),
            &[("numberofemployees", "1"), ("annualrevenue", "1")],
        );
    }
    run_and_wait(&api, &daemon, first).await;
    // The receiver is down: once the daemon has tried every event once and recorded it (no claim
    // in flight: a claim held by a dead process waits out its lease, tested in tierd-activation),
    // kill it before anything is delivered.
    let store = db.store().await;
    wait_until("a first attempt of every event", Duration::from_secs(30), || {
        let store = &store;
        async move {
            let all = store
                .webhook_deliveries(None, None, 10_000)
                .await
                .unwrap_or_default();
            all.iter().any(|d| d.kind == "tier.changed")
                && all.iter().filter(|d| d.kind == "run.finished").count() == 2
                && all
                    .iter()
                    .all(|d| d.attempts >= 1 && d.state == tierd_store::DeliveryState::Pending)
        }
    })
    .await;
    daemon.kill9();
    let outbox = store
        .webhook_deliveries(None, None, 10_000)
        .await
        .expect("deliveries");
    let ids: BTreeSet<String> = outbox.iter().map(|d| d.event_id.clone()).collect();
    assert!(
        outbox.iter().any(|d| d.kind == "tier.changed"),
        "the moves are announced: {outbox:?}"
    );
    assert_eq!(outbox.iter().filter(|d| d.kind == "run.finished").count(), 2);
    assert!(
        outbox.iter().all(|d| d.delivered_at.is_none()),
        "nothing was delivered before the kill"
    );
    assert!(receiver.got().iter().all(|r| r.status == 503));

    // The receiver recovers; the restarted daemon delivers everything, under the same ids.
    receiver.down.store(false, Ordering::SeqCst);
    let restarted = Tierd::spawn("second", root.path(), &config, &["run"]);
    wait_until("every event delivered", Duration::from_secs(60), || {
        let store = &store;
        let n = ids.len() as u64;
        async move {
            store
                .webhook_delivery_counts()
                .await
                .is_ok_and(|c| c.delivered == n)
        }
    })
    .await;
    let got = receiver.got();
    let delivered: Vec<Received> = got.iter().filter(|r| r.status == 200).cloned().collect();
    let delivered_ids: BTreeSet<String> = delivered.iter().map(|r| r.id.clone()).collect();
    assert_eq!(delivered_ids, ids, "none lost\n{}", restarted.output());
    assert_eq!(delivered.len(), ids.len(), "each delivered once");
    let seen: BTreeSet<String> = got.iter().map(|r| r.id.clone()).collect();
    assert_eq!(seen, ids, "no attempt under a new webhook-id");
    assert!(
        python_verifies(&got).into_iter().all(|ok| ok),
        "every signature verifies"
    );
    for r in &delivered {
        let body: Value = serde_json::from_str(&r.body).expect("JSON");
        let kind = body["type"].as_str().expect("type");
        let stored = outbox.iter().find(|d| d.event_id == r.id).expect("stored");
        assert_eq!(kind, stored.kind);
    }
    // The delivery log says the same.
    let log = api
        .get("/api/v1/webhooks/deliveries?limit=500")
        .await
        .expect("the log");
    assert_eq!(log["counts"]["delivered"], json!(ids.len()));
    assert_eq!(log["counts"]["pending"], json!(0));
    store.close().await;
}

mod killed_between_commit_and_delivery {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::killed_between_commit_and_delivery(tierd_e2e::harness::Database::sqlite()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = tierd_e2e::harness::Database::postgres().await {
            super::killed_between_commit_and_delivery(db).await;
        }
    }
}
