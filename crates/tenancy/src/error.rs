//! What tenancy commands can fail with.

use tenantry_kernel::{AccessDenied, PermissionSet, Role, ValidationErrors};

/// A tenancy command failed.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// The tenant does not exist, or is not the caller's.
    #[error("tenant not found")]
    NotFound,
    /// The caller lacks a permission.
    #[error(transparent)]
    Forbidden(#[from] AccessDenied),
    /// `If-Match` named a version that is no longer current.
    #[error("the tenant was changed since version {0}")]
    StaleVersion(i32),
    /// The user already belongs to the tenant.
    #[error("already a member of the tenant")]
    AlreadyMember,
    /// No such member in the caller's tenant.
    #[error("member not found")]
    MemberNotFound,
    /// The change would leave the tenant without an active owner.
    #[error("the tenant must keep at least one active owner")]
    LastOwner,
    /// The caller may not hand out or take away a role ranking above its own.
    #[error("may not manage the role {}", .0.as_str())]
    RoleNotManageable(Role),
    /// The command cannot be aimed at the caller itself.
    #[error("cannot {0} yourself")]
    SelfTarget(&'static str),
    /// Only an owner may do this.
    #[error("only an owner may {0}")]
    OwnerOnly(&'static str),
    /// The member is deactivated.
    #[error("the member is deactivated")]
    MemberDeactivated,
    /// The member is already in the requested state.
    #[error("the member is already {0}")]
    MemberAlready(&'static str),
    /// The tenant's seats are taken.
    #[error("seat limit {limit} reached: {used} in use")]
    SeatLimitReached {
        /// The limit.
        limit: u32,
        /// Seats in use.
        used: u64,
    },
    /// No such location in the caller's tenant.
    #[error("location not found")]
    LocationNotFound,
    /// The caller is not a member of the location it asked to act in.
    #[error("not a member of that location")]
    NotLocationMember,
    /// A location with this code exists already.
    #[error("a location with this code exists")]
    LocationCodeTaken,
    /// No such role in the caller's tenant.
    #[error("role not found")]
    RoleNotFound,
    /// A role with this key exists already.
    #[error("a role with this key exists")]
    RoleKeyTaken,
    /// System roles cannot be changed or deleted.
    #[error("system roles cannot be changed or deleted")]
    SystemRoleImmutable,
    /// The tenant has as many custom roles as it may.
    #[error("at most {0} custom roles")]
    RoleLimitReached(u64),
    /// The role would carry permissions the caller does not hold.
    #[error("permissions not held")]
    PermissionsNotHeld(PermissionSet),
    /// The member holds the role there already.
    #[error("the role is granted already")]
    RoleAlreadyGranted,
    /// The member does not hold the role there.
    #[error("role grant not found")]
    GrantNotFound,
    /// A member keeps one system role tenant-wide; it is replaced, not taken away.
    #[error("a member keeps one system role")]
    SystemRoleRequired,
    /// The member does not work at the location a grant names.
    #[error("the member does not work at that location")]
    NotOnLocation,
    /// The owner role was asked for at a location; ownership is tenant-wide.
    #[error("ownership is tenant-wide")]
    OwnerIsTenantWide,
    /// The input did not parse.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
}

impl From<tenantry_kernel::NotHeld> for TenancyError {
    fn from(e: tenantry_kernel::NotHeld) -> Self {
        Self::PermissionsNotHeld(e.0)
    }
}
