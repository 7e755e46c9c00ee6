//! SeaORM entities for the tables tenancy owns: `tenants`, `memberships`, `tenant_settings`,
//! `locations`, `location_members`, `roles` and `member_roles`.

pub mod location;
pub mod location_member;
pub mod member_role;
pub mod membership;
pub mod role;
pub mod tenant;
pub mod tenant_settings;
