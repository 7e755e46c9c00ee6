//! Member commands over SeaORM: the directory, profiles, roles, deactivation, removal and
//! ownership. Every command that can take away an owner locks the tenant row first, so two
//! concurrent demotions cannot both see "another owner remains".

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QuerySelect, Set,
};
use serde_json::{Value, json};
use tenantry_kernel::db::{Txn, begin_write};
use tenantry_kernel::row;
use tenantry_kernel::{
    AuditEntry, KeyPageRequest, Page, Permission, RequestContext, Role, TenantId, UserId,
};

use crate::directory;
use crate::entity::{location_member, member_role, membership, tenant};
use crate::{
    Expertise, Member, MemberFilter, MemberStatus, ProfileUpdate, SeaTenancy, TenancyError,
};

/// The member directory and the commands that change members.
#[async_trait::async_trait]
pub trait MemberService: Send + Sync {
    /// Members of the current tenant matching `filter`, by name.
    async fn list_members(
        &self,
        ctx: &RequestContext,
        filter: MemberFilter,
        page: KeyPageRequest,
    ) -> Result<Page<Member>, TenancyError>;

    /// One member of the current tenant.
    async fn member(&self, ctx: &RequestContext, user: UserId) -> Result<Member, TenancyError>;

    /// Changes a member's profile; members may change their own.
    async fn update_member(
        &self,
        ctx: &RequestContext,
        user: UserId,
        update: ProfileUpdate,
    ) -> Result<Member, TenancyError>;

    /// Gives a member another role; the last active owner keeps theirs.
    async fn change_role(
        &self,
        ctx: &RequestContext,
        user: UserId,
        role: Role,
    ) -> Result<Member, TenancyError>;

