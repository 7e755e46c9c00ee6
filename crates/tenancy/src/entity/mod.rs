//! SeaORM entities for the tables tenancy owns: `tenants`, `memberships` and `tenant_settings`.

pub mod membership;
pub mod tenant;
pub mod tenant_settings;
