//! Running the built binary against an emulator hosted by the test process.
//!
//! The CRM is a [`HubSpotEmulator`] in the test's own runtime: the test edits records as a
//! person would, sets faults, and reads the write log directly. Only tierd runs as a child
//! process, so what is tested is the shipped binary, its config parsing, signals and exit codes.
//!
//! Every child is killed and reaped when its [`Tierd`] handle drops, so a failing assertion
//! leaves no process behind (reaping matters: tierd recognises a dead run owner by its missing
//! `/proc/PID`, which a zombie still has).
//!
//! PostgreSQL: each test gets a database of its own (`tierd_e2e_*`, dropped afterwards), not a
//! schema: leadership is a PostgreSQL advisory lock, which is per database, so daemons of two
//! tests sharing a database would elect one leader between them. The server is the one
//! `tierd_test_support::postgres::reachable` finds; when there is none the PostgreSQL variant
//! of a test is skipped with a note, except under `CI`, where that fails the test.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use tempfile::TempDir;
use tierd_core::Tier;
use tierd_emulators::{HubSpotConfig, HubSpotEmulator};
use tierd_store::{AccountSummary, Store};

use crate::tierd_bin;

/// The private-app token the emulator accepts.
pub const CRM_TOKEN: &str = "e2e-hubspot-private-app-token";
/// The admin API's bearer token.
pub const API_TOKEN: &str = "e2e-admin-api-token-0123456789";
/// The day every run scores as of, and the emulator's generator date.
pub const AS_OF: &str = "2026-11-24";
const CRM_TOKEN_ENV: &str = "TIERD_E2E_HUBSPOT_TOKEN";
const API_TOKEN_ENV: &str = "TIERD_E2E_API_TOKEN";
/// The HubSpot property tierd writes the tier to.
pub const TIER_PROPERTY: &str = "tierd_tier";

/// A HubSpot emulator with `accounts` companies from `seed`, accepting [`CRM_TOKEN`].
pub async fn hubspot(accounts: u64, seed: u64) -> HubSpotEmulator {
    let mut cfg = HubSpotConfig::unlimited(accounts, seed);
    cfg.token = CRM_TOKEN.into();
    cfg.as_of = AS_OF.into();
    HubSpotEmulator::start(cfg)
        .await
        .expect("the HubSpot emulator starts")
}

/// The HubSpot id of the emulator's `k`-th company.
pub fn company_id(k: u64) -> String {
    (1_000_000_000 + k).to_string()
}

/// The CRM's record id behind a store account id (`hubspot:123` -> `123`).
pub fn crm_id(store_id: &str) -> &str {
    store_id.split_once(':').map_or(store_id, |(_, id)| id)
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Polls `check` every 20 ms until it holds; panics naming `what` after `within`.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database of one test: a SQLite file in a temporary directory, or a PostgreSQL database
/// created for it and dropped when this drops.
pub enum Database {
    /// SQLite.
    Sqlite {
        /// Holds the file.
        dir: TempDir,
        /// `sqlite://...`.
        url: String,
    },
    /// PostgreSQL.
    Postgres {
        /// The server's maintenance URL the database was created through.
        admin: String,
        /// The database's name.
        name: String,
        /// `postgres://.../name`.
        url: String,
    },
}

impl Database {
    /// A fresh SQLite store file.
    pub fn sqlite() -> Database {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("tierd.db").display());
        Database::Sqlite { dir, url }
    }

    /// A fresh PostgreSQL database, or `None` (with a note) when the server is unreachable and
    /// `CI` is unset.
    pub async fn postgres() -> Option<Database> {
        let (admin, options) = tierd_test_support::postgres::reachable().await?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .expect("connect to PostgreSQL");
        let name = tierd_test_support::postgres::unique_name("tierd_e2e");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database (the role needs CREATEDB)");
        let _ = conn.close().await;
        let mut url = reqwest::Url::parse(&admin).expect("the admin URL parses");
        url.set_path(&format!("/{name}"));
        Some(Database::Postgres {
            admin,
            name,
            url: url.to_string(),
        })
    }

    /// The `[store] url`.
    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite { url, .. } | Database::Postgres { url, .. } => url,
        }
    }

    /// The store, opened the way tierd opens it (migrations are already applied by then).
    pub async fn store(&self) -> Store {
        Store::connect(self.url()).await.expect("open the store")
    }

    /// Where the SQLite file's directory is (also a fine place for configs and logs).
    pub fn sqlite_dir(&self) -> Option<&Path> {
        match self {
            Database::Sqlite { dir, .. } => Some(dir.path()),
            Database::Postgres { .. } => None,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Database::Postgres { admin, name, .. } = self else {
            return;
        };
        let (admin, db) = (admin.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let options = PgConnectOptions::from_str(&admin).ok()?;
                let mut conn = PgConnection::connect_with(&options).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: could not drop the test database {name}");
        }
    }
}

/// A tierd config file for one test.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[store] url`.
    pub store_url: String,
    /// The HubSpot emulator's base URL.
    pub crm_url: String,
    /// `[pipeline] batch_size`.
    pub batch_size: usize,
    /// `[pipeline] push_batch_size` (also the connector's `batch_size`, at most 100).
    pub push_batch_size: usize,
    /// `[pipeline] workers`.
    pub workers: usize,
    /// `[pipeline] stale_work_secs`.
    pub stale_work_secs: u64,
    /// `[api] listen`; `None` disables the API.
    pub api_listen: Option<String>,
    /// Extra TOML appended verbatim (e.g. `[plugins.*]`).
    pub extra: String,
}

