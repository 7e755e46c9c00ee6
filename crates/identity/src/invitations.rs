//! Invitations: bringing people into a tenant by email.
//!
//! - A token is 256 random bits, stored only as its SHA-256 and found by one indexed lookup.
//!   It is created when the email goes out, so the raw token exists only in that email; every
//!   resend (and every retry of a failed send) replaces it. An accepted or revoked
//!   invitation keeps its last hash, so its link answers "used" or "revoked", not "unknown".
//! - At most one invitation per (tenant, address) is pending: a partial unique index settles
//!   races, and the invite command locks the tenant so seat counts stay exact.
//! - Each email is a row in `invitation_emails` with its own retry schedule (5 min, 30 min,
//!   2 h, then failed), so one undeliverable address never holds up another and nothing is
//!   lost while the mail server is down.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Set, TransactionTrait,
};
use serde_json::json;
use tenantry_kernel::crypto::{new_token, token_hash};
use tenantry_kernel::db::{Txn, UniqueKey, begin_write, violates};
use tenantry_kernel::row;
use tenantry_kernel::{
    Actor, Attempt, AuditEntry, ClientMeta, Event, FieldError, LocationId, Page, PageRequest,
    Permission, RequestContext, Role, TenantId, UserId, ValidationErrors,
};
use tenantry_tenancy::{NewMember, TenancyError};
use uuid::Uuid;

use crate::entity::{invitation, invitation_email, user};
use crate::sessions;
use crate::{Email, IdentityError, Password, PersonName, SeaIdentity, TokenKind, TokenPair};

/// An address has one pending invitation per tenant.
pub(crate) const PENDING_INVITATION: UniqueKey = UniqueKey {
    name: "invitations_pending_email_key",
    table: "invitations",
    columns: &["tenant_id", "email"],
};

/// Outbox event that queues one invitation email; its payload names the tenant and the email.
pub const INVITATION_EMAIL_QUEUED: &str = "invitation.email_queued";

/// The most addresses one invite call may carry.
pub const MAX_BATCH: usize = 100;
/// What an invitation's message takes: up to 1000 characters, on several lines if need be.
pub const MESSAGE: tenantry_kernel::TextRule = tenantry_kernel::TextRule::lines(1000);
/// Attempts per invitation email: the first, then one after each delay of [`RETRY_DELAYS`].
pub const MAX_EMAIL_ATTEMPTS: i32 = 4;
/// Waits before the second, third and fourth attempt.
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
];
/// How long an attempt holds its email before another worker may assume it crashed.
const SEND_LEASE: Duration = Duration::minutes(10);
/// The shortest time between two emails for one invitation.
pub const RESEND_COOLDOWN: Duration = Duration::seconds(60);
/// Expired or revoked invitations are hidden this long after they ended...
const SOFT_DELETE_AFTER: Duration = Duration::days(30);
/// ...and removed for good this long after that.
const HARD_DELETE_AFTER: Duration = Duration::days(60);
/// Failed and cancelled email records are kept this long.
const EMAIL_RECORD_RETENTION: Duration = Duration::days(30);

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Waiting to be accepted.
    Pending,
    /// Accepted; the invitee is a member.
    Accepted,
    /// Not accepted in time.
    Expired,
    /// Withdrawn by the tenant.
    Revoked,
}

impl InvitationStatus {
    /// The name clients see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// Parses a status name, as the list filter takes it.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Accepted, Self::Expired, Self::Revoked]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// The status a row shows at `now`: a pending one past its expiry is expired.
    fn of(row: &invitation::Model, now: DateTime<Utc>) -> Self {
        match row.status.as_str() {
            "accepted" => Self::Accepted,
            "revoked" => Self::Revoked,
            "pending" if row.expires_at > now => Self::Pending,
            _ => Self::Expired,
        }
    }
}

