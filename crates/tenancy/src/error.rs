//! What tenancy commands can fail with.

use tenantry_kernel::{
    AccessDenied, Described, DomainError, ErrorKind, PermissionSet, Role, ValidationErrors,
};

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
    /// The tenant's seats are taken: to activate a member, or to invite (where pending
    /// invitations hold seats too).
    #[error("seat limit {limit} reached: {used} in use, {requested} requested")]
    SeatLimitReached {
        /// The limit.
        limit: u32,
        /// Seats in use: active members, and pending invitations where they count.
        used: u64,
        /// Seats the command asked for.
        requested: u64,
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

impl DomainError for TenancyError {
    fn describe(&self) -> Described<'_> {
        use ErrorKind::{Conflict, Forbidden, NotFound, StaleVersion};
        let it = Described::new;
        match self {
            Self::NotFound => it(NotFound, "not_found").detail("tenant not found"),
            Self::Forbidden(denied) => denied.describe(),
            Self::StaleVersion(_) => it(StaleVersion, "stale_version")
                .detail("the resource was changed since the version in If-Match; fetch it again"),
            Self::AlreadyMember => {
                it(Conflict, "already_member").detail("the user already belongs to the tenant")
            }
            Self::MemberNotFound => it(NotFound, "not_found").detail("member not found"),
            Self::LocationNotFound => it(NotFound, "not_found").detail("location not found"),
            Self::LastOwner => it(Conflict, "last_owner").detail(
                "the tenant must keep at least one active owner; make someone else an owner \
                 first",
            ),
            Self::RoleNotManageable(role) => it(Forbidden, "role_not_grantable")
                .detail(format!("the role {} ranks above your own", role.as_str())),
            Self::SelfTarget(action) => {
                it(Conflict, "cannot_target_self").detail(format!("you cannot {action} yourself"))
            }
            Self::OwnerOnly(action) => {
                it(Forbidden, "owner_only").detail(format!("only an owner may {action}"))
            }
            Self::MemberDeactivated => it(Conflict, "member_deactivated")
                .detail("the member is deactivated; reactivate them first"),
            Self::MemberAlready(state) => it(Conflict, "member_state_unchanged")
                .detail(format!("the member is already {state}")),
            Self::SeatLimitReached {
                limit,
                used,
                requested,
            } => it(Conflict, "seat_limit_reached").detail(format!(
                "the tenant has {limit} seats, {used} taken and {requested} more asked for"
            )),
            Self::NotLocationMember => it(Forbidden, "not_a_location_member")
                .detail("you are not a member of that location"),
            Self::LocationCodeTaken => it(Conflict, "location_code_taken")
                .detail("another location of the tenant has this code"),
            Self::RoleNotFound => it(NotFound, "not_found").detail("role not found"),
            Self::RoleKeyTaken => {
                it(Conflict, "role_key_taken").detail("the tenant has a role with this key")
            }
            Self::SystemRoleImmutable => it(Conflict, "system_role_immutable")
                .detail("system roles cannot be changed or deleted; define a custom role"),
            Self::RoleLimitReached(limit) => it(Conflict, "role_limit_reached")
                .detail(format!("a tenant may define at most {limit} custom roles")),
            Self::PermissionsNotHeld(missing) => {
                let names: Vec<_> = missing.iter().map(|p| p.as_str()).collect();
                it(Forbidden, "permission_not_held").detail(format!(
                    "you cannot hand out permissions you do not hold: {}",
                    names.join(", ")
                ))
            }
            Self::RoleAlreadyGranted => it(Conflict, "role_already_granted")
                .detail("the member holds this role there already"),
            Self::GrantNotFound => {
                it(NotFound, "not_found").detail("the member does not hold this role there")
            }
            Self::SystemRoleRequired => it(Conflict, "system_role_required").detail(
                "a member keeps one system role tenant-wide; grant another system role to \
                 replace it",
            ),
            Self::NotOnLocation => it(Conflict, "not_on_location")
                .detail("the member does not work at this location; add them to it first"),
            Self::OwnerIsTenantWide => it(Conflict, "owner_is_tenant_wide")
                .detail("the owner role is held tenant-wide, never at a location"),
            Self::Invalid(v) => v.describe(),
            Self::Database(db) => db.describe(),
        }
    }
}
