//! Locations — a tenant's stores, branches or sites — with their members and the settings
//! they override. A location's own permissions (`locations.manage` held as a location admin)
//! count only while acting in that location.

use chrono::{SubsecRound as _, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use tenantry_kernel::db::{UniqueKey, begin_write, violates};
use tenantry_kernel::row;
use tenantry_kernel::{
    AuditEntry, FieldError, KeyPageRequest, LocationId, Page, PageRequest, Permission,
    RequestContext, Role, UserId, ValidationErrors,
};

use crate::entity::{location, location_member, member_role, membership};
use crate::{
    Location, LocationSettings, LocationSettingsView, LocationUpdate, Member, MemberFilter,
    MemberService, NewLocation, SeaTenancy, TenancyError,
};

/// A location's code is unique within its tenant.
const LOCATION_CODE: UniqueKey = UniqueKey {
    name: "locations_tenant_code_key",
    table: "locations",
    columns: &["tenant_id", "code"],
};

/// Locations, their members and their settings.
#[async_trait::async_trait]
pub trait LocationService: Send + Sync {
    /// The tenant's locations, newest first.
    async fn list_locations(
        &self,
        ctx: &RequestContext,
        page: PageRequest,
    ) -> Result<Page<Location>, TenancyError>;

    /// One location.
    async fn location(
        &self,
        ctx: &RequestContext,
        id: LocationId,
    ) -> Result<Location, TenancyError>;

    /// Creates a location; needs `locations.manage` tenant-wide.
    async fn create_location(
        &self,
        ctx: &RequestContext,
        input: NewLocation,
    ) -> Result<Location, TenancyError>;

    /// Changes a location; `if_match` (a version) makes it conditional.
    async fn update_location(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        update: LocationUpdate,
        if_match: Option<i32>,
    ) -> Result<Location, TenancyError>;

    /// Deletes a location and its member list; needs `locations.manage` tenant-wide.
    async fn delete_location(
        &self,
        ctx: &RequestContext,
        id: LocationId,
    ) -> Result<(), TenancyError>;

    /// A location's overrides and the settings in effect there.
    async fn location_settings(
        &self,
        ctx: &RequestContext,
        id: LocationId,
    ) -> Result<LocationSettingsView, TenancyError>;

    /// Replaces a location's overrides; `if_match` (a version) makes it conditional.
    async fn update_location_settings(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        overrides: LocationSettings,
        if_match: Option<i32>,
    ) -> Result<LocationSettingsView, TenancyError>;

    /// The members of a location, by name.
    async fn location_members(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        page: KeyPageRequest,
    ) -> Result<Page<Member>, TenancyError>;

    /// Makes a tenant member a member of the location with `role` (`admin` or `member`), or
    /// changes their role there.
    async fn set_location_member(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        user: UserId,
        role: Role,
    ) -> Result<Member, TenancyError>;

    /// Takes a member off the location.
    async fn remove_location_member(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        user: UserId,
    ) -> Result<(), TenancyError>;
}

/// Loads a location of the caller's tenant.
async fn load(
    conn: &impl ConnectionTrait,
    ctx: &RequestContext,
    id: LocationId,
) -> Result<location::Model, TenancyError> {
    location::Entity::find_by_id(id.0)
        .filter(location::Column::TenantId.eq(ctx.tenant_id.0))
        .one(conn)
        .await?
        .ok_or(TenancyError::LocationNotFound)
}

fn overrides_of(row: &location::Model) -> LocationSettings {
    serde_json::from_value(row.settings.clone()).unwrap_or_default()
}

fn location_entry(
    ctx: &RequestContext,
    action: &'static str,
    id: LocationId,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
) -> AuditEntry {
    AuditEntry::in_context(ctx, action, "location", id).with_change(old, new)
}

fn code_taken(e: sea_orm::DbErr) -> TenancyError {
    if violates(&e, &LOCATION_CODE) {
        TenancyError::LocationCodeTaken
    } else {
        e.into()
    }
}

#[async_trait::async_trait]
impl LocationService for SeaTenancy {
    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn list_locations(
        &self,
        ctx: &RequestContext,
        page: PageRequest,
    ) -> Result<Page<Location>, TenancyError> {
        ctx.require(Permission::LocationsRead)?;
        let mut q = location::Entity::find().filter(location::Column::TenantId.eq(ctx.tenant_id.0));
        if let Some(before) = page.before {
            q = q.filter(location::Column::Id.lt(before));
        }
        let q = q.order_by_desc(location::Column::Id).limit(page.fetch());
        let rows: Vec<location::Model> = row::all(&self.db, &q).await?;
        let items = rows.into_iter().map(Location::from).collect();
        Ok(Page::from_rows(items, &page, |l: &Location| l.id.0))
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn location(
        &self,
        ctx: &RequestContext,
        id: LocationId,
    ) -> Result<Location, TenancyError> {
        ctx.require(Permission::LocationsRead)?;
        Ok(load(&self.db, ctx, id).await?.into())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn create_location(
        &self,
        ctx: &RequestContext,
        input: NewLocation,
    ) -> Result<Location, TenancyError> {
        ctx.require(Permission::LocationsManage)?;
        // To the microsecond, as PostgreSQL keeps it: the answer is the row as stored.
        let now = Utc::now().trunc_subsecs(6);
        let id = LocationId::new();
        let row = location::Model {
            id: id.0,
            tenant_id: ctx.tenant_id.0,
            name: input.name.clone(),
            code: input.code.clone(),
            address: input.address.clone(),
            settings: json!({}),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let txn = begin_write(&self.db).await?;
        // Every value is known here, so nothing is read back: the row goes with the audit
        // entry and the commit (one round trip on SQLite's writer), and a taken code is
        // refused there (on PostgreSQL, here).
        txn.defer_insert(row.clone().into_active_model())
            .await
            .map_err(code_taken)?;
        self.audit
            .record(
                &txn,
                location_entry(
                    ctx,
                    "location.created",
                    id,
                    None,
                    Some(json!({"name": input.name, "code": input.code, "address": input.address})),
                ),
            )
            .await?;
        txn.commit().await.map_err(code_taken)?;
        Ok(row.into())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn update_location(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        update: LocationUpdate,
        if_match: Option<i32>,
    ) -> Result<Location, TenancyError> {
        ctx.require_at(id, Permission::LocationsRead)?;
        let txn = begin_write(&self.db).await?;
        let before = load(&txn, ctx, id).await?;
        ctx.require_at(id, Permission::LocationsManage)?;
        if let Some(expected) = if_match
            && expected != before.version
        {
            return Err(TenancyError::StaleVersion(expected));
        }
        let (mut old, mut new) = (serde_json::Map::new(), serde_json::Map::new());
        let mut active = before.clone().into_active_model();
        if let Some(name) = update.name
            && name != before.name
        {
            old.insert("name".into(), json!(before.name));
            new.insert("name".into(), json!(name));
            active.name = Set(name);
        }
        if let Some(code) = update.code
            && code != before.code
        {
            old.insert("code".into(), json!(before.code));
            new.insert("code".into(), json!(code));
            active.code = Set(code);
        }
        if let Some(address) = update.address
            && address != before.address
        {
            old.insert("address".into(), json!(before.address));
            new.insert("address".into(), json!(address));
            active.address = Set(address);
        }
        if new.is_empty() {
            txn.commit().await?;
            return Ok(before.into());
        }
        active.version = Set(before.version + 1);
        active.updated_at = Set(Utc::now());
        // The version guard keeps two concurrent changes from both applying.
        let result = location::Entity::update_many()
            .set(active)
            .filter(location::Column::Id.eq(id.0))
            .filter(location::Column::Version.eq(before.version))
            .exec(&txn)
            .await
            .map_err(code_taken)?;
        if result.rows_affected != 1 {
            return Err(TenancyError::StaleVersion(before.version));
        }
        self.audit
            .record(
                &txn,
                location_entry(
                    ctx,
                    "location.updated",
                    id,
                    Some(old.into()),
                    Some(new.into()),
                ),
            )
            .await?;
        let after = load(&txn, ctx, id).await?;
        txn.commit().await?;
        Ok(after.into())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn delete_location(
        &self,
        ctx: &RequestContext,
        id: LocationId,
    ) -> Result<(), TenancyError> {
        ctx.require(Permission::LocationsRead)?;
        let txn = begin_write(&self.db).await?;
        let before = load(&txn, ctx, id).await?;
        ctx.require(Permission::LocationsManage)?;
        let removed = location_member::Entity::delete_many()
            .filter(location_member::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(location_member::Column::LocationId.eq(id.0))
            .exec(&txn)
            .await?
            .rows_affected;
        location::Entity::delete_by_id(id.0).exec(&txn).await?;
        self.audit
            .record(
                &txn,
                location_entry(
                    ctx,
                    "location.deleted",
                    id,
                    Some(json!({"name": before.name, "code": before.code})),
                    Some(json!({"members_removed": removed})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn location_settings(
        &self,
        ctx: &RequestContext,
        id: LocationId,
    ) -> Result<LocationSettingsView, TenancyError> {
        ctx.require_at(id, Permission::LocationsRead)?;
        let row = load(&self.db, ctx, id).await?;
        let tenant = self.load_settings(&self.db, ctx.tenant_id).await?.settings;
        let overrides = overrides_of(&row);
        Ok(LocationSettingsView {
            effective: overrides.apply_to(tenant),
            overrides,
            version: row.version,
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn update_location_settings(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        overrides: LocationSettings,
        if_match: Option<i32>,
    ) -> Result<LocationSettingsView, TenancyError> {
        ctx.require_at(id, Permission::LocationsRead)?;
        let overrides = overrides.validated()?;
        let txn = begin_write(&self.db).await?;
        let before = load(&txn, ctx, id).await?;
        ctx.require_at(id, Permission::LocationsManage)?;
        if let Some(expected) = if_match
            && expected != before.version
        {
            return Err(TenancyError::StaleVersion(expected));
        }
        let document =
            serde_json::to_value(&overrides).map_err(|e| sea_orm::DbErr::Json(e.to_string()))?;
        let version = before.version + 1;
        let result = location::Entity::update_many()
            .col_expr(location::Column::Settings, document.clone().into())
            .col_expr(location::Column::Version, version.into())
            .col_expr(location::Column::UpdatedAt, Utc::now().into())
            .filter(location::Column::Id.eq(id.0))
            .filter(location::Column::Version.eq(before.version))
            .exec(&txn)
            .await?;
        if result.rows_affected != 1 {
            return Err(TenancyError::StaleVersion(before.version));
        }
        self.audit
            .record(
                &txn,
                location_entry(
                    ctx,
                    "location.settings_updated",
                    id,
                    Some(before.settings.clone()),
                    Some(document),
                ),
            )
            .await?;
        let tenant = self.load_settings(&txn, ctx.tenant_id).await?.settings;
        txn.commit().await?;
        Ok(LocationSettingsView {
            effective: overrides.apply_to(tenant),
            overrides,
            version,
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn location_members(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        page: KeyPageRequest,
    ) -> Result<Page<Member>, TenancyError> {
        ctx.require_at(id, Permission::LocationsRead)?;
        load(&self.db, ctx, id).await?;
        let filter = MemberFilter {
            location: Some(id),
            ..MemberFilter::default()
        };
        // The directory narrowed to this location, under the directory's own permission.
        self.list_members(ctx, filter, page).await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn set_location_member(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        user: UserId,
        role: Role,
    ) -> Result<Member, TenancyError> {
        ctx.require_at(id, Permission::LocationsRead)?;
        if role == Role::Owner {
            return Err(ValidationErrors(vec![FieldError::new(
                "role",
                "invalid_role",
                "admin, manager, expert or member; ownership is tenant-wide",
            )])
            .into());
        }
        let txn = begin_write(&self.db).await?;
        load(&txn, ctx, id).await?;
        ctx.require_at(id, Permission::LocationsManage)?;
        ctx.require_all(role.permissions(), Some(id))?;
        let row = membership::Entity::find_by_id((ctx.tenant_id.0, user.0))
            .one(&txn)
            .await?
            .ok_or(TenancyError::MemberNotFound)?;
        let key = (ctx.tenant_id.0, id.0, user.0);
        let existing = location_member::Entity::find_by_id(key).one(&txn).await?;
        let action = match &existing {
            Some(m) if m.role == role.as_str() => None,
            Some(m) => {
                let mut active = m.clone().into_active_model();
                active.role = Set(role.as_str().to_owned());
                active.update(&txn).await?;
                Some("location.member_role_changed")
            }
            None => {
                location_member::ActiveModel {
                    tenant_id: Set(ctx.tenant_id.0),
                    location_id: Set(id.0),
                    user_id: Set(user.0),
                    role: Set(role.as_str().to_owned()),
                    created_at: Set(Utc::now()),
                }
                .insert(&txn)
                .await?;
                Some("location.member_added")
            }
        };
        if let Some(action) = action {
            self.audit
                .record(
                    &txn,
                    location_entry(
                        ctx,
                        action,
                        id,
                        existing.map(|m| json!({"user_id": user, "role": m.role})),
                        Some(json!({"user_id": user, "role": role.as_str()})),
                    ),
                )
                .await?;
        }
        let member = crate::member_service::to_member(&txn, row).await?;
        txn.commit().await?;
        Ok(member)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn remove_location_member(
        &self,
        ctx: &RequestContext,
        id: LocationId,
        user: UserId,
    ) -> Result<(), TenancyError> {
        ctx.require_at(id, Permission::LocationsRead)?;
        let txn = begin_write(&self.db).await?;
        load(&txn, ctx, id).await?;
        ctx.require_at(id, Permission::LocationsManage)?;
        let existing = location_member::Entity::find_by_id((ctx.tenant_id.0, id.0, user.0))
            .one(&txn)
            .await?
            .ok_or(TenancyError::MemberNotFound)?;
        if let Some(held) = Role::parse(&existing.role) {
            ctx.require_all(held.permissions(), Some(id))?;
        }
        location_member::Entity::delete_by_id((ctx.tenant_id.0, id.0, user.0))
            .exec(&txn)
            .await?;
        // The custom roles held there go with the place.
        member_role::Entity::delete_many()
            .filter(member_role::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(member_role::Column::LocationId.eq(id.0))
            .filter(member_role::Column::UserId.eq(user.0))
            .exec(&txn)
            .await?;
        self.audit
            .record(
                &txn,
                location_entry(
                    ctx,
                    "location.member_removed",
                    id,
                    Some(json!({"user_id": user, "role": existing.role})),
                    None,
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }
}
