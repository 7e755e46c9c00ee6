//! [`SeaIdentity`], the SeaORM implementation of identity's services, and what its
//! capability modules (`signin`, `accounts`, `upkeep`, `invitations`, `api_keys`, `mfa`) share.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use tenantry_kernel::db::{Db, Txn, UniqueKey, begin_write, violates};
use tenantry_kernel::{
    Actor, Attempt, AttemptLimiter, AuditEntry, AuditSink, ClientMeta, LocationId, Outbox,
    RequestContext, Role, Sealer, SessionId, TenantId, UserId,
};
use tenantry_tenancy::{MemberAccess, TenancyService, TenantSettings};

use crate::entity::{password_reset, session, user};
use crate::sessions::{self};
use crate::{IdentityError, PasswordHasher, TokenKind, TokenPair, TokenSigner};

/// An address belongs to one account.
pub(crate) const USER_EMAIL: UniqueKey = UniqueKey {
    name: "users_email_key",
    table: "users",
    columns: &["email"],
};

/// Event written to the outbox when an account is created; it triggers the verification email.
pub const USER_REGISTERED: &str = "user.registered";
/// Event written when a user asks for a new verification email.
pub const VERIFICATION_REQUESTED: &str = "user.verification_requested";
/// Event written when someone asks to reset the password of an address; the job sends the
/// link if an account uses it.
pub const PASSWORD_RESET_REQUESTED: &str = "user.password_reset_requested";

/// Lifetimes identity works with.
#[derive(Clone, Debug)]
pub struct IdentitySettings {
    /// How long a login lasts before the user must sign in again (refresh tokens die with it).
    pub session_ttl: Duration,
    /// How long an email verification link stays valid.
    pub verification_ttl: Duration,
    /// How long a password-reset link stays valid.
    pub password_reset_ttl: Duration,
    /// How long ended sessions are kept (for the sessions list and forensics) before purge.
    pub session_retention: Duration,
    /// The issuer authenticator apps show next to a TOTP factor.
    pub mfa_issuer: String,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::days(30),
            verification_ttl: Duration::hours(24),
            password_reset_ttl: Duration::hours(1),
            session_retention: Duration::days(7),
            mfa_issuer: "Tenantry".to_owned(),
        }
    }
}

/// Identity's services over SeaORM: [`crate::IdentityService`], [`crate::AccountService`],
/// [`crate::AccountUpkeep`], [`crate::InvitationService`], [`crate::InvitationDelivery`],
/// [`crate::ApiKeyService`] and [`crate::MfaService`].
pub struct SeaIdentity {
    pub(crate) db: Db,
    pub(crate) tenancy: Arc<dyn TenancyService>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) hasher: Arc<PasswordHasher>,
    pub(crate) attempts: Arc<dyn AttemptLimiter>,
    pub(crate) signer: Arc<TokenSigner>,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) settings: IdentitySettings,
}

impl SeaIdentity {
    /// Wires the service to its collaborators; `hasher` checks passwords and `attempts`
    /// counts every check of a secret, `signer` issues access tokens and `sealer` seals
    /// second-factor secrets.
    #[must_use]
    pub fn new(
        db: Db,
        tenancy: Arc<dyn TenancyService>,
        (audit, outbox): (Arc<dyn AuditSink>, Arc<dyn Outbox>),
        (hasher, attempts): (Arc<PasswordHasher>, Arc<dyn AttemptLimiter>),
        (signer, sealer): (Arc<TokenSigner>, Arc<Sealer>),
        settings: IdentitySettings,
    ) -> Self {
        Self {
            db,
            tenancy,
            audit,
            outbox,
            hasher,
            attempts,
            signer,
            sealer,
            settings,
        }
    }

    /// Counts an attempt at `what` from the client's address and, when named, on `account`;
    /// refused once either has used its allowance.
    pub(crate) async fn count(
        &self,
        what: Attempt,
        client: &ClientMeta,
        account: Option<&str>,
    ) -> Result<(), IdentityError> {
        self.attempts.by_address(what, client).await?;
        if let Some(account) = account {
            self.attempts.on_account(what, account).await?;
        }
        Ok(())
    }

