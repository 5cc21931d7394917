//! Audiences of people from the CRM, as a user gets them: `tierd sync --once` against the HubSpot
//! emulator (writing a configured Google audience after the run), then `tierd export audience
//! --format google-customer-match`. The file has Google's header, a known contact's row holds
//! the SHA-256 of values normalised by hand here (hashed independently with `sha2`), and no raw
//! email or phone reaches the store (every table, SQLite and PostgreSQL), the audience's state
//! file or the logs.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tierd_e2e::harness::{hubspot, sync_once, Config, Database, Tierd, CRM_TOKEN};

/// Runs the test body `$name(db: Database)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(tierd_e2e::harness::Database::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = tierd_e2e::harness::Database::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

const ACCOUNTS: u64 = 150;
const SEED: u64 = 61;
const GOOGLE_HEADER: &str = "Email,Phone,First Name,Last Name,Country,Zip";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every contact the emulator holds for the seeded companies (contact `j` of company `k` is
/// `3000000000 + 4k + j`), read over HTTP as a client would.
async fn crm_contacts(base: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let ids: Vec<String> = (0..ACCOUNTS)
        .flat_map(|k| (0..3).map(move |j| (3_000_000_000 + 4 * k + j).to_string()))
        .collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(100) {
        let body = json!({
            "properties": ["email", "phone", "mobilephone", "firstname", "lastname", "country", "zip"],
            "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        });
        let got: Value = http
            .post(format!("{base}/crm/v3/objects/contacts/batch/read"))
            .bearer_auth(CRM_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("batch read")
            .json()
            .await
            .expect("json");
        out.extend(got["results"].as_array().cloned().unwrap_or_default());
    }
    out
}

/// Every row of every table of the store, as text.
async fn store_text(db: &Database) -> String {
    match db {
        Database::Sqlite { dir, .. } => {
            let mut all = String::new();
            for entry in std::fs::read_dir(dir.path()).expect("list the store's directory") {
                let path = entry.expect("entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if name.starts_with("tierd.db") {
                    let bytes = std::fs::read(&path).expect("read the store file");
                    all.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            all
        }
        Database::Postgres { url, .. } => {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            let tables: Vec<(String,)> =
                sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .fetch_all(&mut conn)
                    .await
                    .expect("list tables");
            assert!(tables.len() > 5, "{tables:?}");
            let mut all = String::new();
            for (table,) in tables {
                let rows: Vec<(Option<String>,)> =
                    sqlx::query_as(&format!("SELECT t::text FROM \"{table}\" t"))
                        .fetch_all(&mut conn)
                        .await
                        .expect("read a table");
                for (row,) in rows {
                    all.push_str(&row.unwrap_or_default());
                    all.push('\n');
                }
            }
            all
        }
    }
}

async fn run(name: &str, dir: &Path, config: &Path, args: &[&str]) -> Tierd {
    let mut child = Tierd::spawn(name, dir, config, args);
    let status = child.exit_within(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
    child
}

/// A contact the emulator holds for `SEED`, as served raw, and what Google's rules make of it,
/// normalised by hand: email trimmed and lower-cased, phone in E.164 (a national number read
/// in the contact's country), names lower-cased, country as a lower-case ISO code, zip as is.
struct Known {
    contact: &'static str,
    company: &'static str,
    raw: [Option<&'static str>; 7],
    normalised: [&'static str; 6],
}

const KNOWN: [Known; 4] = [
    Known {
        contact: "3000000176",
        company: "hubspot:1000000044",
        raw: [
            Some("maryann.mueller@brightford-international-19.com"),
            Some("020 7946 0064"),
            None,
            Some("Mary Ann"),
            Some("Müller"),
            Some("GB"),
            None,
        ],
        normalised: [
            "maryann.mueller@brightford-international-19.com",
            "+442079460064",
            "mary ann",
            "müller",
            "gb",
            "",
        ],
    },
    Known {
        contact: "3000000512",
        company: "hubspot:1000000128",
        raw: [
            Some("ingrid.nakamura@trient-labs-3l.com"),
            Some("(201) 555-0164"),
            None,
            Some("Ingrid"),
            Some("Nakamura"),
            Some("US"),
            Some("93542"),
        ],
        normalised: [
            "ingrid.nakamura@trient-labs-3l.com",
            "+12015550164",
            "ingrid",
            "nakamura",
            "us",
            "93542",
        ],
    },
    Known {
        contact: "3000000209",
        company: "hubspot:1000000052",
        raw: [
            Some("noah.oneil@haldale-labs-1h.com"),
            None,
            Some("+49 30 1234 5746"),
            Some("Noah"),
            Some("O'Neil"),
            Some("JP"),
            Some("18200"),
        ],
        normalised: [
            "noah.oneil@haldale-labs-1h.com",
            "+493012345746",
            "noah",
            "o'neil",
            "jp",
            "18200",
        ],
    },
    Known {
        contact: "3000000540",
        company: "hubspot:1000000135",
        raw: [
            None,
            Some("+44 20 7946 0177"),
            None,
            Some("Priya"),
            Some("Lindqvist"),
            Some("FR"),
            Some("50113"),
        ],
        normalised: ["", "+442079460177", "priya", "lindqvist", "fr", "50113"],
    },
];

const RAW_PROPERTIES: [&str; 7] = [
    "email",
    "phone",
    "mobilephone",
    "firstname",
    "lastname",
    "country",
    "zip",
];

impl Known {
    /// The row Google's template gets: hashed email, phone and names, country and zip in clear.
    fn row(&self) -> String {
        let hash = |v: &str| {
            if v.is_empty() {
                String::new()
            } else {
                sha256_hex(v)
            }
        };
        let [email, phone, first, last, country, zip] = self.normalised;
        format!(
            "{},{},{},{},{country},{zip}",
            hash(email),
            hash(phone),
            hash(first),
            hash(last)
        )
    }
}

on_both_backends!(a_google_audience_comes_from_hubspot_contacts_hashed_and_nothing_raw_is_kept);

async fn a_google_audience_comes_from_hubspot_contacts_hashed_and_nothing_raw_is_kept(db: Database) {
    let crm = hubspot(ACCOUNTS, SEED).await;
    let contacts = crm_contacts(&crm.base_url()).await;
    for k in &KNOWN {
        let c = contacts
            .iter()
            .find(|c| c["id"] == k.contact)
            .unwrap_or_else(|| panic!("the emulator holds contact {}", k.contact));
        for (name, raw) in RAW_PROPERTIES.iter().zip(k.raw) {
            assert_eq!(c["properties"][name].as_str(), raw, "{} {name}", k.contact);
        }
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let scheduled = dir.path().join("google-scheduled");
    let mut cfg = Config::new(db.url(), &crm.base_url());
    cfg.extra = format!(
        "[[exports.audiences]]\nname = \"google-top\"\ntiers = [\"tier_1\", \"tier_2\"]\n\
         format = \"google-customer-match\"\ndirectory = \"{}\"\n",
        scheduled.display()
    );
    let config = cfg.write(dir.path());
    let (code, sync) = sync_once("full", dir.path(), &config, &["--job", "full"]).await;
    assert_eq!(code, 0, "{}", sync.output());

    // The companies of the known contacts are tiered (a changed model would say so here).
    let store = db.store().await;
    let tier_of: std::collections::BTreeMap<String, String> = tierd_e2e::harness::store_accounts(&store)
        .await
        .into_iter()
        .map(|a| (a.id, a.tier.as_str().to_string()))
        .collect();
    let tiered: BTreeSet<String> = tier_of
        .iter()
        .filter(|(_, t)| t.as_str() != "untiered")
        .map(|(id, _)| id.clone())
        .collect();
    store.close().await;
    for k in &KNOWN {
        assert!(tiered.contains(k.company), "{} is tiered: {tiered:?}", k.company);
    }

    // The audience written after the run: Tier 1 and 2 only, in Google's template.
    let after_run = std::fs::read_to_string(scheduled.join("full.csv")).expect("the scheduled audience");
    assert_eq!(after_run.lines().next(), Some(GOOGLE_HEADER));
    // A known contact is in it exactly when its company is in Tier 1 or 2.
    let mut in_audience = 0;
    for k in &KNOWN {
        let top = matches!(tier_of[k.company].as_str(), "tier_1" | "tier_2");
        in_audience += usize::from(top);
        assert_eq!(
            after_run.lines().any(|l| l == k.row()),
            top,
            "{} of {} ({}): {after_run}",
            k.contact,
            k.company,
            tier_of[k.company]
        );
    }
    assert!(in_audience > 0, "a known contact of a Tier 1 or 2 company");

    let out = dir.path().join("google");
    let args = |name: &'static str| {
        vec![
            "export",
            "audience",
            "--tier",
            "tier_1,tier_2,tier_3",
            "--format",
            "google-customer-match",
            "--output",
            name,
        ]
    };
    let export = run("export", dir.path(), &config, &args("google")).await;
    let full = std::fs::read_to_string(out.join("full.csv")).expect("full.csv");
    let mut lines = full.lines();
    assert_eq!(lines.next(), Some(GOOGLE_HEADER));
    let rows: BTreeSet<&str> = lines.collect();
    // Tier 3's contacts are in this export and were not in the scheduled Tier 1-2 audience.
    assert!(
        after_run.lines().count() - 1 < rows.len(),
        "the scheduled audience leaves Tier 3 out"
    );
    for k in &KNOWN {
        assert!(
            rows.contains(k.row().as_str()),
            "{}: {}\n{full}",
            k.contact,
            k.row()
        );
    }
    let first = export.stdout();
    assert!(
        first.contains(&format!("{n} rows ({n} added, 0 removed)", n = rows.len())),
        "{first}"
    );
    // Again: the state diffed against holds the same hashes, so nothing is added or removed.
    let again = run("again", dir.path(), &config, &args("google")).await;
    assert!(
        again
            .stdout()
            .contains(&format!("{} rows (0 added, 0 removed)", rows.len())),
        "{}",
        again.stdout()
    );

    // No raw email or phone of any contact, nor its normalised form, is kept or printed.
    let mut personal: Vec<String> = Vec::new();
    for c in &contacts {
        for name in ["email", "phone", "mobilephone"] {
            if let Some(v) = c["properties"][name].as_str() {
                personal.push(v.trim().to_string());
                personal.push(v.trim().to_lowercase());
            }
        }
    }
    personal.extend(
        KNOWN
            .iter()
            .flat_map(|k| k.normalised[..2].iter().map(|v| v.to_string())),
    );
    personal.retain(|v| !v.is_empty());
    assert!(personal.len() > 100, "{}", personal.len());
    let store_text = store_text(&db).await;
    assert!(
        store_text.contains("trient-labs-3l.com"),
        "the scan reads the stored accounts"
    );
    let mut places = vec![
        ("the store".to_string(), store_text),
        ("the sync's logs".to_string(), sync.output()),
        ("the export's logs".to_string(), export.output()),
        ("the second export's logs".to_string(), again.output()),
    ];
    for audience in [&scheduled, &out] {
        for file in ["full.csv", "adds.csv", "removes.csv", ".tierd-audience.jsonl"] {
            let path = audience.join(file);
            let text = std::fs::read_to_string(&path).expect("an audience file");
            places.push((path.display().to_string(), text));
        }
    }
    for (place, text) in &places {
        for value in &personal {
            assert!(!text.contains(value.as_str()), "{place} holds {value}");
        }
    }
    crm.shutdown().await;
}
