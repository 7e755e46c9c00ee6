//! Tenantry's schema, applied at start by `tenantry serve` and by `tenantry migrate`.
//!
//! Every migration runs unchanged on SQLite and PostgreSQL. Rules: tenant-owned tables carry
//! `tenant_id NOT NULL` and lead their indexes and unique keys with it; constraints are named so
//! the services can map violations deliberately; timestamps are stored with time zone (UTC).

pub use sea_orm_migration::prelude::*;

mod helpers;
mod m20261121_000001_core;
mod m20261121_000002_password_resets;
mod m20261121_000003_invitations;
mod m20261121_000004_members_locations;
mod m20261121_000005_roles;
mod m20261121_000006_api_keys;
mod m20261121_000007_mfa;
mod m20261202_000008_list_indexes;
mod m20261203_000009_idempotency_keys;

/// Applies Tenantry's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_core::Migration),
            Box::new(m20261121_000002_password_resets::Migration),
            Box::new(m20261121_000003_invitations::Migration),
            Box::new(m20261121_000004_members_locations::Migration),
            Box::new(m20261121_000005_roles::Migration),
            Box::new(m20261121_000006_api_keys::Migration),
            Box::new(m20261121_000007_mfa::Migration),
            Box::new(m20261202_000008_list_indexes::Migration),
            Box::new(m20261203_000009_idempotency_keys::Migration),
        ]
    }
}
