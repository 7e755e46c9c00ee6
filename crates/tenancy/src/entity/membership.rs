//! The `memberships` table: which user belongs to which tenant, with which role, and the
//! member's profile in that tenant.
#![expect(missing_docs, reason = "generated entity shape")]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
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

impl tenantry_kernel::row::FromRow for Model {
    fn from_columns(row: &mut tenantry_kernel::row::Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            tenant_id: row.next("tenant_id")?,
            user_id: row.next("user_id")?,
            role: row.next("role")?,
            created_at: row.next("created_at")?,
            status: row.next("status")?,
            name: row.next("name")?,
            email: row.next("email")?,
            job_title: row.next("job_title")?,
            phone: row.next("phone")?,
            expertise_tags: row.next("expertise_tags")?,
            hourly_rate_minor: row.next("hourly_rate_minor")?,
            hourly_rate_currency: row.next("hourly_rate_currency")?,
            deactivated_at: row.next("deactivated_at")?,
            updated_at: row.next("updated_at")?,
        })
    }
}
