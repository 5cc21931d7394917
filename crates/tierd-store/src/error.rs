//! What can go wrong in the store, said for the person reading the log: the operation, the
//! table, and what to try. Connection strings appear only with their password replaced by `***`.

use std::path::PathBuf;

use crate::{RunId, RunStatus, Timestamp};

/// A failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite://...`, `sqlite::memory:` nor `postgres://...`.
    #[error(
        "cannot open the store at '{url}': expected sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
    },
    /// The directory for the SQLite file could not be created.
    #[error("cannot create the directory {} for the SQLite store: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be reached or opened.
    #[error("cannot connect to the store at '{url}': {source} (is the database running and the URL right?)")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed; the database is left at the version before it.
    #[error("cannot migrate the store to schema version {version} ({name}): {source}")]
    Migrate {
        /// The migration's version.
        version: i64,
        /// Its name.
        name: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The database was migrated by a newer tierd than this one.
    #[error(
        "the store's schema is at version {found}, newer than the {known} this tierd knows: \
         upgrade tierd or point it at another database"
    )]
    NewerSchema {
        /// The version found in `schema_migrations`.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A query failed.
    #[error("cannot {op} (table {table}): {source}")]
    Query {
        /// What was being done, e.g. "upsert account state".
        op: &'static str,
        /// The table it was done on.
        table: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Another run is still running; runs never overlap.
    #[error(
        "run {id} started by '{owner}' at {started_at} is still running; wait for it to finish, \
         or mark it interrupted if its process is gone"
    )]
    RunInProgress {
        /// The running run.
        id: RunId,
        /// The instance that started it.
        owner: String,
        /// When it started.
        started_at: Timestamp,
    },
    /// No run has this id.
    #[error("there is no run {id}")]
    UnknownRun {
        /// The id asked for.
        id: RunId,
    },
    /// The run is not running any more, so it cannot be finished (again).
    #[error("run {id} is already {status}; only a running run can be finished")]
    RunNotRunning {
        /// The run.
        id: RunId,
        /// Its status.
        status: RunStatus,
    },
    /// A push was recorded for an account the store has no state for.
    #[error(
        "cannot {op}: account '{account}' has no state in the store (commit its score in the same batch)"
    )]
    UnknownAccount {
        /// What was being done.
        op: &'static str,
        /// The account id.
        account: String,
    },
    /// The caller asked for something the store cannot do.
    #[error("cannot {op}: {detail}")]
    Invalid {
        /// What was being done.
        op: &'static str,
        /// Why it is not possible.
        detail: String,
    },
    /// A stored value does not decode (edited by hand, or written by a buggy version).
    #[error("the store holds an unreadable {table}.{column} for '{key}': {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The row's key (account id, run id...).
        key: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// The error mapper for a query: `.map_err(query_error("upsert account state", "accounts"))`.
pub(crate) fn query_error(
    op: &'static str,
    table: &'static str,
) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Query { op, table, source }
}

/// `url` with the password of its authority replaced by `***`, so it can be logged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    // The authority ends at the first '/', '?' or '#'; the userinfo at its last '@'.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return redact_query_password(url);
    };
    let userinfo = &authority[..at];
    let redacted = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    let out = format!("{}{}{}", &url[..rest_start], redacted, &rest[at..]);
    redact_query_password(&out)
}

/// Replaces the value of a `password=` query parameter, the other place libpq URLs carry one.
fn redact_query_password(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_string();
    };
    let (base, query) = url.split_at(q + 1);
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{base}{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://tierd:s3cr3t@db.example:5432/tierd"),
            "postgres://tierd:***@db.example:5432/tierd"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@host/db"),
            "postgres://u:***@host/db"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("postgres://host/db?user=u&password=hunter2&sslmode=disable"),
            "postgres://host/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(redact_url("sqlite://data/tierd.db"), "sqlite://data/tierd.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
