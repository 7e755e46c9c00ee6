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

/// Whether `err` is a violation of a unique constraint (on either database).
#[must_use]
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
