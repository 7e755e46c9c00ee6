//! The permission catalogue and the system roles that grant them.
//!
//! A permission names one action (`tenant.update`). Services check them with
//! [`crate::RequestContext::require`]; the catalogue grows as domains arrive, one entry each
//! in `catalogue!` (its name, what it allows, the system roles that hold it), with no limit
//! on its size.

use serde::{Deserialize, Serialize};

use crate::{FieldError, ValidationErrors};

/// Declares the catalogue: each permission once, with its stable name, what it allows, and
/// the system roles below admin that hold it by default (owners and admins hold every
/// permission). Makes [`Permission`] with [`Permission::ALL`], [`Permission::as_str`] and
/// [`Permission::description`], and the grants [`Role::permissions`] reads.
macro_rules! catalogue {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal, $description:literal, also [$($role:ident),*];
    )*) => {
        /// One action a principal may be allowed to take.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Permission {
            $(
                $(#[$doc])*
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl Permission {
            /// Every permission, in catalogue order.
            pub const ALL: [Permission; [$($name),*].len()] = [$(Permission::$variant),*];

            /// The stable name clients see.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }

            /// What the permission allows, as the catalogue shows it.
            #[must_use]
            pub fn description(self) -> &'static str {
                match self {
                    $(Permission::$variant => $description,)*
                }
            }

            /// Whether `role` holds the permission by default.
            fn granted_to(self, role: Role) -> bool {
                match self {
                    $(Permission::$variant => {
                        matches!(role, Role::Owner | Role::Admin $(| Role::$role)*)
                    })*
                }
            }
        }
    };
}

catalogue! {
    /// Read the current tenant's record.
    TenantRead = "tenant.read", "Read the tenant's record and settings.",
        also [Manager, Expert, Member];
    /// Change the current tenant's record.
    TenantUpdate = "tenant.update", "Change the tenant's record and settings.", also [];
    /// List and read the tenant's members.
    UsersRead = "users.read", "List and read the tenant's members.",
        also [Manager, Expert, Member];
    /// Invite people into the tenant, and list, resend or revoke invitations.
    UsersInvite = "users.invite",
        "Invite people into the tenant; list, resend and revoke invitations.", also [Manager];
    /// Change members: profile, role, expertise, deactivation, removal.
    UsersManage = "users.manage",
        "Change members: profile, role, expertise, deactivation and removal.", also [Manager];
    /// List and read locations and their members.
    LocationsRead = "locations.read", "List and read locations and their settings.",
        also [Manager, Expert, Member];
    /// Create, change and delete locations, their settings and their members.
    LocationsManage = "locations.manage",
        "Create, change and delete locations, their settings and their members.",
        also [Manager];
    /// List and read the tenant's roles and who holds them.
    RolesRead = "roles.read", "List and read the tenant's roles and members' role grants.",
        also [Manager];
    /// Create, change and delete the tenant's custom roles.
    RolesManage = "roles.manage",
        "Create, change and delete custom roles; only with permissions the caller holds.",
        also [];
    /// List and read the tenant's API keys (never their secrets).
    ApiKeysRead = "api_keys.read", "List and read the tenant's API keys, never their secrets.",
        also [];
    /// Create, change and revoke the tenant's API keys.
    ApiKeysManage = "api_keys.manage",
        "Create, change and revoke API keys; scopes only from the caller's permissions.",
        also [];
}

/// Words of 64 bits a [`PermissionSet`] needs for the whole catalogue.
const WORDS: usize = Permission::ALL.len().div_ceil(64);

impl Permission {
    /// The permission with this stable name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Its word in a [`PermissionSet`] and its bit there.
    fn bit(self) -> (usize, u64) {
        let i = self as usize;
        (i / 64, 1 << (i % 64))
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions, resolved once per request; membership tests are a bit check, in as
/// many 64-bit words as the catalogue needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermissionSet([u64; WORDS]);

impl Default for PermissionSet {
    fn default() -> Self {
        Self::empty()
    }
}

impl PermissionSet {
    /// The empty set.
    #[must_use]
    pub const fn empty() -> Self {
        Self([0; WORDS])
    }

    /// Whether `p` is in the set.
    #[must_use]
    pub fn contains(self, p: Permission) -> bool {
        let (word, bit) = p.bit();
        self.0[word] & bit != 0
    }

    /// Adds `p`.
    fn insert(&mut self, p: Permission) {
        let (word, bit) = p.bit();
        self.0[word] |= bit;
    }

    /// Whether every permission of `self` is in `other`.
    #[must_use]
    pub fn is_subset_of(self, other: Self) -> bool {
        self.without(other).is_empty()
    }

    /// The permissions of `self` that `other` lacks.
    #[must_use]
    pub fn without(mut self, other: Self) -> Self {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine &= !theirs;
        }
        self
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0.iter().all(|word| *word == 0)
    }

    /// The stable names of the set's permissions, in catalogue order.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }

    /// The stored form: names separated by spaces.
    #[must_use]
    pub fn to_stored(self) -> String {
        self.names().join(" ")
    }

    /// Reads the stored form back; a name the catalogue no longer has grants nothing.
    #[must_use]
    pub fn from_stored(names: &str) -> Self {
        names
            .split_whitespace()
            .filter_map(Permission::parse)
            .collect()
    }

    /// Parses permission names a client sent as `field`, recording an error naming
    /// `field[i]` for each unknown one.
    pub fn parse_names(field: &str, raw: &[String], errors: &mut ValidationErrors) -> Self {
        let mut set = Self::empty();
        for (i, name) in raw.iter().enumerate() {
            match Permission::parse(name) {
                Some(p) => set.insert(p),
                None => errors.0.push(FieldError::new(
                    &format!("{field}[{i}]"),
                    "unknown_permission",
                    "not a permission of the catalogue (GET /api/v1/permissions)",
                )),
            }
        }
        set
    }

    /// The permissions in the set, in catalogue order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl std::ops::BitOr for PermissionSet {
    type Output = Self;

    fn bitor(mut self, other: Self) -> Self {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine |= theirs;
        }
        self
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Self::empty();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// The system roles every tenant has. Each member holds exactly one of them tenant-wide (its
/// rank) and may hold one per location it works at; custom roles add permissions on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created the tenant or received it; can do everything.
    Owner,
    /// Runs the tenant day to day.
    Admin,
    /// Runs a team: invites and manages members and locations, but not the tenant's settings
    /// or its roles.
    Manager,
    /// Does the work clients ask for (a support agent, a photographer).
    Expert,
    /// An ordinary member, such as a client of the tenant.
    Member,
}

impl Role {
    /// Every system role, highest rank first.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Expert,
        Role::Member,
    ];

