//! Invitations: invite people by email, follow and manage what was sent, and accept.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use tenantry_identity::{
    Accepted, EmailDelivery, Invitation, InvitationPreview, InvitationStatus, NewInvitations,
};
use tenantry_kernel::{FieldError, PageRequest, ValidationErrors};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, Client};
use crate::input::{Json, Query};

/// People to invite, all with one role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// 1 to 100 addresses.
    #[schema(example = json!(["grace@example.com", "alan@example.com"]), min_items = 1, max_items = 100)]
    pub emails: Vec<String>,
    /// `owner`, `admin`, `manager`, `expert` or `member`; never above the inviter's own role.
    #[schema(example = "member")]
    pub role: String,
    /// A note shown in the email, up to 1000 characters.
    #[schema(max_length = 1000)]
    pub message: Option<String>,
    /// A location of the tenant the invitees will join as its members.
    pub location_id: Option<uuid::Uuid>,
}

/// The delivery of an invitation's latest email.
#[derive(Serialize, ToSchema)]
pub struct EmailDeliveryResponse {
    /// `pending` (queued or waiting for a retry), `sent`, `failed` (after 4 attempts) or
    /// `cancelled` (the invitation ended first).
    #[schema(example = "sent")]
    pub status: String,
    /// Attempts made so far (retries follow after 5 min, 30 min and 2 h).
    pub attempts: i32,
    /// When the last attempt was made.
    pub last_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the mail server accepted the email.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<EmailDelivery> for EmailDeliveryResponse {
    fn from(e: EmailDelivery) -> Self {
        Self {
            status: e.status,
            attempts: e.attempts,
            last_attempt_at: e.last_attempt_at,
            next_attempt_at: e.next_attempt_at,
            sent_at: e.sent_at,
        }
    }
}

/// An invitation.
#[derive(Serialize, ToSchema)]
pub struct InvitationResponse {
    /// Its id.
    pub id: uuid::Uuid,
    /// The invitee's address.
    pub email: String,
    /// The role the invitee will hold.
    #[schema(example = "member")]
    pub role: &'static str,
    /// The inviter's note.
    pub message: Option<String>,
    /// `pending`, `accepted`, `expired` or `revoked`.
    #[schema(example = "pending")]
    pub status: &'static str,
    /// The user who invited.
    pub invited_by: Option<uuid::Uuid>,
    /// The location the invitee will join.
    pub location_id: Option<uuid::Uuid>,
    /// When the link stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was accepted.
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its latest email.
    pub email_delivery: Option<EmailDeliveryResponse>,
}

impl From<Invitation> for InvitationResponse {
    fn from(i: Invitation) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role.as_str(),
            message: i.message,
            status: i.status.as_str(),
            invited_by: i.invited_by.map(|u| u.0),
            location_id: i.location_id.map(|l| l.0),
            expires_at: i.expires_at,
            created_at: i.created_at,
            accepted_at: i.accepted_at,
            revoked_at: i.revoked_at,
            email_delivery: i.email_delivery.map(Into::into),
        }
    }
}

/// An address an invite call skipped, and why.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SkippedAddress {
    /// The address.
    pub email: String,
    /// `already_member` or `already_invited`.
    #[schema(example = "already_invited")]
    pub code: &'static str,
}

/// What an invite call created and skipped.
#[derive(Serialize, ToSchema)]
pub struct InviteResponse {
    /// The invitations created; their emails are on their way.
    pub items: Vec<InvitationResponse>,
    /// Addresses that got no invitation.
    pub skipped: Vec<SkippedAddress>,
}

