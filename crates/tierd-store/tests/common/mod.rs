//! A fresh database per test, on either backend: a SQLite file in a temporary directory, or a
//! PostgreSQL schema of its own (`tierd_test_support::postgres::Schema`, dropped afterwards) so
//! tests run in parallel without seeing each other. When PostgreSQL cannot be reached the
//! PostgreSQL half of a test is skipped with a note, except under CI, where that is a failure.

use std::hash::Hasher;
use std::path::PathBuf;

use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tempfile::TempDir;
use tierd_store::Store;
use tierd_test_support::postgres::Schema;

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
    Sqlite { _dir: TempDir, path: PathBuf },
    Postgres(Box<Schema>),
}

/// One test's database and a store opened on it.
pub struct TestDb {
    pub store: Store,
    target: Target,
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
        let target = Target::Postgres(Box::new(Schema::create("t").await?));
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
            Target::Postgres(schema) => schema.name().to_string(),
        };
        // FNV-1a: stable and good enough to keep concurrent tests apart.
        let mut h = fnv::FnvHasher::default();
        h.write(name.as_bytes());
        i64::from_ne_bytes(h.finish().to_ne_bytes())
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
            Target::Postgres(schema) => {
                let mut conn = PgConnection::connect_with(&schema.options())
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::raw_sql(sql).execute(&mut conn).await.expect("run raw SQL");
                let _ = conn.close().await;
            }
        }
    }

    /// On PostgreSQL, the tables of this test's schema that have a foreign key, sorted; `None` on
    /// SQLite.
    pub async fn postgres_tables_with_foreign_keys(&self) -> Option<Vec<String>> {
        let Target::Postgres(schema) = &self.target else {
            return None;
        };
        let mut conn = PgConnection::connect_with(&schema.options())
            .await
            .expect("connect to PostgreSQL");
        let tables = sqlx::query_scalar(
            "SELECT DISTINCT c.relname::text FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE k.contype = 'f' AND n.nspname = current_schema() ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("read the foreign keys");
        let _ = conn.close().await;
        Some(tables)
    }

    /// The search indexes of `accounts` (`accounts_by_lower_*`, by name) as the database keeps
    /// their definitions.
    pub async fn search_indexes(&self) -> Vec<String> {
        match &self.target {
            Target::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
                    .await
                    .expect("open the SQLite file");
                let defs = sqlx::query_scalar(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'accounts_by_lower_%' ORDER BY name",
                )
                .fetch_all(&mut conn)
                .await
                .expect("read the indexes");
                let _ = conn.close().await;
                defs
            }
            Target::Postgres(schema) => {
                let mut conn = PgConnection::connect_with(&schema.options())
                    .await
                    .expect("connect to PostgreSQL");
                let defs = sqlx::query_scalar(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()
                     AND indexname LIKE 'accounts\\_by\\_lower\\_%' ORDER BY indexname",
                )
                .fetch_all(&mut conn)
                .await
                .expect("read the indexes");
                let _ = conn.close().await;
                defs
            }
        }
    }
}

async fn open(target: &Target) -> Result<Store, tierd_store::StoreError> {
    match target {
        Target::Sqlite { path, .. } => Store::connect(&format!("sqlite://{}", path.display())).await,
        Target::Postgres(schema) => Store::connect_postgres(schema.options()).await,
    }
}
