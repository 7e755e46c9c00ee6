//! What a database's failure says: that it is only unavailable for now, or which unique key
//! a statement ran into.

use sea_orm::sqlx::error::DatabaseError;
use sea_orm::{DbErr, RuntimeErr, SqlxError};

/// Whether `err` says the database is busy or out of reach rather than that the request is
/// wrong: no pooled connection came in time, the pool is closing, the connection broke (the
/// server restarted, a proxy dropped it: the pool replaces it), the server is shutting down
/// or not yet accepting, or SQLite's writer stayed busy past `busy_timeout`. Such a request
/// may succeed if retried, so it answers 503, not 500.
#[must_use]
pub fn is_unavailable(err: &DbErr) -> bool {
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

/// A unique key (or primary key) a statement may run into, as the migrations declare it: its
/// name, which PostgreSQL reports, and its table and columns, which SQLite reports.
#[derive(Clone, Copy, Debug)]
pub struct UniqueKey {
    /// The index's or constraint's name (a table's primary key is `{table}_pkey`).
    pub name: &'static str,
    /// Its table.
    pub table: &'static str,
    /// Its columns, in the index's order.
    pub columns: &'static [&'static str],
}

/// Whether `err` is a violation of `key` in particular (a statement may run into several).
#[must_use]
pub fn violates(err: &DbErr, key: &UniqueKey) -> bool {
    let Some(db) = database_error(err) else {
        return false;
    };
    if !db.is_unique_violation() {
        return false;
    }
    if let Some(name) = db.constraint() {
        return name == key.name;
    }
    // SQLite: "UNIQUE constraint failed: table.a, table.b".
    db.message()
        .strip_prefix("UNIQUE constraint failed: ")
        .is_some_and(|columns| {
            let mut named = columns.split(", ");
            key.columns.iter().all(|c| {
                named.next().is_some_and(|n| {
                    n.strip_prefix(key.table)
                        .and_then(|rest| rest.strip_prefix('.'))
                        == Some(c)
                })
            }) && named.next().is_none()
        })
}

/// The database's own error inside `err`, if it holds one.
fn database_error(err: &DbErr) -> Option<&dyn DatabaseError> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            SqlxError::Database(db) => Some(db.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use sea_orm::sqlx::error::ErrorKind;

    use super::*;

    /// A database's error as a driver reports it: a code, or a unique violation, which
    /// PostgreSQL reports with the constraint's name and SQLite with the key's columns.
    #[derive(Debug)]
    struct Reported {
        code: Option<&'static str>,
        constraint: Option<&'static str>,
        message: &'static str,
    }

    impl std::fmt::Display for Reported {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.message)
        }
    }

    impl std::error::Error for Reported {}

    impl DatabaseError for Reported {
        fn message(&self) -> &str {
            self.message
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            self.code.map(Cow::Borrowed)
        }
        fn constraint(&self) -> Option<&str> {
            self.constraint
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
            if self.code.is_some() {
                ErrorKind::Other
            } else {
                ErrorKind::UniqueViolation
            }
        }
    }

    fn reported(e: Reported) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(SqlxError::Database(
            Box::new(e),
        ))))
    }

    fn failed(code: &'static str) -> DbErr {
        reported(Reported {
            code: Some(code),
            constraint: None,
            message: code,
        })
    }

    /// A unique violation, named (PostgreSQL) or by its columns (SQLite).
    fn unique(constraint: Option<&'static str>, message: &'static str) -> DbErr {
        reported(Reported {
            code: None,
            constraint,
            message,
        })
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

    #[test]
    fn a_unique_violation_is_matched_to_its_own_key_only() {
        const CODE: UniqueKey = UniqueKey {
            name: "locations_tenant_code_key",
            table: "locations",
            columns: &["tenant_id", "code"],
        };
        const ROW: UniqueKey = UniqueKey {
            name: "locations_pkey",
            table: "locations",
            columns: &["id"],
        };
        let pg = unique(Some("locations_tenant_code_key"), "duplicate key value");
        assert!(violates(&pg, &CODE));
        assert!(!violates(&pg, &ROW));
        let sqlite = unique(
            None,
            "UNIQUE constraint failed: locations.tenant_id, locations.code",
        );
        assert!(violates(&sqlite, &CODE));
        assert!(!violates(&sqlite, &ROW));
        // A prefix of the columns, or another table's, is another key.
        let fewer = unique(None, "UNIQUE constraint failed: locations.tenant_id");
        assert!(!violates(&fewer, &CODE));
        let other = unique(
            None,
            "UNIQUE constraint failed: roles.tenant_id, roles.code",
        );
        assert!(!violates(&other, &CODE));
        // Not a unique violation at all.
        assert!(!violates(&failed("23503"), &CODE));
    }
}