impl Config {
    /// Small batches, no schedules, no API, no plugins.
    pub fn new(store_url: &str, crm_url: &str) -> Config {
        Config {
            store_url: store_url.into(),
            crm_url: crm_url.into(),
            batch_size: 100,
            push_batch_size: 50,
            workers: 2,
            stale_work_secs: 300,
            api_listen: None,
            extra: String::new(),
        }
    }

    /// Writes `tierd.toml` into `dir`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/model.toml");
        let api = match &self.api_listen {
            Some(listen) => format!("enabled = true\nlisten = \"{listen}\"\ntoken_env = \"{API_TOKEN_ENV}\""),
            None => "enabled = false".into(),
        };
        let text = format!(
            r#"[model]
path = "{model}"

[store]
url = "{store}"

[connector]
type = "hubspot"
base_url = "{crm}"
token_env = "{CRM_TOKEN_ENV}"
rate_limit = 0
search_rate_per_sec = 0
search_overlap_ms = 0
record_retries = 0
batch_size = {push}
retry = {{ max_attempts = 2, base_delay = 1, max_delay = 5, timeout = 5000 }}

[pipeline]
batch_size = {batch}
push_batch_size = {push}
workers = {workers}
stale_work_secs = {stale}
as_of = "{AS_OF}"

[schedule]
full = "off"
incremental = "off"

[api]
{api}

[log]
format = "human"
filter = "info,sqlx=warn"

{extra}
"#,
            model = model.display(),
            store = self.store_url,
            crm = self.crm_url,
            push = self.push_batch_size.min(100),
            batch = self.batch_size,
            workers = self.workers,
            stale = self.stale_work_secs,
            extra = self.extra,
        );
        let path = dir.join("tierd.toml");
        std::fs::write(&path, text).expect("write the config");
        path
    }
}

/// A running `tierd` child; killed and reaped on drop. Its stdout and stderr go to files in
/// the test's directory, read with [`Tierd::stdout`] and [`Tierd::stderr`].
pub struct Tierd {
    name: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Tierd {
    /// Starts `tierd --config CONFIG ARGS...`, named `name` in its log files and messages.
    pub fn spawn(name: &str, dir: &Path, config: &Path, args: &[&str]) -> Tierd {
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let child = Command::new(tierd_bin())
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("TIERD_CONFIG")
            .env_remove("RUST_LOG")
            .env(CRM_TOKEN_ENV, CRM_TOKEN)
            .env(API_TOKEN_ENV, API_TOKEN)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .expect("tierd starts");
        Tierd {
            name: name.into(),
            child,
            out,
            err,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the child")
    }

    /// Waits for it to exit; panics with its output after `within`.
    pub async fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`, then reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (through `kill`, to keep the harness free of libc).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Both streams, labelled, for assertion messages.
    pub fn output(&self) -> String {
        format!(
            "--- {0} stdout ---\n{1}\n--- {0} stderr ---\n{2}",
            self.name,
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Tierd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `tierd sync --once ARGS` to completion (within 60 s); returns the exit code and the
/// child for its output.
pub async fn sync_once(name: &str, dir: &Path, config: &Path, args: &[&str]) -> (i32, Tierd) {
    let mut all = vec!["sync", "--once"];
    all.extend_from_slice(args);
    let mut child = Tierd::spawn(name, dir, config, &all);
    let status = child.exit_within(Duration::from_secs(60)).await;
    (status.code().unwrap_or(-1), child)
}

/// Every account in the store, in id order.
pub async fn store_accounts(store: &Store) -> Vec<AccountSummary> {
    let mut out: Vec<AccountSummary> = Vec::new();
    loop {
        let after = out.last().map(|a| a.id.clone());
        let page = store
            .account_summaries(after.as_deref(), 1000)
            .await
            .expect("read the store's accounts");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Asserts that the store holds all `accounts` companies, that each one's tier was pushed,
/// and that the CRM holds exactly that tier; `except` lists CRM ids left out of the comparison
/// (a person's lock or edit).
pub async fn assert_crm_matches_store(
    crm: &HubSpotEmulator,
    store: &Store,
    accounts: u64,
    except: &[String],
) -> BTreeMap<String, Tier> {
    let summaries = store_accounts(store).await;
    assert_eq!(summaries.len() as u64, accounts, "every company is in the store");
    let mut tiers = BTreeMap::new();
    for a in summaries {
        let id = crm_id(&a.id).to_string();
        if !except.contains(&id) {
            assert_eq!(
                a.pushed_tier,
                Some(a.tier),
                "{}: the stored tier was pushed",
                a.id
            );
            assert_eq!(
                crm.property(&id, TIER_PROPERTY).as_deref(),
                Some(a.tier.as_str()),
                "{}: the CRM holds the stored tier",
                a.id
            );
        }
        tiers.insert(id, a.tier);
    }
    tiers
}

/// A client of a daemon's admin API.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// The API at `listen` (`127.0.0.1:PORT`).
    pub fn new(listen: &str) -> Api {
        Api {
            base: format!("http://{listen}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// `GET path` with the bearer token; `None` while the daemon does not answer or answers
    /// with an error status.
    pub async fn get(&self, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// `POST path` with a JSON body and the bearer token: (status, body).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .json(body)
            .send()
            .await
            .expect("the API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// This instance's role (`leader` or `standby`), once its API answers.
    pub async fn role(&self) -> Option<String> {
        let runs = self.get("/api/v1/runs").await?;
        runs["role"].as_str().map(str::to_string)
    }
}
