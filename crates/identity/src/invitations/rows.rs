//! Reads and writes of the invitation tables that the commands and the delivery share.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Set,
};
use serde_json::json;
use tenantry_kernel::crypto::token_hash;
use tenantry_kernel::db::Txn;
use tenantry_kernel::{
    Attempt, AuditEntry, ClientMeta, Event, LocationId, Permission, RequestContext, Role, TenantId,
    UserId,
};
use tenantry_tenancy::TenancyError;
use uuid::Uuid;

use crate::entity::{invitation, invitation_email, user};
use crate::{IdentityError, SeaIdentity, TokenKind};

use super::*;

pub(super) fn role_of(row: &invitation::Model) -> Role {
    Role::parse(&row.role).unwrap_or(Role::Member)
}

pub(super) fn delivery(e: invitation_email::Model) -> EmailDelivery {
    EmailDelivery {
        status: e.status,
        attempts: e.attempts,
        last_attempt_at: e.last_attempt_at,
        next_attempt_at: e.next_attempt_at,
        sent_at: e.sent_at,
    }
}

pub(super) fn view(
    row: invitation::Model,
    email: Option<invitation_email::Model>,
    now: DateTime<Utc>,
) -> Invitation {
    Invitation {
        id: row.id,
        role: role_of(&row),
        status: InvitationStatus::of(&row, now),
        email: row.email,
        message: row.message,
        invited_by: row.invited_by.map(UserId),
        location_id: row.location_id.map(LocationId),
        expires_at: row.expires_at,
        created_at: row.created_at,
        accepted_at: row.accepted_at,
        revoked_at: row.revoked_at,
        email_delivery: email.map(delivery),
    }
}

/// Queues one email for an invitation: the record and the outbox event that starts it.
pub(super) async fn queue_email(
    identity: &SeaIdentity,
    txn: &Txn,
    tenant: TenantId,
    invitation_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), IdentityError> {
    let email_id = Uuid::now_v7();
    invitation_email::ActiveModel {
        id: Set(email_id),
        tenant_id: Set(tenant.0),
        invitation_id: Set(invitation_id),
        status: Set(email_state::PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        last_attempt_at: Set(None),
        last_error: Set(None),
        sent_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    identity
        .outbox
        .put(
            txn,
            Event::new(
                INVITATION_EMAIL_QUEUED,
                Some(tenant),
                json!({"tenant_id": tenant, "email_id": email_id}),
            ),
        )
        .await?;
    Ok(())
}

/// Cancels the pending emails of one invitation.
pub(super) async fn cancel_emails(
    txn: &Txn,
    invitation_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, IdentityError> {
    Ok(invitation_email::Entity::update_many()
        .col_expr(
            invitation_email::Column::Status,
            Expr::value(email_state::CANCELLED),
        )
        .col_expr(
            invitation_email::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(invitation_email::Column::UpdatedAt, Expr::value(now))
        .filter(invitation_email::Column::InvitationId.eq(invitation_id))
        .filter(invitation_email::Column::Status.eq(email_state::PENDING))
        .exec(txn)
        .await?
        .rows_affected)
}

/// The latest email of each invitation in `ids`.
pub(super) async fn latest_emails(
    db: &impl sea_orm::ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<invitation_email::Model>, IdentityError> {
    let mut rows = invitation_email::Entity::find()
        .filter(invitation_email::Column::InvitationId.is_in(ids.iter().copied()))
        .order_by_desc(invitation_email::Column::Id)
        .all(db)
        .await?;
    // Newest first, so the first of each invitation is its latest.
    let mut seen = std::collections::HashSet::new();
    rows.retain(|e| seen.insert(e.invitation_id));
    Ok(rows)
}

/// Fails unless `adding` more seats fit under `limit` beside the tenant's `members` (counted
/// with the tenant locked) and its pending invitations at `now`.
pub(super) async fn ensure_seats(
    txn: &Txn,
    tenant: TenantId,
    members: u64,
    limit: Option<u32>,
    adding: u64,
    now: DateTime<Utc>,
) -> Result<(), IdentityError> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let pending = invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(tenant.0))
        .filter(invitation::Column::Status.eq("pending"))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .count(txn)
        .await?;
    let used = members + pending;
    if used + adding > u64::from(limit) {
        return Err(TenancyError::SeatLimitReached {
            limit,
            used,
            requested: adding,
        }
        .into());
    }
    Ok(())
}

/// Marks pending invitations past their expiry at `now` as expired, within `scope`; this
/// frees their address for a new invitation and their seat.
pub(super) async fn expire_lapsed(
    txn: &Txn,
    scope: Condition,
    now: DateTime<Utc>,
) -> Result<u64, IdentityError> {
    Ok(invitation::Entity::update_many()
        .col_expr(invitation::Column::Status, Expr::value("expired"))
        .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
        .filter(scope)
        .filter(invitation::Column::Status.eq("pending"))
        .filter(invitation::Column::ExpiresAt.lte(now))
        .exec(txn)
        .await?
        .rows_affected)
}

impl SeaIdentity {
    /// Refuses unless the caller may manage invitations for `role`.
    pub(super) fn may_invite(ctx: &RequestContext, role: Role) -> Result<(), IdentityError> {
        ctx.require(Permission::UsersInvite)?;
        if ctx.role.may_grant(role) {
            Ok(())
        } else {
            Err(IdentityError::RoleNotGrantable(role))
        }
    }

    /// The invitation a presented token names, checked for acceptance at `now`.
    /// Every look-up of a presented token is an attempt, counted from the client's address
    /// and on the invited address.
    pub(super) async fn usable_invitation(
        &self,
        presented: &str,
        now: DateTime<Utc>,
        client: &ClientMeta,
    ) -> Result<invitation::Model, IdentityError> {
        self.attempts.by_address(Attempt::Token, client).await?;
        let row = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(token_hash(presented)))
            .filter(invitation::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(IdentityError::InvalidToken(TokenKind::Invitation))?;
        self.attempts.on_account(Attempt::Token, &row.email).await?;
        match InvitationStatus::of(&row, now) {
            InvitationStatus::Pending => Ok(row),
            InvitationStatus::Accepted => Err(IdentityError::TokenUsed(TokenKind::Invitation)),
            InvitationStatus::Revoked => Err(IdentityError::InvitationRevoked),
            InvitationStatus::Expired => Err(IdentityError::TokenExpired(TokenKind::Invitation)),
        }
    }

    pub(super) async fn tenant_display_name(
        &self,
        tenant: TenantId,
    ) -> Result<String, IdentityError> {
        let t = self.tenancy.find(tenant).await?;
        let settings = self.tenancy.settings_of(tenant).await?;
        Ok(settings.branding.display_name.unwrap_or(t.name))
    }

    pub(super) async fn user_name(
        &self,
        id: Option<Uuid>,
    ) -> Result<Option<String>, IdentityError> {
        let Some(id) = id else { return Ok(None) };
        Ok(user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|u| u.name))
    }

    /// One invitation of the context's tenant, not soft-deleted.
    pub(super) async fn find_invitation(
        &self,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<invitation::Model, IdentityError> {
        invitation::Entity::find_by_id(id)
            .filter(invitation::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(invitation::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(IdentityError::InvitationNotFound)
    }

    pub(super) fn invitation_event(
        ctx: &RequestContext,
        action: &'static str,
        row: &invitation::Model,
    ) -> AuditEntry {
        AuditEntry::in_context(ctx, action, "invitation", row.id)
    }
}
