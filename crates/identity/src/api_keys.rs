//! API keys: a tenant's machine credentials.
//!
//! A key reads `tnt_<prefix>_<secret>`. The prefix (12 hex digits) is public and found
//! through a unique index; only the SHA-256 of the secret is stored, compared in constant
//! time. A key belongs to its tenant, not to the person who made it: it acts as its own
//! principal with its scopes only (a subset of its creator's permissions when it was made),
//! at its creator's rank then, and keeps working until it is revoked or expires.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use sea_orm::{FromQueryResult as _, QueryTrait as _};
use serde_json::json;
use tenantry_kernel::crypto::{constant_time_eq, hex, new_token, random_bytes, token_hash};
use tenantry_kernel::db::begin_write;
use tenantry_kernel::row;
use tenantry_kernel::validation::display_name;
use tenantry_kernel::{
    ApiKeyId, AuditEntry, ClientMeta, FieldError, LocationId, Page, PageRequest, Permission,
    PermissionSet, RequestContext, Role, TenantId, UserId, ValidationErrors,
};
use tenantry_tenancy::TenancyError;

use crate::entity::api_key;
use crate::{IdentityError, SeaIdentity};

/// Every key starts with this, so secret scanners and people can tell what it is.
pub const KEY_PREFIX: &str = "tnt_";

/// The longest a key may live.
pub const MAX_LIFETIME_DAYS: i64 = 3 * 365;

/// How stale `last_used_at` may get before a use writes it again.
const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

/// An API key as listed: everything but the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// Its name.
    pub name: String,
    /// The public part: `tnt_<prefix>_…`.
    pub prefix: String,
    /// What it may do.
    pub scopes: PermissionSet,
    /// The location it is bound to, if any.
    pub location_id: Option<LocationId>,
    /// Who made it.
    pub created_by: Option<UserId>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(row: api_key::Model) -> Self {
        Self {
            id: ApiKeyId(row.id),
            name: row.name,
            prefix: row.prefix,
            scopes: PermissionSet::from_stored(&row.scopes),
            location_id: row.location_id.map(LocationId),
            created_by: row.created_by.map(UserId),
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A key just made, with its secret: shown once.
#[derive(Clone, Debug)]
pub struct CreatedApiKey {
    /// The key.
    pub key: ApiKey,
    /// The whole key, `tnt_<prefix>_<secret>`; never retrievable again.
    pub secret: String,
}

/// A new key's fields, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    /// 1 to 100 characters.
    pub name: String,
    /// At least one permission.
    pub scopes: PermissionSet,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// The location it is bound to.
    pub location_id: Option<LocationId>,
}

/// Changes to a key: a new name, new scopes, or both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeyUpdate {
    /// The new name.
    pub name: Option<String>,
    /// The new scopes.
    pub scopes: Option<PermissionSet>,
}

fn parse_scope_names(raw: &[String], errors: &mut ValidationErrors) -> PermissionSet {
    if raw.is_empty() {
        errors.0.push(FieldError::new(
            "scopes",
            "empty",
            "name at least one permission",
        ));
    }
    PermissionSet::parse_names("scopes", raw, errors)
}

impl NewApiKey {
    /// Parses a new key's fields, naming every bad one. `now` bounds the expiry.
    pub fn parse(
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
        location_id: Option<LocationId>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = display_name("name", name, &mut errors);
        let scopes = parse_scope_names(scopes, &mut errors);
        if let Some(at) = expires_at
            && (at <= now || at > now + Duration::days(MAX_LIFETIME_DAYS))
        {
            errors.0.push(FieldError::new(
                "expires_at",
                "out_of_range",
                format!("in the future, at most {MAX_LIFETIME_DAYS} days away"),
            ));
        }
        errors.into_result()?;
        Ok(Self {
            name,
            scopes,
            expires_at,
            location_id,
        })
    }
}

impl ApiKeyUpdate {
    /// Parses a key's changes, naming every bad field.
    pub fn parse(name: Option<&str>, scopes: Option<&[String]>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = name.map(|n| display_name("name", n, &mut errors));
        let scopes = scopes.map(|s| parse_scope_names(s, &mut errors));
        errors.into_result()?;
        Ok(Self { name, scopes })
    }
}

/// Splits `tnt_<prefix>_<secret>`; `None` when the text is not shaped like a key.
#[must_use]
pub fn split_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let ok = prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit());
    (ok && !secret.is_empty()).then_some((prefix, secret))
}

/// The tenant's API keys.
#[async_trait::async_trait]
pub trait ApiKeyService: Send + Sync {
    /// Makes a key (`api_keys.manage`); its scopes must be permissions the caller holds.
    async fn create_api_key(
        &self,
        ctx: &RequestContext,
        input: NewApiKey,
    ) -> Result<CreatedApiKey, IdentityError>;

