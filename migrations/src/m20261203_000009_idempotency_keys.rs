//! Idempotency keys: the first response to a POST sent with an `Idempotency-Key`, kept for 24
//! hours so a retry of the same request gets it again instead of running twice.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::helpers::{fk, index};

/// Adds `idempotency_keys`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("idempotency_keys")
                .col(uuid("tenant_id"))
                // Who sent it: `user:<id>` or `api_key:<id>`; one caller's key never answers
                // another's request.
                .col(string("principal"))
                .col(string("key"))
                // SHA-256 over the method, the path and the body of the first request.
                .col(string("fingerprint"))
                // The first response, once it is complete; NULL while it runs.
                .col(integer_null("status_code"))
                // The response headers a replay repeats, as a JSON object.
                .col(text_null("response_headers"))
                .col(text_null("response_body"))
                // While it runs: until when the request holds the key; after that another
                // request may take it over (the first one died without answering).
                .col(timestamp_with_time_zone_null("locked_until"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .primary_key(
                    Index::create()
                        .name("idempotency_keys_pkey")
                        .col("tenant_id")
                        .col("principal")
                        .col("key"),
                )
                .foreign_key(&mut fk(
                    "idempotency_keys_tenant_fk",
                    "idempotency_keys",
                    "tenant_id",
                    "tenants",
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idempotency_keys_expires_idx",
            "idempotency_keys",
            &["expires_at"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("idempotency_keys").to_owned())
            .await
    }
}
