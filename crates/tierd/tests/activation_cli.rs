//! Acting on tiers from the command line, with the built binary over a file connector: `sync
//! --once` delivers its run's webhook events (signatures checked by an independent Python
//! verifier) and writes the configured audiences (company lists, and people from the
//! connector's contacts file; an unwritable one, or one whose contacts cannot be read, is
//! reported by name and the run still succeeds); `report budget`, `export audience` and
//! `webhooks test`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

const SECRET_ENV: &str = "TIERD_TEST_CLI_WEBHOOK_SECRET";
const SECRET: &str = "whsec_dGllcmQtdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyE=";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// An HTTP receiver on an ephemeral port answering 200 to every POST and keeping it.
fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    receiver_answering(200)
}

/// An HTTP receiver answering `status` to every POST and keeping it.
fn receiver_answering(status: u16) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut headers = std::collections::HashMap::new();
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
                continue;
            }
            let header = |k: &str| headers.get(k).cloned().unwrap_or_default();
            keep.lock().expect("lock").push(Received {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signature: header("webhook-signature"),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let _ = stream.write_all(
                format!("HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (url, got)
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

fn tierd(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tierd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env(SECRET_ENV, SECRET)
        .env_remove("TIERD_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run tierd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn config(dir: &Path, url: &str) -> PathBuf {
    std::fs::copy(repo().join("config/model.toml"), dir.join("model.toml")).expect("copy the model");
    for file in ["accounts.csv", "contacts.csv"] {
        std::fs::copy(
            repo().join("crates/tierd/tests/fixtures").join(file),
            dir.join(file),
        )
        .expect("copy a fixture");
    }
    let base = std::fs::read_to_string(repo().join("config/tierd.toml")).expect("read the config");
    let extra = format!(
        "[store]\nurl = \"sqlite://{store}\"\n\n[connector]\ntype = \"file\"\npath = \"{input}\"\noutput = \"{output}\"\ncontacts = \"{contacts}\"\n\n\
         [pipeline]\nas_of = \"2026-11-24\"\n\n\
         [budget]\ntier_1 = 50\ntier_2 = 30\ntier_3 = 5\nperiod = \"month\"\ncurrency = \"USD\"\ntotal = 1000\n\n\
         [[webhooks]]\nname = \"ops\"\nurl = \"{url}\"\nsecret_env = \"{SECRET_ENV}\"\nevents = [\"run.finished\", \"tier.changed\"]\n\n\
         [[exports.audiences]]\nname = \"top\"\ntiers = [\"tier_1\", \"tier_2\"]\nformat = \"csv\"\ndirectory = \"audiences/top\"\n\n\
         [[exports.audiences]]\nname = \"nowhere\"\ntiers = [\"tier_1\"]\nformat = \"csv\"\ndirectory = \"accounts.csv/inside-a-file\"\n\n\
         [[exports.audiences]]\nname = \"people\"\ntiers = [\"tier_1\", \"tier_2\", \"tier_3\"]\nformat = \"meta-custom-audience\"\ndirectory = \"audiences/people\"\n",
        contacts = dir.join("contacts.csv").display(),
        store = dir.join("tierd.db").display(),
        input = dir.join("accounts.csv").display(),
        output = dir.join("tiers.csv").display(),
    );
    let path = dir.join("tierd.toml");
    std::fs::write(&path, format!("{base}\n{extra}")).expect("write the config");
    path
}

/// `pyramid: tier_1 A, tier_2 B, tier_3 C, untiered D` of a run report.
fn pyramid(report: &str) -> [u64; 4] {
    let line = report
        .lines()
        .find(|l| l.contains("pyramid:"))
        .expect("a pyramid line");
    let figures: Vec<u64> = line
        .split("pyramid:")
        .nth(1)
        .expect("figures")
        .split(',')
        .map(|part| {
            part.trim()
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a count")
        })
        .collect();
    [figures[0], figures[1], figures[2], figures[3]]
}

#[test]
fn a_sync_delivers_its_events_writes_its_audiences_and_the_reports_read_the_same_tiers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, got) = receiver();
    let config = config(dir.path(), &url);

    let run = tierd(&config, &["sync", "--once", "--job", "full"]);
    let (out, err) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("webhooks: 1 delivered, 0 to retry, 0 given up; 0 left in the outbox"),
        "{out}"
    );
    let received = got.lock().expect("lock").clone();
    assert_eq!(
        received.len(),
        1,
        "one run.finished, no tier.changed on a first tiering"
    );
    assert_eq!(python_verifies(&received), [true]);
    let body: Value = serde_json::from_str(&received[0].body).expect("JSON body");
    assert_eq!(body["type"], "run.finished");
    assert!(!err.contains(SECRET) && !out.contains(SECRET));

    // The configured audience holds Tier 1 and Tier 2; the unwritable one is named, not fatal.
    let p = pyramid(&out);
    let full = std::fs::read_to_string(dir.path().join("audiences/top/full.csv")).expect("the audience");
    assert_eq!(full.lines().next(), Some("id,name,domain,tier,score,reasons"));
    assert_eq!(full.lines().count() as u64 - 1, p[0] + p[1], "{full}");
    assert!(err.contains("inside-a-file"), "the failing path is named: {err}");

    // The budget report prices the same pyramid: 50, 30 and 5 a month per account.
    let report = tierd(&config, &["report", "budget", "--format", "json"]);
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let r: Value = serde_json::from_slice(&report.stdout).expect("json");
    for (i, rate) in [50.0, 30.0, 5.0].into_iter().enumerate() {
        assert_eq!(r["plan"]["tiers"][i]["accounts"], json!(p[i]));
        assert_eq!(r["plan"]["tiers"][i]["spend"], json!(rate * p[i] as f64));
    }
    assert_eq!(r["plan"]["untiered"], json!(p[3]));
    assert!(r["seats"].is_object(), "a total buys seats: {r}");
    let table = tierd(&config, &["report", "budget"]);
    assert!(
        text(&table.stdout).starts_with("Budget per month (USD)"),
        "{}",
        text(&table.stdout)
    );

    // An export on demand, in LinkedIn's template; a second one adds and removes nothing.
    let li = dir.path().join("li");
    let args = [
        "export",
        "audience",
        "--tier",
        "tier_1,tier_2",
        "--format",
        "linkedin-companies",
        "--output",
    ];
    let export = tierd(&config, &[&args[..], &[li.to_str().expect("utf-8")]].concat());
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let rows = p[0] + p[1];
    assert!(
        text(&export.stdout).contains(&format!("{rows} rows ({rows} added, 0 removed)")),
        "{}",
        text(&export.stdout)
    );
    let full = std::fs::read_to_string(li.join("full.csv")).expect("full.csv");
    assert_eq!(
        full.lines().next(),
        Some("companyname,companywebsite,companyemaildomain,linkedincompanypageurl,stocksymbol,industry,city,state,companycountry,zipcode")
    );
    let again = tierd(&config, &[&args[..], &[li.to_str().expect("utf-8")]].concat());
    assert!(
        text(&again.stdout).contains(&format!("{rows} rows (0 added, 0 removed)")),
        "{}",
        text(&again.stdout)
    );
    // People, from the connector's contacts file: after the run and on demand, in Meta's
    // template, one person per tiered account with an account id (the bad line is named by file
    // and line, never by its values), hashed: no raw email is written or printed.
    let people_dir = dir.path().join("audiences/people");
    let after_run = std::fs::read_to_string(people_dir.join("full.csv")).expect("the people audience");
    assert_eq!(after_run.lines().next(), Some("email,phone,fn,ln,zip,country"));
    let tiered = p[0] + p[1] + p[2];
    assert!(tiered > 0, "{p:?}");
    assert_eq!(after_run.lines().count() as u64 - 1, tiered, "{after_run}");
    let meta = dir.path().join("meta");
    let people = tierd(
        &config,
        &[
            "export",
            "audience",
            "--tier",
            "tier_1,tier_2,tier_3",
            "--format",
            "meta-custom-audience",
            "--output",
            meta.to_str().expect("utf-8"),
        ],
    );
    let (out, err) = (text(&people.stdout), text(&people.stderr));
    assert_eq!(people.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains(&format!("{tiered} rows ({tiered} added, 0 removed)")),
        "{out}"
    );
    assert!(
        out.contains("contacts.csv line 10: field 'account_id': is empty"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(meta.join("full.csv")).expect("full.csv"),
        after_run
    );
    let state = std::fs::read_to_string(meta.join(".tierd-audience.jsonl")).expect("state");
    for raw in ["@", "northwind.example", "(201) 555-0123", "Lovelace"] {
        for (place, t) in [
            ("stdout", &out),
            ("stderr", &err),
            ("state", &state),
            ("file", &after_run),
        ] {
            assert!(!t.contains(raw), "{place} holds {raw}");
        }
    }

    // A signed test event, at once.
    let test = tierd(&config, &["webhooks", "test", "ops"]);
    assert_eq!(
        test.status.code(),
        Some(0),
        "{}\n{}",
        text(&test.stdout),
        text(&test.stderr)
    );
    let received = got.lock().expect("lock").clone();
    assert_eq!(received.len(), 2);
    assert_eq!(python_verifies(&received[1..]), [true]);
    assert!(received[1].body.contains("\"type\":\"webhook.test\""));
    let unknown = tierd(&config, &["webhooks", "test", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("no webhook named 'nope'"),
        "{}",
        text(&unknown.stderr)
    );
}

#[test]
fn a_missing_secret_names_its_key_and_the_run_still_completes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, got) = receiver();
    let config = config(dir.path(), &url);
    let run = Command::new(env!("CARGO_BIN_EXE_tierd"))
        .arg("--config")
        .arg(&config)
        .args(["sync", "--once", "--job", "full"])
        .env_remove(SECRET_ENV)
        .env_remove("TIERD_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run tierd");
    let (out, err) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("(full): succeeded"), "{out}");
    assert!(err.contains("webhooks[0].secret_env"), "the key is named: {err}");
    assert!(got.lock().expect("lock").is_empty());
}

#[test]
fn an_unreachable_receiver_leaves_the_event_in_the_outbox_and_the_run_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let config = config(dir.path(), &format!("http://127.0.0.1:{port}/hook"));
    let run = tierd(
        &config,
        &["sync", "--once", "--job", "full", "--deliver-timeout", "5"],
    );
    let (out, err) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("(full): succeeded"), "{out}");
    assert!(
        out.contains("webhooks: 0 delivered, 1 to retry, 0 given up; 1 left in the outbox"),
        "{out}"
    );
    assert!(
        !out.contains("/hook") && !err.contains("/hook"),
        "only the origin is shown: {err}"
    );
}

