//! API keys: a tenant's machine credentials.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::helpers::{fk, index, unique_index};

/// Adds `api_keys`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("api_keys")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(string("name"))
                // The public part of the key (`tnt_<prefix>_…`), found through a unique index.
                .col(string("prefix"))
                // SHA-256 of the secret part; the secret itself is shown once and never stored.
                .col(string("secret_hash"))
                // Permission names, space-separated.
                .col(text("scopes"))
                // The rank the key acts at: its creator's system role when it was made.
                .col(string("role"))
                .col(uuid_null("location_id"))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(timestamp_with_time_zone_null("expires_at"))
                .col(timestamp_with_time_zone_null("last_used_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .foreign_key(&mut fk(
                    "api_keys_tenant_fk",
                    "api_keys",
                    "tenant_id",
                    "tenants",
                ))
                .foreign_key(&mut fk(
                    "api_keys_location_fk",
                    "api_keys",
                    "location_id",
                    "locations",
                ))
                .to_owned(),
        )
        .await?;
        unique_index(m, "api_keys_prefix_key", "api_keys", &["prefix"]).await?;
        index(m, "api_keys_tenant_idx", "api_keys", &["tenant_id", "id"]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("api_keys").to_owned())
            .await
    }
}
