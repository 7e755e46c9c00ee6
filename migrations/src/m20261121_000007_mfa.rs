//! Two-factor authentication: TOTP factors, backup codes, sign-in challenges, and sessions
//! restricted to enrolling a factor.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::helpers::{fk, index, unique_index};

/// Adds `totp_factors`, `mfa_backup_codes`, `mfa_challenges` and `sessions.restricted`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("totp_factors")
                .col(pk_uuid("user_id"))
                // The shared secret, sealed (AES-256-GCM) under the configured encryption key.
                .col(text("secret_sealed"))
                .col(timestamp_with_time_zone_null("confirmed_at"))
                // The last 30-second step a code was accepted for; older or equal steps are
                // refused, so no code works twice.
                .col(big_integer_null("last_used_step"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "totp_factors_user_fk",
                    "totp_factors",
                    "user_id",
                    "users",
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("mfa_backup_codes")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string("code_hash"))
                .col(timestamp_with_time_zone_null("used_at"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk(
                    "mfa_backup_codes_user_fk",
                    "mfa_backup_codes",
                    "user_id",
                    "users",
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "mfa_backup_codes_user_idx",
            "mfa_backup_codes",
            &["user_id"],
        )
        .await?;

        m.create_table(
            Table::create()
                .table("mfa_challenges")
                .col(pk_uuid("id"))
                .col(string("token_hash"))
                .col(uuid("user_id"))
                .col(uuid("tenant_id"))
                .col(uuid_null("location_id"))
                .col(integer("attempts"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk(
                    "mfa_challenges_user_fk",
                    "mfa_challenges",
                    "user_id",
                    "users",
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "mfa_challenges_token_key",
            "mfa_challenges",
            &["token_hash"],
        )
        .await?;

        // A session opened while the tenant requires a second factor the member lacks may only
        // enroll one.
        m.alter_table(
            Table::alter()
                .table("sessions")
                .add_column(boolean("restricted").default(false))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("sessions")
                .drop_column("restricted")
                .to_owned(),
        )
        .await?;
        for table in ["mfa_challenges", "mfa_backup_codes", "totp_factors"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
