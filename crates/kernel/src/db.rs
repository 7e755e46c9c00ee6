//! The database as every service holds it ([`Db`]), its transactions ([`Txn`]), and helpers
//! shared by every repository.

/// Runs `stmt` on SQLite's writer as lent by `$held` (taken in line, or a transaction's),
/// tells `$db`'s `on_statement` (of it and of the deferred writes sent ahead of it), and
/// answers SeaORM's way, with `$ok` or `$err`. (Defined before the modules that use it.)
macro_rules! on_writer {
    ($db:expr, $held:expr, $stmt:expr, $ok:expr, $err:expr) => {{
        let started = $db.0.on_statement.is_some().then(Instant::now);
        let mut held = $held;
        let res = held.run($stmt).await;
        let ahead = std::mem::take(&mut held.sent_ahead);
        drop(held);
        let res = res.map($ok).map_err($err);
        $db.heard_all(&ahead, started, res.is_err());
        $db.heard($stmt, started, res.is_err());
        res
    }};
}

mod failure;
mod stats;
mod txn;
mod writer;

pub use failure::{UniqueKey, is_unavailable, violates};
use stats::Counted;
pub use stats::PoolStats;
pub use txn::Txn;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, Executor, Postgres, Sqlite};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, ExecResult,
    IsolationLevel, QueryResult, RuntimeErr, SqliteTransactionMode, Statement, TransactionError,
    TransactionOptions, TransactionTrait,
};

/// Called with every statement a [`Db`] runs itself, as SeaORM calls its metric callback.
pub type StatementCallback = Arc<dyn Fn(&sea_orm::metric::Info<'_>) + Send + Sync>;

/// The database as the services hold it: SeaORM's connection pool, with two changes to how
/// statements reach it.
///
/// - **PostgreSQL: a statement outside a transaction reuses a warm connection.** The pool
///   pings every connection it is given back (a round trip, and a wake-up of the server's
///   backend and of ours), so a request of two statements paid four round trips. A [`Db`]
///   keeps the connections that finished a statement cleanly and hands the most recently used
///   one to the next statement, without that ping: the connection is at rest (its statement
///   ran to the end), and the driver drains anything still pending before its next command.
///   Among them it prefers one taken from the pool on the statement's own thread: each HTTP
///   worker is a runtime of its own, a connection's socket answers to the runtime of the
///   thread that opened it (the pool opens one inside the caller's acquire), and on any other
///   thread each reply first wakes that thread, which then wakes the statement's. On 2 cores
///   that hop cost `/users/me` on PostgreSQL a sixth of its throughput. A
///   connection whose statement broke (or was abandoned by a cancelled request) goes back
///   through the pool, which tests it or closes it; one that sat warm for 30 s goes back
///   through the pool too, as idle ones are pinged before use. Transactions take their
///   connection from the pool; while it has fewer idle than callers waiting on it, warm
///   ones are given back to it first, so warm connections never starve a writer.
/// - **SQLite: reads are handed from one statement to the next directly.** The pool's ping
///   on every return is a round trip to the connection's own thread, during which the next
///   reader waits for it; here a fixed set of readers passes each connection to the
///   statement first in line as its statement ends.
/// - **SQLite: every write queues for one writer connection.** SQLite has one writer at a
///   time; with every pooled connection free to write, the rest wait in SQLite's busy
///   handler, which sleeps in growing steps and serves them in no order. Here a statement
///   that is not a `SELECT`, and every transaction, runs on the one connection the [`Db`]
///   owns for writing (`db/writer.rs`): writers wait in line for it, first come first served,
///   are handed it the moment it is free, and keep their thread while SQLite works for them.
///   Reads run on the other connections beside it (WAL), which refuse to write
///   (`query_only`), so a write that took the wrong way fails loudly instead of queueing in
///   the busy handler.
#[derive(Clone)]
pub struct Db(Arc<Shared>);

struct Shared {
    /// Every read on SQLite; transactions and [`Db::connection`]'s callers on PostgreSQL.
    pool: DatabaseConnection,
    /// SeaORM's connection that writes on SQLite, for [`Db::connection`] (migrations).
    writer: Option<DatabaseConnection>,
    /// SQLite's one writer, which every write and transaction queues for.
    sqlite_writer: Option<writer::Writer>,
    /// PostgreSQL's warm connections.
    warm: Option<Warm>,
    /// SQLite's readers.
    readers: Option<Readers>,
    on_statement: Option<StatementCallback>,
}

/// How long a connection may sit warm before it goes back through the pool's checks.
const WARM_FOR: Duration = Duration::from_secs(30);

struct Warm {
    pool: sqlx::PgPool,
    /// The most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// Callers waiting for a connection from the pool (statements that found no warm one,
    /// transactions): while there are any, a connection that finishes its statement goes back
    /// to the pool, not into `idle`.
    waiting: AtomicUsize,
}

impl Warm {
    fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            idle: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// A warm connection at rest, since its statement finished.
struct Idle {
    conn: PgLent,
    since: Instant,
}

/// A PostgreSQL connection lent to a statement, with the thread it counts as opened on: the
/// one that took it from the pool. When the pool opened it for that, it was opened there (the
/// pool opens a connection inside the caller's acquire); one the pool had idle may have been
/// opened elsewhere and counts as the taker's all the same.
struct PgLent {
    conn: PoolConnection<Postgres>,
    home: ThreadId,
}

impl std::ops::Deref for PgLent {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for PgLent {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

/// SQLite's readers: a fixed number of connections, each handed to the next statement in
/// line the moment the one before gives it back (first come, first served), with no ping on
/// the way: SQLite's connections are local, and nothing but a crash of their thread or an
/// I/O failure breaks one (then it goes back to the pool, which closes it, and the next
/// statement opens a replacement).
struct Readers {
    pool: sqlx::Pool<Sqlite>,
    /// One permit per connection that may be lent out; waiting statements queue on it.
    permits: tokio::sync::Semaphore,
    /// Connections not lent out (fewer than the permits while some are still to be opened).
    idle: Mutex<Vec<PoolConnection<Sqlite>>>,
    acquire_timeout: Duration,
    /// The permits there are.
    size: usize,
    /// Statements waiting for a permit.
    waiting: AtomicUsize,
}

/// A reader lent to one statement: its permit goes back when it is dropped, whether it was
/// given back ([`Readers::give_back`]) or its statement was abandoned (the connection then
/// goes back to the pool, which makes sure it is at rest before anyone uses it again).
struct Lent<'a> {
    conn: Option<PoolConnection<Sqlite>>,
    home: &'a Readers,
}

impl std::ops::Deref for Lent<'_> {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        self.conn
            .as_deref()
            .unwrap_or_else(|| unreachable!("lent until dropped"))
    }
}

impl std::ops::DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("lent until dropped"))
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        drop(self.conn.take());
        self.home.permits.add_permits(1);
    }
}

