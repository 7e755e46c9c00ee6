//! The invitation commands.

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde_json::json;
use tenantry_kernel::db::{begin_write, violates};
use tenantry_kernel::row;
use tenantry_kernel::{
    Actor, AuditEntry, ClientMeta, FieldError, LocationId, Page, PageRequest, Permission,
    RequestContext, TenantId, UserId, ValidationErrors,
};
use tenantry_tenancy::{NewMember, TenancyError};
use uuid::Uuid;

use crate::entity::{invitation, user};
use crate::sessions;
use crate::{Email, IdentityError, Password, PersonName, SeaIdentity, TokenKind};

use super::rows::*;
use super::*;

/// The invitation commands, each checked against the caller's context.
#[async_trait::async_trait]
pub trait InvitationService: Send + Sync {
    /// Invites each address with one role; addresses of members and of pending invitations
    /// are skipped and reported. Fails when nothing could be invited.
    async fn invite(
        &self,
        ctx: &RequestContext,
        input: NewInvitations,
    ) -> Result<InviteOutcome, IdentityError>;

    /// The tenant's invitations, newest first, optionally only those in one status.
    async fn list_invitations(
        &self,
        ctx: &RequestContext,
        status: Option<InvitationStatus>,
        page: PageRequest,
    ) -> Result<Page<Invitation>, IdentityError>;

