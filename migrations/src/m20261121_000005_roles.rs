//! Roles per tenant and the custom roles granted to members.
//!
//! A member's system role stays where it was (`memberships.role` tenant-wide,
//! `location_members.role` per location); `member_roles` holds the grants of custom roles,
//! tenant-wide or at one location. Every tenant gets a row per system role, so every role a
//! client sees has an id in its tenant.

use sea_orm::{ConnectionTrait, Statement, Value};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::helpers::{fk, index};

/// Adds `roles` and `member_roles`, and seeds the system roles of every tenant.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The system roles: key, name and description at the time of seeding. The service shows the
/// names and permissions the code defines.
const SYSTEM_ROLES: [(&str, &str); 5] = [
    ("owner", "Owner"),
    ("admin", "Administrator"),
    ("manager", "Manager"),
    ("expert", "Expert"),
    ("member", "Member"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("roles")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(string("key"))
                .col(string("name"))
                .col(text("description"))
                // Permission names, space-separated; empty for system roles (code defines them).
                .col(text("permissions"))
                .col(boolean("system"))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("roles_tenant_fk", "roles", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        crate::helpers::unique_index(m, "roles_tenant_key_key", "roles", &["tenant_id", "key"])
            .await?;

        m.create_table(
            Table::create()
                .table("member_roles")
                .col(pk_uuid("id"))
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(uuid("role_id"))
                .col(uuid_null("location_id"))
                .col(uuid_null("granted_by"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk(
                    "member_roles_tenant_fk",
                    "member_roles",
                    "tenant_id",
                    "tenants",
                ))
                .foreign_key(&mut fk(
                    "member_roles_role_fk",
                    "member_roles",
                    "role_id",
                    "roles",
                ))
                .foreign_key(&mut fk(
                    "member_roles_location_fk",
                    "member_roles",
                    "location_id",
                    "locations",
                ))
                .to_owned(),
        )
        .await?;
        // The lookup every authenticated request makes.
        index(
            m,
            "member_roles_user_idx",
            "member_roles",
            &["tenant_id", "user_id"],
        )
        .await?;
        index(
            m,
            "member_roles_role_idx",
            "member_roles",
            &["tenant_id", "role_id"],
        )
        .await?;
        // A role is granted once tenant-wide and once per location (NULLs are distinct in a
        // plain unique index, hence the two partial ones).
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX member_roles_tenant_key \
             ON member_roles (tenant_id, user_id, role_id) WHERE location_id IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX member_roles_location_key \
             ON member_roles (tenant_id, user_id, role_id, location_id) \
             WHERE location_id IS NOT NULL",
        )
        .await?;

        let backend = db.get_database_backend();
        let tenants = db
            .query_all_raw(Statement::from_string(backend, "SELECT id FROM tenants"))
            .await?;
        let now = chrono_now();
        for row in tenants {
            let tenant: uuid::Uuid = row.try_get("", "id")?;
            for (key, name) in SYSTEM_ROLES {
                let insert = Query::insert()
                    .into_table("roles")
                    .columns([
                        "id",
                        "tenant_id",
                        "key",
                        "name",
                        "description",
                        "permissions",
                        "system",
                        "version",
                        "created_at",
                        "updated_at",
                    ])
                    .values_panic([
                        Value::from(uuid::Uuid::now_v7()).into(),
                        Value::from(tenant).into(),
                        key.into(),
                        name.into(),
                        "".into(),
                        "".into(),
                        true.into(),
                        1.into(),
                        Value::from(now).into(),
                        Value::from(now).into(),
                    ])
                    .to_owned();
                m.exec_stmt(insert).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["member_roles", "roles"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

fn chrono_now() -> sea_orm::prelude::ChronoDateTimeUtc {
    sea_orm::prelude::ChronoUtc::now()
}
