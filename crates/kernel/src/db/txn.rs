//! [`Txn`]: a transaction begun on a [`Db`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use sea_orm::{
    AccessMode, ActiveModelTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr,
    EntityTrait, ExecResult, IsolationLevel, QueryResult, QueryTrait, Statement, TransactionError,
    TransactionOptions, TransactionSession, TransactionTrait,
};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::writer::{Batch, Held, Ran, Writer};
use super::{Db, exec_err, query_err};

/// A transaction on a [`Db`]: SeaORM's on PostgreSQL; on SQLite one on the writer the [`Db`]
/// owns (see the notes of `db/writer.rs`). Committed with [`Txn::commit`]; rolled back when
/// dropped otherwise. [`TransactionTrait::begin`] on it opens a savepoint.
pub struct Txn(Kind);

enum Kind {
    Pool(DatabaseTransaction),
    Writer(OnWriter),
}

/// A transaction or savepoint on SQLite's writer, which it and its savepoints share.
struct OnWriter {
    lent: Arc<Mutex<Lent>>,
    db: Db,
    /// 1 for the transaction, 2 for a savepoint in it, and so on.
    level: usize,
    /// Not yet committed or rolled back.
    open: bool,
}

/// The writer, as a transaction has it.
enum Lent {
    /// Not taken yet: a transaction takes the writer with its first statement (or savepoint,
    /// or the commit of its deferred writes), so that the time it holds the writer is the
    /// time its statements take, not the time spent preparing them; other writes go first
    /// meanwhile. (Its `BEGIN` travels with its first statement either way, and SQLite's
    /// transaction starts there.)
    NotYet {
        /// `BEGIN`'s mode (`IMMEDIATE`…).
        mode: Option<&'static str>,
        /// Writes deferred before the writer was taken, in order.
        deferred: Vec<Statement>,
    },
    Held(Held),
}

impl Drop for OnWriter {
    fn drop(&mut self) {
        if self.open {
            // Nothing else uses the writer while this is dropped (a statement on it holds
            // `lent` only while it runs); if something did, the writer's own drop ends it.
            if let Ok(mut lent) = self.lent.try_lock()
                && let Lent::Held(held) = &mut *lent
            {
                held.abandon(self.level);
            }
        }
    }
}

impl OnWriter {
    /// SQLite's writer, which this transaction is on.
    fn writer(&self) -> &Writer {
        let Some(writer) = &self.db.0.sqlite_writer else {
            unreachable!("a transaction on the writer is on SQLite");
        };
        writer
    }

    /// The writer, taken in line if the transaction has not taken it yet.
    async fn held(&self) -> Result<MappedMutexGuard<'_, Held>, DbErr> {
        let mut lent = self.lent.lock().await;
        if let Lent::NotYet { mode, deferred } = &mut *lent {
            let mut held = self.writer().take().await?;
            held.begin(*mode);
            for stmt in std::mem::take(deferred) {
                held.defer(stmt);
            }
            *lent = Lent::Held(held);
        }
        Ok(MutexGuard::map(lent, |lent| match lent {
            Lent::Held(held) => held,
            Lent::NotYet { .. } => unreachable!("taken above"),
        }))
    }

    /// Commits a transaction of deferred writes alone (see [`Writer::commit`]).
    async fn commit_batch(&self, batch: Batch) -> Result<(), DbErr> {
        let started = self.db.0.on_statement.is_some().then(Instant::now);
        let committed = self.writer().commit(batch).await?;
        self.db
            .heard_all(&committed.sent, started, committed.res.is_err());
        committed.res.map_err(exec_err)
    }

    /// Runs `f` on the writer, and tells the [`Db`]'s `on_statement` of the deferred writes
    /// sent ahead of what `f` sent.
    async fn on_held<T>(
        &self,
        f: impl AsyncFnOnce(&mut Held) -> Result<T, sea_orm::sqlx::Error>,
    ) -> Result<T, DbErr> {
        let started = self.db.0.on_statement.is_some().then(Instant::now);
        let mut held = self.held().await?;
        let res = f(&mut held).await;
        let ahead = std::mem::take(&mut held.sent_ahead);
        drop(held);
        self.db.heard_all(&ahead, started, res.is_err());
        res.map_err(exec_err)
    }
}

impl Txn {
    pub(super) fn pool(txn: DatabaseTransaction) -> Self {
        Self(Kind::Pool(txn))
    }

    /// Begins a transaction on SQLite's writer (`BEGIN`, then `mode` if given: `IMMEDIATE`…,
    /// sent with its first statement).
    pub(super) fn on_writer(db: Db, mode: Option<&'static str>) -> Self {
        let lent = Lent::NotYet {
            mode,
            deferred: Vec::new(),
        };
        Self(Kind::Writer(OnWriter {
            lent: Arc::new(Mutex::new(lent)),
            db,
            level: 1,
            open: true,
        }))
    }

