//! The `memberships` table: which user belongs to which tenant, with which role, and the
//! member's profile in that tenant.
#![expect(missing_docs, reason = "generated entity shape")]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, tenantry_kernel::row::FromRow)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub role: String,
    pub created_at: DateTimeUtc,
    /// `active` or `deactivated`.
    pub status: String,
    /// Copies of the account's name and address, for searching inside the tenant.
    pub name: String,
    pub email: String,
    pub job_title: Option<String>,
    pub phone: Option<String>,
    pub expertise_tags: Option<Json>,
    pub hourly_rate_minor: Option<i64>,
    pub hourly_rate_currency: Option<String>,
    pub deactivated_at: Option<DateTimeUtc>,
    pub updated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id"
    )]
    Tenant,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
