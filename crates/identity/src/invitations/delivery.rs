//! Delivering invitation emails and the daily cleanup, for the jobs.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use tenantry_kernel::TenantId;
use tenantry_kernel::crypto::new_token;
use tenantry_kernel::db::begin_write;
use uuid::Uuid;

use crate::entity::{invitation, invitation_email};
use crate::{IdentityError, SeaIdentity};

use super::rows::*;
use super::*;

/// The privileged side of invitations, for the jobs that deliver and tidy them: no caller
/// context, so a linking service must not expose these to a request.
#[async_trait::async_trait]
pub trait InvitationDelivery: Send + Sync {
    /// Takes a due invitation email for sending at `now`: counts the attempt, leases the
    /// email and sets a new token. `None` when it is not due, taken by another worker, or no
    /// longer wanted (then it is cancelled).
    async fn claim_invitation_email(
        &self,
        tenant: TenantId,
        email_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<InvitationMail>, IdentityError>;

    /// Records how attempt `attempt` of an email went; a failure schedules the next attempt
    /// or, after the last, marks the email failed.
    async fn record_invitation_email(
        &self,
        tenant: TenantId,
        email_id: Uuid,
        attempt: i32,
        outcome: Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError>;

    /// Invitation emails due at `now`, most overdue first.
    async fn due_invitation_emails(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<(TenantId, Uuid)>, IdentityError>;

    /// The daily cleanup as of `now`.
    async fn cleanup_invitations(
        &self,
        now: DateTime<Utc>,
    ) -> Result<InvitationCleanup, IdentityError>;
}

#[async_trait::async_trait]
impl InvitationDelivery for SeaIdentity {
    #[tracing::instrument(skip_all, err, fields(tenant_id = %tenant, email_id = %email_id))]
    async fn claim_invitation_email(
        &self,
        tenant: TenantId,
        email_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<InvitationMail>, IdentityError> {
        let Some(mail) = invitation_email::Entity::find_by_id(email_id)
            .filter(invitation_email::Column::TenantId.eq(tenant.0))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let due =
            mail.status == email_state::PENDING && mail.next_attempt_at.is_some_and(|at| at <= now);
        if !due {
            return Ok(None);
        }
        let row = invitation::Entity::find_by_id(mail.invitation_id)
            .filter(invitation::Column::TenantId.eq(tenant.0))
            .one(&self.db)
            .await?;
        let wanted = row.as_ref().is_some_and(|r| {
            r.deleted_at.is_none() && InvitationStatus::of(r, now) == InvitationStatus::Pending
        });
        let txn = begin_write(&self.db).await?;
        let (Some(row), true) = (row, wanted) else {
            cancel_emails(&txn, mail.invitation_id, now).await?;
            txn.commit().await?;
            return Ok(None);
        };
        let attempt = mail.attempts + 1;
        let leased = invitation_email::Entity::update_many()
            .col_expr(invitation_email::Column::Attempts, Expr::value(attempt))
            .col_expr(invitation_email::Column::LastAttemptAt, Expr::value(now))
            .col_expr(
                invitation_email::Column::NextAttemptAt,
                Expr::value(now + SEND_LEASE),
            )
            .col_expr(invitation_email::Column::UpdatedAt, Expr::value(now))
            .filter(invitation_email::Column::Id.eq(mail.id))
            .filter(invitation_email::Column::Status.eq(email_state::PENDING))
            .filter(invitation_email::Column::Attempts.eq(mail.attempts))
            .exec(&txn)
            .await?;
        if leased.rows_affected != 1 {
            // Another worker took it between the read and now.
            return Ok(None);
        }
        let (token, hash) = new_token()?;
        let set = invitation::Entity::update_many()
            .col_expr(invitation::Column::TokenHash, Expr::value(hash))
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
            .filter(invitation::Column::Id.eq(row.id))
            .filter(invitation::Column::Status.eq("pending"))
            .exec(&txn)
            .await?;
        if set.rows_affected != 1 {
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(InvitationMail {
            email_id: mail.id,
            attempt,
            tenant_name: self.tenant_display_name(tenant).await?,
            inviter_name: self.user_name(row.invited_by).await?,
            role: role_of(&row),
            to: row.email,
            message: row.message,
            token,
            expires_at: row.expires_at,
        }))
    }

    #[tracing::instrument(skip_all, err, fields(tenant_id = %tenant, email_id = %email_id))]
    async fn record_invitation_email(
        &self,
        tenant: TenantId,
        email_id: Uuid,
        attempt: i32,
        outcome: Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        let update = invitation_email::Entity::update_many()
            .col_expr(invitation_email::Column::UpdatedAt, Expr::value(now))
            .filter(invitation_email::Column::Id.eq(email_id))
            .filter(invitation_email::Column::TenantId.eq(tenant.0))
            .filter(invitation_email::Column::Status.eq(email_state::PENDING))
            .filter(invitation_email::Column::Attempts.eq(attempt));
        let none = Option::<DateTime<Utc>>::None;
        let update = match outcome {
            Ok(()) => update
                .col_expr(
                    invitation_email::Column::Status,
                    Expr::value(email_state::SENT),
                )
                .col_expr(invitation_email::Column::SentAt, Expr::value(now))
                .col_expr(invitation_email::Column::NextAttemptAt, Expr::value(none))
                .col_expr(
                    invitation_email::Column::LastError,
                    Expr::value(Option::<String>::None),
                ),
            Err(error) => {
                let error: String = error.chars().take(500).collect();
                let next = usize::try_from(attempt - 1)
                    .ok()
                    .and_then(|i| RETRY_DELAYS.get(i))
                    .filter(|_| attempt < MAX_EMAIL_ATTEMPTS);
                let update =
                    update.col_expr(invitation_email::Column::LastError, Expr::value(error));
                match next {
                    Some(delay) => update.col_expr(
                        invitation_email::Column::NextAttemptAt,
                        Expr::value(now + *delay),
                    ),
                    None => update
                        .col_expr(
                            invitation_email::Column::Status,
                            Expr::value(email_state::FAILED),
                        )
                        .col_expr(invitation_email::Column::NextAttemptAt, Expr::value(none)),
                }
            }
        };
        update.exec(&self.db).await?;
        Ok(())
    }

    async fn due_invitation_emails(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<(TenantId, Uuid)>, IdentityError> {
        Ok(invitation_email::Entity::find()
            .filter(invitation_email::Column::Status.eq(email_state::PENDING))
            .filter(invitation_email::Column::NextAttemptAt.lte(now))
            .order_by_asc(invitation_email::Column::NextAttemptAt)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|e| (TenantId(e.tenant_id), e.id))
            .collect())
    }

    #[tracing::instrument(skip_all, err)]
    async fn cleanup_invitations(
        &self,
        now: DateTime<Utc>,
    ) -> Result<InvitationCleanup, IdentityError> {
        let txn = begin_write(&self.db).await?;
        let expired = expire_lapsed(&txn, Condition::all(), now).await?;
        let ended = invitation::Entity::find()
            .select_only()
            .column(invitation::Column::Id)
            .filter(invitation::Column::Status.ne("pending"))
            .into_query();
        let emails_cancelled = invitation_email::Entity::update_many()
            .col_expr(
                invitation_email::Column::Status,
                Expr::value(email_state::CANCELLED),
            )
            .col_expr(
                invitation_email::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(invitation_email::Column::UpdatedAt, Expr::value(now))
            .filter(invitation_email::Column::Status.eq(email_state::PENDING))
            .filter(invitation_email::Column::InvitationId.in_subquery(ended))
            .exec(&txn)
            .await?
            .rows_affected;
        let ended_before = now - SOFT_DELETE_AFTER;
        let soft_deleted = invitation::Entity::update_many()
            .col_expr(invitation::Column::DeletedAt, Expr::value(now))
            .filter(invitation::Column::DeletedAt.is_null())
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(invitation::Column::Status.eq("expired"))
                            .add(invitation::Column::ExpiresAt.lt(ended_before)),
                    )
                    .add(
                        Condition::all()
                            .add(invitation::Column::Status.eq("revoked"))
                            .add(invitation::Column::RevokedAt.lt(ended_before)),
                    ),
            )
            .exec(&txn)
            .await?
            .rows_affected;
        let gone = invitation::Entity::find()
            .select_only()
            .column(invitation::Column::Id)
            .filter(invitation::Column::DeletedAt.lt(now - HARD_DELETE_AFTER))
            .into_query();
        invitation_email::Entity::delete_many()
            .filter(invitation_email::Column::InvitationId.in_subquery(gone))
            .exec(&txn)
            .await?;
        let hard_deleted = invitation::Entity::delete_many()
            .filter(invitation::Column::DeletedAt.lt(now - HARD_DELETE_AFTER))
            .exec(&txn)
            .await?
            .rows_affected;
        let email_records_deleted = invitation_email::Entity::delete_many()
            .filter(
                invitation_email::Column::Status
                    .is_in([email_state::FAILED, email_state::CANCELLED]),
            )
            .filter(invitation_email::Column::UpdatedAt.lt(now - EMAIL_RECORD_RETENTION))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok(InvitationCleanup {
            expired,
            emails_cancelled,
            soft_deleted,
            hard_deleted,
            email_records_deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn the_retry_schedule_is_five_minutes_half_an_hour_two_hours() {
        assert_eq!(RETRY_DELAYS.map(|d| d.num_minutes()), [5, 30, 120]);
        assert_eq!(MAX_EMAIL_ATTEMPTS as usize, RETRY_DELAYS.len() + 1);
    }
}
