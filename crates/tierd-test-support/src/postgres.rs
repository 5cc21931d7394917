//! A PostgreSQL server for tests: found at `TIERD_TEST_POSTGRES`, else
//! `postgres://postgres@127.0.0.1:5432/test` (then user `root`). When none can be reached a
//! test's PostgreSQL half is skipped with a note, except under `CI`, where that fails it.
//!
//! Tests share the server, so each works in a [`Schema`] (or a database, for tests that need
//! database-wide state such as advisory locks) of its own, named by [`unique_name`].

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;

/// The admin URLs to try, in order.
fn candidates() -> Vec<String> {
    match std::env::var("TIERD_TEST_POSTGRES") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".to_string(),
            "postgres://root@127.0.0.1:5432/test".to_string(),
        ],
    }
}

/// The first server that accepts a connection: its admin URL and options. `None` (with a
/// note) when there is none and `CI` is unset.
///
/// # Panics
/// Under `CI`, when no server can be reached.
pub async fn reachable() -> Option<(String, PgConnectOptions)> {
    let mut last_error = String::new();
    for url in candidates() {
        let Ok(options) = PgConnectOptions::from_str(&url) else {
            // The URL may hold a password: say which variable is wrong, not what it holds.
            last_error = "TIERD_TEST_POSTGRES is not a PostgreSQL URL".into();
            continue;
        };
        match PgConnection::connect_with(&options).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Some((url, options));
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL is required under CI but unreachable: {last_error}"
    );
    eprintln!("note: PostgreSQL unreachable ({last_error}); skipping the PostgreSQL variant of this test");
    None
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A schema or database name no other test (of this process or another) uses:
/// `{prefix}_{pid}_{n}_{nanos}`.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A schema of one test's own, dropped (with everything in it) when this is dropped, even
/// after a panic.
pub struct Schema {
    admin: PgConnectOptions,
    admin_url: String,
    name: String,
}

impl Schema {
    /// Creates a fresh schema; `None` when PostgreSQL is unreachable outside CI.
    pub async fn create(prefix: &str) -> Option<Schema> {
        let (admin_url, admin) = reachable().await?;
        let name = unique_name(prefix);
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test schema");
        let _ = conn.close().await;
        Some(Schema {
            admin,
            admin_url,
            name,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection options whose search path is this schema.
    pub fn options(&self) -> PgConnectOptions {
        self.admin.clone().options([("search_path", self.name.as_str())])
    }

    /// A `postgres://` URL whose search path is this schema, for code that takes a URL.
    pub fn url(&self) -> String {
        let sep = if self.admin_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.admin_url, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside the test's runtime, where we cannot block on async work: a thread
        // with its own small runtime drops the schema, even when the test panicked.
        let dropped = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}