    pub(crate) fn token_pair(
        &self,
        user: UserId,
        tenant: TenantId,
        (session, location): (SessionId, Option<LocationId>),
        refresh_token: String,
    ) -> Result<TokenPair, IdentityError> {
        let access_token = self.signer.issue(
            &user.to_string(),
            &tenant.to_string(),
            &session.to_string(),
            location.map(|l| l.to_string()).as_deref(),
        )?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in: self.signer.ttl_secs(),
        })
    }

    /// Opens the session of a sign-in inside `txn` and audits it, with `detail` (an object, or
    /// null) among the audited values. The tenant's security `policy` (read before the
    /// transaction: a transaction never waits for a second connection) sets how long it lasts,
    /// whether its refresh tokens are bound to this network, and whether, for a member without
    /// a second factor, it may only enroll one.
    pub(crate) async fn open_signed_in_session(
        &self,
        txn: &Txn,
        (user, tenant, location): (UserId, TenantId, Option<LocationId>),
        (policy, has_second_factor): (&TenantSettings, bool),
        (client, mut detail): (&ClientMeta, serde_json::Value),
    ) -> Result<(SessionId, String), IdentityError> {
        let scope = sessions::Scope::new(policy, client, location, has_second_factor);
        detail["enrollment_only"] = json!(scope.restricted);
        let (session_id, refresh) = sessions::open(txn, tenant, user, scope, client).await?;
        self.audit
            .record(
                txn,
                AuditEntry::new(
                    Some(tenant),
                    Actor::User(user),
                    "session.created",
                    "session",
                    Some(session_id.to_string()),
                    client,
                )
                .with_change(None, Some(detail)),
            )
            .await?;
        Ok((session_id, refresh))
    }

    /// Revokes a session whose refresh token looks stolen, in its own transaction, so the
    /// revocation stands even though the request that discovered it fails.
    pub(crate) async fn revoke_as_stolen(
        &self,
        s: &session::Model,
        client: &ClientMeta,
        reason: &'static str,
    ) -> Result<(), IdentityError> {
        let txn = begin_write(&self.db).await?;
        sessions::revoke_audited(
            &txn,
            self.audit.as_ref(),
            TenantId(s.tenant_id),
            SessionId(s.id),
            (Actor::User(UserId(s.user_id)), client),
            reason,
        )
        .await?;
        txn.commit().await?;
        tracing::warn!(session_id = %s.id, reason, "refresh token looks stolen: session revoked");
        Ok(())
    }
}

/// Inserts an active account; a taken address (the unique index settles races) is
/// `EmailTaken`. `verified_at` is set when the address is already proven.
pub(crate) async fn insert_account(
    txn: &Txn,
    id: UserId,
    (email, name): (&str, &str),
    password_hash: String,
    (verified_at, now): (Option<DateTime<Utc>>, DateTime<Utc>),
) -> Result<(), IdentityError> {
    let inserted = user::ActiveModel {
        id: Set(id.0),
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        password_hash: Set(password_hash),
        email_verified_at: Set(verified_at),
        status: Set("active".to_owned()),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if violates(&e, &USER_EMAIL) => Err(IdentityError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// Replaces `user`'s password hash inside `txn` — only while the account is still at
/// `expected_version`, when one is given — and voids every outstanding password-reset token of
/// the account, so that no link mailed before the change can undo it. Answers whether the
/// account was changed.
pub(crate) async fn replace_password(
    txn: &Txn,
    user: UserId,
    password_hash: String,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<bool, IdentityError> {
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(
            user::Column::Version,
            Expr::col(user::Column::Version).add(1),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.0));
    if let Some(version) = expected_version {
        update = update.filter(user::Column::Version.eq(version));
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Ok(false);
    }
    password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::UserId.eq(user.0))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(txn)
        .await?;
    Ok(true)
}

/// The role of an active member of an active tenant; `none` is the error for a non-member.
pub(crate) fn active_role(
    access: MemberAccess,
    none: IdentityError,
) -> Result<Role, IdentityError> {
    match access {
        MemberAccess::Active(role) => Ok(role),
        MemberAccess::None => Err(none),
        MemberAccess::Deactivated => Err(IdentityError::MembershipDeactivated),
        MemberAccess::TenantSuspended => Err(IdentityError::TenantSuspended),
    }
}

/// Joins the session `id` onto the membership `access` reads (the session must be the
/// member's, in that tenant), with what authentication needs of it.
pub(crate) fn with_session(
    mut access: sea_orm::sea_query::SelectStatement,
    id: sea_orm::Value,
) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Alias, JoinType};
    use tenantry_tenancy::entity::membership;
    // `access_query` reads from `memberships`.
    let member = |c: membership::Column| (membership::Entity, c);
    let col = |c: session::Column| Expr::col((session::Entity, c));
    access
        .expr_as(
            col(session::Column::RevokedAt),
            Alias::new("session_revoked_at"),
        )
        .expr_as(
            col(session::Column::ExpiresAt),
            Alias::new("session_expires_at"),
        )
        .expr_as(
            col(session::Column::Restricted),
            Alias::new("session_restricted"),
        )
        .join(
            JoinType::LeftJoin,
            session::Entity,
            col(session::Column::Id)
                .eq(id)
                .and(col(session::Column::UserId).equals(member(membership::Column::UserId)))
                .and(col(session::Column::TenantId).equals(member(membership::Column::TenantId))),
        );
    access
}

/// Refuses a single-use token that was already used or has expired at `now`.
pub(crate) fn check_usable(
    used_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    kind: TokenKind,
) -> Result<(), IdentityError> {
    if used_at.is_some() {
        return Err(IdentityError::TokenUsed(kind));
    }
    if expires_at <= now {
        return Err(IdentityError::TokenExpired(kind));
    }
    Ok(())
}

/// An audit entry for something the caller did to their own account, outside any tenant.
pub(crate) fn account_event(
    ctx: &RequestContext,
    user_id: UserId,
    action: &'static str,
) -> AuditEntry {
    AuditEntry::new(
        None,
        ctx.actor(),
        action,
        "user",
        Some(user_id.to_string()),
        &ctx.client,
    )
}
