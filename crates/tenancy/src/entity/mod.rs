//! SeaORM entities for the tables tenancy owns: `tenants`, `memberships`, `tenant_settings`,
//! `locations` and `location_members`.

pub mod location;
pub mod location_member;
pub mod membership;
pub mod tenant;
pub mod tenant_settings;
