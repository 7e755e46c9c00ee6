//! Accounts: signing up, the password and the address of the caller's own account.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tenantry_kernel::crypto::token_hash;
use tenantry_kernel::db::begin_write;
use tenantry_kernel::row;
use tenantry_kernel::{
    Actor, Attempt, AuditEntry, ClientMeta, Event, RequestContext, UserId, ValidationErrors,
};
use tenantry_tenancy::NewMember;

use crate::entity::{email_verification, password_reset, user};
use crate::sessions::{self};
use crate::{
    Email, IdentityError, Me, Password, Registered, Registration, TokenKind, VerifiedEmail,
};

use crate::service::*;

/// What a person may do with their own account.
#[async_trait::async_trait]
pub trait AccountService: Send + Sync {
    /// Creates a user, their tenant and owner membership, and signs them in.
    async fn register(
        &self,
        input: Registration,
        client: &ClientMeta,
    ) -> Result<Registered, IdentityError>;

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

    /// The caller as they see themselves.
    async fn me(&self, ctx: &RequestContext) -> Result<Me, IdentityError>;
}

#[async_trait::async_trait]
impl AccountService for SeaIdentity {
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
}
