//! Tenants and memberships: creating a tenant with a unique slug, reading and updating the
//! current tenant, and answering which tenants a user belongs to with which role.
//!
//! Users themselves belong to `identity`; this crate only records that a user id is a member.
//! Tenant settings live here too; locations and domains arrive later.

pub mod entity;
mod error;
mod model;
mod service;
mod settings;

pub use error::TenancyError;
pub use model::{Membership, Slug, Tenant, TenantName, TenantUpdate};
pub use service::{SeaTenancy, TenancyService};
pub use settings::{Branding, Limits, SecurityPolicy, StoredSettings, TenantSettings};
