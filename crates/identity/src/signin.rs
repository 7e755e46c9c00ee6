//! Signing in: sessions, token rotation and turning a bearer credential into a context.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use tenantry_kernel::crypto::token_hash;
use tenantry_kernel::db::begin_write;
use tenantry_kernel::row;
use tenantry_kernel::shape::Shapes;
use tenantry_kernel::{
    Actor, Attempt, AuditEntry, ClientMeta, LocationId, Page, PageRequest, RequestContext, Role,
    SessionId, TenantId, UserId,
};
use tenantry_tenancy::{MemberStatus, Membership, TenantStatus};

use crate::entity::{refresh_token, session, user};
use crate::sessions::{self, is_live};
use crate::{Credentials, IdentityError, LoginOutcome, SessionInfo, TokenPair};

use crate::service::*;

/// Signing in and the sessions it opens: what the HTTP shell and other crates ask of identity
/// to know who is calling.
#[async_trait::async_trait]
pub trait IdentityService: Send + Sync {
    /// Checks a password and opens a session, or, for an account with a second factor,
    /// answers the challenge that `MfaService::verify_mfa` completes.
    async fn login(
        &self,
        input: Credentials,
        client: &ClientMeta,
    ) -> Result<LoginOutcome, IdentityError>;

    /// Rotates a refresh token; a reused one revokes its whole session.
    async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientMeta,
    ) -> Result<TokenPair, IdentityError>;

    /// Ends the caller's session.
    async fn logout(&self, ctx: &RequestContext) -> Result<(), IdentityError>;

    /// Opens a session for the caller in another tenant they belong to (the current session
    /// stays as it is).
    async fn switch_tenant(
        &self,
        ctx: &RequestContext,
        tenant: TenantId,
        location: Option<LocationId>,
    ) -> Result<TokenPair, IdentityError>;

    /// The caller's live sessions in the current tenant, newest first.
    async fn list_sessions(
        &self,
        ctx: &RequestContext,
        page: PageRequest,
    ) -> Result<Page<SessionInfo>, IdentityError>;

    /// Ends one of the caller's live sessions in the current tenant; any other id (another
    /// user's, another tenant's, an ended one) is not found.
    async fn revoke_session(
        &self,
        ctx: &RequestContext,
        session: SessionId,
    ) -> Result<(), IdentityError>;

    /// Ends every session of the caller, in every tenant, this one included; answers how
    /// many ended.
    async fn logout_all(&self, ctx: &RequestContext) -> Result<u64, IdentityError>;

    /// Turns a bearer credential — an access token, or an API key (`tnt_…`) — into the
    /// context a request runs in; `location` (from a request header) chooses the location to
    /// act in over the one the token names.
    async fn authenticate(
        &self,
        access_token: &str,
        client: ClientMeta,
        location: Option<LocationId>,
    ) -> Result<RequestContext, IdentityError>;

    /// The JSON Web Key Set that verifies access tokens.
    fn jwks(&self) -> serde_json::Value;
}

