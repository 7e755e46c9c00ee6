//! [`Txn`]: a transaction begun on a [`Db`](super::Db).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, ExecResult,
    IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions,
    TransactionSession, TransactionTrait,
};
use tokio::sync::Mutex;

use super::writer::{Held, Ran};
use super::{Db, exec_err, query_err};

/// A transaction on a [`Db`]: SeaORM's on PostgreSQL; on SQLite one on the writer the [`Db`]
/// owns (see [`writer`](super::writer)). Committed with [`Txn::commit`]; rolled back when
/// dropped otherwise. [`TransactionTrait::begin`] on it opens a savepoint.
pub struct Txn(Kind);

enum Kind {
    Pool(DatabaseTransaction),
    Writer(OnWriter),
}

/// A transaction or savepoint on SQLite's writer, which it and its savepoints share.
struct OnWriter {
    held: Arc<Mutex<Held>>,
    db: Db,
    /// 1 for the transaction, 2 for a savepoint in it, and so on.
    level: usize,
    /// Not yet committed or rolled back.
    open: bool,
}

impl Drop for OnWriter {
    fn drop(&mut self) {
        if self.open {
            // Nothing else uses the writer while this is dropped (a statement on it holds
            // `held` only while it runs); if something did, the writer's own drop ends it.
            if let Ok(mut held) = self.held.try_lock() {
                held.abandon(self.level);
            }
        }
    }
}

impl Txn {
    pub(super) fn pool(txn: DatabaseTransaction) -> Self {
        Self(Kind::Pool(txn))
    }

    /// Begins a transaction on SQLite's writer (`BEGIN`, then `mode` if given: `IMMEDIATE`…,
    /// sent with its first statement).
    pub(super) fn on_writer(db: Db, mut held: Held, mode: Option<&str>) -> Self {
        held.begin(mode);
        Self(Kind::Writer(OnWriter {
            held: Arc::new(Mutex::new(held)),
            db,
            level: 1,
            open: true,
        }))
    }

    /// Commits the transaction (or releases the savepoint).
    pub async fn commit(self) -> Result<(), DbErr> {
        match self.0 {
            Kind::Pool(txn) => txn.commit().await,
            Kind::Writer(mut w) => {
                w.open = false;
                w.held.lock().await.commit(w.level).await.map_err(exec_err)
            }
        }
    }

    /// Rolls the transaction (or the savepoint) back.
    pub async fn rollback(self) -> Result<(), DbErr> {
        match self.0 {
            Kind::Pool(txn) => txn.rollback().await,
            Kind::Writer(mut w) => {
                w.open = false;
                w.held
                    .lock()
                    .await
                    .rollback(w.level)
                    .await
                    .map_err(exec_err)
            }
        }
    }

    /// A savepoint inside this transaction.
    async fn savepoint(&self) -> Result<Self, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.begin().await.map(Self::pool),
            Kind::Writer(w) => {
                let mut held = w.held.lock().await;
                held.savepoint().await.map_err(exec_err)?;
                let level = held.depth();
                drop(held);
                Ok(Self(Kind::Writer(OnWriter {
                    held: w.held.clone(),
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
                    w.held.lock().await,
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
                let res = w.held.lock().await.execute_unprepared(sql).await;
                res.map(|ran| ExecResult::from(ran.done)).map_err(exec_err)
            }
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.query_one_raw(stmt).await,
            Kind::Writer(w) => {
                let one = |ran: Ran| ran.rows.into_iter().next().map(QueryResult::from);
                on_writer!(w.db, w.held.lock().await, &stmt, one, query_err)
            }
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.0 {
            Kind::Pool(txn) => txn.query_all_raw(stmt).await,
            Kind::Writer(w) => {
                let all = |ran: Ran| ran.rows.into_iter().map(QueryResult::from).collect();
                on_writer!(w.db, w.held.lock().await, &stmt, all, query_err)
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
