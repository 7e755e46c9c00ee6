//! Roles: the five system roles every tenant has, the custom roles a tenant defines, and the
//! grants that give them to members, tenant-wide or at one location.
//!
//! A member holds exactly one system role tenant-wide (its rank, kept on the membership) and
//! at most one per location it works at (kept on the location membership); custom roles are
//! granted on top through `member_roles`. Nobody creates, edits or grants a role holding a
//! permission they do not hold themselves.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use tenantry_kernel::db::{Txn, UniqueKey, begin_write, violates};
use tenantry_kernel::row;
use tenantry_kernel::{
    AuditEntry, KeyPageRequest, LocationId, Page, Permission, RequestContext, Role, RoleId,
    TenantId, UserId,
};

use crate::entity::{location_member, member_role, membership, role};
use crate::member_service::{load_member, lock_tenant, may_manage};
use crate::{
    LocationService, MAX_CUSTOM_ROLES, MemberService, RoleDefinition, RoleGrant, RoleInput,
    SeaTenancy, TenancyError,
};

/// A role's key is unique within its tenant.
const ROLE_KEY: UniqueKey = UniqueKey {
    name: "roles_tenant_key_key",
    table: "roles",
    columns: &["tenant_id", "key"],
};

/// A member holds a role once tenant-wide and once per location.
const GRANTS: [UniqueKey; 2] = [
    UniqueKey {
        name: "member_roles_tenant_key",
        table: "member_roles",
        columns: &["tenant_id", "user_id", "role_id"],
    },
    UniqueKey {
        name: "member_roles_location_key",
        table: "member_roles",
        columns: &["tenant_id", "user_id", "role_id", "location_id"],
    },
];

/// The tenant's roles and who holds them.
#[async_trait::async_trait]
pub trait RoleService: Send + Sync {
    /// The tenant's roles, system and custom, by key.
    async fn list_roles(
        &self,
        ctx: &RequestContext,
        page: KeyPageRequest,
    ) -> Result<Page<RoleDefinition>, TenancyError>;

    /// One role of the tenant.
    async fn role(&self, ctx: &RequestContext, id: RoleId) -> Result<RoleDefinition, TenancyError>;

    /// Defines a custom role; its permissions must be ones the caller holds.
    async fn create_role(
        &self,
        ctx: &RequestContext,
        key: String,
        input: RoleInput,
    ) -> Result<RoleDefinition, TenancyError>;

    /// Replaces a custom role's name, description and permissions; `if_match` (a version)
    /// makes it conditional. The caller must hold the old permissions and the new ones.
    async fn update_role(
        &self,
        ctx: &RequestContext,
        id: RoleId,
        input: RoleInput,
        if_match: Option<i32>,
    ) -> Result<RoleDefinition, TenancyError>;

    /// Deletes a custom role and every grant of it.
    async fn delete_role(&self, ctx: &RequestContext, id: RoleId) -> Result<(), TenancyError>;

