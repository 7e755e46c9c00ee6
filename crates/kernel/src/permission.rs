//! The permission catalogue and the system roles that grant them.
//!
//! A permission names one action (`tenant.update`). Services check them with
//! [`crate::RequestContext::require`]; the catalogue grows as domains arrive.

use serde::{Deserialize, Serialize};

/// One action a principal may be allowed to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Read the current tenant's record.
    #[serde(rename = "tenant.read")]
    TenantRead,
    /// Change the current tenant's record.
    #[serde(rename = "tenant.update")]
    TenantUpdate,
    /// List and read the tenant's members.
    #[serde(rename = "users.read")]
    UsersRead,
    /// Invite people into the tenant, and list, resend or revoke invitations.
    #[serde(rename = "users.invite")]
    UsersInvite,
    /// Change members: profile, role, expertise, deactivation, removal.
    #[serde(rename = "users.manage")]
    UsersManage,
    /// List and read locations and their members.
    #[serde(rename = "locations.read")]
    LocationsRead,
    /// Create, change and delete locations, their settings and their members.
    #[serde(rename = "locations.manage")]
    LocationsManage,
}

impl Permission {
    /// Every permission, in catalogue order.
    pub const ALL: [Permission; 7] = [
        Permission::TenantRead,
        Permission::TenantUpdate,
        Permission::UsersRead,
        Permission::UsersInvite,
        Permission::UsersManage,
        Permission::LocationsRead,
        Permission::LocationsManage,
    ];

    /// The stable name clients see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::TenantRead => "tenant.read",
            Permission::TenantUpdate => "tenant.update",
            Permission::UsersRead => "users.read",
            Permission::UsersInvite => "users.invite",
            Permission::UsersManage => "users.manage",
            Permission::LocationsRead => "locations.read",
            Permission::LocationsManage => "locations.manage",
        }
    }

    /// What the permission allows, as the catalogue shows it.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Permission::TenantRead => "Read the tenant's record and settings.",
            Permission::TenantUpdate => "Change the tenant's record and settings.",
            Permission::UsersRead => "List and read the tenant's members.",
            Permission::UsersInvite => {
                "Invite people into the tenant; list, resend and revoke invitations."
            }
            Permission::UsersManage => {
                "Change members: profile, role, expertise, deactivation and removal."
            }
            Permission::LocationsRead => "List and read locations and their settings.",
            Permission::LocationsManage => {
                "Create, change and delete locations, their settings and their members."
            }
        }
    }

    /// The permission with this stable name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions, resolved once per request; membership tests are a bit check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermissionSet(u64);

impl PermissionSet {
    /// The empty set.
    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether `p` is in the set.
    #[must_use]
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
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

    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |acc, p| acc | p.bit()))
    }
}

/// The system roles every tenant has. A membership holds exactly one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created the tenant or received it; can do everything.
    Owner,
    /// Runs the tenant day to day.
    Admin,
    /// An ordinary member.
    Member,
}

impl Role {
    /// The stable name stored in the database and shown to clients.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Parses a stored role name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// Where the role stands: a principal may grant only roles at or below its own.
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
        }
    }

    /// Whether a holder of `self` may hand `other` to someone.
    #[must_use]
    pub fn may_grant(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// The permissions the role grants.
    #[must_use]
    pub fn permissions(self) -> PermissionSet {
        match self {
            Role::Owner | Role::Admin => Permission::ALL.into_iter().collect(),
            Role::Member => [
                Permission::TenantRead,
                Permission::UsersRead,
                Permission::LocationsRead,
            ]
            .into_iter()
            .collect(),
        }
    }

    /// The permissions the role grants when it is held at one location: only what concerns
    /// that location, never the tenant as a whole.
    #[must_use]
    pub fn location_permissions(self) -> PermissionSet {
        match self {
            Role::Owner | Role::Admin => [
                Permission::UsersRead,
                Permission::LocationsRead,
                Permission::LocationsManage,
            ]
            .into_iter()
            .collect(),
            Role::Member => [Permission::LocationsRead].into_iter().collect(),
        }
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
    fn role_names_round_trip() {
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
