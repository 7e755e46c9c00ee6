//! SeaORM entities for the tables tenancy owns: `tenants` and `memberships`.

pub mod membership;
pub mod tenant;
