//! The privileged side of accounts, for the jobs.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use tenantry_kernel::UserId;
use tenantry_kernel::crypto::new_token;

use crate::entity::{email_verification, password_reset, session, user};
use crate::{IdentityError, PurgeReport, TokenMail};

use crate::service::*;

/// What identity's jobs need, outside any caller's context: the tokens their emails carry,
/// and purging what expired. A linking service must not expose these to a request.
#[async_trait::async_trait]
pub trait AccountUpkeep: Send + Sync {
    /// Creates a verification token for `user`, unless the address is already verified.
    async fn issue_email_verification(
        &self,
        user: UserId,
    ) -> Result<Option<TokenMail>, IdentityError>;

    /// Creates a password-reset token for the account using `email`, if there is one.
    async fn issue_password_reset(&self, email: &str) -> Result<Option<TokenMail>, IdentityError>;

    /// Deletes expired sessions, long-ended sessions and spent verification tokens.
    async fn purge_expired(&self) -> Result<PurgeReport, IdentityError>;
}

#[async_trait::async_trait]
impl AccountUpkeep for SeaIdentity {
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
}
