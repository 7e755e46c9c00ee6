//! Small builders every migration uses, so constraints are named the same way everywhere.

use sea_orm_migration::prelude::*;

/// A named foreign key from `from.col` to `to.id`, deleting with its parent.
pub(crate) fn fk(
    name: &str,
    from: &'static str,
    col: &'static str,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, col)
        .to(to, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// A named index over `cols`.
pub(crate) async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    create_index(m, name, table, cols, false).await
}

/// A named unique index over `cols`.
pub(crate) async fn unique_index(
    m: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    create_index(m, name, table, cols, true).await
}

async fn create_index(
    m: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table.to_owned());
    if unique {
        stmt.unique();
    }
    for c in cols {
        stmt.col((*c).to_owned());
    }
    m.create_index(stmt.to_owned()).await
}