    /// Runs `stmt` in this transaction, a write whose answer nobody reads and which fails only
    /// when the database does (an audit entry, an outbox event): on PostgreSQL now; on
    /// SQLite's writer with the transaction's next statement or its commit, which saves a
    /// round trip to the connection while the writer is held. If it fails, that statement (or
    /// the commit) fails with its error, and the transaction with it.
    pub async fn defer(&self, stmt: Statement) -> Result<(), DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.execute_raw(stmt).await.map(drop),
            Kind::Writer(w) => {
                match &mut *w.lent.lock().await {
                    Lent::NotYet { deferred, .. } => deferred.push(stmt),
                    Lent::Held(held) => held.defer(stmt),
                }
                Ok(())
            }
        }
    }

    /// Inserts `row` in this transaction as a deferred write (see [`Txn::defer`]): for rows
    /// whose every value the caller knows, so that nothing needs reading back.
    pub async fn defer_insert<A>(&self, row: A) -> Result<(), DbErr>
    where
        A: ActiveModelTrait + Send,
    {
        let insert = <A::Entity as EntityTrait>::insert(row).build(self.get_database_backend());
        self.defer(insert).await
    }

    /// Commits the transaction (or releases the savepoint).
    pub async fn commit(self) -> Result<(), DbErr> {
        match self.0 {
            Kind::Pool(txn) => txn.commit().await,
            Kind::Writer(mut w) => {
                w.open = false;
                let batch = match &mut *w.lent.lock().await {
                    Lent::NotYet { mode, deferred } => Some(Batch {
                        mode: *mode,
                        stmts: std::mem::take(deferred),
                    }),
                    Lent::Held(_) => None,
                };
                match batch {
                    // Nothing sent, nothing to send.
                    Some(batch) if batch.stmts.is_empty() => Ok(()),
                    // Nothing sent, all of it deferred: committed by the writer's committer.
                    Some(batch) => w.commit_batch(batch).await,
                    None => {
                        let level = w.level;
                        w.on_held(async |held| held.commit(level).await).await
                    }
                }
            }
        }
    }

    /// Rolls the transaction (or the savepoint) back.
    pub async fn rollback(self) -> Result<(), DbErr> {
        match self.0 {
            Kind::Pool(txn) => txn.rollback().await,
            Kind::Writer(mut w) => {
                w.open = false;
                if let Lent::NotYet { .. } = &*w.lent.lock().await {
                    return Ok(());
                }
                let level = w.level;
                w.on_held(async |held| held.rollback(level).await).await
            }
        }
    }

    /// A savepoint inside this transaction.
    async fn savepoint(&self) -> Result<Self, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.begin().await.map(Self::pool),
            Kind::Writer(w) => {
                let level = w.on_held(async |held| {
                    held.savepoint().await?;
                    Ok(held.depth())
                });
                let level = level.await?;
                Ok(Self(Kind::Writer(OnWriter {
                    lent: w.lent.clone(),
                    db: w.db.clone(),
                    level,
                    open: true,
                })))
            }
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Txn {
    fn get_database_backend(&self) -> DatabaseBackend {
        match &self.0 {
            Kind::Pool(txn) => txn.get_database_backend(),
            Kind::Writer(_) => DatabaseBackend::Sqlite,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.execute_raw(stmt).await,
            Kind::Writer(w) => {
                on_writer!(
                    w.db,
                    w.held().await?,
                    &stmt,
                    |ran: Ran| ExecResult::from(ran.done),
                    exec_err
                )
            }
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.execute_unprepared(sql).await,
            Kind::Writer(w) => {
                let ran = w.on_held(async |held| held.execute_unprepared(sql).await);
                ran.await.map(|ran| ExecResult::from(ran.done))
            }
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.query_one_raw(stmt).await,
            Kind::Writer(w) => {
                let one = |ran: Ran| ran.rows.into_iter().next().map(QueryResult::from);
                on_writer!(w.db, w.held().await?, &stmt, one, query_err)
            }
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.query_all_raw(stmt).await,
            Kind::Writer(w) => {
                let all = |ran: Ran| ran.rows.into_iter().map(QueryResult::from).collect();
                on_writer!(w.db, w.held().await?, &stmt, all, query_err)
            }
        }
    }
}

#[async_trait::async_trait]
impl TransactionSession for Txn {
    async fn commit(self) -> Result<(), DbErr> {
        Txn::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        Txn::rollback(self).await
    }
}

/// Runs `callback` in `txn`, committing it when the callback succeeds and rolling it back
/// when it fails.
pub(super) async fn run_in<F, T, E>(
    txn: Result<Txn, DbErr>,
    callback: F,
) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    let txn = txn.map_err(TransactionError::Connection)?;
    match callback(&txn).await {
        Ok(done) => {
            txn.commit().await.map_err(TransactionError::Connection)?;
            Ok(done)
        }
        Err(e) => {
            txn.rollback().await.map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(e))
        }
    }
}

/// [`TransactionTrait`] on a [`Txn`]: every transaction begun inside it is a savepoint (the
/// isolation level and access mode are the outer transaction's).
#[async_trait::async_trait]
impl TransactionTrait for Txn {
    type Transaction = Txn;

    async fn begin(&self) -> Result<Txn, DbErr> {
        self.savepoint().await
    }

    async fn begin_with_config(
        &self,
        _isolation_level: Option<IsolationLevel>,
        _access_mode: Option<AccessMode>,
    ) -> Result<Txn, DbErr> {
        self.savepoint().await
    }

    async fn begin_with_options(&self, _options: TransactionOptions) -> Result<Txn, DbErr> {
        self.savepoint().await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        run_in(self.savepoint().await, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        _isolation_level: Option<IsolationLevel>,
        _access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        run_in(self.savepoint().await, callback).await
    }
}
