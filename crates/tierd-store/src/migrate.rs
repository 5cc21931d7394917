//! The schema's migrations and the small runner that applies them.
//!
//! Migrations are SQL files embedded per backend (`migrations/{sqlite,postgres}/NNNN_name.sql`),
//! numbered from 1 with no gaps; both backends always have the same list. `schema_migrations`
//! records which ran. All pending migrations apply in one transaction (both backends have
//! transactional DDL), so a failed upgrade leaves the schema as it was. On PostgreSQL a
//! transaction-scoped advisory lock makes instances starting together migrate one after the
//! other; on SQLite `BEGIN IMMEDIATE` does the same.

use crate::error::StoreError;
use crate::row::WritePool;
use crate::{with_pool, Store, Timestamp};

/// One migration: version, name, SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "tier_basis",
        sqlite: include_str!("../migrations/sqlite/0002_tier_basis.sql"),
        postgres: include_str!("../migrations/postgres/0002_tier_basis.sql"),
    },
    Migration {
        version: 3,
        name: "work_results",
        sqlite: include_str!("../migrations/sqlite/0003_work_results.sql"),
        postgres: include_str!("../migrations/postgres/0003_work_results.sql"),
    },
    Migration {
        version: 4,
        name: "webhooks",
        sqlite: include_str!("../migrations/sqlite/0004_webhooks.sql"),
        postgres: include_str!("../migrations/postgres/0004_webhooks.sql"),
    },
    Migration {
        version: 5,
        name: "reports",
        sqlite: include_str!("../migrations/sqlite/0005_reports.sql"),
        postgres: include_str!("../migrations/postgres/0005_reports.sql"),
    },
    Migration {
        version: 6,
        name: "deals",
        sqlite: include_str!("../migrations/sqlite/0006_deals.sql"),
        postgres: include_str!("../migrations/postgres/0006_deals.sql"),
    },
    Migration {
        version: 7,
        name: "shadow",
        sqlite: include_str!("../migrations/sqlite/0007_shadow.sql"),
        postgres: include_str!("../migrations/postgres/0007_shadow.sql"),
    },
    Migration {
        version: 8,
        name: "account_texts",
        sqlite: include_str!("../migrations/sqlite/0008_account_texts.sql"),
        postgres: include_str!("../migrations/postgres/0008_account_texts.sql"),
    },
    Migration {
        version: 9,
        name: "account_reasons",
        sqlite: include_str!("../migrations/sqlite/0009_account_reasons.sql"),
        postgres: include_str!("../migrations/postgres/0009_account_reasons.sql"),
    },
    Migration {
        version: 10,
        name: "texts_lz4",
        sqlite: include_str!("../migrations/sqlite/0010_texts_lz4.sql"),
        postgres: include_str!("../migrations/postgres/0010_texts_lz4.sql"),
    },
    Migration {
        version: 11,
        name: "hot_checks",
        sqlite: include_str!("../migrations/sqlite/0011_hot_checks.sql"),
        postgres: include_str!("../migrations/postgres/0011_hot_checks.sql"),
    },
];

/// The schema version this build creates and understands.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Any fixed number: only tierd's migrations take this transaction-scoped lock.
const MIGRATION_LOCK_KEY: i64 = 0x7469_6572_645f_6d67; // "tierd_mg"

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

impl Store {
    /// Brings the schema to [`latest_version`]; does nothing when it is there already.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let is_postgres = self.is_shared();
        let known = latest_version();
        let applied: Vec<(i64, &'static str)> = with_pool!(self, pool => {
            let mut tx = pool.begin_write(&self.turn).await.map_err(|source| StoreError::Migrate {
                version: known,
                name: "begin",
                source,
            })?;
            if is_postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StoreError::Migrate { version: known, name: "lock", source })?;
            }
            sqlx::query(CREATE_TABLE)
                .execute(&mut *tx)
                .await
                .map_err(|source| StoreError::Migrate { version: 0, name: "schema_migrations", source })?;
            let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&mut *tx)
                .await
                .map_err(|source| StoreError::Migrate { version: 0, name: "schema_migrations", source })?;
            if current > known {
                return Err(StoreError::NewerSchema { found: current, known });
            }
            let mut applied = Vec::new();
            for m in MIGRATIONS.iter().filter(|m| m.version > current) {
                let sql = if is_postgres { m.postgres } else { m.sqlite };
                let failed = |source| StoreError::Migrate { version: m.version, name: m.name, source };
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(failed)?;
                sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(Timestamp::now().millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                applied.push((m.version, m.name));
            }
            // A first load puts the search indexes off until its accounts are in
            // (`Store::defer_search_indexes`); one that stopped half-way left them missing.
            for sql in crate::reports::build_search_indexes_sql(is_postgres) {
                sqlx::query(&sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StoreError::Migrate { version: known, name: "search indexes", source })?;
            }
            tx.commit().await.map_err(|source| StoreError::Migrate { version: known, name: "commit", source })?;
            applied
        });
        for (version, name) in applied {
            tracing::info!(
                backend = self.backend_name(),
                version,
                name,
                "store schema migrated"
            );
        }
        Ok(())
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        with_pool!(self, pool => sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(pool)
            .await)
        .map_err(crate::error::query_error(
            "read the schema version",
            "schema_migrations",
        ))
    }
}