    /// One of the tenant's invitations.
    async fn get_invitation(
        &self,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Invitation, IdentityError>;

    /// Sends a pending or expired invitation again with a new token and a fresh expiry.
    async fn resend_invitation(
        &self,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Invitation, IdentityError>;

    /// Withdraws an invitation that was not accepted; its link stops working at once.
    async fn revoke_invitation(&self, ctx: &RequestContext, id: Uuid) -> Result<(), IdentityError>;

    /// What an invitation token offers, checked as accepting would check it.
    async fn preview_invitation(
        &self,
        token: &str,
        client: &ClientMeta,
    ) -> Result<InvitationPreview, IdentityError>;

    /// Accepts an invitation: creates the account (with `name` and `password`) or adds the
    /// membership to the account that uses the address.
    async fn accept_invitation(
        &self,
        token: &str,
        name: Option<&str>,
        password: Option<String>,
        client: &ClientMeta,
    ) -> Result<Accepted, IdentityError>;
}

#[async_trait::async_trait]
impl InvitationService for SeaIdentity {
    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn invite(
        &self,
        ctx: &RequestContext,
        input: NewInvitations,
    ) -> Result<InviteOutcome, IdentityError> {
        Self::may_invite(ctx, input.role)?;
        let tenant = ctx.tenant_id;
        let settings = self.tenancy.settings_of(tenant).await?;
        let refused: Vec<FieldError> = input
            .emails
            .iter()
            .enumerate()
            .filter(|(_, e)| !settings.allows_invitee(e.as_str()))
            .map(|(i, _)| {
                FieldError::new(
                    &format!("emails[{i}]"),
                    "domain_not_allowed",
                    "the tenant's policy does not allow invitations to this domain",
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(ValidationErrors(refused).into());
        }
        // A well-formed id that names no location of the tenant is not found, as in a path.
        if let Some(location) = input.location
            && !self.tenancy.location_exists(tenant, location).await?
        {
            return Err(TenancyError::LocationNotFound.into());
        }
        let now = Utc::now();
        let addresses: Vec<&str> = input.emails.iter().map(Email::as_str).collect();
        let txn = begin_write(&self.db).await?;
        // Takes the tenant's lock first, so concurrent invites of one tenant see each other.
        let members = self.tenancy.lock_and_count_members(&txn, tenant).await?;
        // Lapsed invitations of these addresses free them here, not only at the daily cleanup.
        expire_lapsed(
            &txn,
            Condition::all()
                .add(invitation::Column::TenantId.eq(tenant.0))
                .add(invitation::Column::Email.is_in(addresses.iter().copied())),
            now,
        )
        .await?;
        let mut skipped = Vec::new();
        let existing_users = user::Entity::find()
            .filter(user::Column::Email.is_in(addresses.iter().copied()))
            .all(&txn)
            .await?;
        let ids: Vec<UserId> = existing_users.iter().map(|u| UserId(u.id)).collect();
        let members_already = self.tenancy.members_among(&txn, tenant, &ids).await?;
        for u in &existing_users {
            if members_already.contains(&UserId(u.id)) {
                skipped.push((u.email.clone(), SkipReason::AlreadyMember));
            }
        }
        let pending = invitation::Entity::find()
            .filter(invitation::Column::TenantId.eq(tenant.0))
            .filter(invitation::Column::Email.is_in(addresses.iter().copied()))
            .filter(invitation::Column::Status.eq("pending"))
            .all(&txn)
            .await?;
        for p in pending {
            if !skipped.iter().any(|(e, _)| *e == p.email) {
                skipped.push((p.email, SkipReason::AlreadyInvited));
            }
        }
        let wanted: Vec<&Email> = input
            .emails
            .iter()
            .filter(|e| !skipped.iter().any(|(s, _)| s == e.as_str()))
            .collect();
        if !wanted.is_empty() {
            let adding = wanted.len() as u64;
            ensure_seats(&txn, tenant, members, settings.limits.seats, adding, now).await?;
        }
        let expires_at = now + settings.invitation_ttl();
        let mut created = Vec::with_capacity(wanted.len());
        for email in wanted {
            let row = invitation::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant.0),
                email: Set(email.as_str().to_owned()),
                role: Set(input.role.as_str().to_owned()),
                message: Set(input.message.clone()),
                invited_by: Set(ctx.user_id().map(|u| u.0)),
                token_hash: Set(None),
                status: Set("pending".to_owned()),
                expires_at: Set(expires_at),
                created_at: Set(now),
                updated_at: Set(now),
                accepted_at: Set(None),
                accepted_by: Set(None),
                revoked_at: Set(None),
                deleted_at: Set(None),
                location_id: Set(input.location.map(|l| l.0)),
            };
            // A savepoint per row: a duplicate that slipped past the check above (the
            // partial unique index has the last word) is skipped, not fatal.
            let sp = txn.begin().await?;
            let row = match row.insert(&sp).await {
                Ok(row) => {
                    sp.commit().await?;
                    row
                }
                Err(e) if violates(&e, &PENDING_INVITATION) => {
                    sp.rollback().await?;
                    skipped.push((email.as_str().to_owned(), SkipReason::AlreadyInvited));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            queue_email(self, &txn, tenant, row.id, now).await?;
            self.audit
                .record(
                    &txn,
                    Self::invitation_event(ctx, "invitation.created", &row).with_change(
                        None,
                        Some(json!({"email": row.email, "role": row.role, "expires_at": row.expires_at})),
                    ),
                )
                .await?;
            created.push(row);
        }
        if created.is_empty() {
            return Err(IdentityError::NothingInvited(skipped));
        }
        txn.commit().await?;
        self.outbox.wake();
        let ids: Vec<Uuid> = created.iter().map(|r| r.id).collect();
        let emails = latest_emails(&self.db, &ids).await?;
        Ok(InviteOutcome {
            created: created
                .into_iter()
                .map(|r| {
                    let e = emails.iter().find(|e| e.invitation_id == r.id).cloned();
                    view(r, e, now)
                })
                .collect(),
            skipped,
        })
    }

    async fn list_invitations(
        &self,
        ctx: &RequestContext,
        status: Option<InvitationStatus>,
        page: PageRequest,
    ) -> Result<Page<Invitation>, IdentityError> {
        ctx.require(Permission::UsersInvite)?;
        let now = Utc::now();
        let mut query = invitation::Entity::find()
            .filter(invitation::Column::TenantId.eq(ctx.tenant_id.0))
            .filter(invitation::Column::DeletedAt.is_null());
        query = match status {
            None => query,
            Some(InvitationStatus::Pending) => query
                .filter(invitation::Column::Status.eq("pending"))
                .filter(invitation::Column::ExpiresAt.gt(now)),
            Some(InvitationStatus::Expired) => query.filter(
                Condition::any()
                    .add(invitation::Column::Status.eq("expired"))
                    .add(
                        Condition::all()
                            .add(invitation::Column::Status.eq("pending"))
                            .add(invitation::Column::ExpiresAt.lte(now)),
                    ),
            ),
            Some(s) => query.filter(invitation::Column::Status.eq(s.as_str())),
        };
        if let Some(before) = page.before {
            query = query.filter(invitation::Column::Id.lt(before));
        }
        let query = query
            .order_by_desc(invitation::Column::Id)
            .limit(page.fetch());
        let rows: Vec<invitation::Model> = row::all(&self.db, &query).await?;
        let page = Page::from_rows(rows, &page, |r| r.id);
        let ids: Vec<Uuid> = page.items.iter().map(|r| r.id).collect();
        let emails = latest_emails(&self.db, &ids).await?;
        Ok(page.map(|r| {
            let e = emails.iter().find(|e| e.invitation_id == r.id).cloned();
            view(r, e, now)
        }))
    }

    async fn get_invitation(
        &self,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Invitation, IdentityError> {
        ctx.require(Permission::UsersInvite)?;
        let row = self.find_invitation(ctx, id).await?;
        let email = latest_emails(&self.db, &[row.id]).await?.pop();
        Ok(view(row, email, Utc::now()))
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn resend_invitation(
        &self,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Invitation, IdentityError> {
        ctx.require(Permission::UsersInvite)?;
        let row = self.find_invitation(ctx, id).await?;
        Self::may_invite(ctx, role_of(&row))?;
        let now = Utc::now();
        let was = InvitationStatus::of(&row, now);
        if !matches!(was, InvitationStatus::Pending | InvitationStatus::Expired) {
            return Err(IdentityError::InvitationNotPending(was.as_str()));
        }
        if let Some(last) = latest_emails(&self.db, &[row.id]).await?.pop() {
            let wait = last.created_at + RESEND_COOLDOWN - now;
            if wait > Duration::zero() {
                return Err(IdentityError::ResendTooSoon(wait.num_seconds().max(1)));
            }
        }
        let settings = self.tenancy.settings_of(ctx.tenant_id).await?;
        let txn = begin_write(&self.db).await?;
        if was == InvitationStatus::Expired {
            // Pending again takes a seat again.
            let members = self
                .tenancy
                .lock_and_count_members(&txn, ctx.tenant_id)
                .await?;
            ensure_seats(&txn, ctx.tenant_id, members, settings.limits.seats, 1, now).await?;
        }
        cancel_emails(&txn, row.id, now).await?;
        let expires_at = now + settings.invitation_ttl();
        // The old link dies now; the new token is set when the new email goes out.
        let updated = invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value("pending"))
            .col_expr(
                invitation::Column::TokenHash,
                Expr::value(Option::<String>::None),
            )
            .col_expr(invitation::Column::ExpiresAt, Expr::value(expires_at))
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
            .filter(invitation::Column::Id.eq(row.id))
            .filter(invitation::Column::Status.eq(row.status.as_str()))
            .exec(&txn)
            .await;
        match updated {
            Ok(r) if r.rows_affected == 1 => {}
            Ok(_) => return Err(IdentityError::InvitationNotPending("changed")),
            Err(e) if violates(&e, &PENDING_INVITATION) => {
                return Err(IdentityError::NothingInvited(vec![(
                    row.email.clone(),
                    SkipReason::AlreadyInvited,
                )]));
            }
            Err(e) => return Err(e.into()),
        }
        queue_email(self, &txn, ctx.tenant_id, row.id, now).await?;
        self.audit
            .record(
                &txn,
                Self::invitation_event(ctx, "invitation.resent", &row).with_change(
                    Some(json!({"expires_at": row.expires_at})),
                    Some(json!({"expires_at": expires_at})),
                ),
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        self.get_invitation(ctx, id).await
    }

    #[tracing::instrument(skip_all, err(level = "info"), fields(tenant_id = %ctx.tenant_id))]
    async fn revoke_invitation(&self, ctx: &RequestContext, id: Uuid) -> Result<(), IdentityError> {
        ctx.require(Permission::UsersInvite)?;
        let row = self.find_invitation(ctx, id).await?;
        Self::may_invite(ctx, role_of(&row))?;
        let now = Utc::now();
        let was = InvitationStatus::of(&row, now);
        if !matches!(was, InvitationStatus::Pending | InvitationStatus::Expired) {
            return Err(IdentityError::InvitationNotPending(was.as_str()));
        }
        let txn = begin_write(&self.db).await?;
        let updated = invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value("revoked"))
            .col_expr(invitation::Column::RevokedAt, Expr::value(now))
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
            .filter(invitation::Column::Id.eq(row.id))
            .filter(invitation::Column::Status.eq(row.status.as_str()))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(IdentityError::InvitationNotPending("changed"));
        }
        cancel_emails(&txn, row.id, now).await?;
        self.audit
            .record(
                &txn,
                Self::invitation_event(ctx, "invitation.revoked", &row).with_change(
                    Some(json!({"status": was.as_str()})),
                    Some(json!({"status": "revoked"})),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn preview_invitation(
        &self,
        token: &str,
        client: &ClientMeta,
    ) -> Result<InvitationPreview, IdentityError> {
        let row = self.usable_invitation(token, Utc::now(), client).await?;
        let tenant_name = self.tenant_display_name(TenantId(row.tenant_id)).await?;
        let inviter_name = self.user_name(row.invited_by).await?;
        let account_exists = user::Entity::find()
            .filter(user::Column::Email.eq(row.email.as_str()))
            .count(&self.db)
            .await?
            > 0;
        Ok(InvitationPreview {
            tenant_name,
            role: role_of(&row),
            email: row.email,
            inviter_name,
            expires_at: row.expires_at,
            account_exists,
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn accept_invitation(
        &self,
        token: &str,
        name: Option<&str>,
        password: Option<String>,
        client: &ClientMeta,
    ) -> Result<Accepted, IdentityError> {
        let now = Utc::now();
        let row = self.usable_invitation(token, now, client).await?;
        let tenant = TenantId(row.tenant_id);
        let role = role_of(&row);
        let existing = user::Entity::find()
            .filter(user::Column::Email.eq(row.email.as_str()))
            .one(&self.db)
            .await?;
        // A new account needs a name and a password; hash before the transaction opens. Its
        // id is chosen now, so the claim below can record who accepted.
        let (user_id, new_account) = match &existing {
            Some(account) if account.status != "active" => {
                return Err(IdentityError::AccountDisabled);
            }
            Some(account) => (UserId(account.id), None),
            None => {
                let mut errors = ValidationErrors::default();
                let name = errors.check(PersonName::parse("name", name.unwrap_or("")));
                let password =
                    errors.check(Password::parse("password", password.unwrap_or_default()));
                errors.into_result()?;
                let (Some(name), Some(password)) = (name, password) else {
                    return Err(ValidationErrors::default().into());
                };
                let admission = self.hasher.admit().await?;
                let password_hash = admission.hash(password.expose()).await?;
                (UserId::new(), Some((name, password_hash)))
            }
        };
        // Read before the transaction opens: a transaction never waits for a second
        // connection, which a pool under load may not have.
        let policy = match existing {
            None => Some(self.tenancy.settings_of(tenant).await?),
            Some(_) => None,
        };
        let txn = begin_write(&self.db).await?;
        // Claims the invitation once: of two concurrent accepts, one wins.
        let claimed = invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value("accepted"))
            .col_expr(invitation::Column::AcceptedAt, Expr::value(now))
            .col_expr(invitation::Column::AcceptedBy, Expr::value(user_id.0))
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
            .filter(invitation::Column::Id.eq(row.id))
            .filter(invitation::Column::Status.eq("pending"))
            .filter(invitation::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(IdentityError::TokenUsed(TokenKind::Invitation));
        }
        let member_name = match (&existing, &new_account) {
            (Some(account), _) => account.name.clone(),
            (None, Some((name, _))) => name.as_str().to_owned(),
            (None, None) => String::new(),
        };
        match new_account {
            None => {
                // The token reached this address, which proves it as a verification would.
                user::Entity::update_many()
                    .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
                    .filter(user::Column::Id.eq(user_id.0))
                    .filter(user::Column::EmailVerifiedAt.is_null())
                    .exec(&txn)
                    .await?;
            }
            Some((name, password_hash)) => {
                crate::service::insert_account(
                    &txn,
                    user_id,
                    (&row.email, name.as_str()),
                    password_hash,
                    (Some(now), now),
                )
                .await?;
            }
        }
        let member = NewMember {
            user_id,
            name: member_name,
            email: row.email.clone(),
        };
        self.tenancy
            .add_member(&txn, tenant, &member, role, row.location_id.map(LocationId))
            .await?;
        cancel_emails(&txn, row.id, now).await?;
        let tokens = if let Some(policy) = &policy {
            // A new account has no second factor yet.
            let scope = sessions::Scope::new(policy, client, None, false);
            let (session_id, refresh) =
                sessions::open(&txn, tenant, user_id, scope, client).await?;
            Some(self.token_pair(user_id, tenant, (session_id, None), refresh)?)
        } else {
            None
        };
        self.audit
            .record(
                &txn,
                AuditEntry::new(
                    Some(tenant),
                    Actor::User(user_id),
                    "invitation.accepted",
                    "invitation",
                    Some(row.id.to_string()),
                    client,
                )
                .with_change(
                    None,
                    Some(json!({
                        "email": row.email,
                        "role": row.role,
                        "account_created": existing.is_none(),
                    })),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(Accepted {
            user_id,
            tenant_id: tenant,
            role,
            tokens,
        })
    }
}
