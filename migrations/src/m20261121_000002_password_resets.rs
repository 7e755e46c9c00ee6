//! Password-reset tokens: single use, short-lived, stored only as their SHA-256.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::helpers::{fk, index, unique_index};

/// Adds `password_reset_tokens`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("password_reset_tokens")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string("token_hash"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .foreign_key(&mut fk(
                    "password_reset_tokens_user_fk",
                    "password_reset_tokens",
                    "user_id",
                    "users",
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "password_reset_tokens_hash_key",
            "password_reset_tokens",
            &["token_hash"],
        )
        .await?;
        index(
            m,
            "password_reset_tokens_user_idx",
            "password_reset_tokens",
            &["user_id"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("password_reset_tokens").to_owned())
            .await
    }
}
