//! Rows decoded by position, straight from the driver's row, for the statements every request
//! runs (authentication, the pages of lists).
//!
//! SeaORM decodes a column by looking its name up in the row, and decodes a NULL in an
//! `Option` field by building an error that names the column (a formatted string) and then
//! discarding it: on a page of 50 members with six empty optional fields each, 300 formatted
//! errors and 650 lookups by name, a quarter of the request's CPU. [`get`] reads the column at
//! a position and decodes a NULL as `None` directly, with the same driver decoding SeaORM
//! uses, so the values are the same. A [`FromRow`] type reads the columns of the statement
//! it is given in a fixed order; in debug builds (every test) each read also checks the
//! column's name, so a statement and its decoder that drift apart fail loudly.

use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::sqlite::SqliteRow;
use sea_orm::sqlx::{self, Postgres, Row as _, Sqlite};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

/// A value a column decodes into on both databases, as the driver decodes it (`Option<T>`
/// for a column that may be NULL).
pub trait Value: Sized {
    #[doc(hidden)]
    fn from_pg<I: Index>(row: &PgRow, index: I) -> Result<Self, sqlx::Error>;
    #[doc(hidden)]
    fn from_sqlite<I: Index>(row: &SqliteRow, index: I) -> Result<Self, sqlx::Error>;
}

/// A column's position or name, on both databases' rows.
pub trait Index: sqlx::ColumnIndex<PgRow> + sqlx::ColumnIndex<SqliteRow> {}

impl<I: sqlx::ColumnIndex<PgRow> + sqlx::ColumnIndex<SqliteRow>> Index for I {}

impl<T> Value for T
where
    T: for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
        + for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>,
{
    fn from_pg<I: Index>(row: &PgRow, index: I) -> Result<Self, sqlx::Error> {
        row.try_get(index)
    }

    fn from_sqlite<I: Index>(row: &SqliteRow, index: I) -> Result<Self, sqlx::Error> {
        row.try_get(index)
    }
}

/// The value of column `index` of `row`, which the statement names `name` (checked in debug
/// builds).
pub fn get<T: Value>(row: &QueryResult, index: usize, name: &str) -> Result<T, DbErr> {
    decode(row, index, name, Some(index))
}

/// The value of the column named `name` in `row`: for statements read once per request,
/// where a lookup by name costs little and a NULL should still cost nothing.
pub fn named<T: Value>(row: &QueryResult, name: &str) -> Result<T, DbErr> {
    decode(row, name, name, None)
}

/// Decodes the column at `index` (`name` in errors; in debug builds, checked to be the name
/// of the column at position `check_at`).
fn decode<T: Value>(
    row: &QueryResult,
    index: impl Index + Copy,
    name: &str,
    check_at: Option<usize>,
) -> Result<T, DbErr> {
    let decoded = if let Some(pg) = row.try_as_pg_row() {
        check_at.inspect(|&at| check_name(pg, at, name));
        T::from_pg(pg, index)
    } else if let Some(lite) = row.try_as_sqlite_row() {
        check_at.inspect(|&at| check_name(lite, at, name));
        T::from_sqlite(lite, index)
    } else {
        return Err(DbErr::Type(format!(
            "column {name}: a row of neither PostgreSQL nor SQLite"
        )));
    };
    decoded.map_err(crate::db::query_err)
}

/// In debug builds, panics unless column `index` of `row` is named `name`.
fn check_name(row: &impl sqlx::Row, index: usize, name: &str) {
    if cfg!(debug_assertions) {
        let found = row.columns().get(index).map(sqlx::Column::name);
        assert_eq!(
            found,
            Some(name),
            "column {index} of the statement is not the decoder's {name}"
        );
    }
}

/// The columns of one row, read in order from a position on.
pub struct Columns<'a> {
    row: &'a QueryResult,
    next: usize,
}

impl<'a> Columns<'a> {
    /// The columns of `row` from the first on.
    #[must_use]
    pub fn new(row: &'a QueryResult) -> Self {
        Self { row, next: 0 }
    }

    /// The next column's value; the statement names the column `name` (checked in debug
    /// builds).
    pub fn next<T: Value>(&mut self, name: &str) -> Result<T, DbErr> {
        let value = get(self.row, self.next, name);
        self.next += 1;
        value
    }
}

/// The derive: field `n` is column `n`, named as the field (an entity's model thus reads the
/// columns in the order `Entity::find()` selects them).
pub use tenantry_kernel_macros::FromRow;

/// The error type the derive's code names.
#[doc(hidden)]
pub use sea_orm::DbErr as __DbErr;

/// A type read from the columns of a row in a fixed order (an entity's model: in the order
/// `Entity::find()` selects them, the model's).
pub trait FromRow: Sized {
    /// Reads the columns `row` is at.
    fn from_columns(row: &mut Columns<'_>) -> Result<Self, DbErr>;

    /// Reads a row from its first column.
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Self::from_columns(&mut Columns::new(row))
    }
}

/// Runs `query` (built for `conn`'s database) and reads every row it returns as a `T`.
pub async fn all<T: FromRow>(
    conn: &impl ConnectionTrait,
    query: &impl sea_orm::QueryTrait,
) -> Result<Vec<T>, DbErr> {
    all_of(conn, query.build(conn.get_database_backend())).await
}

/// Runs `stmt` and reads every row it returns as a `T`.
pub async fn all_of<T: FromRow>(
    conn: &impl ConnectionTrait,
    stmt: sea_orm::Statement,
) -> Result<Vec<T>, DbErr> {
    conn.query_all_raw(stmt)
        .await?
        .iter()
        .map(T::from_row)
        .collect()
}