    /// The stable name stored in the database and shown to clients.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Expert => "expert",
            Role::Member => "member",
        }
    }

    /// Parses a stored role name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Parses a role name a client sent as `field`; an unknown one is an `invalid_role` error
    /// listing the names.
    pub fn parse_field(field: &str, raw: &str) -> Result<Role, crate::FieldError> {
        Self::parse(raw).ok_or_else(|| {
            crate::FieldError::new(
                field,
                "invalid_role",
                "owner, admin, manager, expert or member",
            )
        })
    }

    /// The role's display name.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Administrator",
            Role::Manager => "Manager",
            Role::Expert => "Expert",
            Role::Member => "Member",
        }
    }

    /// What the role is for, as the role list shows it.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Role::Owner => {
                "Owns the tenant: every permission, and the only role that can transfer ownership."
            }
            Role::Admin => "Runs the tenant: every permission, but cannot touch owners.",
            Role::Manager => "Runs a team: invites and manages members and locations.",
            Role::Expert => "Does the work clients ask for; reads the directory and locations.",
            Role::Member => "An ordinary member or client; reads the directory and locations.",
        }
    }

    /// Where the role stands: a principal may grant only roles at or below its own.
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 5,
            Role::Admin => 4,
            Role::Manager => 3,
            Role::Expert => 2,
            Role::Member => 1,
        }
    }

    /// Whether a holder of `self` may hand `other` to someone.
    #[must_use]
    pub fn may_grant(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// The permissions the role grants, as the catalogue declares them. Held at a location,
    /// the same permissions count only for that location (see
    /// [`crate::RequestContext::require_at`]).
    #[must_use]
    pub fn permissions(self) -> PermissionSet {
        Permission::ALL
            .into_iter()
            .filter(|p| p.granted_to(self))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_may_read_the_tenant_but_not_update_it() {
        let perms = Role::Member.permissions();
        assert!(perms.contains(Permission::TenantRead));
        assert!(!perms.contains(Permission::TenantUpdate));
    }

    #[test]
    fn owners_hold_every_permission() {
        let perms = Role::Owner.permissions();
        assert_eq!(perms.iter().count(), Permission::ALL.len());
    }

    #[test]
    fn nobody_grants_a_role_above_their_own() {
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(Role::Admin.may_grant(Role::Member));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(!Role::Member.may_grant(Role::Admin));
    }

    #[test]
    fn every_permission_has_a_unique_name_and_a_description() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert!(p.description().ends_with('.'));
        }
        assert_eq!(Permission::parse("tenant.delete"), None);
    }

    #[test]
    fn subsets_and_differences() {
        let read: PermissionSet = [Permission::UsersRead].into_iter().collect();
        let manager = Role::Manager.permissions();
        assert!(read.is_subset_of(manager));
        assert!(!Role::Admin.permissions().is_subset_of(manager));
        let missing = Role::Admin.permissions().without(manager);
        assert!(missing.contains(Permission::RolesManage));
        assert!(!missing.contains(Permission::UsersRead));
        assert!(PermissionSet::empty().is_subset_of(read));
    }

    #[test]
    fn stored_names_round_trip_and_unknown_ones_are_named() {
        let set: PermissionSet = [Permission::UsersRead, Permission::RolesRead]
            .into_iter()
            .collect();
        assert_eq!(PermissionSet::from_stored(&set.to_stored()), set);
        assert_eq!(
            PermissionSet::from_stored("users.read tickets.teleport"),
            [Permission::UsersRead].into_iter().collect()
        );
        let mut errors = ValidationErrors::default();
        let raw = ["users.read".to_owned(), "users.fly".to_owned()];
        let parsed = PermissionSet::parse_names("scopes", &raw, &mut errors);
        assert_eq!(parsed.names(), ["users.read"]);
        assert_eq!(errors.0[0].field, "scopes[1]");
    }

    /// The default grants, written out: what each system role held before the catalogue
    /// declared them.
    #[test]
    fn each_system_role_holds_its_default_permissions() {
        let names = |role: Role| role.permissions().names();
        let all: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names(Role::Owner), all);
        assert_eq!(names(Role::Admin), all);
        assert_eq!(
            names(Role::Manager),
            [
                "tenant.read",
                "users.read",
                "users.invite",
                "users.manage",
                "locations.read",
                "locations.manage",
                "roles.read"
            ]
        );
        for role in [Role::Expert, Role::Member] {
            assert_eq!(names(role), ["tenant.read", "users.read", "locations.read"]);
        }
    }

    #[test]
    fn a_manager_may_not_grant_owner_or_admin() {
        assert!(!Role::Manager.may_grant(Role::Owner));
        assert!(!Role::Manager.may_grant(Role::Admin));
        assert!(Role::Manager.may_grant(Role::Expert));
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
