//! Member directory fields on memberships, locations and their members, and the location a
//! session or invitation is tied to.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

use crate::helpers::{fk, index};

/// Adds member profiles, `locations` and `location_members`.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Columns added to `memberships`, one ALTER each (SQLite takes one change per statement).
fn membership_columns() -> Vec<ColumnDef> {
    vec![
        string("status").default("active").to_owned(),
        // A copy of the account's name and address, so the member directory is searched and
        // ordered inside the tenant's own rows, never by joining the global users table.
        string("name").default("").to_owned(),
        string("email").default("").to_owned(),
        string_null("job_title").to_owned(),
        string_null("phone").to_owned(),
        json_binary_null("expertise_tags").to_owned(),
        big_integer_null("hourly_rate_minor").to_owned(),
        string_null("hourly_rate_currency").to_owned(),
        timestamp_with_time_zone_null("deactivated_at").to_owned(),
        timestamp_with_time_zone_null("updated_at").to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for mut col in membership_columns() {
            m.alter_table(
                Table::alter()
                    .table("memberships")
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }
        m.get_connection()
            .execute_unprepared(
                "UPDATE memberships SET \
                 name = (SELECT users.name FROM users WHERE users.id = memberships.user_id), \
                 email = (SELECT users.email FROM users WHERE users.id = memberships.user_id)",
            )
            .await?;
        index(
            m,
            "memberships_tenant_name_idx",
            "memberships",
            &["tenant_id", "name", "user_id"],
        )
        .await?;

        m.create_table(
            Table::create()
                .table("locations")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(string("name"))
                .col(string_null("code"))
                .col(text_null("address"))
                .col(json_binary("settings"))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "locations_tenant_fk",
                    "locations",
                    "tenant_id",
                    "tenants",
                ))
                .to_owned(),
        )
        .await?;
        index(m, "locations_tenant_idx", "locations", &["tenant_id", "id"]).await?;
        // A code (store number, branch code) is optional but unique within its tenant.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX locations_tenant_code_key \
                 ON locations (tenant_id, code) WHERE code IS NOT NULL",
            )
            .await?;

        m.create_table(
            Table::create()
                .table("location_members")
                .col(uuid("tenant_id"))
                .col(uuid("location_id"))
                .col(uuid("user_id"))
                .col(string("role"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("location_id")
                        .col("user_id"),
                )
                .foreign_key(&mut fk(
                    "location_members_location_fk",
                    "location_members",
                    "location_id",
                    "locations",
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "location_members_user_idx",
            "location_members",
            &["tenant_id", "user_id"],
        )
        .await?;

        for (table, column) in [("sessions", "location_id"), ("invitations", "location_id")] {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .add_column(uuid_null(column))
                    .to_owned(),
            )
            .await?;
        }
        // The network a refresh token is bound to, when binding is on.
        m.alter_table(
            Table::alter()
                .table("sessions")
                .add_column(string_null("network"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["location_members", "locations"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for (table, column) in [
            ("sessions", "network"),
            ("sessions", "location_id"),
            ("invitations", "location_id"),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        m.drop_index(
            Index::drop()
                .name("memberships_tenant_name_idx")
                .table("memberships")
                .to_owned(),
        )
        .await?;
        for col in membership_columns() {
            m.alter_table(
                Table::alter()
                    .table("memberships")
                    .drop_column(col.get_column_name())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
