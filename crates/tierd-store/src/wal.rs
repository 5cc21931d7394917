//! Keeping SQLite's write-ahead log short.
//!
//! SQLite's own checkpoint (every 1,000 pages, after a commit) copies the log into the database
//! but starts the log over only when no reader is still reading from it. A daemon's store nearly
//! always has a reader in some snapshot (a commit worker's next read, the admin API), so in a long
//! run the log was never started over: it grew by every page every commit wrote, to 13 GB beside
//! a 5 GB database by the middle of a 1M-account full run. Each new page of it was zeroed by the
//! kernel as the file grew, and every reader searched an index of it that grew as well.
//!
//! [`keep`] starts a task beside the pool that, every [`EVERY`], on a connection of its own whose
//! statements are not logged ([`keeper_options`]), runs `PRAGMA wal_checkpoint(RESTART)`: it
//! copies the log into the database, waits (up to the busy timeout) for the readers of the old
//! log to finish and starts it over; `journal_size_limit` ([`LOG_SIZE_LIMIT`]) then cuts the
//! file back. Readers are short statements, so the wait is short; a reader that holds the old
//! log past the busy timeout only puts the restart off.
//!
//! Run after the commits themselves, every few of them, the restart did not keep the log short:
//! the committing worker waited for the writer lock the other worker nearly always held, gave up
//! after the busy timeout, and the log still grew to 6 GB in a 1M-account run.
//!
//! The task does all of the store's checkpoints: its connections are opened with
//! `wal_autocheckpoint = 0`, so a commit never copies the log and syncs the database itself (651
//! syncs of 4.7 ms each in a 100k-account run, each holding up the committing worker). Each tick
//! first copies the log while the writers go on (`PASSIVE`), so the `RESTART` after it, which
//! keeps writers out while it runs, has only the pages written since to copy.
//!
//! Owns nothing of the schema; knows only a SQLite pool.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

/// How often the log is started over.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// The size the log file is cut back to when it is started over (`journal_size_limit`).
pub(crate) const LOG_SIZE_LIMIT: u64 = 64 << 20;

/// What one checkpoint did: `PRAGMA wal_checkpoint`'s row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Readers or a writer kept it from finishing.
    pub busy: bool,
    /// Pages in the log when it ran.
    pub log_pages: i64,
    /// Pages it copied into the database.
    pub copied_pages: i64,
}

/// A checkpoint of `mode` (`PASSIVE` or `RESTART`).
async fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> Result<Checkpoint, sqlx::Error> {
    let (busy, log_pages, copied_pages): (i64, i64, i64) =
        sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})"))
            .fetch_one(conn)
            .await?;
    Ok(Checkpoint {
        busy: busy != 0,
        log_pages,
        copied_pages,
    })
}

/// Copies the log into the database and starts it over, once the readers of the old log are
/// done (waiting up to the connection's busy timeout).
pub(crate) async fn restart(conn: &mut SqliteConnection) -> Result<Checkpoint, sqlx::Error> {
    checkpoint(conn, "RESTART").await
}

/// One tick of [`keep`]: what it can of the log copied beside the writers, then the rest copied
/// and the log started over ([`restart`]).
pub(crate) async fn tick(conn: &mut SqliteConnection) -> Result<Checkpoint, sqlx::Error> {
    checkpoint(conn, "PASSIVE").await?;
    restart(conn).await
}

/// The options of the keeper's own connection: the store's (`options`), without statement
/// logging. A checkpoint waits for the writer lock and for the readers as it must, for seconds in
/// a large run, and sqlx logged each one over a second as a "slow statement" warning (34 of them
/// in a 1M-account run) that an operator can do nothing about.
pub(crate) fn keeper_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options.disable_statement_logging()
}

