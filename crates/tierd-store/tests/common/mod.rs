//! A fresh database per test, on either backend: a SQLite file in a temporary directory, or a
//! PostgreSQL schema of its own (dropped afterwards) so tests run in parallel without seeing each
//! other. PostgreSQL is found at `TIERD_TEST_POSTGRES`, else `postgres://postgres@127.0.0.1:5432/test`
//! (then user `root`). When it cannot be reached the PostgreSQL half of a test is skipped with a
//! note, except under CI, where that is a failure.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tempfile::TempDir;
use tierd_store::Store;

/// Runs the test body `$name(db: TestDb)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::TestDb::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

enum Target {
    Sqlite {
        _dir: TempDir,
        path: PathBuf,
    },
    Postgres {
        admin: Box<PgConnectOptions>,
        schema: String,
    },
}

/// One test's database and a store opened on it.
pub struct TestDb {
    pub store: Store,
    target: Target,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

async fn reachable_admin() -> Option<PgConnectOptions> {
    let urls: Vec<String> = match std::env::var("TIERD_TEST_POSTGRES") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".to_string(),
            "postgres://root@127.0.0.1:5432/test".to_string(),
        ],
    };
    let mut last_error = String::new();
    for url in &urls {
        let Ok(options) = PgConnectOptions::from_str(url) else {
            last_error = format!("'{}' is not a PostgreSQL URL", tierd_store::redact_url(url));
            continue;
        };
        match PgConnection::connect_with(&options).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Some(options);
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL is required under CI but unreachable: {last_error}"
    );
    eprintln!("note: PostgreSQL unreachable ({last_error}); skipping the PostgreSQL half of this test");
    None
}

impl TestDb {
    /// A new SQLite file in a new temporary directory (in a subdirectory, to check it is created).
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("data").join("tierd.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open the SQLite store");
        TestDb {
            store,
            target: Target::Sqlite { _dir: dir, path },
        }
    }

    /// A new schema in the test database, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let admin = reachable_admin().await?;
        let schema = format!("t_{}", unique_suffix());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .expect("create the test schema");
        let _ = conn.close().await;
        let target = Target::Postgres {
            admin: Box::new(admin),
            schema,
        };
        let store = open(&target).await.expect("open the PostgreSQL store");
        Some(TestDb { store, target })
    }

    /// A second, independent store on the same database: what a restarted process (or another
    /// instance) opens.
    pub async fn reopen(&self) -> Result<Store, tierd_store::StoreError> {
        open(&self.target).await
    }

    /// A number unique to this database, for advisory lock keys: locks are server-wide, and other
    /// tests (and other crates' tests) share the server.
    pub fn unique_key(&self) -> i64 {
        let name = match &self.target {
            Target::Sqlite { path, .. } => path.display().to_string(),
            Target::Postgres { schema, .. } => schema.clone(),
        };
        // FNV-1a: stable and good enough to keep concurrent tests apart.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        i64::from_ne_bytes(h.to_ne_bytes())
    }

    /// Runs `sql` on the database directly, behind the store's back.
    pub async fn execute_raw(&self, sql: &str) {
        match &self.target {
            Target::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
                    .await
                    .expect("open the SQLite file");
                sqlx::raw_sql(sql).execute(&mut conn).await.expect("run raw SQL");
                let _ = conn.close().await;
            }
            Target::Postgres { admin, schema } => {
                let mut conn = PgConnection::connect_with(&schema_options(admin, schema))
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::raw_sql(sql).execute(&mut conn).await.expect("run raw SQL");
                let _ = conn.close().await;
            }
        }
    }
}

fn schema_options(admin: &PgConnectOptions, schema: &str) -> PgConnectOptions {
    admin.clone().options([("search_path", schema)])
}

async fn open(target: &Target) -> Result<Store, tierd_store::StoreError> {
    match target {
        Target::Sqlite { path, .. } => Store::connect(&format!("sqlite://{}", path.display())).await,
        Target::Postgres { admin, schema } => Store::connect_postgres(schema_options(admin, schema)).await,
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Target::Postgres { admin, schema } = &self.target else {
            return;
        };
        let (admin, schema) = (admin.as_ref().clone(), schema.clone());
        // Drop runs inside the test's runtime, where we cannot block on async work: use a thread
        // with its own small runtime, so the schema goes even when the test panicked.
        let dropped = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}