#[async_trait::async_trait]
impl IdentityService for SeaIdentity {
    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn login(
        &self,
        input: Credentials,
        client: &ClientMeta,
    ) -> Result<LoginOutcome, IdentityError> {
        self.attempts.by_address(Attempt::Password, client).await?;
        // A place in the hashing pool before anything else, so a flood is shed before it
        // reaches the database.
        let admission = self.hasher.admit().await?;
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(input.email.as_str()))
            .one(&self.db)
            .await?;
        // The account's own allowance, shared with every other password check of it; an
        // address without an account is counted under the address, so both answer alike.
        let account_key = found
            .as_ref()
            .map_or_else(|| input.email.as_str().to_owned(), |a| a.id.to_string());
        self.attempts
            .on_account(Attempt::Password, &account_key)
            .await?;
        let Some(account) = found else {
            // Same work as a wrong password, so timing does not reveal which addresses exist.
            admission.verify_dummy(&input.password).await?;
            return Err(IdentityError::InvalidCredentials);
        };
        let user_id = UserId(account.id);
        if !admission
            .verify(&input.password, &account.password_hash)
            .await?
        {
            let txn = begin_write(&self.db).await?;
            self.audit
                .record(
                    &txn,
                    AuditEntry::new(
                        None,
                        Actor::User(user_id),
                        "user.login_failed",
                        "user",
                        Some(user_id.to_string()),
                        client,
                    ),
                )
                .await?;
            txn.commit().await?;
            return Err(IdentityError::InvalidCredentials);
        }
        let memberships = self.tenancy.memberships_of(user_id).await?;
        let chosen = match input.tenant_id {
            Some(wanted) => memberships
                .iter()
                .find(|m| m.tenant.id == wanted)
                .ok_or(IdentityError::NotAMember)?,
            None => {
                let active: Vec<&Membership> = memberships
                    .iter()
                    .filter(|m| m.status == MemberStatus::Active)
                    .collect();
                match active.as_slice() {
                    [only] => *only,
                    [] if memberships.is_empty() => return Err(IdentityError::NotAMember),
                    [] => return Err(IdentityError::MembershipDeactivated),
                    several => {
                        return Err(IdentityError::TenantSelectionRequired(
                            several
                                .iter()
                                .map(|m| (m.tenant.id, m.tenant.name.clone()))
                                .collect(),
                        ));
                    }
                }
            }
        };
        if chosen.status != MemberStatus::Active {
            return Err(IdentityError::MembershipDeactivated);
        }
        if chosen.tenant.status != TenantStatus::Active.as_str() {
            return Err(IdentityError::TenantSuspended);
        }
        let tenant = chosen.tenant.id;
        if input.location_id.is_some() {
            // Fails for an unknown location or one the member does not work at.
            self.tenancy
                .resolve_access(tenant, user_id, input.location_id)
                .await?;
        }
        if crate::mfa::has_second_factor(&self.db, user_id).await? {
            let (mfa_token, expires_in) = self
                .open_challenge(user_id, tenant, input.location_id)
                .await?;
            return Ok(LoginOutcome::MfaRequired {
                mfa_token,
                expires_in,
            });
        }
        let policy = self.tenancy.settings_of(tenant).await?;
        let txn = begin_write(&self.db).await?;
        let (session_id, refresh) = self
            .open_signed_in_session(
                &txn,
                (user_id, tenant, input.location_id),
                (&policy, false),
                (client, serde_json::Value::Null),
            )
            .await?;
        txn.commit().await?;
        self.token_pair(user_id, tenant, (session_id, input.location_id), refresh)
            .map(LoginOutcome::Tokens)
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn refresh(
        &self,
        presented: &str,
        client: &ClientMeta,
    ) -> Result<TokenPair, IdentityError> {
        let now = Utc::now();
        let Some(token) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(token_hash(presented)))
            .one(&self.db)
            .await?
        else {
            return Err(IdentityError::InvalidRefreshToken);
        };
        let Some(s) = session::Entity::find_by_id(token.session_id)
            .one(&self.db)
            .await?
        else {
            return Err(IdentityError::InvalidRefreshToken);
        };
        if token.rotated_at.is_some() {
            self.revoke_as_stolen(&s, client, "refresh_token_reuse")
                .await?;
            return Err(IdentityError::RefreshTokenReused);
        }
        if !is_live(&s, now) || token.expires_at <= now {
            return Err(IdentityError::SessionEnded);
        }
        if let Some(bound) = &s.network
            && sessions::network_of(client.ip.as_deref()).as_ref() != Some(bound)
        {
            // A refresh token presented from another network is treated as stolen.
            self.revoke_as_stolen(&s, client, "network_changed").await?;
            return Err(IdentityError::NetworkChanged);
        }
        let tenant = TenantId(s.tenant_id);
        let user_id = UserId(s.user_id);
        active_role(
            self.tenancy.access_of(tenant, user_id).await?,
            IdentityError::SessionEnded,
        )?;
        let require_mfa = self.tenancy.settings_of(tenant).await?.security.require_mfa;
        let txn = begin_write(&self.db).await?;
        // Conditional: of two concurrent refreshes with the same token only one wins; the
        // other is reuse.
        if !sessions::mark_rotated(&txn, token.id).await? {
            drop(txn);
            self.revoke_as_stolen(&s, client, "refresh_token_reuse")
                .await?;
            return Err(IdentityError::RefreshTokenReused);
        }
        let raw =
            sessions::issue_refresh_token(&txn, tenant, SessionId(s.id), s.expires_at).await?;
        // The tenant's policy applies when tokens are issued: a member without a second
        // factor, in a tenant that now requires one, keeps only an enrollment session. A
        // restricted session is lifted only by confirming a factor on it.
        let restrict =
            !s.restricted && require_mfa && !crate::mfa::has_second_factor(&txn, user_id).await?;
        let mut update = session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(now))
            .filter(session::Column::Id.eq(s.id));
        if restrict {
            update = update.col_expr(session::Column::Restricted, Expr::value(true));
        }
        update.exec(&txn).await?;
        self.audit
            .record(
                &txn,
                AuditEntry::new(
                    Some(tenant),
                    Actor::User(user_id),
                    "session.refreshed",
                    "session",
                    Some(s.id.to_string()),
                    client,
                ),
            )
            .await?;
        txn.commit().await?;
        self.token_pair(
            user_id,
            tenant,
            (SessionId(s.id), s.location_id.map(LocationId)),
            raw,
        )
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn logout(&self, ctx: &RequestContext) -> Result<(), IdentityError> {
        let (_, session_id) = crate::mfa::user_session(ctx)?;
        let txn = begin_write(&self.db).await?;
        sessions::revoke_audited(
            &txn,
            self.audit.as_ref(),
            ctx.tenant_id,
            session_id,
            (ctx.actor(), &ctx.client),
            "logout",
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn switch_tenant(
        &self,
        ctx: &RequestContext,
        tenant: TenantId,
        location: Option<LocationId>,
    ) -> Result<TokenPair, IdentityError> {
        let user_id = ctx.user_id().ok_or(IdentityError::UserOnly)?;
        // Access to the tenant and, when one is named, to the location, in one lookup.
        let resolved = self
            .tenancy
            .resolve_access(tenant, user_id, location)
            .await?;
        active_role(resolved.access, IdentityError::NotAMember)?;
        let has_factor = crate::mfa::has_second_factor(&self.db, user_id).await?;
        let policy = self.tenancy.settings_of(tenant).await?;
        let txn = begin_write(&self.db).await?;
        let (session_id, refresh) = self
            .open_signed_in_session(
                &txn,
                (user_id, tenant, location),
                (&policy, has_factor),
                (&ctx.client, json!({"switched_from": ctx.tenant_id})),
            )
            .await?;
        txn.commit().await?;
        self.token_pair(user_id, tenant, (session_id, location), refresh)
    }

    async fn list_sessions(
        &self,
        ctx: &RequestContext,
        page: PageRequest,
    ) -> Result<Page<SessionInfo>, IdentityError> {
        let (user_id, current) = crate::mfa::user_session(ctx)?;
        let now = Utc::now();
        let mut query = session::Entity::find()
            .filter(session::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(session::Column::UserId.eq(user_id.0))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now));
        if let Some(before) = page.before {
            query = query.filter(session::Column::Id.lt(before));
        }
        let query = query.order_by_desc(session::Column::Id).limit(page.fetch());
        let rows: Vec<session::Model> = row::all(&self.db, &query).await?;
        Ok(Page::from_rows(rows, &page, |s| s.id).map(|s| SessionInfo {
            id: SessionId(s.id),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
            current: s.id == current.0,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn revoke_session(
        &self,
        ctx: &RequestContext,
        target: SessionId,
    ) -> Result<(), IdentityError> {
        let Some(user_id) = ctx.user_id() else {
            return Err(IdentityError::UserOnly);
        };
        let txn = begin_write(&self.db).await?;
        // Only the caller's own sessions in this tenant are visible; everything else is
        // indistinguishable from an id that never existed.
        let owned = session::Entity::find_by_id(target.0)
            .filter(session::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(session::Column::UserId.eq(user_id.0))
            .one(&txn)
            .await?
            .is_some_and(|s| is_live(&s, Utc::now()));
        let revoked = owned
            && sessions::revoke_audited(
                &txn,
                self.audit.as_ref(),
                ctx.tenant_id,
                target,
                (ctx.actor(), &ctx.client),
                "revoked_by_user",
            )
            .await?;
        if !revoked {
            return Err(IdentityError::SessionNotFound);
        }
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn logout_all(&self, ctx: &RequestContext) -> Result<u64, IdentityError> {
        let user_id = ctx.user_id().ok_or(IdentityError::UserOnly)?;
        let txn = begin_write(&self.db).await?;
        let ended = sessions::revoke_all_of_user(&txn, user_id, None, "logout_all").await?;
        self.audit
            .record(
                &txn,
                account_event(ctx, user_id, "user.sessions_revoked").with_change(
                    None,
                    Some(json!({"reason": "logout_all", "sessions": ended})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(ended)
    }

    async fn authenticate(
        &self,
        access_token: &str,
        client: ClientMeta,
        location: Option<LocationId>,
    ) -> Result<RequestContext, IdentityError> {
        if access_token.starts_with(crate::KEY_PREFIX) {
            return self
                .authenticate_api_key(access_token, client, location)
                .await;
        }
        let claims = self
            .signer
            .verify(access_token)
            .map_err(|_| IdentityError::InvalidAccessToken)?;
        let parse = |s: &str| {
            s.parse::<uuid::Uuid>()
                .map_err(|_| IdentityError::InvalidAccessToken)
        };
        let (user_id, tenant_id, session_id) = (
            UserId(parse(&claims.sub)?),
            TenantId(parse(&claims.tid)?),
            SessionId(parse(&claims.sid)?),
        );
        let location = match location {
            Some(l) => Some(l),
            None => claims
                .lid
                .as_deref()
                .map(|l| parse(l).map(LocationId))
                .transpose()?,
        };
        // One statement for the whole request's access: the session, the membership and the
        // tenant's status, the custom grants in scope and the role at the acting location.
        // Two shapes: with a location and without.
        static AUTHENTICATE: Shapes = Shapes::new("authenticate");
        let mut args = vec![tenant_id.0.into(), user_id.0.into(), session_id.0.into()];
        args.extend(location.map(|l| sea_orm::Value::from(l.0)));
        let stmt = AUTHENTICATE.statement(
            sea_orm::ConnectionTrait::get_database_backend(&self.db),
            u64::from(location.is_some()),
            args,
            |a| {
                let access =
                    tenantry_tenancy::access_query(a[0].clone(), a[1].clone(), a.get(3).cloned());
                with_session(access, a[2].clone())
            },
        )?;
        let rows = sea_orm::ConnectionTrait::query_all_raw(&self.db, stmt).await?;
        // A session that ended (or a user who is no member, whose session cannot be live
        // either) ends the request before anything about the membership is said. The
        // session's columns are null when it is not the member's.
        let row = rows.first().ok_or(IdentityError::SessionEnded)?;
        let revoked: Option<DateTime<Utc>> = row::named(row, "session_revoked_at")?;
        let expires: Option<DateTime<Utc>> = row::named(row, "session_expires_at")?;
        let restricted: Option<bool> = row::named(row, "session_restricted")?;
        let (Some(expires), Some(restricted)) = (expires, restricted) else {
            return Err(IdentityError::SessionEnded);
        };
        if !sessions::is_live_with(revoked, expires, Utc::now()) {
            return Err(IdentityError::SessionEnded);
        }
        let resolved = tenantry_tenancy::access_from_rows(&rows, location)?;
        let role = active_role(resolved.access, IdentityError::SessionEnded)?;
        let ctx = RequestContext::for_user(tenant_id, user_id, session_id, role, client)
            .with_grants(resolved.grants.tenant);
        if restricted {
            return Ok(ctx.enrollment_only());
        }
        Ok(match location {
            None => ctx,
            Some(location) => {
                let held = resolved
                    .location_role
                    .map(Role::permissions)
                    .unwrap_or_default();
                ctx.in_location(location, held | resolved.grants.location)
            }
        })
    }

    fn jwks(&self) -> serde_json::Value {
        self.signer.jwks()
    }
}