impl Readers {
    fn new(pool: sqlx::Pool<Sqlite>) -> Self {
        let size = pool.options().get_max_connections() as usize;
        Self {
            acquire_timeout: pool.options().get_acquire_timeout(),
            permits: tokio::sync::Semaphore::new(size.max(1)),
            idle: Mutex::new(Vec::with_capacity(size)),
            pool,
            size: size.max(1),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The next free reader, in line behind the statements already waiting; unavailable past
    /// the acquire timeout.
    async fn take(&self) -> Result<Lent<'_>, DbErr> {
        let waiting = Counted::enter(&self.waiting);
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await;
        drop(waiting);
        let permit = permit
            .map_err(|_| DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))?
            .map_err(|_| DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed))?;
        permit.forget();
        let mut lent = Lent {
            conn: None,
            home: self,
        };
        let idle = lock(&self.idle).pop();
        lent.conn = Some(match idle {
            Some(conn) => conn,
            None => self.pool.acquire().await.map_err(acquire_err)?,
        });
        Ok(lent)
    }

    /// Keeps `lent`'s connection for the next statement unless its statement ended in a
    /// failure that may have broken it ([`sqlite_sound_after`]).
    fn give_back<T>(&self, mut lent: Lent<'_>, res: &Result<T, sqlx::Error>) {
        let sound = res.as_ref().err().is_none_or(sqlite_sound_after);
        if let Some(mut conn) = lent.conn.take() {
            if sound {
                lock(&self.idle).push(conn);
            } else {
                conn.close_on_drop();
            }
        }
    }
}

