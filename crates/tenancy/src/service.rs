//! The tenancy service trait and its SeaORM implementation.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, Set, TransactionTrait,
};
use serde_json::json;
use tenantry_kernel::crypto::{hex, random_bytes};
use tenantry_kernel::db::{Db, Txn, UniqueKey, begin_write, violates};
use tenantry_kernel::{
    Actor, AuditEntry, AuditSink, ClientMeta, LocationId, Permission, RequestContext, Role,
    SessionPort, TenantId, UserId,
};

use crate::entity::{location, location_member, membership, tenant, tenant_settings};
use crate::member_service::lock_tenant;
use crate::{
    Ceilings, MemberAccess, MemberStatus, Membership, NewMember, Slug, StoredSettings,
    TenancyError, Tenant, TenantName, TenantSettings, TenantStatus, TenantUpdate,
    memberships_from_rows, memberships_query,
};

/// A tenant's slug is unique.
const TENANT_SLUG: UniqueKey = UniqueKey {
    name: "tenants_slug_key",
    table: "tenants",
    columns: &["slug"],
};

/// A tenant has one settings row.
const SETTINGS_ROW: UniqueKey = UniqueKey {
    name: "tenant_settings_pkey",
    table: "tenant_settings",
    columns: &["tenant_id"],
};

/// A user belongs to a tenant once.
const MEMBERSHIP: UniqueKey = UniqueKey {
    name: "memberships_pkey",
    table: "memberships",
    columns: &["tenant_id", "user_id"],
};

/// What other crates and the HTTP shell may ask of tenancy.
#[async_trait::async_trait]
pub trait TenancyService: Send + Sync {
    /// Creates a tenant with a unique slug and makes `owner` its owner, inside `txn`.
    async fn create_tenant(
        &self,
        txn: &Txn,
        name: &TenantName,
        owner: &NewMember,
        client: &ClientMeta,
    ) -> Result<Tenant, TenancyError>;

    /// The tenant the context acts in.
    async fn current(&self, ctx: &RequestContext) -> Result<Tenant, TenancyError>;

    /// Changes the current tenant; `if_match` (a version) makes the change conditional.
    async fn update_current(
        &self,
        ctx: &RequestContext,
        update: TenantUpdate,
        if_match: Option<i32>,
    ) -> Result<Tenant, TenancyError>;

    /// What `user` may do in `tenant`: whether they are an active member of an active tenant,
    /// and with which role.
    async fn access_of(&self, tenant: TenantId, user: UserId)
    -> Result<MemberAccess, TenancyError>;

    /// Everything an authenticated request needs about `user` in `tenant` (and at
    /// `location`): access, system role, custom grants and location role, in one query.
    async fn resolve_access(
        &self,
        tenant: TenantId,
        user: UserId,
        location: Option<LocationId>,
    ) -> Result<crate::ResolvedAccess, TenancyError>;

    /// Which of `users` belong to `tenant`, active or not, read inside `txn`.
    async fn members_among(
        &self,
        txn: &Txn,
        tenant: TenantId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, TenancyError>;

    /// Suspends or reactivates a tenant, as an operator does; a suspended tenant's members
    /// can neither sign in nor call the API.
    async fn set_status(
        &self,
        tenant: TenantId,
        status: TenantStatus,
        by: Actor,
        client: &ClientMeta,
    ) -> Result<Tenant, TenancyError>;

    /// Every tenant `user` belongs to, oldest membership first.
    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>, TenancyError>;

    /// The current tenant's settings and their version.
    async fn settings(&self, ctx: &RequestContext) -> Result<StoredSettings, TenancyError>;

    /// Replaces the current tenant's settings; `if_match` (a version) makes it conditional.
    async fn update_settings(
        &self,
        ctx: &RequestContext,
        settings: TenantSettings,
        if_match: Option<i32>,
    ) -> Result<StoredSettings, TenancyError>;

    /// A tenant by id, for other services acting on its behalf.
    async fn find(&self, tenant: TenantId) -> Result<Tenant, TenancyError>;

    /// The settings of `tenant`, for other services acting on its behalf.
    async fn settings_of(&self, tenant: TenantId) -> Result<TenantSettings, TenancyError>;

    /// Makes `member` a member of `tenant` with `role`, inside `txn`, and of `location` too
    /// when one is given.
    async fn add_member(
        &self,
        txn: &Txn,
        tenant: TenantId,
        member: &NewMember,
        role: Role,
        location: Option<LocationId>,
    ) -> Result<(), TenancyError>;

    /// Whether `location` is one of `tenant`'s.
    async fn location_exists(
        &self,
        tenant: TenantId,
        location: LocationId,
    ) -> Result<bool, TenancyError>;

    /// Locks `tenant` for the rest of `txn`, so that concurrent seat checks of one tenant
    /// queue behind each other, and answers how many active members it has.
    async fn lock_and_count_members(
        &self,
        txn: &Txn,
        tenant: TenantId,
    ) -> Result<u64, TenancyError>;
}

/// [`TenancyService`] over SeaORM.
#[derive(Clone)]
pub struct SeaTenancy {
    pub(crate) db: Db,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) sessions: Arc<dyn SessionPort>,
    pub(crate) ceilings: Ceilings,
}

