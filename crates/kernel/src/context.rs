//! Who is acting, in which tenant, with which permissions: built once per request by the
//! server's auth middleware (or once per job by the worker) and handed to every service call.

use crate::{ApiKeyId, LocationId, Permission, PermissionSet, Role, SessionId, TenantId, UserId};

/// The authenticated party behind a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user acting through one session.
    User {
        /// The user.
        user_id: UserId,
        /// The session (refresh-token family) the access token belongs to.
        session_id: SessionId,
    },
    /// An API key of the tenant, acting with its scopes only.
    ApiKey {
        /// The key.
        key_id: ApiKeyId,
    },
    /// Tenantry itself, running a background job.
    System {
        /// The job's name, for the audit trail.
        job: &'static str,
    },
}

/// Where a request came from; recorded in the audit log and on sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientMeta {
    /// The client's address as the server saw it.
    pub ip: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The request id (`X-Request-Id`).
    pub request_id: Option<String>,
}

/// Who did something, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A user (possibly not yet signed in, e.g. while registering).
    User(UserId),
    /// An API key.
    ApiKey(ApiKeyId),
    /// A background job.
    System(&'static str),
    /// Nobody identified (a failed login for an unknown address).
    Anonymous,
}

impl Actor {
    /// `user`, `system` or `anonymous`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::System(_) => "system",
            Actor::Anonymous => "anonymous",
        }
    }

    /// The user id or job name, if any.
    #[must_use]
    pub fn id(&self) -> Option<String> {
        match self {
            Actor::User(id) => Some(id.to_string()),
            Actor::ApiKey(id) => Some(id.to_string()),
            Actor::System(job) => Some((*job).to_owned()),
            Actor::Anonymous => None,
        }
    }
}

/// The scope of one command: tenant, principal, role and resolved permissions.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The tenant every read and write of this command is confined to.
    pub tenant_id: TenantId,
    /// Who is acting.
    pub principal: Principal,
    /// The principal's role in the tenant.
    pub role: Role,
    /// The location the principal acts in, if it chose one.
    pub location_id: Option<LocationId>,
    /// Resolved once; checks are bit tests. In a location this adds what the principal holds
    /// there to what it holds tenant-wide.
    pub permissions: PermissionSet,
    /// What the principal holds tenant-wide; what applies to every location but its own.
    pub tenant_permissions: PermissionSet,
    /// The session may only enroll a second factor: the tenant requires one the member
    /// lacks. Every other endpoint refuses it.
    pub enrollment_only: bool,
    /// Where the request came from.
    pub client: ClientMeta,
}

/// The principal lacks a permission the command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing permission {0}")]
pub struct AccessDenied(pub Permission);

/// The principal lacks these permissions, which what it hands out would carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("permissions not held")]
pub struct NotHeld(pub PermissionSet);

impl RequestContext {
    /// A context for a user acting in a tenant with a role.
    #[must_use]
    pub fn for_user(
        tenant_id: TenantId,
        user_id: UserId,
        session_id: SessionId,
        role: Role,
        client: ClientMeta,
    ) -> Self {
        Self {
            tenant_id,
            principal: Principal::User {
                user_id,
                session_id,
            },
            role,
            location_id: None,
            permissions: role.permissions(),
            tenant_permissions: role.permissions(),
            enrollment_only: false,
            client,
        }
    }

    /// A context for an API key: it holds `scopes` and nothing else, ranks as `role` (its
    /// creator's when it was made), and a key bound to a location holds its scopes only there.
    #[must_use]
    pub fn for_api_key(
        tenant_id: TenantId,
        key_id: ApiKeyId,
        role: Role,
        scopes: PermissionSet,
        bound_to: Option<LocationId>,
        client: ClientMeta,
    ) -> Self {
        Self {
            tenant_id,
            principal: Principal::ApiKey { key_id },
            role,
            location_id: bound_to,
            permissions: scopes,
            tenant_permissions: if bound_to.is_some() {
                PermissionSet::empty()
            } else {
                scopes
            },
            enrollment_only: false,
            client,
        }
    }

    /// The same context limited to enrolling a second factor: it holds no permission.
    #[must_use]
    pub fn enrollment_only(mut self) -> Self {
        self.enrollment_only = true;
        self.permissions = PermissionSet::empty();
        self.tenant_permissions = PermissionSet::empty();
        self
    }

