//! The `locations` table: a tenant's stores, branches or sites.
#![expect(missing_docs, reason = "generated entity shape")]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "locations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub code: Option<String>,
    pub address: Option<String>,
    /// The settings this location overrides.
    pub settings: Json,
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
            tenant_id: row.next("tenant_id")?,
            name: row.next("name")?,
            code: row.next("code")?,
            address: row.next("address")?,
            settings: row.next("settings")?,
            version: row.next("version")?,
            created_at: row.next("created_at")?,
            updated_at: row.next("updated_at")?,
        })
    }
}
