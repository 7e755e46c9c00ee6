//! Database helpers shared by every repository.

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, SqlErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// Begins a transaction that will write.
///
/// On SQLite it starts `BEGIN IMMEDIATE`, taking the write lock up front: a deferred
/// transaction that reads and then writes can fail with `SQLITE_BUSY` without waiting when
/// another writer got in between, while an immediate one waits out `busy_timeout` in line.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Whether `err` says the database is busy rather than that the request is wrong: no pooled
/// connection came in time, the pool is closing, or SQLite's writer stayed busy past
/// `busy_timeout`. Such a request may succeed if retried, so it answers 503, not 500.
#[must_use]
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, SqlxError};
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            SqlxError::PoolTimedOut | SqlxError::PoolClosed => true,
            // SQLITE_BUSY (5) and its extended codes: the writer lock stayed taken.
            SqlxError::Database(db) => db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|code| code & 0xff == 5),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `err` is a violation of a unique constraint (on either database).
#[must_use]
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
