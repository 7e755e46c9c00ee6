//! Tenant settings, invitations and the emails that carry them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

use crate::helpers::{fk, index, unique_index};

/// Adds `tenant_settings`, `invitations` and `invitation_emails`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per tenant that changed anything; no row means every default.
        m.create_table(
            Table::create()
                .table("tenant_settings")
                .col(pk_uuid("tenant_id"))
                .col(json_binary("settings"))
                .col(integer("version"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "tenant_settings_tenant_fk",
                    "tenant_settings",
                    "tenant_id",
                    "tenants",
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("invitations")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(string("email"))
                .col(string("role"))
                .col(text_null("message"))
                .col(uuid_null("invited_by"))
                // Set when the email goes out; the raw token exists only in that email.
                .col(string_null("token_hash"))
                .col(string("status"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(timestamp_with_time_zone_null("accepted_at"))
                .col(uuid_null("accepted_by"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .col(timestamp_with_time_zone_null("deleted_at"))
                .foreign_key(&mut fk(
                    "invitations_tenant_fk",
                    "invitations",
                    "tenant_id",
                    "tenants",
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "invitations_token_hash_key",
            "invitations",
            &["token_hash"],
        )
        .await?;
        index(
            m,
            "invitations_tenant_idx",
            "invitations",
            &["tenant_id", "id"],
        )
        .await?;
        index(
            m,
            "invitations_expiry_idx",
            "invitations",
            &["status", "expires_at"],
        )
        .await?;
        // At most one pending invitation per address and tenant, whoever races to create it.
        // Partial indexes read the same on SQLite and PostgreSQL.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX invitations_pending_email_key \
                 ON invitations (tenant_id, email) WHERE status = 'pending'",
            )
            .await?;

        m.create_table(
            Table::create()
                .table("invitation_emails")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(uuid("invitation_id"))
                .col(string("status"))
                .col(integer("attempts"))
                .col(timestamp_with_time_zone_null("next_attempt_at"))
                .col(timestamp_with_time_zone_null("last_attempt_at"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone_null("sent_at"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "invitation_emails_tenant_fk",
                    "invitation_emails",
                    "tenant_id",
                    "tenants",
                ))
                .foreign_key(&mut fk(
                    "invitation_emails_invitation_fk",
                    "invitation_emails",
                    "invitation_id",
                    "invitations",
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "invitation_emails_due_idx",
            "invitation_emails",
            &["status", "next_attempt_at"],
        )
        .await?;
        index(
            m,
            "invitation_emails_invitation_idx",
            "invitation_emails",
            &["invitation_id", "id"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["invitation_emails", "invitations", "tenant_settings"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
