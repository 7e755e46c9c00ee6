//! Indexes whose columns end in each list's sort order, so every keyset page is a range scan
//! on one index: a user's sessions by id, a tenant's roles by key and id.

use sea_orm_migration::prelude::*;

use crate::helpers::index;

/// Replaces `sessions_tenant_user_idx` with one that also orders by id, and adds
/// `roles_tenant_key_id_idx`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("sessions_tenant_user_idx")
                .table("sessions")
                .to_owned(),
        )
        .await?;
        index(
            m,
            "sessions_tenant_user_id_idx",
            "sessions",
            &["tenant_id", "user_id", "id"],
        )
        .await?;
        index(
            m,
            "roles_tenant_key_id_idx",
            "roles",
            &["tenant_id", "key", "id"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("roles_tenant_key_id_idx")
                .table("roles")
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("sessions_tenant_user_id_idx")
                .table("sessions")
                .to_owned(),
        )
        .await?;
        index(
            m,
            "sessions_tenant_user_idx",
            "sessions",
            &["tenant_id", "user_id"],
        )
        .await
    }
}