/// Stored email states.
mod email_state {
    pub const PENDING: &str = "pending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}

/// A parsed invite request.
#[derive(Clone, Debug)]
pub struct NewInvitations {
    /// The addresses, normalised, without duplicates.
    pub emails: Vec<Email>,
    /// The role each invitee will hold.
    pub role: Role,
    /// A note from the inviter, shown in the email.
    pub message: Option<String>,
    /// The location the invitees will work at, as its members.
    pub location: Option<LocationId>,
}

impl NewInvitations {
    /// Parses every field, reporting all invalid ones at once; addresses are named by index
    /// (`emails[3]`).
    pub fn parse(
        emails: &[String],
        role: &str,
        message: Option<&str>,
        location: Option<Uuid>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if emails.is_empty() || emails.len() > MAX_BATCH {
            errors.0.push(FieldError::new(
                "emails",
                "out_of_range",
                format!("between 1 and {MAX_BATCH} addresses"),
            ));
        }
        let mut parsed: Vec<Email> = Vec::with_capacity(emails.len());
        for (i, raw) in emails.iter().enumerate() {
            let field = format!("emails[{i}]");
            if let Some(email) = errors.check(Email::parse(&field, raw)) {
                if parsed.contains(&email) {
                    errors.0.push(FieldError::new(
                        &field,
                        "duplicate",
                        "this address appears earlier in the list",
                    ));
                } else {
                    parsed.push(email);
                }
            }
        }
        let role = errors.check(Role::parse_field("role", role));
        let message = message
            .and_then(|m| errors.check(MESSAGE.optional("message", m)))
            .flatten();
        errors.into_result()?;
        Ok(Self {
            emails: parsed,
            role: role.unwrap_or(Role::Member),
            message,
            location: location.map(LocationId),
        })
    }
}

/// The delivery state of an invitation's latest email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailDelivery {
    /// `pending`, `sent`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the mail server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

/// An invitation as the tenant sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// Its id.
    pub id: Uuid,
    /// The invitee's address.
    pub email: String,
    /// The role the invitee will hold.
    pub role: Role,
    /// The inviter's note.
    pub message: Option<String>,
    /// Where it stands now.
    pub status: InvitationStatus,
    /// Who invited.
    pub invited_by: Option<UserId>,
    /// The location the invitee will join.
    pub location_id: Option<LocationId>,
    /// When it stops being acceptable.
    pub expires_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Its latest email's delivery.
    pub email_delivery: Option<EmailDelivery>,
}

/// Why an address of an invite call got no invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The address already belongs to a member.
    AlreadyMember,
    /// A pending invitation for the address exists.
    AlreadyInvited,
}

impl SkipReason {
    /// Stable code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::AlreadyMember => "already_member",
            Self::AlreadyInvited => "already_invited",
        }
    }
}

/// What an invite call did.
#[derive(Clone, Debug)]
pub struct InviteOutcome {
    /// The invitations created.
    pub created: Vec<Invitation>,
    /// The addresses skipped, with the reason.
    pub skipped: Vec<(String, SkipReason)>,
}

/// What the holder of an invitation token may learn before accepting.
#[derive(Clone, Debug)]
pub struct InvitationPreview {
    /// The tenant's (display) name.
    pub tenant_name: String,
    /// The invited address.
    pub email: String,
    /// The role offered.
    pub role: Role,
    /// Who invited, by name.
    pub inviter_name: Option<String>,
    /// When the invitation expires.
    pub expires_at: DateTime<Utc>,
    /// Whether an account uses the address already (then accepting adds a membership and
    /// the invitee signs in with their own password).
    pub account_exists: bool,
}

/// The outcome of accepting an invitation.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The member.
    pub user_id: UserId,
    /// The tenant joined.
    pub tenant_id: TenantId,
    /// The role held there.
    pub role: Role,
    /// Tokens for a new account's first session; `None` when an existing account joined
    /// (its owner signs in with their password).
    pub tokens: Option<TokenPair>,
}

