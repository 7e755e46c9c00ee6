//! The `tenants` table.
#![expect(missing_docs, reason = "generated entity shape")]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl tenantry_kernel::row::FromRow for Model {
    fn from_columns(row: &mut tenantry_kernel::row::Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.next("id")?,
            name: row.next("name")?,
            slug: row.next("slug")?,
            status: row.next("status")?,
            version: row.next("version")?,
            created_at: row.next("created_at")?,
            updated_at: row.next("updated_at")?,
        })
    }
}
