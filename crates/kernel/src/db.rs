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

/// Whether `err` says the database is busy or out of reach rather than that the request is
/// wrong: no pooled connection came in time, the pool is closing, the connection broke (the
/// server restarted, a proxy dropped it: the pool replaces it), the server is shutting down
/// or not yet accepting, or SQLite's writer stayed busy past `busy_timeout`. Such a request
/// may succeed if retried, so it answers 503, not 500.
#[must_use]
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, SqlxError};
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            SqlxError::PoolTimedOut | SqlxError::PoolClosed | SqlxError::Io(_) => true,
            SqlxError::Database(db) => db.code().is_some_and(|code| {
                // SQLITE_BUSY (5) and its extended codes: the writer lock stayed taken.
                // (SQLite's codes are numbers below 10,000; PostgreSQL's are five
                // characters, and some read as numbers: 22021 & 0xff is 5 too.)
                (code.len() < 5 && code.parse::<i32>().is_ok_and(|c| c & 0xff == 5))
                    // PostgreSQL: connection exceptions (08…), and the server shutting down,
                    // crashed or starting (57P01, 57P02, 57P03).
                    || code.starts_with("08")
                    || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
    use sea_orm::{RuntimeErr, SqlxError};

    use super::*;

    /// A database's error with a code, as a driver reports it.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn failed(code: &'static str) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(SqlxError::Database(
            Box::new(Coded(code)),
        ))))
    }

    #[test]
    fn busy_and_unreachable_databases_are_unavailable_and_mistakes_are_not() {
        // SQLite's busy writer, PostgreSQL's connection failures and shutdowns.
        for code in [
            "5", "261", "517", "08006", "08003", "57P01", "57P02", "57P03",
        ] {
            assert!(is_unavailable(&failed(code)), "{code}");
        }
        let broken = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_unavailable(&DbErr::Query(RuntimeErr::SqlxError(
            Arc::new(SqlxError::Io(broken))
        ))));
        // A unique violation, a bad character, a deadlock: not the database's state. 22021
        // ends in 0x05 as a number, which once read as SQLite's busy code.
        for code in ["23505", "22021", "40P01", "2067", "19"] {
            assert!(!is_unavailable(&failed(code)), "{code}");
        }
    }
}