#[cfg(test)]
mod numbering {
    use super::MIGRATIONS;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        // A store at version N never applies a migration numbered below N later, so a gap left by
        // two branches each taking "the next number" would skip one on upgrade.
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "migration {} ({})", m.version, m.name);
            assert!(!m.sqlite.is_empty() && !m.postgres.is_empty(), "{}", m.name);
        }
    }
}

/// A store made before a migration keeps its data through it.
#[cfg(test)]
mod upgrade {
    use sqlx::Connection as _;

    use super::{CREATE_TABLE, MIGRATIONS};
    use crate::Store;

    /// Version 7's `accounts` row: its facts and explanation were columns of it.
    const ACCOUNT_AT_7: &str = r#"INSERT INTO accounts (id, name, domain, facts, facts_hash, score, coverage, tier,
        explanation, model_version, scored_at, base_tier, tiered)
        VALUES ('a', 'Acme', 'acme.example', '{"firmographic.industry": {"value": "Software"}}', 'h', 4.5, 0.8,
            'tier_1', '{"reasons": "industry: Software (+0.2)"}', 'm@1', 7, 'tier_1', TRUE),
        ('b', 'Bolt', NULL, '{}', 'h', 2.0, 0.5, 'untiered', '{"detail": {"reasons": "not these"}}', 'm@1', 7,
            'untiered', TRUE)"#;

    /// Applies migrations 1 to 7 with `conn`, as a build of version 7 left them, and stores one
    /// account.
    async fn at_version_7<C>(conn: &mut C, postgres: bool)
    where
        for<'c> &'c mut C: sqlx::Executor<'c>,
    {
        sqlx::raw_sql(CREATE_TABLE)
            .execute(&mut *conn)
            .await
            .expect("schema_migrations");
        for m in MIGRATIONS.iter().filter(|m| m.version <= 7) {
            let sql = if postgres { m.postgres } else { m.sqlite };
            sqlx::raw_sql(sql).execute(&mut *conn).await.expect(m.name);
            let record = format!(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({}, '{}', 0)",
                m.version, m.name
            );
            sqlx::raw_sql(&record).execute(&mut *conn).await.expect(m.name);
        }
        sqlx::raw_sql(ACCOUNT_AT_7)
            .execute(&mut *conn)
            .await
            .expect("an account at version 7");
    }

    async fn kept_its_texts(store: &Store) {
        assert_eq!(
            store.schema_version().await.expect("version"),
            super::latest_version()
        );
        let a = store
            .account("a")
            .await
            .expect("read")
            .expect("the account is still there");
        assert_eq!(
            a.facts,
            serde_json::json!({"firmographic.industry": {"value": "Software"}})
        );
        assert_eq!(
            a.explanation,
            serde_json::json!({"reasons": "industry: Software (+0.2)"})
        );
        assert_eq!(
            (a.name.as_str(), a.tier, a.score),
            ("Acme", tierd_core::Tier::Tier1, 4.5)
        );
        // Version 9 keeps each explanation's own reasons where the push reads them.
        let ids = ["a".to_string(), "b".to_string()];
        let brief = store.accounts_for_push(&ids).await.expect("read for the push");
        assert_eq!(
            brief["a"].explanation,
            serde_json::json!({"reasons": "industry: Software (+0.2)"})
        );
        assert_eq!(brief["b"].explanation, serde_json::json!({"reasons": null}));
    }

    #[tokio::test]
    async fn an_accounts_facts_and_explanation_move_to_account_texts_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v7.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connect");
        at_version_7(&mut conn, false).await;
        conn.close().await.expect("close");
        let store = Store::connect_sqlite_file(&path).await.expect("open and migrate");
        kept_its_texts(&store).await;
        store.close().await;
    }

    /// Migration 10: on a server that has lz4 (PostgreSQL 14+ built with it, as this one is when
    /// `default_toast_compression` offers it), the facts and explanation are compressed with it.
    #[tokio::test]
    async fn account_texts_are_compressed_with_lz4_where_the_server_has_it() {
        let Some(schema) = tierd_test_support::postgres::Schema::create("migrate_lz4").await else {
            return;
        };
        let store = Store::connect_postgres(schema.options())
            .await
            .expect("open and migrate");
        store.close().await;
        let mut conn = sqlx::PgConnection::connect_with(&schema.options())
            .await
            .expect("connect");
        let offered: Option<Vec<String>> =
            sqlx::query_scalar("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
                .fetch_optional(&mut conn)
                .await
                .expect("read the server's compression methods");
        let want = if offered.unwrap_or_default().iter().any(|m| m == "lz4") {
            "l"
        } else {
            ""
        };
        for column in ["facts", "explanation"] {
            let method: String = sqlx::query_scalar(
                "SELECT attcompression::text FROM pg_attribute
                 WHERE attrelid = 'account_texts'::regclass AND attname = $1",
            )
            .bind(column)
            .fetch_one(&mut conn)
            .await
            .expect("read the column's compression");
            assert_eq!(method.trim_matches('\0'), want, "{column}");
        }
        conn.close().await.expect("close");
    }

    #[tokio::test]
    async fn an_accounts_facts_and_explanation_move_to_account_texts_on_postgres() {
        let Some(schema) = tierd_test_support::postgres::Schema::create("migrate_texts").await else {
            return;
        };
        let mut conn = sqlx::PgConnection::connect_with(&schema.options())
            .await
            .expect("connect");
        at_version_7(&mut conn, true).await;
        conn.close().await.expect("close");
        let store = Store::connect_postgres(schema.options())
            .await
            .expect("open and migrate");
        kept_its_texts(&store).await;
        store.close().await;
    }
}