    /// The roles a member holds: its system role, its location roles and its custom roles.
    async fn member_roles(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Vec<RoleGrant>, TenancyError>;

    /// Grants a role to a member, tenant-wide or at `location`. A system role granted
    /// tenant-wide replaces the member's system role; at a location it replaces the member's
    /// role there (adding the member to the location).
    async fn grant_role(
        &self,
        ctx: &RequestContext,
        user: UserId,
        role: RoleId,
        location: Option<LocationId>,
    ) -> Result<RoleGrant, TenancyError>;

    /// Takes a role from a member. A member keeps one system role tenant-wide; taking a
    /// location's system role takes the member off that location.
    async fn revoke_role(
        &self,
        ctx: &RequestContext,
        user: UserId,
        role: RoleId,
        location: Option<LocationId>,
    ) -> Result<(), TenancyError>;
}

/// The rows of a new tenant's system roles.
pub(crate) async fn seed_system_roles(
    txn: &Txn,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<(), TenancyError> {
    let rows = Role::ALL.map(|r| role::ActiveModel {
        id: Set(RoleId::new().0),
        tenant_id: Set(tenant.0),
        key: Set(r.as_str().to_owned()),
        name: Set(r.title().to_owned()),
        description: Set(r.description().to_owned()),
        permissions: Set(String::new()),
        system: Set(true),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    });
    role::Entity::insert_many(rows).exec(txn).await?;
    Ok(())
}

async fn load_role(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: RoleId,
) -> Result<role::Model, TenancyError> {
    role::Entity::find_by_id(id.0)
        .filter(role::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .ok_or(TenancyError::RoleNotFound)
}

fn role_entry(
    ctx: &RequestContext,
    action: &'static str,
    id: RoleId,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
) -> AuditEntry {
    AuditEntry::in_context(ctx, action, "role", id).with_change(old, new)
}

fn grant_entry(
    ctx: &RequestContext,
    action: &'static str,
    user: UserId,
    role: &RoleDefinition,
    location: Option<LocationId>,
) -> AuditEntry {
    AuditEntry::in_context(ctx, action, "member", user).with_change(
        None,
        Some(json!({"role_id": role.id, "role": role.key, "location_id": location})),
    )
}

fn definition_json(d: &RoleDefinition) -> serde_json::Value {
    json!({
        "key": d.key,
        "name": d.name,
        "description": d.description,
        "permissions": d.permissions.names(),
    })
}

impl SeaTenancy {
    /// Opens a grant or revocation of the custom role `target`: `users.manage` and a rank at
    /// least the member's tenant-wide, `locations.manage` at a location, and every permission
    /// of the role held where it applies; the tenant locked and the member loaded.
    async fn begin_grant(
        &self,
        ctx: &RequestContext,
        user: UserId,
        target: &RoleDefinition,
        location: Option<LocationId>,
    ) -> Result<Txn, TenancyError> {
        match location {
            None => ctx.require(Permission::UsersManage)?,
            Some(l) => ctx.require_at(l, Permission::LocationsManage)?,
        }
        ctx.require_all(target.permissions, location)?;
        let txn = begin_write(&self.db).await?;
        lock_tenant(&txn, ctx.tenant_id).await?;
        let member = load_member(&txn, ctx.tenant_id, user).await?;
        if location.is_none() {
            may_manage(ctx, Role::parse(&member.role).unwrap_or(Role::Owner))?;
        }
        Ok(txn)
    }
}

#[async_trait::async_trait]
impl RoleService for SeaTenancy {
    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn list_roles(
        &self,
        ctx: &RequestContext,
        page: KeyPageRequest,
    ) -> Result<Page<RoleDefinition>, TenancyError> {
        ctx.require(Permission::RolesRead)?;
        let mut q = role::Entity::find().filter(role::Column::TenantId.eq(ctx.tenant_id.0));
        if let Some(after) = page.after_condition(role::Column::Key, role::Column::Id) {
            q = q.filter(after);
        }
        let q = q
            .order_by_asc(role::Column::Key)
            .order_by_asc(role::Column::Id)
            .limit(page.fetch());
        let rows: Vec<role::Model> = row::all(&self.db, &q).await?;
        let roles = rows.into_iter().map(RoleDefinition::from).collect();
        Ok(page.page(roles, |r: &RoleDefinition| (r.key.as_str(), r.id.0)))
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn role(&self, ctx: &RequestContext, id: RoleId) -> Result<RoleDefinition, TenancyError> {
        ctx.require(Permission::RolesRead)?;
        Ok(load_role(&self.db, ctx.tenant_id, id).await?.into())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn create_role(
        &self,
        ctx: &RequestContext,
        key: String,
        input: RoleInput,
    ) -> Result<RoleDefinition, TenancyError> {
        ctx.require(Permission::RolesManage)?;
        ctx.require_all(input.permissions, None)?;
        let txn = begin_write(&self.db).await?;
        lock_tenant(&txn, ctx.tenant_id).await?;
        let custom = role::Entity::find()
            .filter(role::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(role::Column::System.eq(false))
            .count(&txn)
            .await?;
        if custom >= MAX_CUSTOM_ROLES {
            return Err(TenancyError::RoleLimitReached(MAX_CUSTOM_ROLES));
        }
        let now = Utc::now();
        let row = role::ActiveModel {
            id: Set(RoleId::new().0),
            tenant_id: Set(ctx.tenant_id.0),
            key: Set(key),
            name: Set(input.name),
            description: Set(input.description),
            permissions: Set(input.permissions.to_stored()),
            system: Set(false),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            if violates(&e, &ROLE_KEY) {
                TenancyError::RoleKeyTaken
            } else {
                e.into()
            }
        })?;
        let created = RoleDefinition::from(row);
        self.audit
            .record(
                &txn,
                role_entry(
                    ctx,
                    "role.created",
                    created.id,
                    None,
                    Some(definition_json(&created)),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(created)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn update_role(
        &self,
        ctx: &RequestContext,
        id: RoleId,
        input: RoleInput,
        if_match: Option<i32>,
    ) -> Result<RoleDefinition, TenancyError> {
        ctx.require(Permission::RolesManage)?;
        let txn = begin_write(&self.db).await?;
        let row = load_role(&txn, ctx.tenant_id, id).await?;
        if row.system {
            return Err(TenancyError::SystemRoleImmutable);
        }
        let before = RoleDefinition::from(row);
        ctx.require_all(before.permissions | input.permissions, None)?;
        if let Some(expected) = if_match
            && expected != before.version
        {
            return Err(TenancyError::StaleVersion(expected));
        }
        let now = Utc::now();
        let result = role::Entity::update_many()
            .col_expr(role::Column::Name, Expr::value(input.name.clone()))
            .col_expr(
                role::Column::Description,
                Expr::value(input.description.clone()),
            )
            .col_expr(
                role::Column::Permissions,
                Expr::value(input.permissions.to_stored()),
            )
            .col_expr(role::Column::Version, Expr::value(before.version + 1))
            .col_expr(role::Column::UpdatedAt, Expr::value(now))
            .filter(role::Column::Id.eq(id.0))
            .filter(role::Column::Version.eq(before.version))
            .exec(&txn)
            .await?;
        if result.rows_affected != 1 {
            return Err(TenancyError::StaleVersion(before.version));
        }
        let after = RoleDefinition {
            name: input.name,
            description: input.description,
            permissions: input.permissions,
            version: before.version + 1,
            updated_at: now,
            ..before.clone()
        };
        self.audit
            .record(
                &txn,
                role_entry(
                    ctx,
                    "role.updated",
                    id,
                    Some(definition_json(&before)),
                    Some(definition_json(&after)),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(after)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn delete_role(&self, ctx: &RequestContext, id: RoleId) -> Result<(), TenancyError> {
        ctx.require(Permission::RolesManage)?;
        let txn = begin_write(&self.db).await?;
        let row = load_role(&txn, ctx.tenant_id, id).await?;
        if row.system {
            return Err(TenancyError::SystemRoleImmutable);
        }
        let before = RoleDefinition::from(row);
        ctx.require_all(before.permissions, None)?;
        let removed = member_role::Entity::delete_many()
            .filter(member_role::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(member_role::Column::RoleId.eq(id.0))
            .exec(&txn)
            .await?
            .rows_affected;
        role::Entity::delete_by_id(id.0).exec(&txn).await?;
        self.audit
            .record(
                &txn,
                role_entry(
                    ctx,
                    "role.deleted",
                    id,
                    Some(definition_json(&before)),
                    Some(json!({"grants_removed": removed})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn member_roles(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Vec<RoleGrant>, TenancyError> {
        if ctx.user_id() != Some(user) {
            ctx.require(Permission::RolesRead)?;
        }
        let member = load_member(&self.db, ctx.tenant_id, user).await?;
        grants_of(&self.db, ctx.tenant_id, &member).await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn grant_role(
        &self,
        ctx: &RequestContext,
        user: UserId,
        role_id: RoleId,
        location: Option<LocationId>,
    ) -> Result<RoleGrant, TenancyError> {
        let target = load_role(&self.db, ctx.tenant_id, role_id).await?;
        let target = RoleDefinition::from(target);
        match (target.system, location) {
            (Some(system), None) => {
                let member = self.change_role(ctx, user, system).await?;
                return Ok(RoleGrant {
                    role: target,
                    location_id: None,
                    granted_at: member.updated_at,
                });
            }
            // The owner role is named by id here, so no schema can refuse it: it conflicts
            // with what the role is.
            (Some(Role::Owner), Some(_)) => return Err(TenancyError::OwnerIsTenantWide),
            (Some(system), Some(l)) => {
                self.set_location_member(ctx, l, user, system).await?;
                let held = location_member::Entity::find_by_id((ctx.tenant_id.0, l.0, user.0))
                    .one(&self.db)
                    .await?
                    .ok_or(TenancyError::MemberNotFound)?;
                return Ok(RoleGrant {
                    role: target,
                    location_id: Some(l),
                    granted_at: held.created_at,
                });
            }
            (None, _) => {}
        }
        let txn = self.begin_grant(ctx, user, &target, location).await?;
        if let Some(l) = location {
            let on_location = location_member::Entity::find_by_id((ctx.tenant_id.0, l.0, user.0))
                .one(&txn)
                .await?;
            if on_location.is_none() {
                let exists = crate::entity::location::Entity::find_by_id(l.0)
                    .filter(crate::entity::location::Column::TenantId.eq(ctx.tenant_id.0))
                    .one(&txn)
                    .await?
                    .is_some();
                return Err(if exists {
                    TenancyError::NotOnLocation
                } else {
                    TenancyError::LocationNotFound
                });
            }
        }
        let now = Utc::now();
        let inserted = member_role::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(ctx.tenant_id.0),
            user_id: Set(user.0),
            role_id: Set(role_id.0),
            location_id: Set(location.map(|l| l.0)),
            granted_by: Set(ctx.user_id().map(|u| u.0)),
            created_at: Set(now),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if GRANTS.iter().any(|key| violates(&e, key)) => {
                return Err(TenancyError::RoleAlreadyGranted);
            }
            Err(e) => return Err(e.into()),
        }
        self.audit
            .record(
                &txn,
                grant_entry(ctx, "member.role_granted", user, &target, location),
            )
            .await?;
        txn.commit().await?;
        Ok(RoleGrant {
            role: target,
            location_id: location,
            granted_at: now,
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn revoke_role(
        &self,
        ctx: &RequestContext,
        user: UserId,
        role_id: RoleId,
        location: Option<LocationId>,
    ) -> Result<(), TenancyError> {
        let target = RoleDefinition::from(load_role(&self.db, ctx.tenant_id, role_id).await?);
        match (target.system, location) {
            (Some(system), None) => {
                ctx.require(Permission::UsersManage)?;
                let member = load_member(&self.db, ctx.tenant_id, user).await?;
                return Err(if member.role == system.as_str() {
                    TenancyError::SystemRoleRequired
                } else {
                    TenancyError::GrantNotFound
                });
            }
            (Some(system), Some(l)) => {
                let held = location_member::Entity::find_by_id((ctx.tenant_id.0, l.0, user.0))
                    .one(&self.db)
                    .await?;
                if held.is_none_or(|h| h.role != system.as_str()) {
                    ctx.require_at(l, Permission::LocationsRead)?;
                    return Err(TenancyError::GrantNotFound);
                }
                return self.remove_location_member(ctx, l, user).await;
            }
            (None, _) => {}
        }
        let txn = self.begin_grant(ctx, user, &target, location).await?;
        let scope = match location {
            None => member_role::Column::LocationId.is_null(),
            Some(l) => member_role::Column::LocationId.eq(l.0),
        };
        let removed = member_role::Entity::delete_many()
            .filter(member_role::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(member_role::Column::UserId.eq(user.0))
            .filter(member_role::Column::RoleId.eq(role_id.0))
            .filter(scope)
            .exec(&txn)
            .await?
            .rows_affected;
        if removed == 0 {
            return Err(TenancyError::GrantNotFound);
        }
        self.audit
            .record(
                &txn,
                grant_entry(ctx, "member.role_revoked", user, &target, location),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }
}

/// Every role `member` holds: the system role, the location roles, the custom grants.
async fn grants_of(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: &membership::Model,
) -> Result<Vec<RoleGrant>, TenancyError> {
    let user = UserId(member.user_id);
    let roles: Vec<RoleDefinition> = role::Entity::find()
        .filter(role::Column::TenantId.eq(tenant.0))
        .filter(
            Condition::any().add(role::Column::System.eq(true)).add(
                role::Column::Id.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(member_role::Column::RoleId)
                        .from(member_role::Entity)
                        .and_where(member_role::Column::TenantId.eq(tenant.0))
                        .and_where(member_role::Column::UserId.eq(user.0))
                        .to_owned(),
                ),
            ),
        )
        .all(conn)
        .await?
        .into_iter()
        .map(RoleDefinition::from)
        .collect();
    let system = |r: Role| roles.iter().find(|d| d.system == Some(r)).cloned();
    let mut grants = Vec::new();
    if let Some(tenant_role) = Role::parse(&member.role).and_then(system) {
        grants.push(RoleGrant {
            role: tenant_role,
            location_id: None,
            granted_at: member.updated_at.unwrap_or(member.created_at),
        });
    }
    let at_locations = location_member::Entity::find()
        .filter(location_member::Column::TenantId.eq(tenant.0))
        .filter(location_member::Column::UserId.eq(user.0))
        .order_by_asc(location_member::Column::CreatedAt)
        .all(conn)
        .await?;
    for l in at_locations {
        if let Some(role) = Role::parse(&l.role).and_then(system) {
            grants.push(RoleGrant {
                role,
                location_id: Some(LocationId(l.location_id)),
                granted_at: l.created_at,
            });
        }
    }
    let custom = member_role::Entity::find()
        .filter(member_role::Column::TenantId.eq(tenant.0))
        .filter(member_role::Column::UserId.eq(user.0))
        .order_by_asc(member_role::Column::CreatedAt)
        .all(conn)
        .await?;
    for g in custom {
        if let Some(role) = roles.iter().find(|d| d.id.0 == g.role_id) {
            grants.push(RoleGrant {
                role: role.clone(),
                location_id: g.location_id.map(LocationId),
                granted_at: g.created_at,
            });
        }
    }
    Ok(grants)
}