/// Whether a PostgreSQL connection whose statement failed with `err` is still sound: the
/// server refused the one statement and the session goes on, unless it ended the session (a
/// `FATAL` or `PANIC`).
fn pg_sound_after(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::RowNotFound => true,
        sqlx::Error::Database(e) => e
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|e| {
                !matches!(
                    e.severity(),
                    sqlx::postgres::PgSeverity::Fatal | sqlx::postgres::PgSeverity::Panic
                )
            }),
        _ => false,
    }
}

/// Whether an SQLite connection whose statement failed with `err` is still sound: SQLite's
/// refusals (a constraint, a busy writer, a malformed statement) leave it as it was; a
/// crashed worker or an I/O failure do not.
pub(crate) fn sqlite_sound_after(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::RowNotFound | sqlx::Error::Database(_))
}

impl Db {
    /// A [`Db`] over `pool` on PostgreSQL; on SQLite over `pool` for reads, with every write
    /// through one connection of its own, opened as `writer`'s are (`writer`, a pool of one
    /// connection, serves [`Db::connection`]; `pool`'s should be `query_only`).
    /// `on_statement` hears of every statement the [`Db`] runs itself (SeaORM's connections
    /// tell their own metric callback of the rest).
    #[must_use]
    pub fn new(
        pool: DatabaseConnection,
        writer: Option<DatabaseConnection>,
        on_statement: Option<StatementCallback>,
    ) -> Self {
        let backend = pool.get_database_backend();
        let warm = (backend == DatabaseBackend::Postgres)
            .then(|| Warm::new(pool.get_postgres_connection_pool().clone()));
        let readers = (backend == DatabaseBackend::Sqlite)
            .then(|| Readers::new(pool.get_sqlite_connection_pool().clone()));
        let sqlite_writer = writer
            .as_ref()
            .filter(|w| w.get_database_backend() == DatabaseBackend::Sqlite)
            .map(|w| {
                let own = w.get_sqlite_connection_pool();
                writer::Writer::new(
                    (*own.connect_options()).clone(),
                    own.options().get_acquire_timeout(),
                )
            });
        Self(Arc::new(Shared {
            pool,
            writer,
            sqlite_writer,
            warm,
            readers,
            on_statement,
        }))
    }

    /// SeaORM's connection that writes: for migrations, which need SeaORM's own type. (On
    /// SQLite it is not the writer every other write queues for: nothing may write through it
    /// while the [`Db`] serves.)
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        self.0.writer.as_ref().unwrap_or(&self.0.pool)
    }

    /// SQLite's readers, when `stmt` only reads.
    fn sqlite_reader(&self, stmt: &Statement) -> Option<&Readers> {
        self.0.readers.as_ref().filter(|_| is_read(&stmt.sql))
    }

    /// Runs `begin`, which takes a connection from the pool, so that warm connections never
    /// keep it waiting ([`Warm::for_pool`]).
    async fn waiting_on_pool<T>(&self, begin: impl Future<Output = T>) -> T {
        match &self.0.warm {
            Some(warm) => warm.for_pool(begin).await,
            None => begin.await,
        }
    }

    /// [`heard`](Self::heard) for each of `stmts`, sent together.
    fn heard_all(&self, stmts: &[Statement], started: Option<Instant>, failed: bool) {
        for stmt in stmts {
            self.heard(stmt, started, failed);
        }
    }

    /// Tells `on_statement` of `stmt`, taken at `started`, and whether it failed.
    fn heard(&self, stmt: &Statement, started: Option<Instant>, failed: bool) {
        if let (Some(started), Some(callback)) = (started, &self.0.on_statement) {
            callback(&sea_orm::metric::Info {
                elapsed: started.elapsed(),
                statement: stmt,
                failed,
            });
        }
    }
}

