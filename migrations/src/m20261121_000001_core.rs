//! Tenants, users, memberships, sessions and their tokens, the audit log and the outbox.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::helpers::{fk, index, unique_index};

/// The first migration: the identity and tenancy core.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tenants")
                .col(pk_uuid("id"))
                .col(string("name"))
                .col(string("slug"))
                .col(string("status").default("active"))
                .col(integer("version").default(1))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        unique_index(m, "tenants_slug_key", "tenants", &["slug"]).await?;

        m.create_table(
            Table::create()
                .table("users")
                .col(pk_uuid("id"))
                .col(string("email"))
                .col(string("name"))
                .col(string("password_hash"))
                .col(timestamp_with_time_zone_null("email_verified_at"))
                .col(string("status").default("active"))
                .col(integer("version").default(1))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        unique_index(m, "users_email_key", "users", &["email"]).await?;

        m.create_table(
            Table::create()
                .table("memberships")
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(string("role"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("tenant_id").col("user_id"))
                .foreign_key(&mut fk(
                    "memberships_tenant_fk",
                    "memberships",
                    "tenant_id",
                    "tenants",
                ))
                .foreign_key(&mut fk(
                    "memberships_user_fk",
                    "memberships",
                    "user_id",
                    "users",
                ))
                .to_owned(),
        )
        .await?;
        index(m, "memberships_user_idx", "memberships", &["user_id"]).await?;

        m.create_table(
            Table::create()
                .table("sessions")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("last_used_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .col(string_null("revoked_reason"))
                .col(string_null("ip"))
                .col(string_null("user_agent"))
                .foreign_key(&mut fk(
                    "sessions_tenant_fk",
                    "sessions",
                    "tenant_id",
                    "tenants",
                ))
                .foreign_key(&mut fk("sessions_user_fk", "sessions", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "sessions_tenant_user_idx",
            "sessions",
            &["tenant_id", "user_id"],
        )
        .await?;
        index(m, "sessions_expires_idx", "sessions", &["expires_at"]).await?;

        m.create_table(
            Table::create()
                .table("refresh_tokens")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(uuid("session_id"))
                .col(string("token_hash"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("rotated_at"))
                .foreign_key(&mut fk(
                    "refresh_tokens_session_fk",
                    "refresh_tokens",
                    "session_id",
                    "sessions",
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "refresh_tokens_hash_key",
            "refresh_tokens",
            &["token_hash"],
        )
        .await?;
        index(
            m,
            "refresh_tokens_session_idx",
            "refresh_tokens",
            &["session_id"],
        )
        .await?;

        m.create_table(
            Table::create()
                .table("email_verification_tokens")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string("email"))
                .col(string("token_hash"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .foreign_key(&mut fk(
                    "email_verification_tokens_user_fk",
                    "email_verification_tokens",
                    "user_id",
                    "users",
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "email_verification_tokens_hash_key",
            "email_verification_tokens",
            &["token_hash"],
        )
        .await?;
        index(
            m,
            "email_verification_tokens_user_idx",
            "email_verification_tokens",
            &["user_id"],
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_log")
                .col(pk_uuid("id"))
                .col(uuid_null("tenant_id"))
                .col(timestamp_with_time_zone("occurred_at"))
                .col(string("actor_type"))
                .col(string_null("actor_id"))
                .col(string("action"))
                .col(string("resource_type"))
                .col(string_null("resource_id"))
                .col(string_null("ip"))
                .col(string_null("user_agent"))
                .col(string_null("request_id"))
                .col(json_binary_null("old_values"))
                .col(json_binary_null("new_values"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "audit_log_tenant_time_idx",
            "audit_log",
            &["tenant_id", "occurred_at"],
        )
        .await?;
        append_only(m, "audit_log").await?;

        m.create_table(
            Table::create()
                .table("outbox")
                .col(pk_uuid("id"))
                .col(uuid_null("tenant_id"))
                .col(string("event_type"))
                .col(json_binary("payload"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("dispatched_at"))
                .to_owned(),
        )
        .await?;
        // Only undelivered events are ever looked for; a partial index stays small.
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX outbox_pending_idx ON outbox (created_at) WHERE dispatched_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "outbox",
            "audit_log",
            "email_verification_tokens",
            "refresh_tokens",
            "sessions",
            "memberships",
            "users",
            "tenants",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS tenantry_append_only()")
                .await?;
        }
        Ok(())
    }
}

/// Makes `table` refuse UPDATE and DELETE at the database, whoever connects.
async fn append_only(m: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let conn = m.get_connection();
    match m.get_database_backend() {
        DbBackend::Postgres => {
            conn.execute_unprepared(
                "CREATE OR REPLACE FUNCTION tenantry_append_only() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql",
            )
            .await?;
            conn.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION tenantry_append_only()"
            ))
            .await?;
        }
        _ => {
            for op in ["UPDATE", "DELETE"] {
                conn.execute_unprepared(&format!(
                    "CREATE TRIGGER {table}_no_{} BEFORE {op} ON {table} \
                     BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
                    op.to_lowercase()
                ))
                .await?;
            }
        }
    }
    Ok(())
}