#[test]
fn a_410_disables_the_endpoint_until_it_is_enabled_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, got) = receiver_answering(410);
    let config = config(dir.path(), &url);
    let run = tierd(&config, &["sync", "--once", "--job", "full"]);
    let (out, err) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("webhooks: 0 delivered, 0 to retry, 1 given up; 0 left in the outbox"),
        "{out}"
    );
    assert!(err.contains("webhook endpoint disabled"), "reported: {err}");
    assert_eq!(got.lock().expect("lock").len(), 1);
    let enable = tierd(&config, &["webhooks", "enable", "ops"]);
    assert_eq!(enable.status.code(), Some(0), "{}", text(&enable.stderr));
    assert!(
        text(&enable.stdout).contains("ops is enabled again"),
        "{}",
        text(&enable.stdout)
    );
    let again = tierd(&config, &["webhooks", "enable", "ops"]);
    assert!(
        text(&again.stdout).contains("ops was not disabled"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(
        tierd(&config, &["webhooks", "enable", "nope"]).status.code(),
        Some(2)
    );
}

#[test]
fn a_people_audience_whose_contacts_cannot_be_read_is_logged_by_name_and_the_run_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, _got) = receiver();
    let config = config(dir.path(), &url);
    std::fs::remove_file(dir.path().join("contacts.csv")).expect("remove the contacts file");
    let run = tierd(&config, &["sync", "--once", "--job", "full"]);
    let (out, err) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("(full): succeeded"), "{out}");
    let line = err
        .lines()
        .find(|l| l.contains("audience not exported") && l.contains("people"))
        .unwrap_or_else(|| panic!("the failing audience is named: {err}"));
    assert!(
        line.contains("cannot read the contacts") && line.contains("contacts.csv"),
        "{line}"
    );
    // The other audiences were written all the same.
    assert!(dir.path().join("audiences/top/full.csv").exists());
    assert!(!dir.path().join("audiences/people/full.csv").exists());
}