/// Starts the checkpointer of `pool`, the only one its connections have: every [`EVERY`], a
/// [`tick`] on a connection of its own ([`keeper_options`] over the pool's `options`), whose
/// restart waits for the writer lock as any writer does (the busy timeout) beside the commits,
/// not in their way. It stops when the pool is closed.
pub(crate) fn keep(pool: SqlitePool, options: SqliteConnectOptions) {
    let options = keeper_options(options);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut conn: Option<SqliteConnection> = None;
        loop {
            every.tick().await;
            if pool.is_closed() {
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
                return;
            }
            let done = match &mut conn {
                Some(c) => tick(c).await,
                None => match options.connect().await {
                    Ok(c) => tick(conn.insert(c)).await,
                    Err(e) => Err(e),
                },
            };
            if done.is_err() {
                // Opened again at the next tick.
                conn = None;
            }
            match done {
                Ok(c) if c.busy => {
                    tracing::debug!("the SQLite log is still being read; restarting it next time")
                }
                Ok(_) => {}
                Err(_) if pool.is_closed() => return,
                Err(e) => tracing::warn!(error = %e, "cannot checkpoint the SQLite log"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::Executor as _;

    /// Ten writes of a few pages each, every one of them while a reader is in an older snapshot
    /// of the log (two readers taking turns, as a daemon's readers do), then the readers done.
    async fn writes_under_readers(writer: &mut SqliteConnection, readers: &mut [SqliteConnection; 2]) {
        for round in 0..10 {
            let (a, b) = readers.split_at_mut(1);
            let (now, before) = if round % 2 == 0 {
                (&mut a[0], &mut b[0])
            } else {
                (&mut b[0], &mut a[0])
            };
            now.execute("BEGIN").await.expect("begin");
            now.fetch_one("SELECT count(*) FROM t").await.expect("read");
            if round > 0 {
                before.execute("COMMIT").await.expect("end a read");
            }
            writer
                .execute("INSERT INTO t VALUES (randomblob(3000)), (randomblob(3000)), (randomblob(3000))")
                .await
                .expect("write");
        }
        for r in readers.iter_mut() {
            let _ = r.execute("COMMIT").await;
        }
    }

    /// A new database in WAL mode with SQLite's own checkpoint every `autocheckpoint` pages (`0`:
    /// none): its directory, a writer with table `t`, two readers and the keeper's connection.
    async fn log_under_readers(
        autocheckpoint: &str,
    ) -> (
        tempfile::TempDir,
        SqliteConnection,
        [SqliteConnection; 2],
        SqliteConnection,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", autocheckpoint.to_owned());
        let mut writer = options.connect().await.expect("writer");
        writer.execute("CREATE TABLE t (b BLOB)").await.expect("table");
        let readers = [
            options.connect().await.expect("reader"),
            options.connect().await.expect("reader"),
        ];
        let keeper = options.connect().await.expect("keeper");
        (dir, writer, readers, keeper)
    }

    #[tokio::test]
    async fn a_restart_starts_over_a_log_that_sqlite_alone_keeps_growing() {
        // SQLite's own checkpoint after every commit: the most it does alone.
        let (_dir, mut writer, mut readers, mut keeper) = log_under_readers("1").await;

        writes_under_readers(&mut writer, &mut readers).await;
        let first = restart(&mut keeper).await.expect("checkpoint");
        assert!(!first.busy, "{first:?}");
        assert_eq!(first.copied_pages, first.log_pages);
        assert!(
            first.log_pages >= 40,
            "every write's pages are still in the log: {first:?}"
        );

        // Started over: the next writes fill the log from its start.
        writes_under_readers(&mut writer, &mut readers).await;
        let second = restart(&mut keeper).await.expect("checkpoint");
        assert!(!second.busy, "{second:?}");
        assert!(
            second.log_pages <= first.log_pages + 4,
            "{first:?} then {second:?}"
        );

        // Without a restart in between, SQLite's own checkpoints leave both rounds in the log.
        writes_under_readers(&mut writer, &mut readers).await;
        writes_under_readers(&mut writer, &mut readers).await;
        let third = restart(&mut keeper).await.expect("checkpoint");
        assert!(!third.busy, "{third:?}");
        assert!(
            third.log_pages >= second.log_pages + 40,
            "{second:?} then {third:?}"
        );

        for c in readers {
            c.close().await.expect("close");
        }
        writer.close().await.expect("close");
    }

    #[tokio::test]
    async fn a_tick_copies_the_log_and_starts_it_over() {
        // As the store's connections are: no checkpoint but the keeper's.
        let (_dir, mut writer, mut readers, mut keeper) = log_under_readers("0").await;

        writes_under_readers(&mut writer, &mut readers).await;
        let first = tick(&mut keeper).await.expect("tick");
        assert!(!first.busy, "{first:?}");
        assert!(first.log_pages >= 40, "{first:?}");
        assert_eq!(first.copied_pages, first.log_pages, "all of it in the database");

        writes_under_readers(&mut writer, &mut readers).await;
        let second = tick(&mut keeper).await.expect("tick");
        assert!(!second.busy, "{second:?}");
        assert!(
            second.log_pages <= first.log_pages + 4,
            "the log was started over: {first:?} then {second:?}"
        );
        for c in readers {
            c.close().await.expect("close");
        }
        writer.close().await.expect("close");
    }

    /// What is logged at WARN or above, from every thread: sqlx logs a statement on the SQLite
    /// worker thread that ran it, so only a global subscriber sees it.
    fn warnings() -> &'static std::sync::Mutex<Vec<u8>> {
        static LOGGED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
        static INSTALL: std::sync::Once = std::sync::Once::new();
        struct Capture;
        impl std::io::Write for Capture {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                LOGGED
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| Capture)
                .with_max_level(tracing::Level::WARN)
                .with_ansi(false)
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
        &LOGGED
    }

    /// The keeper's checkpoints wait as long as they must, and are not logged as slow statements
    /// for it. Here every statement counts as slow: the store's options log it, the keeper's
    /// options over them do not.
    #[tokio::test]
    async fn the_keepers_statements_are_not_logged_as_slow() {
        let logged = warnings();
        let dir = tempfile::tempdir().expect("dir");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .log_slow_statements(log::LevelFilter::Warn, Duration::ZERO);
        let mut store = options.connect().await.expect("store connection");
        let mut keeper = keeper_options(options)
            .connect()
            .await
            .expect("keeper connection");
        store.execute("SELECT 'by the store 5e1f'").await.expect("select");
        keeper
            .execute("SELECT 'by the keeper 5e1f'")
            .await
            .expect("select");
        store.close().await.expect("close");
        keeper.close().await.expect("close");
        let text = String::from_utf8_lossy(&logged.lock().expect("log")).into_owned();
        assert!(
            text.contains("by the store 5e1f"),
            "the store's statement is logged: {text}"
        );
        assert!(!text.contains("by the keeper 5e1f"), "{text}");
    }

    /// Commits leave the log to the keeper: none of them stops to checkpoint.
    #[tokio::test]
    async fn a_file_stores_connections_do_not_checkpoint_on_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::Store::connect_sqlite_file(&dir.path().join("t.db"))
            .await
            .expect("store");
        let crate::Backend::Sqlite(pool) = &store.backend else {
            panic!("a SQLite store");
        };
        // Every connection the pool opens, not only the first.
        let mut held = Vec::new();
        for _ in 0..crate::SQLITE_MAX_CONNECTIONS {
            let mut conn = pool.acquire().await.expect("connection");
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(&mut *conn)
                .await
                .expect("pragma");
            assert_eq!(pages, 0);
            held.push(conn);
        }
    }
}