    /// Deactivates a member and ends their sessions in the tenant at once.
    async fn deactivate_member(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Member, TenancyError>;

    /// Lets a deactivated member back in, if a seat is free.
    async fn reactivate_member(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Member, TenancyError>;

    /// Removes a member from the tenant and its locations and ends their sessions there;
    /// members may remove themselves (leave).
    async fn remove_member(&self, ctx: &RequestContext, user: UserId) -> Result<(), TenancyError>;

    /// A member's expertise.
    async fn expertise(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Expertise, TenancyError>;

    /// Replaces a member's expertise; members may set their own.
    async fn set_expertise(
        &self,
        ctx: &RequestContext,
        user: UserId,
        expertise: Expertise,
    ) -> Result<Expertise, TenancyError>;

    /// Makes another active member an owner and the calling owner an admin.
    async fn transfer_ownership(
        &self,
        ctx: &RequestContext,
        to: UserId,
    ) -> Result<Member, TenancyError>;
}

/// Loads one membership of `tenant`.
pub(crate) async fn load_member(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    user: UserId,
) -> Result<membership::Model, TenancyError> {
    membership::Entity::find_by_id((tenant.0, user.0))
        .one(conn)
        .await?
        .ok_or(TenancyError::MemberNotFound)
}

/// A membership row as a [`Member`], with its locations.
pub(crate) async fn to_member(
    conn: &impl ConnectionTrait,
    row: membership::Model,
) -> Result<Member, TenancyError> {
    let mut locations =
        directory::locations_of(conn, TenantId(row.tenant_id), &[row.user_id]).await?;
    let own = locations.remove(&row.user_id).unwrap_or_default();
    Ok(Member::from_row(row, own))
}

/// Locks the tenant row for the rest of `txn` (FOR UPDATE on PostgreSQL; SQLite's write
/// transactions are serial already).
pub(crate) async fn lock_tenant(
    txn: &Txn,
    tenant: TenantId,
) -> Result<tenant::Model, TenancyError> {
    tenant::Entity::find_by_id(tenant.0)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(TenancyError::NotFound)
}

/// How many active owners `tenant` has besides `except`.
async fn other_active_owners(
    txn: &Txn,
    tenant: TenantId,
    except: UserId,
) -> Result<u64, TenancyError> {
    Ok(membership::Entity::find()
        .filter(membership::Column::TenantId.eq(tenant.0))
        .filter(membership::Column::Role.eq(Role::Owner.as_str()))
        .filter(membership::Column::Status.eq(MemberStatus::Active.as_str()))
        .filter(membership::Column::UserId.ne(except.0))
        .count(txn)
        .await?)
}

/// Fails unless the caller ranks at least as high as `role`.
pub(crate) fn may_manage(ctx: &RequestContext, role: Role) -> Result<(), TenancyError> {
    if ctx.role.may_grant(role) {
        Ok(())
    } else {
        Err(TenancyError::RoleNotManageable(role))
    }
}

/// Members change their own profile and expertise; changing someone else's takes
/// `users.manage` and a rank at least theirs.
fn may_edit(ctx: &RequestContext, target: &membership::Model) -> Result<(), TenancyError> {
    if ctx.user_id().is_some_and(|me| me.0 == target.user_id) {
        return Ok(());
    }
    ctx.require(Permission::UsersManage)?;
    may_manage(ctx, Role::parse(&target.role).unwrap_or(Role::Owner))
}

/// Fails when `target` is the tenant's only active owner.
async fn ensure_not_last_owner(txn: &Txn, target: &membership::Model) -> Result<(), TenancyError> {
    if target.role == Role::Owner.as_str()
        && target.status == MemberStatus::Active.as_str()
        && other_active_owners(txn, TenantId(target.tenant_id), UserId(target.user_id)).await? == 0
    {
        return Err(TenancyError::LastOwner);
    }
    Ok(())
}

fn member_entry(
    ctx: &RequestContext,
    action: &'static str,
    user: UserId,
    old: Option<Value>,
    new: Option<Value>,
) -> AuditEntry {
    AuditEntry::in_context(ctx, action, "member", user).with_change(old, new)
}

impl SeaTenancy {
    /// Opens a member command on `user`: `users.manage`, the tenant locked, the membership
    /// loaded, and the caller ranking at least as high as the member.
    async fn begin_managed(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<(Txn, membership::Model), TenancyError> {
        ctx.require(Permission::UsersManage)?;
        let txn = begin_write(&self.db).await?;
        lock_tenant(&txn, ctx.tenant_id).await?;
        let row = load_member(&txn, ctx.tenant_id, user).await?;
        may_manage(ctx, Role::parse(&row.role).unwrap_or(Role::Owner))?;
        Ok((txn, row))
    }

    /// Records `entry` and commits, answering the member as `row` now stands.
    async fn commit_member(
        &self,
        txn: Txn,
        entry: AuditEntry,
        row: membership::Model,
    ) -> Result<Member, TenancyError> {
        self.audit.record(&txn, entry).await?;
        let member = to_member(&txn, row).await?;
        txn.commit().await?;
        Ok(member)
    }
}

#[async_trait::async_trait]
impl MemberService for SeaTenancy {
    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn list_members(
        &self,
        ctx: &RequestContext,
        filter: MemberFilter,
        page: KeyPageRequest,
    ) -> Result<Page<Member>, TenancyError> {
        ctx.require(Permission::UsersRead)?;
        let stmt = directory::members_page(
            self.db.get_database_backend(),
            ctx.tenant_id,
            &filter,
            &page,
        )?;
        let rows: Vec<membership::Model> = row::all_of(&self.db, stmt).await?;
        let ids: Vec<_> = rows.iter().map(|r| r.user_id).collect();
        let mut locations = directory::locations_of(&self.db, ctx.tenant_id, &ids).await?;
        let members = rows
            .into_iter()
            .map(|r| {
                let own = locations.remove(&r.user_id).unwrap_or_default();
                Member::from_row(r, own)
            })
            .collect();
        Ok(page.page(members, |m: &Member| (m.name.as_str(), m.user_id.0)))
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn member(&self, ctx: &RequestContext, user: UserId) -> Result<Member, TenancyError> {
        ctx.require(Permission::UsersRead)?;
        let row = load_member(&self.db, ctx.tenant_id, user).await?;
        to_member(&self.db, row).await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn update_member(
        &self,
        ctx: &RequestContext,
        user: UserId,
        update: ProfileUpdate,
    ) -> Result<Member, TenancyError> {
        ctx.require(Permission::UsersRead)?;
        let txn = begin_write(&self.db).await?;
        let row = load_member(&txn, ctx.tenant_id, user).await?;
        may_edit(ctx, &row)?;
        let (mut old, mut new) = (serde_json::Map::new(), serde_json::Map::new());
        let mut active = row.clone().into_active_model();
        if let Some(v) = update.job_title
            && v != row.job_title
        {
            old.insert("job_title".into(), json!(row.job_title));
            new.insert("job_title".into(), json!(v));
            active.job_title = Set(v);
        }
        if let Some(v) = update.phone
            && v != row.phone
        {
            old.insert("phone".into(), json!(row.phone));
            new.insert("phone".into(), json!(v));
            active.phone = Set(v);
        }
        if new.is_empty() {
            txn.commit().await?;
            return to_member(&self.db, row).await;
        }
        active.updated_at = Set(Some(Utc::now()));
        let row = active.update(&txn).await?;
        self.commit_member(
            txn,
            member_entry(
                ctx,
                "member.updated",
                user,
                Some(Value::Object(old)),
                Some(Value::Object(new)),
            ),
            row,
        )
        .await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn change_role(
        &self,
        ctx: &RequestContext,
        user: UserId,
        role: Role,
    ) -> Result<Member, TenancyError> {
        ctx.require(Permission::UsersManage)?;
        may_manage(ctx, role)?;
        ctx.require_all(role.permissions(), None)?;
        let (txn, row) = self.begin_managed(ctx, user).await?;
        let before = Role::parse(&row.role).unwrap_or(Role::Member);
        if before == role {
            txn.commit().await?;
            return to_member(&self.db, row).await;
        }
        ensure_not_last_owner(&txn, &row).await?;
        let mut active = row.into_active_model();
        active.role = Set(role.as_str().to_owned());
        active.updated_at = Set(Some(Utc::now()));
        let row = active.update(&txn).await?;
        self.commit_member(
            txn,
            member_entry(
                ctx,
                "member.role_changed",
                user,
                Some(json!({"role": before.as_str()})),
                Some(json!({"role": role.as_str()})),
            ),
            row,
        )
        .await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn deactivate_member(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Member, TenancyError> {
        if ctx.user_id() == Some(user) {
            ctx.require(Permission::UsersManage)?;
            return Err(TenancyError::SelfTarget("deactivate"));
        }
        let (txn, row) = self.begin_managed(ctx, user).await?;
        if row.status == MemberStatus::Deactivated.as_str() {
            return Err(TenancyError::MemberAlready("deactivated"));
        }
        ensure_not_last_owner(&txn, &row).await?;
        let now = Utc::now();
        let mut active = row.into_active_model();
        active.status = Set(MemberStatus::Deactivated.as_str().to_owned());
        active.deactivated_at = Set(Some(now));
        active.updated_at = Set(Some(now));
        let row = active.update(&txn).await?;
        let ended = self
            .sessions
            .end_member_sessions(&txn, ctx.tenant_id, user, "member_deactivated")
            .await?;
        self.commit_member(
            txn,
            member_entry(
                ctx,
                "member.deactivated",
                user,
                Some(json!({"status": "active"})),
                Some(json!({"status": "deactivated", "sessions_ended": ended})),
            ),
            row,
        )
        .await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn reactivate_member(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Member, TenancyError> {
        let (txn, row) = self.begin_managed(ctx, user).await?;
        if row.status == MemberStatus::Active.as_str() {
            return Err(TenancyError::MemberAlready("active"));
        }
        let settings = self.load_settings(&txn, ctx.tenant_id).await?.settings;
        if let Some(limit) = settings.limits.seats {
            let used = crate::service::count_active_members(&txn, ctx.tenant_id).await?;
            if used >= u64::from(limit) {
                return Err(TenancyError::SeatLimitReached {
                    limit,
                    used,
                    requested: 1,
                });
            }
        }
        let mut active = row.into_active_model();
        active.status = Set(MemberStatus::Active.as_str().to_owned());
        active.deactivated_at = Set(None);
        active.updated_at = Set(Some(Utc::now()));
        let row = active.update(&txn).await?;
        self.commit_member(
            txn,
            member_entry(
                ctx,
                "member.reactivated",
                user,
                Some(json!({"status": "deactivated"})),
                Some(json!({"status": "active"})),
            ),
            row,
        )
        .await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn remove_member(&self, ctx: &RequestContext, user: UserId) -> Result<(), TenancyError> {
        let leaving = ctx.user_id() == Some(user);
        if !leaving {
            ctx.require(Permission::UsersManage)?;
        }
        let txn = begin_write(&self.db).await?;
        lock_tenant(&txn, ctx.tenant_id).await?;
        let row = load_member(&txn, ctx.tenant_id, user).await?;
        if !leaving {
            may_manage(ctx, Role::parse(&row.role).unwrap_or(Role::Owner))?;
        }
        ensure_not_last_owner(&txn, &row).await?;
        location_member::Entity::delete_many()
            .filter(location_member::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(location_member::Column::UserId.eq(user.0))
            .exec(&txn)
            .await?;
        member_role::Entity::delete_many()
            .filter(member_role::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(member_role::Column::UserId.eq(user.0))
            .exec(&txn)
            .await?;
        membership::Entity::delete_by_id((ctx.tenant_id.0, user.0))
            .exec(&txn)
            .await?;
        let ended = self
            .sessions
            .end_member_sessions(&txn, ctx.tenant_id, user, "member_removed")
            .await?;
        self.audit
            .record(
                &txn,
                member_entry(
                    ctx,
                    if leaving {
                        "member.left"
                    } else {
                        "member.removed"
                    },
                    user,
                    Some(json!({"email": row.email, "role": row.role, "status": row.status})),
                    Some(json!({"sessions_ended": ended})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn expertise(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Expertise, TenancyError> {
        ctx.require(Permission::UsersRead)?;
        let row = load_member(&self.db, ctx.tenant_id, user).await?;
        Ok(Member::from_row(row, Vec::new()).expertise)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn set_expertise(
        &self,
        ctx: &RequestContext,
        user: UserId,
        expertise: Expertise,
    ) -> Result<Expertise, TenancyError> {
        ctx.require(Permission::UsersRead)?;
        let txn = begin_write(&self.db).await?;
        let row = load_member(&txn, ctx.tenant_id, user).await?;
        may_edit(ctx, &row)?;
        let before = Member::from_row(row.clone(), Vec::new()).expertise;
        let as_json = |e: &Expertise| {
            json!({
                "tags": e.tags,
                "hourly_rate": e.hourly_rate.as_ref().map(|m| json!({
                    "amount_minor": m.amount_minor, "currency": m.currency,
                })),
            })
        };
        let mut active = row.into_active_model();
        active.expertise_tags = Set(Some(json!(expertise.tags)));
        active.hourly_rate_minor = Set(expertise.hourly_rate.as_ref().map(|m| m.amount_minor));
        active.hourly_rate_currency =
            Set(expertise.hourly_rate.as_ref().map(|m| m.currency.clone()));
        active.updated_at = Set(Some(Utc::now()));
        active.update(&txn).await?;
        self.audit
            .record(
                &txn,
                member_entry(
                    ctx,
                    "member.expertise_updated",
                    user,
                    Some(as_json(&before)),
                    Some(as_json(&expertise)),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(expertise)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn transfer_ownership(
        &self,
        ctx: &RequestContext,
        to: UserId,
    ) -> Result<Member, TenancyError> {
        let me = ctx
            .user_id()
            .ok_or(TenancyError::OwnerOnly("transfer ownership"))?;
        if ctx.role != Role::Owner {
            return Err(TenancyError::OwnerOnly("transfer ownership"));
        }
        if me == to {
            return Err(TenancyError::SelfTarget("transfer ownership to"));
        }
        let txn = begin_write(&self.db).await?;
        lock_tenant(&txn, ctx.tenant_id).await?;
        // Read again under the lock: the caller may have lost ownership since the request began.
        let mine = load_member(&txn, ctx.tenant_id, me).await?;
        if mine.role != Role::Owner.as_str() {
            return Err(TenancyError::OwnerOnly("transfer ownership"));
        }
        let target = load_member(&txn, ctx.tenant_id, to).await?;
        if target.status != MemberStatus::Active.as_str() {
            return Err(TenancyError::MemberDeactivated);
        }
        let now = Utc::now();
        let target_role = target.role.clone();
        let mut active = target.into_active_model();
        active.role = Set(Role::Owner.as_str().to_owned());
        active.updated_at = Set(Some(now));
        let target = active.update(&txn).await?;
        let mut active = mine.into_active_model();
        active.role = Set(Role::Admin.as_str().to_owned());
        active.updated_at = Set(Some(now));
        active.update(&txn).await?;
        self.audit
            .record(
                &txn,
                AuditEntry::in_context(
                    ctx,
                    "tenant.ownership_transferred",
                    "tenant",
                    ctx.tenant_id,
                )
                .with_change(
                    Some(json!({"owner": me, "new_owner_role": target_role})),
                    Some(json!({"owner": to, "previous_owner_role": "admin"})),
                ),
            )
            .await?;
        let member = to_member(&txn, target).await?;
        txn.commit().await?;
        Ok(member)
    }
}