/// One invitation email ready to send; the raw token exists only here and in the email.
#[derive(Clone)]
pub struct InvitationMail {
    /// The email record.
    pub email_id: Uuid,
    /// Which attempt this is, from 1.
    pub attempt: i32,
    /// The recipient.
    pub to: String,
    /// The tenant's (display) name.
    pub tenant_name: String,
    /// The inviter's name.
    pub inviter_name: Option<String>,
    /// The role offered.
    pub role: Role,
    /// The inviter's note.
    pub message: Option<String>,
    /// The token for the link.
    pub token: String,
    /// When the invitation expires.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for InvitationMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationMail")
            .field("email_id", &self.email_id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// What the daily invitation cleanup did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InvitationCleanup {
    /// Pending invitations past their expiry, marked expired.
    pub expired: u64,
    /// Pending emails of invitations no longer pending, cancelled.
    pub emails_cancelled: u64,
    /// Invitations expired or revoked for 30 days, hidden.
    pub soft_deleted: u64,
    /// Invitations hidden for 60 days, deleted with their emails.
    pub hard_deleted: u64,
    /// Failed or cancelled email records older than 30 days, deleted.
    pub email_records_deleted: u64,
}

/// The invitation commands and the jobs behind them.
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

fn role_of(row: &invitation::Model) -> Role {
    Role::parse(&row.role).unwrap_or(Role::Member)
}

fn delivery(e: invitation_email::Model) -> EmailDelivery {
    EmailDelivery {
        status: e.status,
        attempts: e.attempts,
        last_attempt_at: e.last_attempt_at,
        next_attempt_at: e.next_attempt_at,
        sent_at: e.sent_at,
    }
}

fn view(
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
async fn queue_email(
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
async fn cancel_emails(
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
async fn latest_emails(
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
async fn ensure_seats(
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
async fn expire_lapsed(
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
    fn may_invite(ctx: &RequestContext, role: Role) -> Result<(), IdentityError> {
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
    async fn usable_invitation(
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

    async fn tenant_display_name(&self, tenant: TenantId) -> Result<String, IdentityError> {
        let t = self.tenancy.find(tenant).await?;
        let settings = self.tenancy.settings_of(tenant).await?;
        Ok(settings.branding.display_name.unwrap_or(t.name))
    }

    async fn user_name(&self, id: Option<Uuid>) -> Result<Option<String>, IdentityError> {
        let Some(id) = id else { return Ok(None) };
        Ok(user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|u| u.name))
    }

    /// One invitation of the context's tenant, not soft-deleted.
    async fn find_invitation(
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

    fn invitation_event(
        ctx: &RequestContext,
        action: &'static str,
        row: &invitation::Model,
    ) -> AuditEntry {
        AuditEntry::in_context(ctx, action, "invitation", row.id)
    }
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
    use super::*;

    #[test]
    fn invite_input_names_each_bad_address() {
        let emails = vec![
            "ada@example.com".to_owned(),
            "not-an-address".to_owned(),
            " ADA@example.com".to_owned(),
        ];
        let err =
            NewInvitations::parse(&emails, "wizard", Some(&"x".repeat(1001)), None).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            fields,
            [
                ("emails[1]", "invalid_email"),
                ("emails[2]", "duplicate"),
                ("role", "invalid_role"),
                ("message", "too_long"),
            ]
        );
    }

    #[test]
    fn invite_batches_are_bounded() {
        let many: Vec<String> = (0..=MAX_BATCH)
            .map(|i| format!("u{i}@example.com"))
            .collect();
        assert!(NewInvitations::parse(&many, "member", None, None).is_err());
        assert!(NewInvitations::parse(&[], "member", None, None).is_err());
        let ok = NewInvitations::parse(&many[..MAX_BATCH], "admin", Some("  "), None).unwrap();
        assert_eq!(ok.emails.len(), MAX_BATCH);
        assert_eq!(ok.role, Role::Admin);
        assert_eq!(ok.message, None);
    }

    #[test]
    fn the_retry_schedule_is_five_minutes_half_an_hour_two_hours() {
        assert_eq!(RETRY_DELAYS.map(|d| d.num_minutes()), [5, 30, 120]);
        assert_eq!(MAX_EMAIL_ATTEMPTS as usize, RETRY_DELAYS.len() + 1);
    }
}