    /// The tenant's keys, newest first, revoked ones included.
    async fn list_api_keys(
        &self,
        ctx: &RequestContext,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, IdentityError>;

    /// One key of the tenant.
    async fn api_key(&self, ctx: &RequestContext, id: ApiKeyId) -> Result<ApiKey, IdentityError>;

    /// Renames a key or changes its scopes; the caller must hold the old scopes and the new.
    async fn update_api_key(
        &self,
        ctx: &RequestContext,
        id: ApiKeyId,
        update: ApiKeyUpdate,
    ) -> Result<ApiKey, IdentityError>;

    /// Revokes a key at once; revoking a revoked key changes nothing.
    async fn revoke_api_key(&self, ctx: &RequestContext, id: ApiKeyId)
    -> Result<(), IdentityError>;
}

fn key_entry(
    ctx: &RequestContext,
    action: &'static str,
    id: ApiKeyId,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
) -> AuditEntry {
    AuditEntry::in_context(ctx, action, "api_key", id).with_change(old, new)
}

impl SeaIdentity {
    async fn load_key(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<api_key::Model, IdentityError> {
        api_key::Entity::find_by_id(id.0)
            .filter(api_key::Column::TenantId.eq(tenant.0))
            .one(conn)
            .await?
            .ok_or(IdentityError::ApiKeyNotFound)
    }

    /// The context an API key acts in, or why it may not act.
    pub(crate) async fn authenticate_api_key(
        &self,
        token: &str,
        client: ClientMeta,
        location: Option<LocationId>,
    ) -> Result<RequestContext, IdentityError> {
        let (prefix, secret) = split_key(token).ok_or(IdentityError::InvalidAccessToken)?;
        // One statement: the key, its tenant's status and, when a location is asked for,
        // whether it is the tenant's.
        let mut q = api_key::Entity::find()
            .filter(api_key::Column::Prefix.eq(prefix))
            .into_query();
        tenantry_tenancy::join_tenant_state(
            &mut q,
            (api_key::Entity, api_key::Column::TenantId),
            location,
        );
        let found = sea_orm::ConnectionTrait::query_one(&self.db, &q)
            .await?
            .ok_or(IdentityError::InvalidAccessToken)?;
        let row = api_key::Model::from_query_result(&found, "")?;
        let state = tenantry_tenancy::TenantState::from_row(&found, location)?;
        if !constant_time_eq(token_hash(secret).as_bytes(), row.secret_hash.as_bytes()) {
            return Err(IdentityError::InvalidAccessToken);
        }
        if row.revoked_at.is_some() {
            return Err(IdentityError::ApiKeyRevoked);
        }
        let now = Utc::now();
        if row.expires_at.is_some_and(|at| at <= now) {
            return Err(IdentityError::ApiKeyExpired);
        }
        let tenant = TenantId(row.tenant_id);
        if !state.active {
            return Err(IdentityError::TenantSuspended);
        }
        let bound = row.location_id.map(LocationId);
        match (bound, location) {
            (Some(b), Some(asked)) if b != asked => {
                return Err(TenancyError::NotLocationMember.into());
            }
            (None, Some(_)) if state.location_exists != Some(true) => {
                return Err(TenancyError::LocationNotFound.into());
            }
            _ => {}
        }
        if row
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
        {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                .filter(api_key::Column::Id.eq(row.id))
                .exec(&self.db)
                .await?;
        }
        let scopes = PermissionSet::from_stored(&row.scopes);
        let ctx = RequestContext::for_api_key(
            tenant,
            ApiKeyId(row.id),
            Role::parse(&row.role).unwrap_or(Role::Member),
            scopes,
            bound,
            client,
        );
        Ok(match (bound, location) {
            (None, Some(asked)) => ctx.in_location(asked, PermissionSet::empty()),
            _ => ctx,
        })
    }
}

#[async_trait::async_trait]
impl ApiKeyService for SeaIdentity {
    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn create_api_key(
        &self,
        ctx: &RequestContext,
        input: NewApiKey,
    ) -> Result<CreatedApiKey, IdentityError> {
        ctx.require(Permission::ApiKeysManage)?;
        ctx.require_all(input.scopes, input.location_id)
            .map_err(TenancyError::from)?;
        // A well-formed id that names no location of the tenant is not found, as in a path.
        if let Some(l) = input.location_id
            && !self.tenancy.location_exists(ctx.tenant_id, l).await?
        {
            return Err(TenancyError::LocationNotFound.into());
        }
        let prefix = hex(&random_bytes::<6>().map_err(|e| IdentityError::Unexpected(e.into()))?);
        let (secret, secret_hash) = new_token().map_err(|e| IdentityError::Unexpected(e.into()))?;
        let now = Utc::now();
        let id = ApiKeyId::new();
        let txn = begin_write(&self.db).await?;
        let row = api_key::ActiveModel {
            id: Set(id.0),
            tenant_id: Set(ctx.tenant_id.0),
            name: Set(input.name),
            prefix: Set(prefix.clone()),
            secret_hash: Set(secret_hash),
            scopes: Set(input.scopes.to_stored()),
            role: Set(ctx.role.as_str().to_owned()),
            location_id: Set(input.location_id.map(|l| l.0)),
            created_by: Set(ctx.user_id().map(|u| u.0)),
            created_at: Set(now),
            updated_at: Set(now),
            expires_at: Set(input.expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        let key = ApiKey::from(row);
        self.audit
            .record(
                &txn,
                key_entry(
                    ctx,
                    "api_key.created",
                    id,
                    None,
                    Some(json!({
                        "name": key.name,
                        "prefix": key.prefix,
                        "scopes": key.scopes.names(),
                        "location_id": key.location_id,
                        "expires_at": key.expires_at,
                    })),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(CreatedApiKey {
            key,
            secret: format!("{KEY_PREFIX}{prefix}_{secret}"),
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn list_api_keys(
        &self,
        ctx: &RequestContext,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, IdentityError> {
        ctx.require(Permission::ApiKeysRead)?;
        let mut q = api_key::Entity::find().filter(api_key::Column::TenantId.eq(ctx.tenant_id.0));
        if let Some(before) = page.before {
            q = q.filter(api_key::Column::Id.lt(before));
        }
        let q = q.order_by_desc(api_key::Column::Id).limit(page.fetch());
        let rows: Vec<api_key::Model> = row::all(&self.db, &q).await?;
        let keys = rows.into_iter().map(ApiKey::from).collect();
        Ok(Page::from_rows(keys, &page, |k: &ApiKey| k.id.0))
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn api_key(&self, ctx: &RequestContext, id: ApiKeyId) -> Result<ApiKey, IdentityError> {
        ctx.require(Permission::ApiKeysRead)?;
        Ok(self.load_key(&self.db, ctx.tenant_id, id).await?.into())
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn update_api_key(
        &self,
        ctx: &RequestContext,
        id: ApiKeyId,
        update: ApiKeyUpdate,
    ) -> Result<ApiKey, IdentityError> {
        ctx.require(Permission::ApiKeysManage)?;
        let txn = begin_write(&self.db).await?;
        let row = self.load_key(&txn, ctx.tenant_id, id).await?;
        let before = ApiKey::from(row.clone());
        if before.revoked_at.is_some() {
            return Err(IdentityError::ApiKeyNotActive("revoked"));
        }
        if before.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(IdentityError::ApiKeyNotActive("expired"));
        }
        let wanted = before.scopes | update.scopes.unwrap_or_default();
        ctx.require_all(wanted, before.location_id)
            .map_err(TenancyError::from)?;
        let mut active: api_key::ActiveModel = row.into();
        if let Some(name) = &update.name {
            active.name = Set(name.clone());
        }
        if let Some(scopes) = update.scopes {
            active.scopes = Set(scopes.to_stored());
        }
        active.updated_at = Set(Utc::now());
        let after = ApiKey::from(active.update(&txn).await?);
        self.audit
            .record(
                &txn,
                key_entry(
                    ctx,
                    "api_key.updated",
                    id,
                    Some(json!({"name": before.name, "scopes": before.scopes.names()})),
                    Some(json!({"name": after.name, "scopes": after.scopes.names()})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(after)
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn revoke_api_key(
        &self,
        ctx: &RequestContext,
        id: ApiKeyId,
    ) -> Result<(), IdentityError> {
        ctx.require(Permission::ApiKeysManage)?;
        let txn = begin_write(&self.db).await?;
        let row = self.load_key(&txn, ctx.tenant_id, id).await?;
        if row.revoked_at.is_some() {
            txn.commit().await?;
            return Ok(());
        }
        let now = Utc::now();
        api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now))
            .col_expr(api_key::Column::UpdatedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(id.0))
            .exec(&txn)
            .await?;
        self.audit
            .record(
                &txn,
                key_entry(
                    ctx,
                    "api_key.revoked",
                    id,
                    Some(json!({"name": row.name, "prefix": row.prefix})),
                    None,
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_prefix_and_secret() {
        assert_eq!(
            split_key("tnt_0123456789ab_s3cr_et-x"),
            Some(("0123456789ab", "s3cr_et-x"))
        );
        for bad in [
            "tnt_0123456789ab_",
            "tnt_0123456789a_secret",
            "tnt_0123456789zz_secret",
            "xyz_0123456789ab_secret",
            "eyJhbGciOi.x.y",
        ] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn new_keys_name_every_bad_field() {
        let now = Utc::now();
        let err = NewApiKey::parse(
            "",
            &["users.read".to_owned(), "users.fly".to_owned()],
            Some(now - Duration::minutes(1)),
            None,
            now,
        )
        .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "scopes[1]", "expires_at"]);
        let err = NewApiKey::parse("ci", &[], None, None, now).unwrap_err();
        assert_eq!(err.0[0].field, "scopes");
        let ok = NewApiKey::parse(" ci ", &["users.read".to_owned()], None, None, now).unwrap();
        assert_eq!(ok.name, "ci");
        assert!(ok.scopes.contains(Permission::UsersRead));
    }
}
