//! Tenants and memberships: creating a tenant with a unique slug, reading and updating the
//! current tenant, its settings and status, the member directory, and locations with their
//! members and settings overrides, and roles: system and custom, granted tenant-wide or at
//! one location.
//!
//! Users themselves belong to `identity`; this crate records that a user id is a member, with
//! a copy of the account's name and address so the directory is searched within the tenant.
//! Ending a member's sessions goes through the kernel's `SessionPort`.

mod access;
mod directory;
pub mod entity;
mod error;
mod joins;
mod location_types;
mod locations;
mod member_service;
mod members;
mod model;
mod role_types;
mod roles;
mod service;
mod settings;

pub use access::{CustomGrants, ResolvedAccess, access_from_rows, access_query};
pub use error::TenancyError;
pub use joins::{TenantState, join_tenant_state, memberships_from_rows, memberships_query};
pub use location_types::{
    ADDRESS, BrandingOverrides, LOCATION_CODE_PATTERN, Location, LocationSettings,
    LocationSettingsView, LocationUpdate, NewLocation,
};
pub use locations::LocationService;
pub use member_service::MemberService;
pub use members::{
    Expertise, JOB_TITLE, MAX_RATE_MINOR, MAX_TAGS, Member, MemberAccess, MemberFilter,
    MemberLocation, MemberStatus, Money, NewMember, PHONE_PATTERN, ProfileUpdate, SEARCH, TAG,
};
pub use model::{Membership, Slug, Tenant, TenantName, TenantStatus, TenantUpdate};
pub use role_types::{
    DESCRIPTION, MAX_CUSTOM_ROLES, ROLE_KEY_PATTERN, RoleDefinition, RoleGrant, RoleInput,
    parse_role_key,
};
pub use roles::RoleService;
pub use service::{SeaTenancy, TenancyService};
pub use settings::{
    Branding, COLOR_PATTERN, Ceilings, DEFAULT_API_REQUESTS_PER_MINUTE, DOMAIN_PATTERN,
    FEATURE_NAME_PATTERN, LOCALE_PATTERN, Limits, SecurityPolicy, StoredSettings, TenantSettings,
    time_zones,
};