/// A page of invitations, newest first.
#[derive(Serialize, ToSchema)]
pub struct InvitationList {
    /// The invitations on this page.
    pub items: Vec<InvitationResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Which invitations: `?status=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// Only invitations in this status: `pending`, `accepted`, `expired` or `revoked`.
    pub status: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl InvitationQuery {
    fn parse(&self) -> Result<(Option<InvitationStatus>, PageRequest), ValidationErrors> {
        let mut errors = Vec::new();
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => {
                let parsed = InvitationStatus::parse(s);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "status",
                        "invalid_status",
                        "one of pending, accepted, expired, revoked",
                    ));
                }
                parsed
            }
        };
        let page = PageRequest::parse(self.limit, self.cursor.as_deref());
        match page {
            Ok(page) if errors.is_empty() => Ok((status, page)),
            Ok(_) => Err(ValidationErrors(errors)),
            Err(more) => {
                errors.extend(more);
                Err(ValidationErrors(errors))
            }
        }
    }
}

/// Invites up to 100 people into the caller's tenant with one role (owners and admins;
/// nobody grants a role above their own). Addresses of members and of pending invitations
/// are skipped and listed; each invitation's email goes out through the job queue.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "invitations", operation_id = "create_invitations",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$", description = "Up to 255 visible ASCII characters. A retry with the same key and body gets the first response again (with `Idempotent-Replayed: true`) for 24 hours, instead of inviting twice")),
    request_body = InviteRequest,
    responses(
        (status = 201, description = "Invitations created; skipped addresses listed", body = InviteResponse),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to invite (`forbidden`), or the role ranks above the caller's (`role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of the tenant has this `location_id`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Every address skipped (`already_invited`, `already_member` or `invitation_conflict`, with `skipped`), the seat limit would be passed (`seat_limit_reached`), or a request with this `Idempotency-Key` is still running (`idempotency_key_in_use`, with `Retry-After`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, named `emails[i]` for addresses (`invalid_email`, `duplicate`, `domain_not_allowed`), or an `Idempotency-Key` sent before with a different request (`idempotency_key_reused`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post(
    "/invitations",
    wrap = "actix_web::middleware::from_fn(crate::idempotency::idempotent)"
)]
pub async fn create(
    state: AppState,
    auth: Auth,
    body: Json<InviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = NewInvitations::parse(
        &body.emails,
        &body.role,
        body.message.as_deref(),
        body.location_id,
    )?;
    let outcome = state.invitations.invite(&auth.0, input).await?;
    Ok(HttpResponse::Created().json(InviteResponse {
        items: outcome.created.into_iter().map(Into::into).collect(),
        skipped: outcome
            .skipped
            .into_iter()
            .map(|(email, reason)| SkippedAddress {
                email,
                code: reason.code(),
            })
            .collect(),
    }))
}

/// Lists the tenant's invitations, newest first, with the delivery of each one's latest
/// email.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "invitations", operation_id = "list_invitations",
    security(("bearer" = [])),
    params(InvitationQuery),
    responses(
        (status = 200, description = "A page of invitations", body = InvitationList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to manage invitations (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `status`, `limit` or `cursor`, or an unknown parameter", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/invitations")]
pub async fn list(
    state: AppState,
    auth: Auth,
    query: Query<InvitationQuery>,
) -> Result<HttpResponse, ApiError> {
    let (status, page) = query.parse()?;
    let page = state
        .invitations
        .list_invitations(&auth.0, status, page)
        .await?;
    Ok(HttpResponse::Ok().json(InvitationList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One of the tenant's invitations.
#[utoipa::path(get, path = "/api/v1/invitations/{id}", tag = "invitations", operation_id = "get_invitation",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The invitation's id")),
    responses(
        (status = 200, description = "The invitation", body = InvitationResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to manage invitations (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No invitation of this tenant has this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/invitations/{id}")]
pub async fn get_one(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let invitation = state
        .invitations
        .get_invitation(&auth.0, id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(InvitationResponse::from(invitation)))
}

/// Sends a pending or expired invitation again: a new link (the old one stops working), a
/// fresh expiry, and a new email. At most one email per invitation a minute.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/resend", tag = "invitations", operation_id = "resend_invitation",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The invitation's id")),
    responses(
        (status = 200, description = "The invitation, pending again with its new expiry", body = InvitationResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No invitation of this tenant has this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Accepted or revoked (`invitation_not_pending`); another pending invitation holds the address (`already_invited`); no seat left (`seat_limit_reached`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "An email went out less than a minute ago (`resend_too_soon`), with Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/invitations/{id}/resend")]
pub async fn resend(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let invitation = state
        .invitations
        .resend_invitation(&auth.0, id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(InvitationResponse::from(invitation)))
}

/// Revokes an invitation that was not accepted; its link stops working at once and unsent
/// emails are cancelled.
#[utoipa::path(delete, path = "/api/v1/invitations/{id}", tag = "invitations", operation_id = "revoke_invitation",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The invitation's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No invitation of this tenant has this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted or revoked (`invitation_not_pending`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/invitations/{id}")]
pub async fn revoke(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .invitations
        .revoke_invitation(&auth.0, id.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An invitation token, from the link in the invitation email.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationTokenRequest {
    /// The `token` from the link (`…/accept-invite#token=…`).
    pub token: String,
}

/// What an invitation offers.
#[derive(Serialize, ToSchema)]
pub struct InvitationPreviewResponse {
    /// The tenant's name.
    pub tenant_name: String,
    /// The invited address.
    pub email: String,
    /// The role offered.
    #[schema(example = "member")]
    pub role: &'static str,
    /// Who invited.
    pub inviter_name: Option<String>,
    /// When the link stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Whether an account uses the address: then accepting needs no name or password.
    pub account_exists: bool,
}

impl From<InvitationPreview> for InvitationPreviewResponse {
    fn from(p: InvitationPreview) -> Self {
        Self {
            tenant_name: p.tenant_name,
            email: p.email,
            role: p.role.as_str(),
            inviter_name: p.inviter_name,
            expires_at: p.expires_at,
            account_exists: p.account_exists,
        }
    }
}

/// Accepting an invitation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The `token` from the link (`…/accept-invite#token=…`).
    pub token: String,
    /// The new account's display name; required when no account uses the address.
    #[schema(example = "Grace Hopper", max_length = 100)]
    pub name: Option<String>,
    /// The new account's password (8 to 128 characters); required when no account uses the
    /// address, ignored otherwise.
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

/// The accepted membership, and tokens when a new account was created.
#[derive(Serialize, ToSchema)]
pub struct AcceptInviteResponse {
    /// The member.
    pub user_id: uuid::Uuid,
    /// The tenant joined.
    pub tenant_id: uuid::Uuid,
    /// The role held there.
    #[schema(example = "member")]
    pub role: &'static str,
    /// Whether a new account was created (201) or an existing one joined (200; sign in
    /// with its password).
    pub account_created: bool,
    /// A new account's access token.
    pub access_token: Option<String>,
    /// A new account's refresh token.
    pub refresh_token: Option<String>,
    /// `Bearer`, with tokens.
    pub token_type: Option<&'static str>,
    /// Seconds until the access token expires.
    pub expires_in: Option<i64>,
}

impl From<Accepted> for AcceptInviteResponse {
    fn from(a: Accepted) -> Self {
        let created = a.tokens.is_some();
        let (access_token, refresh_token, expires_in) = match a.tokens {
            Some(t) => (
                Some(t.access_token),
                Some(t.refresh_token),
                Some(t.expires_in),
            ),
            None => (None, None, None),
        };
        Self {
            user_id: a.user_id.0,
            tenant_id: a.tenant_id.0,
            role: a.role.as_str(),
            account_created: created,
            access_token,
            refresh_token,
            token_type: created.then_some("Bearer"),
            expires_in,
        }
    }
}

/// Shows what an invitation token offers, so a page can ask for a name and password only
/// when no account uses the address. Fails exactly as accepting would.
#[utoipa::path(post, path = "/api/v1/auth/accept-invite/preview", tag = "auth", operation_id = "preview_invitation",
    request_body = InvitationTokenRequest,
    responses(
        (status = 200, description = "What accepting will do", body = InvitationPreviewResponse),
        (status = 400, description = "Unknown token (`invalid_token`) or malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted (`token_used`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`token_expired`) or revoked (`invitation_revoked`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/accept-invite/preview")]
pub async fn preview(
    state: AppState,
    client: Client,
    body: Json<InvitationTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let preview = state
        .invitations
        .preview_invitation(&body.token, &client.0)
        .await?;
    Ok(HttpResponse::Ok().json(InvitationPreviewResponse::from(preview)))
}

/// Accepts an invitation. Without an account for the address, one is created (with `name`
/// and `password`, the address counted as verified) and signed in: 201 with tokens. With an
/// account, the membership is added to it: 200, and its owner signs in as usual.
#[utoipa::path(post, path = "/api/v1/auth/accept-invite", tag = "auth", operation_id = "accept_invitation",
    request_body = AcceptInviteRequest,
    responses(
        (status = 200, description = "An existing account joined the tenant", body = AcceptInviteResponse),
        (status = 201, description = "A new account was created, joined and signed in", body = AcceptInviteResponse),
        (status = 400, description = "Unknown token (`invalid_token`) or malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account using the address is disabled (`account_disabled`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted (`token_used`) or already a member (`already_member`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`token_expired`) or revoked (`invitation_revoked`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A new account's name or password missing or invalid", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many password operations at once (`overloaded`), with Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/accept-invite")]
pub async fn accept(
    state: AppState,
    client: Client,
    body: Json<AcceptInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let accepted = state
        .invitations
        .accept_invitation(&body.token, body.name.as_deref(), body.password, &client.0)
        .await?;
    let status = if accepted.tokens.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(AcceptInviteResponse::from(accepted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_filter_and_page_are_checked_together() {
        let q = InvitationQuery {
            status: Some("lost".into()),
            limit: Some(0),
            cursor: None,
        };
        let err = q.parse().unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["status", "limit"]);
    }
}