impl SeaTenancy {
    /// A service over `db` that records its commands through `audit`, ends members'
    /// sessions through `sessions`, and lets tenants set their limits up to `ceilings`.
    #[must_use]
    pub fn new(
        db: Db,
        audit: Arc<dyn AuditSink>,
        sessions: Arc<dyn SessionPort>,
        ceilings: Ceilings,
    ) -> Self {
        Self {
            db,
            audit,
            sessions,
            ceilings,
        }
    }

    /// `tenant`'s settings as they are in effect (see [`TenantSettings::within`]).
    pub(crate) async fn load_settings(
        &self,
        db: &impl ConnectionTrait,
        tenant: TenantId,
    ) -> Result<StoredSettings, TenancyError> {
        let mut stored = load_stored_settings(db, tenant).await?;
        stored.settings = stored.settings.within(&self.ceilings);
        Ok(stored)
    }
}

/// How often a taken slug is retried with a random suffix before giving up.
const SLUG_ATTEMPTS: usize = 5;

#[async_trait::async_trait]
impl TenancyService for SeaTenancy {
    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn create_tenant(
        &self,
        txn: &Txn,
        name: &TenantName,
        owner: &NewMember,
        client: &ClientMeta,
    ) -> Result<Tenant, TenancyError> {
        let base = Slug::from_name(name);
        let now = Utc::now();
        let id = TenantId::new();
        let mut slug = base.clone();
        let mut attempt = 0;
        let model = loop {
            // A savepoint per attempt: on PostgreSQL a failed INSERT poisons the whole
            // transaction unless it is rolled back to a savepoint.
            let sp = txn.begin().await?;
            let inserted = tenant::ActiveModel {
                id: Set(id.0),
                name: Set(name.as_str().to_owned()),
                slug: Set(slug.as_str().to_owned()),
                status: Set("active".to_owned()),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&sp)
            .await;
            match inserted {
                Ok(model) => {
                    sp.commit().await?;
                    break model;
                }
                Err(e) if violates(&e, &TENANT_SLUG) && attempt < SLUG_ATTEMPTS => {
                    sp.rollback().await?;
                    attempt += 1;
                    let suffix =
                        random_bytes::<3>().map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
                    slug = base.with_suffix(&hex(&suffix));
                }
                Err(e) => return Err(e.into()),
            }
        };
        crate::roles::seed_system_roles(txn, id, now).await?;
        new_membership(id, owner, Role::Owner, now)
            .insert(txn)
            .await?;
        let tenant = Tenant::from(model);
        self.audit
            .record(
                txn,
                AuditEntry::new(
                    Some(id),
                    Actor::User(owner.user_id),
                    "tenant.created",
                    "tenant",
                    Some(id.to_string()),
                    client,
                )
                .with_change(
                    None,
                    Some(json!({"name": tenant.name, "slug": tenant.slug})),
                ),
            )
            .await?;
        Ok(tenant)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn current(&self, ctx: &RequestContext) -> Result<Tenant, TenancyError> {
        ctx.require(Permission::TenantRead)?;
        tenant::Entity::find_by_id(ctx.tenant_id.0)
            .one(&self.db)
            .await?
            .map(Tenant::from)
            .ok_or(TenancyError::NotFound)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn update_current(
        &self,
        ctx: &RequestContext,
        update: TenantUpdate,
        if_match: Option<i32>,
    ) -> Result<Tenant, TenancyError> {
        ctx.require(Permission::TenantUpdate)?;
        let txn = begin_write(&self.db).await?;
        let before = tenant::Entity::find_by_id(ctx.tenant_id.0)
            .one(&txn)
            .await?
            .ok_or(TenancyError::NotFound)?;
        if let Some(expected) = if_match
            && expected != before.version
        {
            return Err(TenancyError::StaleVersion(expected));
        }
        let Some(name) = update.name else {
            txn.commit().await?;
            return Ok(before.into());
        };
        let now = Utc::now();
        // The version guard makes the write conditional even without If-Match, so two
        // concurrent updates cannot both apply on top of the same version.
        let result = tenant::Entity::update_many()
            .col_expr(tenant::Column::Name, Expr::value(name.as_str()))
            .col_expr(tenant::Column::Version, Expr::value(before.version + 1))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(now))
            .filter(tenant::Column::Id.eq(ctx.tenant_id.0))
            .filter(tenant::Column::Version.eq(before.version))
            .exec(&txn)
            .await?;
        if result.rows_affected != 1 {
            return Err(TenancyError::StaleVersion(before.version));
        }
        self.audit
            .record(
                &txn,
                AuditEntry::in_context(ctx, "tenant.updated", "tenant", ctx.tenant_id).with_change(
                    Some(json!({"name": before.name})),
                    Some(json!({"name": name.as_str()})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(Tenant {
            name: name.as_str().to_owned(),
            version: before.version + 1,
            updated_at: now,
            ..before.into()
        })
    }

    async fn access_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<MemberAccess, TenancyError> {
        // One round trip per authenticated request: the membership with its tenant.
        let Some((m, t)) = membership::Entity::find_by_id((tenant.0, user.0))
            .find_also_related(tenant::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(MemberAccess::None);
        };
        if m.status != MemberStatus::Active.as_str() {
            return Ok(MemberAccess::Deactivated);
        }
        let t = t.ok_or(TenancyError::NotFound)?;
        if t.status != TenantStatus::Active.as_str() {
            return Ok(MemberAccess::TenantSuspended);
        }
        Ok(Role::parse(&m.role).map_or(MemberAccess::None, MemberAccess::Active))
    }

    async fn resolve_access(
        &self,
        tenant: TenantId,
        user: UserId,
        location: Option<LocationId>,
    ) -> Result<crate::ResolvedAccess, TenancyError> {
        crate::access::resolve_access(&self.db, tenant, user, location).await
    }

    async fn members_among(
        &self,
        txn: &Txn,
        tenant: TenantId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, TenancyError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        Ok(membership::Entity::find()
            .filter(membership::Column::TenantId.eq(tenant.0))
            .filter(membership::Column::UserId.is_in(users.iter().map(|u| u.0)))
            .all(txn)
            .await?
            .into_iter()
            .map(|m| UserId(m.user_id))
            .collect())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %tenant))]
    async fn set_status(
        &self,
        tenant: TenantId,
        status: TenantStatus,
        by: Actor,
        client: &ClientMeta,
    ) -> Result<Tenant, TenancyError> {
        let txn = begin_write(&self.db).await?;
        let before = lock_tenant(&txn, tenant).await?;
        if before.status == status.as_str() {
            txn.commit().await?;
            return Ok(before.into());
        }
        let mut active = before.clone().into_active_model();
        active.status = Set(status.as_str().to_owned());
        active.version = Set(before.version + 1);
        active.updated_at = Set(Utc::now());
        let after = active.update(&txn).await?;
        self.audit
            .record(
                &txn,
                AuditEntry::new(
                    Some(tenant),
                    by,
                    match status {
                        TenantStatus::Active => "tenant.reactivated",
                        TenantStatus::Suspended => "tenant.suspended",
                    },
                    "tenant",
                    Some(tenant.to_string()),
                    client,
                )
                .with_change(
                    Some(json!({"status": before.status})),
                    Some(json!({"status": status.as_str()})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(after.into())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn settings(&self, ctx: &RequestContext) -> Result<StoredSettings, TenancyError> {
        ctx.require(Permission::TenantRead)?;
        self.load_settings(&self.db, ctx.tenant_id).await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn update_settings(
        &self,
        ctx: &RequestContext,
        settings: TenantSettings,
        if_match: Option<i32>,
    ) -> Result<StoredSettings, TenancyError> {
        ctx.require(Permission::TenantUpdate)?;
        let settings = settings.validated(&self.ceilings)?;
        let txn = begin_write(&self.db).await?;
        let before = self.load_settings(&txn, ctx.tenant_id).await?;
        if let Some(expected) = if_match
            && expected != before.version
        {
            return Err(TenancyError::StaleVersion(expected));
        }
        let now = Utc::now();
        let document =
            serde_json::to_value(&settings).map_err(|e| sea_orm::DbErr::Json(e.to_string()))?;
        let version = before.version + 1;
        if before.version == 0 {
            // First change: the row is created; a concurrent first change hits the key.
            let inserted = tenant_settings::ActiveModel {
                tenant_id: Set(ctx.tenant_id.0),
                settings: Set(document),
                version: Set(version),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if violates(&e, &SETTINGS_ROW) => return Err(TenancyError::StaleVersion(0)),
                Err(e) => return Err(e.into()),
            }
        } else {
            let result = tenant_settings::Entity::update_many()
                .col_expr(tenant_settings::Column::Settings, Expr::value(document))
                .col_expr(tenant_settings::Column::Version, Expr::value(version))
                .col_expr(tenant_settings::Column::UpdatedAt, Expr::value(now))
                .filter(tenant_settings::Column::TenantId.eq(ctx.tenant_id.0))
                .filter(tenant_settings::Column::Version.eq(before.version))
                .exec(&txn)
                .await?;
            if result.rows_affected != 1 {
                return Err(TenancyError::StaleVersion(before.version));
            }
        }
        self.audit
            .record(
                &txn,
                AuditEntry::in_context(ctx, "tenant.settings_updated", "tenant", ctx.tenant_id)
                    .with_change(
                        serde_json::to_value(&before.settings).ok(),
                        serde_json::to_value(&settings).ok(),
                    ),
            )
            .await?;
        txn.commit().await?;
        Ok(StoredSettings {
            settings,
            version,
            updated_at: Some(now),
        })
    }

    async fn find(&self, tenant: TenantId) -> Result<Tenant, TenancyError> {
        tenant::Entity::find_by_id(tenant.0)
            .one(&self.db)
            .await?
            .map(Tenant::from)
            .ok_or(TenancyError::NotFound)
    }

    async fn settings_of(&self, tenant: TenantId) -> Result<TenantSettings, TenancyError> {
        Ok(self.load_settings(&self.db, tenant).await?.settings)
    }

    async fn add_member(
        &self,
        txn: &Txn,
        tenant: TenantId,
        member: &NewMember,
        role: Role,
        location: Option<LocationId>,
    ) -> Result<(), TenancyError> {
        let sp = txn.begin().await?;
        let now = Utc::now();
        let inserted = new_membership(tenant, member, role, now).insert(&sp).await;
        match inserted {
            Ok(_) => {}
            Err(e) if violates(&e, &MEMBERSHIP) => {
                sp.rollback().await?;
                return Err(TenancyError::AlreadyMember);
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(location) = location {
            // The location may have been deleted since the invitation named it; the member
            // then joins the tenant only.
            let exists = location::Entity::find_by_id(location.0)
                .filter(location::Column::TenantId.eq(tenant.0))
                .one(&sp)
                .await?
                .is_some();
            if exists {
                location_member::ActiveModel {
                    tenant_id: Set(tenant.0),
                    location_id: Set(location.0),
                    user_id: Set(member.user_id.0),
                    role: Set(Role::Member.as_str().to_owned()),
                    created_at: Set(now),
                }
                .insert(&sp)
                .await?;
            }
        }
        Ok(sp.commit().await?)
    }

    async fn location_exists(
        &self,
        tenant: TenantId,
        location: LocationId,
    ) -> Result<bool, TenancyError> {
        Ok(location::Entity::find_by_id(location.0)
            .filter(location::Column::TenantId.eq(tenant.0))
            .one(&self.db)
            .await?
            .is_some())
    }

    async fn lock_and_count_members(
        &self,
        txn: &Txn,
        tenant: TenantId,
    ) -> Result<u64, TenancyError> {
        lock_tenant(txn, tenant).await?;
        count_active_members(txn, tenant).await
    }

    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>, TenancyError> {
        let rows = self.db.query_all(&memberships_query(user)).await?;
        memberships_from_rows(&rows)
    }
}

/// A new membership row.
fn new_membership(
    tenant: TenantId,
    member: &NewMember,
    role: Role,
    now: chrono::DateTime<Utc>,
) -> membership::ActiveModel {
    membership::ActiveModel {
        tenant_id: Set(tenant.0),
        user_id: Set(member.user_id.0),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
        status: Set(MemberStatus::Active.as_str().to_owned()),
        name: Set(member.name.clone()),
        email: Set(member.email.clone()),
        job_title: Set(None),
        phone: Set(None),
        expertise_tags: Set(None),
        hourly_rate_minor: Set(None),
        hourly_rate_currency: Set(None),
        deactivated_at: Set(None),
        updated_at: Set(Some(now)),
    }
}

/// How many active members `tenant` has.
pub(crate) async fn count_active_members(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<u64, TenancyError> {
    Ok(membership::Entity::find()
        .filter(membership::Column::TenantId.eq(tenant.0))
        .filter(membership::Column::Status.eq(MemberStatus::Active.as_str()))
        .count(conn)
        .await?)
}

/// A tenant's settings as stored; version 0 means it never changed them.
async fn load_stored_settings(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<StoredSettings, TenancyError> {
    let Some(row) = tenant_settings::Entity::find_by_id(tenant.0)
        .one(db)
        .await?
    else {
        return Ok(StoredSettings {
            settings: TenantSettings::default(),
            version: 0,
            updated_at: None,
        });
    };
    let settings =
        serde_json::from_value(row.settings).map_err(|e| sea_orm::DbErr::Json(e.to_string()))?;
    Ok(StoredSettings {
        settings,
        version: row.version,
        updated_at: Some(row.updated_at),
    })
}