    /// Fails, naming what is missing, unless the principal holds every permission of `wanted`
    /// where it would apply: tenant-wide, or at `location` (where grants held there count
    /// while acting in it). Handing out permissions (a role, a key's scopes) checks this.
    pub fn require_all(
        &self,
        wanted: PermissionSet,
        location: Option<LocationId>,
    ) -> Result<(), NotHeld> {
        let held = match location {
            Some(l) if self.location_id == Some(l) => self.permissions,
            _ => self.tenant_permissions,
        };
        let missing = wanted.without(held);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(NotHeld(missing))
        }
    }

    /// The same context with `granted` (the custom roles held tenant-wide) added to what the
    /// system role grants.
    #[must_use]
    pub fn with_grants(mut self, granted: PermissionSet) -> Self {
        self.tenant_permissions = self.tenant_permissions | granted;
        self.permissions = self.permissions | granted;
        self
    }

    /// The same context acting in `location`, where the principal holds `held` (its roles
    /// there) on top of what it holds tenant-wide.
    #[must_use]
    pub fn in_location(mut self, location: LocationId, held: PermissionSet) -> Self {
        self.location_id = Some(location);
        self.permissions = self.tenant_permissions | held;
        self
    }

    /// Fails unless the principal holds `permission` for `location`: a grant made at a
    /// location counts only while acting in that very location.
    pub fn require_at(
        &self,
        location: LocationId,
        permission: Permission,
    ) -> Result<(), AccessDenied> {
        let held = if self.location_id == Some(location) {
            self.permissions
        } else {
            self.tenant_permissions
        };
        if held.contains(permission) {
            Ok(())
        } else {
            Err(AccessDenied(permission))
        }
    }

    /// Fails unless the principal holds `permission` tenant-wide. A grant held only at the
    /// location it acts in does not count: that is [`Self::require_at`]'s business.
    pub fn require(&self, permission: Permission) -> Result<(), AccessDenied> {
        if self.tenant_permissions.contains(permission) {
            Ok(())
        } else {
            Err(AccessDenied(permission))
        }
    }

    /// The acting user, if the principal is one.
    #[must_use]
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { user_id, .. } => Some(user_id),
            Principal::ApiKey { .. } | Principal::System { .. } => None,
        }
    }

    /// The acting user and the session it acts through, if the principal is a signed-in user.
    #[must_use]
    pub fn user_session(&self) -> Option<(UserId, SessionId)> {
        match self.principal {
            Principal::User {
                user_id,
                session_id,
            } => Some((user_id, session_id)),
            Principal::ApiKey { .. } | Principal::System { .. } => None,
        }
    }

    /// The principal as the audit log names it.
    #[must_use]
    pub fn actor(&self) -> Actor {
        match self.principal {
            Principal::User { user_id, .. } => Actor::User(user_id),
            Principal::ApiKey { key_id } => Actor::ApiKey(key_id),
            Principal::System { job } => Actor::System(job),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_refuses_a_permission_the_role_lacks() {
        let ctx = RequestContext::for_user(
            TenantId::new(),
            UserId::new(),
            SessionId::new(),
            Role::Member,
            ClientMeta::default(),
        );
        assert_eq!(
            ctx.require(Permission::TenantUpdate),
            Err(AccessDenied(Permission::TenantUpdate))
        );
        assert!(ctx.require(Permission::TenantRead).is_ok());
    }

    #[test]
    fn an_api_key_holds_its_scopes_and_a_bound_key_only_at_its_location() {
        let scopes: PermissionSet = [Permission::UsersRead].into_iter().collect();
        let free = RequestContext::for_api_key(
            TenantId::new(),
            ApiKeyId::new(),
            Role::Admin,
            scopes,
            None,
            ClientMeta::default(),
        );
        assert!(free.require(Permission::UsersRead).is_ok());
        assert!(free.require(Permission::TenantRead).is_err());
        assert_eq!(free.user_id(), None);
        assert_eq!(free.actor().kind(), "api_key");
        let here = LocationId::new();
        let bound = RequestContext::for_api_key(
            TenantId::new(),
            ApiKeyId::new(),
            Role::Admin,
            scopes,
            Some(here),
            ClientMeta::default(),
        );
        assert!(bound.require(Permission::UsersRead).is_err());
        assert!(bound.require_at(here, Permission::UsersRead).is_ok());
        assert!(bound.require_all(scopes, Some(here)).is_ok());
        assert_eq!(bound.require_all(scopes, None), Err(NotHeld(scopes)));
    }

    #[test]
    fn a_location_grant_counts_only_in_that_location() {
        let (here, there) = (LocationId::new(), LocationId::new());
        let ctx = RequestContext::for_user(
            TenantId::new(),
            UserId::new(),
            SessionId::new(),
            Role::Member,
            ClientMeta::default(),
        )
        .in_location(here, Role::Admin.permissions());
        assert!(ctx.require_at(here, Permission::LocationsManage).is_ok());
        assert!(ctx.require_at(there, Permission::LocationsManage).is_err());
        // A location grant never reaches tenant-wide commands.
        assert!(ctx.require(Permission::LocationsManage).is_err());
        assert!(ctx.require(Permission::TenantUpdate).is_err());
    }
}
