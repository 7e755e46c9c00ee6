//! Access resolution: what one request's principal may do in a tenant (and at a location),
//! read in one statement — the membership and its tenant's status, the custom roles in scope
//! and, at a location, the member's role there.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait};
use tenantry_kernel::row;
use tenantry_kernel::{LocationId, PermissionSet, Role, TenantId, UserId};

use crate::entity::{location_member, member_role, membership, role};
use crate::{MemberAccess, MemberStatus, TenancyError};

/// The permissions a member's custom roles add, as one request needs them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CustomGrants {
    /// Held tenant-wide.
    pub tenant: PermissionSet,
    /// Held at the location asked about.
    pub location: PermissionSet,
}

/// Everything one request needs to know about its principal's access, read in one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedAccess {
    /// Whether the member may act, and with which system role.
    pub access: MemberAccess,
    /// What the member's custom roles add (meaningful while the access is active).
    pub grants: CustomGrants,
    /// The system role held at the location asked about; `None` for an owner or admin
    /// acting there on their tenant-wide role.
    pub location_role: Option<Role>,
}

/// Resolves `user`'s access to `tenant` (and to `location`, when given) in one round trip:
/// the membership and its tenant, the custom roles in scope and, at a location, the
/// location membership and the location itself. Acting at a location fails with
/// `LocationNotFound` (no such location in the tenant) or `NotLocationMember` (an active member
/// who does not work there; owners and admins act anywhere).
pub(crate) async fn resolve_access(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    user: UserId,
    location: Option<LocationId>,
) -> Result<ResolvedAccess, TenancyError> {
    let rows = conn
        .query_all(&access_query(tenant.0, user.0, location.map(|l| l.0)))
        .await?;
    access_from_rows(&rows, location)
}

/// The query behind `resolve_access`: one row per custom grant in scope (at least one while
/// `user` is a member), with the membership, the tenant's status, and at `location` the
/// member's role there and whether the location exists. It reads from `memberships`, so a
/// caller may join its own tables onto the membership to ask everything in one statement
/// (authentication joins the session); [`access_from_rows`] reads the answer.
#[must_use]
pub fn access_query(
    tenant: impl Into<sea_orm::Value>,
    user: impl Into<sea_orm::Value>,
    location: Option<impl Into<sea_orm::Value>>,
) -> sea_orm::sea_query::SelectStatement {
    let location: Option<sea_orm::Value> = location.map(Into::into);
    use sea_orm::sea_query::{Alias, JoinType, Query};
    let (m, t, g, r) = (
        membership::Entity,
        crate::entity::tenant::Entity,
        member_role::Entity,
        role::Entity,
    );
    let (lm, l) = (location_member::Entity, crate::entity::location::Entity);
    let mut q = Query::select();
    q.expr_as(Expr::col((m, membership::Column::Role)), Alias::new("role"))
        .expr_as(
            Expr::col((m, membership::Column::Status)),
            Alias::new("member_status"),
        )
        .expr_as(
            Expr::col((t, crate::entity::tenant::Column::Status)),
            Alias::new("tenant_status"),
        )
        .expr_as(
            Expr::col((r, role::Column::Permissions)),
            Alias::new("permissions"),
        )
        .expr_as(
            Expr::col((g, member_role::Column::LocationId)),
            Alias::new("grant_location"),
        )
        .from(m)
        .join(
            JoinType::InnerJoin,
            t,
            Expr::col((t, crate::entity::tenant::Column::Id))
                .equals((m, membership::Column::TenantId)),
        );
    let grant_scope = match &location {
        None => Expr::col((g, member_role::Column::LocationId)).is_null(),
        Some(loc) => Expr::col((g, member_role::Column::LocationId))
            .is_null()
            .or(Expr::col((g, member_role::Column::LocationId)).eq(loc.clone())),
    };
    q.join(
        JoinType::LeftJoin,
        g,
        Expr::col((g, member_role::Column::TenantId))
            .equals((m, membership::Column::TenantId))
            .and(
                Expr::col((g, member_role::Column::UserId)).equals((m, membership::Column::UserId)),
            )
            .and(grant_scope),
    )
    .join(
        JoinType::LeftJoin,
        r,
        Expr::col((r, role::Column::Id)).equals((g, member_role::Column::RoleId)),
    );
    if let Some(loc) = location {
        q.expr_as(
            Expr::col((lm, location_member::Column::Role)),
            Alias::new("location_role"),
        )
        .expr_as(
            Expr::col((l, crate::entity::location::Column::Id)),
            Alias::new("location_id"),
        )
        .join(
            JoinType::LeftJoin,
            lm,
            Expr::col((lm, location_member::Column::TenantId))
                .equals((m, membership::Column::TenantId))
                .and(
                    Expr::col((lm, location_member::Column::UserId))
                        .equals((m, membership::Column::UserId)),
                )
                .and(Expr::col((lm, location_member::Column::LocationId)).eq(loc.clone())),
        )
        .join(
            JoinType::LeftJoin,
            l,
            Expr::col((l, crate::entity::location::Column::TenantId))
                .equals((m, membership::Column::TenantId))
                .and(Expr::col((l, crate::entity::location::Column::Id)).eq(loc)),
        );
    }
    q.and_where(Expr::col((m, membership::Column::TenantId)).eq(tenant.into()))
        .and_where(Expr::col((m, membership::Column::UserId)).eq(user.into()));
    q
}

/// What the rows of [`access_query`] for `location` say.
pub fn access_from_rows(
    rows: &[sea_orm::QueryResult],
    location: Option<LocationId>,
) -> Result<ResolvedAccess, TenancyError> {
    let none = ResolvedAccess {
        access: MemberAccess::None,
        grants: CustomGrants::default(),
        location_role: None,
    };
    let Some(first) = rows.first() else {
        return Ok(none);
    };
    let member_status: String = row::named(first, "member_status")?;
    let tenant_status: String = row::named(first, "tenant_status")?;
    let access = if member_status != MemberStatus::Active.as_str() {
        MemberAccess::Deactivated
    } else if tenant_status != crate::TenantStatus::Active.as_str() {
        MemberAccess::TenantSuspended
    } else {
        let role: String = row::named(first, "role")?;
        Role::parse(&role).map_or(MemberAccess::None, MemberAccess::Active)
    };
    let MemberAccess::Active(role) = access else {
        return Ok(ResolvedAccess { access, ..none });
    };
    let mut grants = CustomGrants::default();
    for row in rows {
        let Some(names) = row::named::<Option<String>>(row, "permissions")? else {
            continue;
        };
        let set = PermissionSet::from_stored(&names);
        if row::named::<Option<uuid::Uuid>>(row, "grant_location")?.is_none() {
            grants.tenant = grants.tenant | set;
        } else {
            grants.location = grants.location | set;
        }
    }
    let mut location_role = None;
    if location.is_some() {
        let held: Option<String> = row::named(first, "location_role")?;
        let exists = row::named::<Option<uuid::Uuid>>(first, "location_id")?.is_some();
        location_role = match held.as_deref().and_then(Role::parse) {
            Some(r) => Some(r),
            None if !exists => return Err(TenancyError::LocationNotFound),
            None if matches!(role, Role::Owner | Role::Admin) => None,
            None => return Err(TenancyError::NotLocationMember),
        };
    }
    Ok(ResolvedAccess {
        access,
        grants,
        location_role,
    })
}
