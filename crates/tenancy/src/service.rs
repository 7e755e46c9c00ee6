//! The tenancy service trait and its SeaORM implementation.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde_json::json;
use tenantry_kernel::crypto::{hex, random_bytes};
use tenantry_kernel::db::{begin_write, is_unique_violation};
use tenantry_kernel::{
    Actor, AuditEntry, AuditSink, ClientMeta, Permission, RequestContext, Role, TenantId, UserId,
};

use crate::entity::{membership, tenant};
use crate::{Membership, Slug, TenancyError, Tenant, TenantName, TenantUpdate};

/// What other crates and the HTTP shell may ask of tenancy.
#[async_trait::async_trait]
pub trait TenancyService: Send + Sync {
    /// Creates a tenant with a unique slug and makes `owner` its owner, inside `txn`.
    async fn create_tenant(
        &self,
        txn: &DatabaseTransaction,
        name: &TenantName,
        owner: UserId,
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

    /// The role `user` holds in `tenant`, if they are a member.
    async fn role_of(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>, TenancyError>;

    /// Every tenant `user` belongs to, oldest membership first.
    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>, TenancyError>;
}

/// [`TenancyService`] over SeaORM.
#[derive(Clone)]
pub struct SeaTenancy {
    db: DatabaseConnection,
    audit: Arc<dyn AuditSink>,
}

impl SeaTenancy {
    /// A service over `db` that records its commands through `audit`.
    #[must_use]
    pub fn new(db: DatabaseConnection, audit: Arc<dyn AuditSink>) -> Self {
        Self { db, audit }
    }
}

/// How often a taken slug is retried with a random suffix before giving up.
const SLUG_ATTEMPTS: usize = 5;

#[async_trait::async_trait]
impl TenancyService for SeaTenancy {
    #[tracing::instrument(skip_all, err)]
    async fn create_tenant(
        &self,
        txn: &DatabaseTransaction,
        name: &TenantName,
        owner: UserId,
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
                Err(e) if is_unique_violation(&e) && attempt < SLUG_ATTEMPTS => {
                    sp.rollback().await?;
                    attempt += 1;
                    let suffix =
                        random_bytes::<3>().map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
                    slug = base.with_suffix(&hex(&suffix));
                }
                Err(e) => return Err(e.into()),
            }
        };
        membership::ActiveModel {
            tenant_id: Set(id.0),
            user_id: Set(owner.0),
            role: Set(Role::Owner.as_str().to_owned()),
            created_at: Set(now),
        }
        .insert(txn)
        .await?;
        let tenant = Tenant::from(model);
        self.audit
            .record(
                txn,
                AuditEntry::new(
                    Some(id),
                    Actor::User(owner),
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

    #[tracing::instrument(skip_all, err, fields(tenant_id = %ctx.tenant_id))]
    async fn current(&self, ctx: &RequestContext) -> Result<Tenant, TenancyError> {
        ctx.require(Permission::TenantRead)?;
        tenant::Entity::find_by_id(ctx.tenant_id.0)
            .one(&self.db)
            .await?
            .map(Tenant::from)
            .ok_or(TenancyError::NotFound)
    }

    #[tracing::instrument(skip_all, err, fields(tenant_id = %ctx.tenant_id))]
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
                AuditEntry::new(
                    Some(ctx.tenant_id),
                    ctx.actor(),
                    "tenant.updated",
                    "tenant",
                    Some(ctx.tenant_id.to_string()),
                    &ctx.client,
                )
                .with_change(
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

    async fn role_of(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>, TenancyError> {
        let found = membership::Entity::find_by_id((tenant.0, user.0))
            .one(&self.db)
            .await?;
        Ok(found.and_then(|m| Role::parse(&m.role)))
    }

    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>, TenancyError> {
        let rows = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user.0))
            .order_by_asc(membership::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let ids: Vec<_> = rows.iter().map(|m| m.tenant_id).collect();
        let tenants = tenant::Entity::find()
            .filter(tenant::Column::Id.is_in(ids))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|m| {
                let role = Role::parse(&m.role)?;
                let t = tenants.iter().find(|t| t.id == m.tenant_id)?;
                Some(Membership {
                    tenant: t.clone().into(),
                    role,
                })
            })
            .collect())
    }
}
