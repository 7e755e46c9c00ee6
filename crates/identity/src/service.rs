//! The identity service trait and its SeaORM implementation.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use serde_json::json;
use tenantry_kernel::crypto::{new_token, token_hash};
use tenantry_kernel::db::{Db, Txn, UniqueKey, begin_write, violates};
use tenantry_kernel::row;
use tenantry_kernel::shape::Shapes;
use tenantry_kernel::{
    Actor, Attempt, AttemptLimiter, AuditEntry, AuditSink, ClientMeta, Event, LocationId, Outbox,
    Page, PageRequest, RequestContext, Role, Sealer, SessionId, TenantId, UserId, ValidationErrors,
};
use tenantry_tenancy::{
    MemberAccess, MemberStatus, Membership, NewMember, TenancyService, TenantSettings, TenantStatus,
};

use crate::entity::{email_verification, password_reset, refresh_token, session, user};
use crate::sessions::{self, is_live};
use crate::{
    Credentials, Email, IdentityError, LoginOutcome, Me, Password, PasswordHasher, PurgeReport,
    Registered, Registration, SessionInfo, TokenKind, TokenMail, TokenPair, TokenSigner,
    VerifiedEmail,
};

/// An address belongs to one account.
const USER_EMAIL: UniqueKey = UniqueKey {
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

/// What the HTTP shell, the worker and other crates may ask of identity.
#[async_trait::async_trait]
pub trait IdentityService: Send + Sync {
    /// Creates a user, their tenant and owner membership, and signs them in.
    async fn register(
        &self,
        input: Registration,
        client: &ClientMeta,
    ) -> Result<Registered, IdentityError>;

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

    /// Replaces the caller's password after checking the current one, and ends every other
    /// session of theirs.
    async fn change_password(
        &self,
        ctx: &RequestContext,
        current: &str,
        new: Password,
    ) -> Result<(), IdentityError>;

    /// Sends the caller a new verification email, unless their address is already verified.
    async fn resend_verification(&self, ctx: &RequestContext) -> Result<(), IdentityError>;

    /// Asks for a password-reset link for `email`. Answers the same whether or not an account
    /// uses the address; the email goes out through the outbox and the job queue.
    async fn request_password_reset(
        &self,
        email: &str,
        client: &ClientMeta,
    ) -> Result<(), IdentityError>;

    /// Creates a password-reset token for the account using `email`, if there is one.
    async fn issue_password_reset(&self, email: &str) -> Result<Option<TokenMail>, IdentityError>;

    /// Sets a new password with a reset token; every session of the account ends.
    async fn reset_password(
        &self,
        token: &str,
        new: Password,
        client: &ClientMeta,
    ) -> Result<(), IdentityError>;

    /// Consumes an email verification token.
    async fn verify_email(
        &self,
        token: &str,
        client: &ClientMeta,
    ) -> Result<VerifiedEmail, IdentityError>;

    /// Turns a bearer credential — an access token, or an API key (`tnt_…`) — into the
    /// context a request runs in; `location` (from a request header) chooses the location to
    /// act in over the one the token names.
    async fn authenticate(
        &self,
        access_token: &str,
        client: ClientMeta,
        location: Option<LocationId>,
    ) -> Result<RequestContext, IdentityError>;

    /// The caller as they see themselves.
    async fn me(&self, ctx: &RequestContext) -> Result<Me, IdentityError>;

    /// Creates a verification token for `user`, unless the address is already verified.
    async fn issue_email_verification(
        &self,
        user: UserId,
    ) -> Result<Option<TokenMail>, IdentityError>;

    /// Deletes expired sessions, long-ended sessions and spent verification tokens.
    async fn purge_expired(&self) -> Result<PurgeReport, IdentityError>;

    /// The JSON Web Key Set that verifies access tokens.
    fn jwks(&self) -> serde_json::Value;
}

/// [`IdentityService`] over SeaORM.
pub struct SeaIdentity {
    pub(crate) db: Db,
    pub(crate) tenancy: Arc<dyn TenancyService>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) hasher: Arc<PasswordHasher>,
    pub(crate) attempts: Arc<dyn AttemptLimiter>,
    signer: Arc<TokenSigner>,
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
    async fn revoke_as_stolen(
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
async fn replace_password(
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
fn active_role(access: MemberAccess, none: IdentityError) -> Result<Role, IdentityError> {
    match access {
        MemberAccess::Active(role) => Ok(role),
        MemberAccess::None => Err(none),
        MemberAccess::Deactivated => Err(IdentityError::MembershipDeactivated),
        MemberAccess::TenantSuspended => Err(IdentityError::TenantSuspended),
    }
}

/// Joins the session `id` onto the membership `access` reads (the session must be the
/// member's, in that tenant), with what authentication needs of it.
fn with_session(
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
fn check_usable(
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
fn account_event(ctx: &RequestContext, user_id: UserId, action: &'static str) -> AuditEntry {
    AuditEntry::new(
        None,
        ctx.actor(),
        action,
        "user",
        Some(user_id.to_string()),
        &ctx.client,
    )
}

#[async_trait::async_trait]
impl IdentityService for SeaIdentity {
    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn register(
        &self,
        input: Registration,
        client: &ClientMeta,
    ) -> Result<Registered, IdentityError> {
        self.count(Attempt::SignUp, client, Some(input.email.as_str()))
            .await?;
        // A place in the hashing pool before anything else, so a flood is shed before it
        // reaches the database.
        let admission = self.hasher.admit().await?;
        // Cheap check first, so a taken address costs no hashing; the unique index below
        // settles races.
        let taken = user::Entity::find()
            .filter(user::Column::Email.eq(input.email.as_str()))
            .one(&self.db)
            .await?
            .is_some();
        if taken {
            return Err(IdentityError::EmailTaken);
        }
        let password_hash = admission.hash(input.password.expose()).await?;
        let now = Utc::now();
        let user_id = UserId::new();
        let txn = begin_write(&self.db).await?;
        insert_account(
            &txn,
            user_id,
            (input.email.as_str(), input.name.as_str()),
            password_hash,
            (None, now),
        )
        .await?;
        let tenant = self
            .tenancy
            .create_tenant(
                &txn,
                &input.tenant_name,
                &NewMember {
                    user_id,
                    name: input.name.as_str().to_owned(),
                    email: input.email.as_str().to_owned(),
                },
                client,
            )
            .await?;
        let (session_id, refresh) = sessions::open(
            &txn,
            tenant.id,
            user_id,
            sessions::Scope {
                location: None,
                lifetime: self.settings.session_ttl,
                network: None,
                restricted: false,
            },
            client,
        )
        .await?;
        self.audit
            .record(
                &txn,
                AuditEntry::new(
                    Some(tenant.id),
                    Actor::User(user_id),
                    USER_REGISTERED,
                    "user",
                    Some(user_id.to_string()),
                    client,
                )
                .with_change(
                    None,
                    Some(json!({"email": input.email.as_str(), "name": input.name.as_str()})),
                ),
            )
            .await?;
        self.outbox
            .put(
                &txn,
                Event::new(
                    USER_REGISTERED,
                    Some(tenant.id),
                    json!({"user_id": user_id, "email": input.email.as_str()}),
                ),
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        let tokens = self.token_pair(user_id, tenant.id, (session_id, None), refresh)?;
        Ok(Registered {
            user_id,
            tenant,
            tokens,
        })
    }

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

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn change_password(
        &self,
        ctx: &RequestContext,
        current: &str,
        new: Password,
    ) -> Result<(), IdentityError> {
        let (user_id, session_id) = crate::mfa::user_session(ctx)?;
        Password::check_given("current_password", current).map_err(ValidationErrors::from)?;
        self.count(Attempt::Password, &ctx.client, Some(&user_id.to_string()))
            .await?;
        let checking = self.hasher.admit().await?;
        let account = user::Entity::find_by_id(user_id.0)
            .one(&self.db)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        if !checking.verify(current, &account.password_hash).await? {
            return Err(IdentityError::WrongPassword);
        }
        let password_hash = self.hasher.hash(new.expose()).await?;
        let now = Utc::now();
        let txn = begin_write(&self.db).await?;
        // Guarded by the version read above: a concurrent change of the same account wins
        // once, the other retries against the new password.
        if !replace_password(&txn, user_id, password_hash, Some(account.version), now).await? {
            return Err(IdentityError::WrongPassword);
        }
        let ended =
            sessions::revoke_all_of_user(&txn, user_id, Some(session_id), "password_changed")
                .await?;
        self.audit
            .record(
                &txn,
                account_event(ctx, user_id, "user.password_changed")
                    .with_change(None, Some(json!({"other_sessions_ended": ended}))),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn resend_verification(&self, ctx: &RequestContext) -> Result<(), IdentityError> {
        let user_id = ctx.user_id().ok_or(IdentityError::UserOnly)?;
        let account = user::Entity::find_by_id(user_id.0)
            .one(&self.db)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        if account.email_verified_at.is_some() {
            return Err(IdentityError::AlreadyVerified);
        }
        let txn = begin_write(&self.db).await?;
        self.audit
            .record(&txn, account_event(ctx, user_id, VERIFICATION_REQUESTED))
            .await?;
        self.outbox
            .put(
                &txn,
                Event::new(
                    VERIFICATION_REQUESTED,
                    Some(ctx.tenant_id),
                    json!({"user_id": user_id, "email": account.email}),
                ),
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn request_password_reset(
        &self,
        email: &str,
        client: &ClientMeta,
    ) -> Result<(), IdentityError> {
        let email = Email::parse("email", email).map_err(ValidationErrors::from)?;
        self.count(Attempt::ResetRequest, client, Some(email.as_str()))
            .await?;
        // The same write whether or not the address has an account, so neither the answer
        // nor its timing tells; the job decides.
        let txn = begin_write(&self.db).await?;
        self.outbox
            .put(
                &txn,
                Event::new(
                    PASSWORD_RESET_REQUESTED,
                    None,
                    json!({"email": email.as_str(), "ip": client.ip}),
                ),
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    #[tracing::instrument(skip_all, err)]
    async fn issue_password_reset(&self, email: &str) -> Result<Option<TokenMail>, IdentityError> {
        let Some(account) = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .filter(user::Column::Status.eq("active"))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let (raw, hash) = new_token()?;
        let now = Utc::now();
        password_reset::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(account.id),
            token_hash: Set(hash),
            created_at: Set(now),
            expires_at: Set(now + self.settings.password_reset_ttl),
            used_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(Some(TokenMail {
            email: account.email,
            name: account.name,
            token: raw,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn reset_password(
        &self,
        presented: &str,
        new: Password,
        client: &ClientMeta,
    ) -> Result<(), IdentityError> {
        self.attempts.by_address(Attempt::Token, client).await?;
        let admission = self.hasher.admit().await?;
        let now = Utc::now();
        let Some(token) = password_reset::Entity::find()
            .filter(password_reset::Column::TokenHash.eq(token_hash(presented)))
            .one(&self.db)
            .await?
        else {
            return Err(IdentityError::InvalidToken(TokenKind::PasswordReset));
        };
        self.attempts
            .on_account(Attempt::Token, &token.user_id.to_string())
            .await?;
        check_usable(
            token.used_at,
            token.expires_at,
            now,
            TokenKind::PasswordReset,
        )?;
        let password_hash = admission.hash(new.expose()).await?;
        let user_id = UserId(token.user_id);
        let txn = begin_write(&self.db).await?;
        // Claims this token once (of two concurrent resets with it, one wins), then voids
        // every other outstanding one of the account.
        let claimed = password_reset::Entity::update_many()
            .col_expr(password_reset::Column::UsedAt, Expr::value(now))
            .filter(password_reset::Column::Id.eq(token.id))
            .filter(password_reset::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(IdentityError::TokenUsed(TokenKind::PasswordReset));
        }
        replace_password(&txn, user_id, password_hash, None, now).await?;
        let ended = sessions::revoke_all_of_user(&txn, user_id, None, "password_reset").await?;
        self.audit
            .record(
                &txn,
                AuditEntry::new(
                    None,
                    Actor::User(user_id),
                    "user.password_reset",
                    "user",
                    Some(user_id.to_string()),
                    client,
                )
                .with_change(None, Some(json!({"sessions_ended": ended}))),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn verify_email(
        &self,
        presented: &str,
        client: &ClientMeta,
    ) -> Result<VerifiedEmail, IdentityError> {
        self.attempts.by_address(Attempt::Token, client).await?;
        let now = Utc::now();
        let Some(token) = email_verification::Entity::find()
            .filter(email_verification::Column::TokenHash.eq(token_hash(presented)))
            .one(&self.db)
            .await?
        else {
            return Err(IdentityError::InvalidToken(TokenKind::Verification));
        };
        self.attempts
            .on_account(Attempt::Token, &token.user_id.to_string())
            .await?;
        check_usable(
            token.used_at,
            token.expires_at,
            now,
            TokenKind::Verification,
        )?;
        let txn = begin_write(&self.db).await?;
        let claimed = email_verification::Entity::update_many()
            .col_expr(email_verification::Column::UsedAt, Expr::value(now))
            .filter(email_verification::Column::Id.eq(token.id))
            .filter(email_verification::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(IdentityError::TokenUsed(TokenKind::Verification));
        }
        // Only the address the token was sent to is verified; if the user has changed it
        // since, the old link proves nothing about the new one.
        let updated = user::Entity::update_many()
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(token.user_id))
            .filter(user::Column::Email.eq(token.email.as_str()))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(IdentityError::InvalidToken(TokenKind::Verification));
        }
        let user_id = UserId(token.user_id);
        self.audit
            .record(
                &txn,
                AuditEntry::new(
                    None,
                    Actor::User(user_id),
                    "user.email_verified",
                    "user",
                    Some(user_id.to_string()),
                    client,
                )
                .with_change(None, Some(json!({"email": token.email}))),
            )
            .await?;
        txn.commit().await?;
        Ok(VerifiedEmail {
            user_id,
            email: token.email,
            verified_at: now,
        })
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

    async fn me(&self, ctx: &RequestContext) -> Result<Me, IdentityError> {
        use sea_orm::sea_query::{Alias, JoinType};
        let user_id = ctx.user_id().ok_or(IdentityError::UserOnly)?;
        // One statement: the memberships with their tenants, and on each row the account's
        // own columns (never its password hash).
        let mut q = tenantry_tenancy::memberships_query(user_id);
        let col = |c: user::Column| Expr::col((user::Entity, c));
        q.expr_as(col(user::Column::Email), Alias::new("user_email"))
            .expr_as(col(user::Column::Name), Alias::new("user_name"))
            .expr_as(
                col(user::Column::EmailVerifiedAt),
                Alias::new("user_email_verified_at"),
            )
            .expr_as(col(user::Column::CreatedAt), Alias::new("user_created_at"))
            .join(
                JoinType::InnerJoin,
                user::Entity,
                // `memberships_query` reads from `memberships`.
                col(user::Column::Id).equals((
                    tenantry_tenancy::entity::membership::Entity,
                    tenantry_tenancy::entity::membership::Column::UserId,
                )),
            );
        let rows = sea_orm::ConnectionTrait::query_all(&self.db, &q).await?;
        // The caller's session is live, so the account and a membership were there a moment
        // ago: no row means they are gone now.
        let account = rows.first().ok_or(IdentityError::SessionEnded)?;
        let email: String = row::named(account, "user_email")?;
        let name: String = row::named(account, "user_name")?;
        let email_verified_at: Option<DateTime<Utc>> =
            row::named(account, "user_email_verified_at")?;
        let created_at: DateTime<Utc> = row::named(account, "user_created_at")?;
        let memberships = tenantry_tenancy::memberships_from_rows(&rows)?;
        let current_tenant = memberships
            .iter()
            .find(|m| m.tenant.id == ctx.tenant_id)
            .map(|m| m.tenant.clone())
            .ok_or(IdentityError::SessionEnded)?;
        Ok(Me {
            id: user_id,
            email,
            name,
            email_verified_at,
            created_at,
            current_tenant,
            role: ctx.role,
            permissions: ctx.permissions,
            memberships,
        })
    }

    #[tracing::instrument(skip_all, err)]
    async fn issue_email_verification(
        &self,
        user: UserId,
    ) -> Result<Option<TokenMail>, IdentityError> {
        let Some(account) = user::Entity::find_by_id(user.0).one(&self.db).await? else {
            return Ok(None);
        };
        if account.email_verified_at.is_some() {
            return Ok(None);
        }
        let (raw, hash) = new_token()?;
        let now = Utc::now();
        email_verification::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(user.0),
            email: Set(account.email.clone()),
            token_hash: Set(hash),
            created_at: Set(now),
            expires_at: Set(now + self.settings.verification_ttl),
            used_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(Some(TokenMail {
            email: account.email,
            name: account.name,
            token: raw,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn purge_expired(&self) -> Result<PurgeReport, IdentityError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let ended_before = now - self.settings.session_retention;
        let sessions = session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(session::Column::ExpiresAt.lt(ended_before))
                    .add(session::Column::RevokedAt.lt(ended_before)),
            )
            .exec(&txn)
            .await?
            .rows_affected;
        let verification_tokens = email_verification::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(email_verification::Column::ExpiresAt.lt(now))
                    .add(email_verification::Column::UsedAt.is_not_null()),
            )
            .exec(&txn)
            .await?
            .rows_affected;
        let password_reset_tokens = password_reset::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(password_reset::Column::ExpiresAt.lt(now))
                    .add(password_reset::Column::UsedAt.is_not_null()),
            )
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok(PurgeReport {
            sessions,
            verification_tokens,
            password_reset_tokens,
        })
    }

    fn jwks(&self) -> serde_json::Value {
        self.signer.jwks()
    }
}
