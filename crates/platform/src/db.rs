//! Opening the database named by the URL, and applying migrations.
//!
//! SQLite is tuned for a server: WAL (readers never block the writer), `busy_timeout` (writers
//! wait their turn instead of failing), foreign keys enforced, `synchronous = NORMAL` (durable
//! at every checkpoint, safe against corruption). Every write goes through one writer
//! connection, in the order the writers came ([`Db`]); transactions that write start with
//! `BEGIN IMMEDIATE` ([`tenantry_kernel::db::begin_write`]), so that even a second process on
//! the same file (a worker) makes them wait their turn rather than fail.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DbErr};
use sea_orm_migration::MigratorTrait;
use tenantry_kernel::db::{Db, StatementCallback};
use tenantry_migration::Migrator;

/// How long a caller waits for a pooled connection before giving up (a request then answers
/// 503 with `Retry-After`).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url` with a pool of at most `max_connections`, each taken within
/// `acquire_timeout` (on SQLite, that many readers, but at most two per core, beside the one
/// writer every write queues for: see [`Db`]).
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<Db, DbErr> {
    let url = normalise_sqlite_url(url);
    let sqlite = sqlite_path(&url);
    if let Some(path) = sqlite
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
    }
    let pool = |max: u32, query_only: bool| {
        let mut opts = ConnectOptions::new(url.clone());
        opts.max_connections(max)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(acquire_timeout)
            // No health ping on every checkout (a round trip on every request's path): only a
            // connection idle for 30 s, which a server, proxy or firewall may have dropped, is
            // pinged first. A statement that meets a broken connection anyway answers 503 and
            // the connection is replaced; idle connections are closed after 10 minutes.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(600))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(move |o| {
                let o = o
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
                    // No memory mapping of the file: in WAL mode a
                    // connection that sees another's commit at its next read unmaps all of
                    // it, and each unmapping stops every core to flush its address cache.
                    // With writes going on that was 9% of the server's time; without the
                    // mapping, 16 writers beside 16 readers on 2 cores write 7% more and
                    // read 18% more, and reads alone are as fast.
                    .pragma("mmap_size", "0")
                    .create_if_missing(true);
                if query_only {
                    o.pragma("query_only", "ON")
                } else {
                    o
                }
            });
        async move {
            let mut db = Database::connect(opts).await?;
            db.set_metric_callback(record);
            Ok::<_, DbErr>(db)
        }
    };
    let on_statement: StatementCallback = Arc::new(record);
    if sqlite.is_some() {
        // The writer first: it creates the file and turns on WAL, which readers need.
        let writer = pool(1, false).await?;
        let readers = pool(sqlite_readers(max_connections), true).await?;
        Ok(Db::new(readers, Some(writer), Some(on_statement)))
    } else {
        Ok(Db::new(
            pool(max_connections, false).await?,
            None,
            Some(on_statement),
        ))
    }
}

/// How many readers SQLite gets beside its writer: `max_connections`, but no more than two
/// per core. A read on SQLite is work on this machine's cores (the file is local), so readers
/// far beyond them only take turns on the cores, and among them the writer's thread waits for
/// its turn while it holds the one write lock. Two per core keep a reader busy while the
/// request that had it works on its rows. On 2 cores, 16 clients creating locations beside 16
/// listing them: 16 readers 84 writes/s (p99 258 ms) and 1,638 reads/s; 4 readers 340 writes/s
/// (72 ms) and 1,608 reads/s; 2 readers 575 writes/s (48 ms) but 1,273 reads/s, and
/// `/users/me` alone 3,645/s instead of 7,062/s.
fn sqlite_readers(max_connections: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = u32::try_from(cores.saturating_mul(2)).unwrap_or(u32::MAX);
    max_connections.clamp(1, most)
}

tokio::task_local! {
    static STATEMENTS: std::sync::Mutex<Vec<sea_orm::Statement>>;
}

/// Whether every statement is logged (`database_log_statements`).
static LOG_STATEMENTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Logs every statement the connections from [`connect`] run (target `tenantry::statements`,
/// at info: the SQL with its values written in, how long it took, whether it failed), inside
/// the span of the request that sent it. For finding out what a request costs; it writes
/// the values, so it is off unless asked for.
pub fn log_statements(enabled: bool) {
    LOG_STATEMENTS.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// Notes a statement the connection ran: in the log when asked, and for the task running it
/// when that task is recording.
fn record(info: &sea_orm::metric::Info<'_>) {
    if LOG_STATEMENTS.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(
            target: "tenantry::statements",
            elapsed_us = u64::try_from(info.elapsed.as_micros()).unwrap_or(u64::MAX),
            failed = info.failed,
            sql = %info.statement,
            "statement"
        );
    }
    let _ = STATEMENTS.try_with(|s| {
        if let Ok(mut s) = s.lock() {
            s.push(info.statement.clone());
        }
    });
}

/// Runs `work` and returns, with its output, every statement it sent through a connection
/// from [`connect`] (with their values), in order — to count round trips, and to ask the
/// database how it runs them (`EXPLAIN`).
pub async fn record_statements<F: std::future::Future>(
    work: F,
) -> (F::Output, Vec<sea_orm::Statement>) {
    STATEMENTS
        .scope(std::sync::Mutex::new(Vec::new()), async move {
            let out = work.await;
            let statements = STATEMENTS.with(|s| s.lock().map(|s| s.clone()).unwrap_or_default());
            (out, statements)
        })
        .await
}

/// Applies every pending migration.
pub async fn migrate(db: &Db) -> Result<(), DbErr> {
    Migrator::up(db.connection(), None).await
}

/// `sqlite:foo.db` and `sqlite://foo.db` both name a file; make sure a query string asks
/// for it to be created.
fn normalise_sqlite_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_both_url_forms() {
        assert_eq!(
            sqlite_path("sqlite://./data/t.db?mode=rwc"),
            Some("./data/t.db")
        );
        assert_eq!(sqlite_path("sqlite:t.db"), Some("t.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }

    #[test]
    fn sqlite_gets_at_most_two_readers_per_core_and_always_one() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = u32::try_from(cores).unwrap_or(u32::MAX);
        assert_eq!(sqlite_readers(2 * cores + 15), 2 * cores);
        assert_eq!(sqlite_readers(1), 1);
        assert_eq!(sqlite_readers(0), 1);
    }

    #[tokio::test]
    async fn a_fresh_sqlite_file_is_created_migrated_and_tuned() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/t.db", dir.path().display());
        let db = connect(&url, 2, DEFAULT_ACQUIRE_TIMEOUT).await.unwrap();
        migrate(&db).await.unwrap();
        migrate(&db).await.unwrap(); // idempotent
        use sea_orm::{ConnectionTrait, QueryResult, Statement};
        // A PRAGMA is no read, so it runs on the writer; the readers' options are the
        // writer's (`pool`), so the writer stands for both.
        let pragma = async |name: &str| -> QueryResult {
            let sql = format!("PRAGMA {name}");
            db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap()
        };
        let mode: String = pragma("journal_mode").await.try_get_by_index(0).unwrap();
        assert_eq!(mode, "wal");
        let fk = pragma("foreign_keys").await;
        assert_eq!(fk.try_get_by_index::<i32>(0).unwrap(), 1);
        let mmap = pragma("mmap_size").await;
        assert_eq!(
            mmap.try_get_by_index::<i64>(0).unwrap(),
            0,
            "no memory mapping"
        );
    }
}
