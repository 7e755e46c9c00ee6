//! The `invitations` table.
#![expect(missing_docs, reason = "generated entity shape")]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub message: Option<String>,
    pub invited_by: Option<Uuid>,
    pub token_hash: Option<String>,
    pub status: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub accepted_at: Option<DateTimeUtc>,
    pub accepted_by: Option<Uuid>,
    pub revoked_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub location_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl tenantry_kernel::row::FromRow for Model {
    fn from_columns(row: &mut tenantry_kernel::row::Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.next("id")?,
            tenant_id: row.next("tenant_id")?,
            email: row.next("email")?,
            role: row.next("role")?,
            message: row.next("message")?,
            invited_by: row.next("invited_by")?,
            token_hash: row.next("token_hash")?,
            status: row.next("status")?,
            expires_at: row.next("expires_at")?,
            created_at: row.next("created_at")?,
            updated_at: row.next("updated_at")?,
            accepted_at: row.next("accepted_at")?,
            accepted_by: row.next("accepted_by")?,
            revoked_at: row.next("revoked_at")?,
            deleted_at: row.next("deleted_at")?,
            location_id: row.next("location_id")?,
        })
    }
}