/// Whether `sql` only reads: a `SELECT` (a `WITH` may write, so it does not count).
fn is_read(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("select"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Warm {
    /// The most recently used warm connection opened on this thread, else the most recently
    /// used one, else one from the pool.
    async fn take(&self) -> Result<PgLent, DbErr> {
        let (popped, stale) = {
            let mut idle = lock(&self.idle);
            // Those that sat warm too long (the oldest, at the front) go back through the
            // pool, which pings each on its return.
            let stale = match idle.first() {
                Some(oldest) if oldest.since.elapsed() >= WARM_FOR => {
                    let n = idle.partition_point(|w| w.since.elapsed() >= WARM_FOR);
                    idle.drain(..n).collect()
                }
                _ => Vec::new(),
            };
            let here = std::thread::current().id();
            let at = idle
                .iter()
                .rposition(|w| w.conn.home == here)
                .or_else(|| idle.len().checked_sub(1));
            (at.map(|at| idle.remove(at)), stale)
        };
        drop(stale);
        match popped {
            Some(warm) => Ok(warm.conn),
            None => self.acquire().await,
        }
    }

    async fn acquire(&self) -> Result<PgLent, DbErr> {
        let conn = self.for_pool(self.pool.acquire()).await;
        Ok(PgLent {
            conn: conn.map_err(acquire_err)?,
            home: std::thread::current().id(),
        })
    }

    /// Keeps `conn` warm after its statement ended with `res`, unless a transaction waits for
    /// the pool (it goes back to the pool then). A connection that failed for any reason but
    /// the database's refusal of the one statement (a broken socket, a protocol error, the
    /// server ending the session: [`pg_sound_after`]) goes back through the pool, which
    /// closes it.
    fn give_back<T>(&self, mut conn: PgLent, res: &Result<T, sqlx::Error>) {
        let sound = res.as_ref().err().is_none_or(pg_sound_after);
        if !sound {
            conn.conn.close_on_drop();
            return;
        }
        // Under the lock [`Warm::for_pool`] counts waiters under: either a waiter that comes
        // after this sees the connection warm and hands it to the pool, or this sees the
        // waiter and does.
        let mut idle = lock(&self.idle);
        if self.waiting.load(Ordering::Acquire) == 0 && !self.pool.is_closed() {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Runs `begin` (which takes a connection from the pool) so that warm connections never
    /// keep it waiting: while it waits, connections that finish go back to the pool, and warm
    /// ones go back now until the pool has as many idle (or on their way back) as there are
    /// callers waiting on it.
    ///
    /// Counting every waiter, not only this one, is what makes it hold under concurrency: a
    /// connection the pool shows idle may already be promised to an earlier waiter, and one
    /// handed back a moment ago is not idle yet (the pool takes it back on a task of its own).
    /// Handing back one too many costs a ping; one too few would leave a caller waiting for
    /// its acquire timeout beside a warm connection.
    async fn for_pool<T>(&self, begin: impl Future<Output = T>) -> T {
        let (_waiting, handed_back) = {
            let mut idle = lock(&self.idle);
            let waiting = Counted::enter(&self.waiting);
            let short = waiting.at_entry.saturating_sub(self.pool.num_idle());
            // The oldest first: the most recently used stay warm for the next statement.
            let n = short.min(idle.len());
            (waiting, idle.drain(..n).collect::<Vec<_>>())
        };
        drop(handed_back);
        begin.await
    }
}

fn query<DB: sqlx::Database>(
    stmt: &Statement,
) -> sqlx::query::Query<'_, DB, sea_query_sqlx::SqlxValues>
where
    sea_query_sqlx::SqlxValues: for<'q> sqlx::IntoArguments<DB>,
{
    let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(
        sqlx::AssertSqlSafe(stmt.sql.as_str()),
        sea_query_sqlx::SqlxValues(values),
    )
}

/// Runs `stmt` on a connection lent by `$lender` (PostgreSQL's [`Warm`], SQLite's
/// [`Readers`]) with `.$run(conn)` (`execute`, `fetch_optional`, `fetch_all`), gives the
/// connection back with how its statement ended, tells `on_statement`, and answers SeaORM's
/// way, with `$ok` or `$err`.
macro_rules! on_lent {
    ($db:expr, $lender:expr, $stmt:expr, $run:ident, $ok:expr, $err:expr) => {{
        let started = $db.0.on_statement.is_some().then(Instant::now);
        let mut conn = $lender.take().await?;
        let res = query($stmt).$run(&mut *conn).await;
        $lender.give_back(conn, &res);
        let res = res.map($ok).map_err($err);
        $db.heard($stmt, started, res.is_err());
        res
    }};
}

/// A failure to get a connection from a pool, SeaORM's way.
pub(crate) fn acquire_err(e: sqlx::Error) -> DbErr {
    match e {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => {
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed)
        }
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

pub(crate) fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

pub(crate) fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DatabaseBackend {
        self.0.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        if let Some(warm) = &self.0.warm {
            return on_lent!(self, warm, &stmt, execute, ExecResult::from, exec_err);
        }
        if let Some(readers) = self.sqlite_reader(&stmt) {
            return on_lent!(self, readers, &stmt, execute, ExecResult::from, exec_err);
        }
        if let Some(writer) = &self.0.sqlite_writer {
            return on_writer!(
                self,
                writer.take().await?,
                &stmt,
                |ran: writer::Ran| ExecResult::from(ran.done),
                exec_err
            );
        }
        self.connection().execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        if let Some(writer) = &self.0.sqlite_writer {
            let res = writer.take().await?.execute_unprepared(sql).await;
            return res.map(|ran| ExecResult::from(ran.done)).map_err(exec_err);
        }
        let Some(warm) = &self.0.warm else {
            return self.connection().execute_unprepared(sql).await;
        };
        let mut conn = warm.take().await?;
        let res = conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await;
        warm.give_back(conn, &res);
        res.map(ExecResult::from).map_err(exec_err)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        // One closure per branch: the rows are PostgreSQL's in one, SQLite's in the other.
        if let Some(warm) = &self.0.warm {
            let one = |row: Option<_>| row.map(QueryResult::from);
            return on_lent!(self, warm, &stmt, fetch_optional, one, query_err);
        }
        if let Some(readers) = self.sqlite_reader(&stmt) {
            let one = |row: Option<_>| row.map(QueryResult::from);
            return on_lent!(self, readers, &stmt, fetch_optional, one, query_err);
        }
        if let Some(writer) = &self.0.sqlite_writer {
            let one = |ran: writer::Ran| ran.rows.into_iter().next().map(QueryResult::from);
            return on_writer!(self, writer.take().await?, &stmt, one, query_err);
        }
        self.connection().query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if let Some(warm) = &self.0.warm {
            let all = |rows: Vec<_>| rows.into_iter().map(QueryResult::from).collect();
            return on_lent!(self, warm, &stmt, fetch_all, all, query_err);
        }
        if let Some(readers) = self.sqlite_reader(&stmt) {
            let all = |rows: Vec<_>| rows.into_iter().map(QueryResult::from).collect();
            return on_lent!(self, readers, &stmt, fetch_all, all, query_err);
        }
        if let Some(writer) = &self.0.sqlite_writer {
            let all = |ran: writer::Ran| ran.rows.into_iter().map(QueryResult::from).collect();
            return on_writer!(self, writer.take().await?, &stmt, all, query_err);
        }
        self.connection().query_all_raw(stmt).await
    }
}

/// [`TransactionTrait`] on a [`Db`]: on SQLite every transaction runs on the writer, begun
/// with `BEGIN` and the options' transaction mode (SQLite has no isolation levels or access
/// modes: its transactions are serializable), and takes it with its first statement.
#[async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = Txn;

    async fn begin(&self) -> Result<Txn, DbErr> {
        self.begin_with_options(TransactionOptions::default()).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<Txn, DbErr> {
        self.begin_with_options(TransactionOptions {
            isolation_level,
            access_mode,
            ..TransactionOptions::default()
        })
        .await
    }

    async fn begin_with_options(&self, options: TransactionOptions) -> Result<Txn, DbErr> {
        if self.0.sqlite_writer.is_some() {
            // The writer is taken with the transaction's first statement.
            let mode = options.sqlite_transaction_mode;
            return Ok(Txn::on_writer(
                self.clone(),
                mode.as_ref().map(SqliteTransactionMode::sqlite_keyword),
            ));
        }
        self.waiting_on_pool(self.connection().begin_with_options(options))
            .await
            .map(Txn::pool)
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        txn::run_in(self.begin().await, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        txn::run_in(
            self.begin_with_config(isolation_level, access_mode).await,
            callback,
        )
        .await
    }
}

/// Begins a transaction that will write.
///
/// On SQLite it starts `BEGIN IMMEDIATE`, taking the write lock up front: a deferred
/// transaction that reads and then writes can fail with `SQLITE_BUSY` without waiting when
/// another writer got in between, while an immediate one waits out `busy_timeout` in line.
/// (Through a [`Db`], writers queue for its one writer connection before that, with their
/// first statement.)
pub async fn begin_write(db: &Db) -> Result<Txn, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}
