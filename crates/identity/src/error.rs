//! What identity commands can fail with; each variant says how it is answered
//! ([`DomainError`]).

use tenantry_kernel::{
    AccessDenied, Described, DomainError, ErrorKind, Role, TenantId, ValidationErrors,
};
use tenantry_tenancy::TenancyError;

use crate::invitations::SkipReason;
use crate::password::HashError;

/// What a single-use token sent by email is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Confirms an email address.
    Verification,
    /// Sets a new password.
    PasswordReset,
    /// Accepts an invitation.
    Invitation,
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenKind::Verification => "verification",
            TokenKind::PasswordReset => "password-reset",
            TokenKind::Invitation => "invitation",
        })
    }
}

/// An identity command failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The input did not parse.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Another account already uses the address.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Unknown address or wrong password; deliberately indistinguishable.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The access token is missing, malformed, expired or not ours.
    #[error("invalid access token")]
    InvalidAccessToken,
    /// The session behind a token was revoked or expired.
    #[error("the session has ended")]
    SessionEnded,
    /// The refresh token is unknown or expired.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// An already-rotated refresh token was presented; its whole family is now revoked.
    #[error("refresh token reuse detected; the session was revoked")]
    RefreshTokenReused,
    /// The user belongs to several tenants and did not say which.
    #[error("the account belongs to several tenants; choose one with tenant_id")]
    TenantSelectionRequired(Vec<(TenantId, String)>),
    /// The user is not a member of the tenant asked for.
    #[error("not a member of that tenant")]
    NotAMember,
    /// A refresh token bound to a network came from another one; the session has ended.
    #[error("the refresh token was presented from another network; the session was ended")]
    NetworkChanged,
    /// The tenant is suspended; its members can neither sign in nor act.
    #[error("the tenant is suspended")]
    TenantSuspended,
    /// The caller's membership of the tenant is deactivated.
    #[error("the membership is deactivated")]
    MembershipDeactivated,
    /// A single-use token (from an email link) is unknown.
    #[error("invalid {0} token")]
    InvalidToken(TokenKind),
    /// A single-use token expired.
    #[error("the {0} token has expired")]
    TokenExpired(TokenKind),
    /// A single-use token was already used (or, for password resets, a later reset voided it).
    #[error("the {0} token was already used")]
    TokenUsed(TokenKind),
    /// No live session of the caller's has that id (it may be another user's or tenant's).
    #[error("session not found")]
    SessionNotFound,
    /// The current password given to confirm a change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// The address is already verified; there is nothing to send.
    #[error("the email address is already verified")]
    AlreadyVerified,
    /// The caller may not hand out this role (it ranks above their own).
    #[error("may not grant the role {}", .0.as_str())]
    RoleNotGrantable(Role),
    /// Every address of an invite call was skipped.
    #[error("nothing to invite")]
    NothingInvited(Vec<(String, SkipReason)>),
    /// No invitation of the caller's tenant has that id.
    #[error("invitation not found")]
    InvitationNotFound,
    /// The invitation is accepted or revoked (named), so it cannot change.
    #[error("the invitation is {0}")]
    InvitationNotPending(&'static str),
    /// The invitation was withdrawn.
    #[error("the invitation was revoked")]
    InvitationRevoked,
    /// An invitation email went out moments ago; retry after this many seconds.
    #[error("an email for this invitation was sent moments ago")]
    ResendTooSoon(i64),
    /// The account is deactivated.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The user no longer exists.
    #[error("user not found")]
    UserNotFound,
    /// The caller lacks a permission.
    #[error(transparent)]
    Forbidden(#[from] AccessDenied),
    /// The endpoint acts for a signed-in user; an API key cannot call it.
    #[error("only a signed-in user may do this")]
    UserOnly,
    /// No API key of the caller's tenant has that id.
    #[error("API key not found")]
    ApiKeyNotFound,
    /// The API key presented was revoked.
    #[error("the API key was revoked")]
    ApiKeyRevoked,
    /// The API key presented has expired.
    #[error("the API key has expired")]
    ApiKeyExpired,
    /// The account has no (confirmed) second factor.
    #[error("two-factor authentication is not enabled")]
    MfaNotEnabled,
    /// The account has a confirmed second factor already.
    #[error("two-factor authentication is already enabled")]
    MfaAlreadyEnabled,
    /// A code, backup code or password given as proof is wrong (or a code was used before).
    #[error("the code is wrong or was already used")]
    InvalidMfaProof,
    /// The code or backup code given to complete a sign-in is wrong or was already used.
    #[error("the code is wrong or was already used")]
    MfaCodeRejected,
    /// The sign-in challenge is unknown, used, expired or out of attempts.
    #[error("the sign-in challenge is invalid or expired")]
    InvalidMfaToken,
    /// The API key is revoked or expired, so it cannot change.
    #[error("the API key is {0}")]
    ApiKeyNotActive(&'static str),
    /// Too many attempts at a secret from the client's address or on the account.
    #[error(transparent)]
    TooManyAttempts(#[from] tenantry_kernel::Throttled),
    /// Password hashing is saturated; the request was shed.
    #[error("too many sign-ins at once; retry shortly")]
    Overloaded,
    /// A tenancy call failed.
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
    /// Anything else that should not happen.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<HashError> for IdentityError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Overloaded => IdentityError::Overloaded,
            HashError::Failed(msg) => IdentityError::Unexpected(anyhow::anyhow!(msg)),
        }
    }
}

impl From<tenantry_kernel::crypto::RandomError> for IdentityError {
    fn from(e: tenantry_kernel::crypto::RandomError) -> Self {
        IdentityError::Unexpected(e.into())
    }
}

impl From<jsonwebtoken::errors::Error> for IdentityError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        IdentityError::Unexpected(e.into())
    }
}

impl DomainError for IdentityError {
    fn describe(&self) -> Described<'_> {
        use ErrorKind::{
            AuthenticationFailed, BadRequest, Conflict, Forbidden, Gone, NotFound, TooManyRequests,
            Unauthenticated, Unavailable,
        };
        let it = Described::new;
        match self {
            Self::Invalid(v) => v.describe(),
            Self::EmailTaken => {
                it(Conflict, "email_taken").detail("an account with this email already exists")
            }
            Self::InvalidCredentials => {
                it(AuthenticationFailed, "invalid_credentials").detail("invalid email or password")
            }
            Self::InvalidAccessToken => it(Unauthenticated, "invalid_token")
                .detail("the access token is invalid or expired"),
            Self::SessionEnded => {
                it(Unauthenticated, "session_ended").detail("the session has ended; sign in again")
            }
            Self::InvalidRefreshToken => it(AuthenticationFailed, "invalid_refresh_token")
                .detail("the refresh token is invalid or expired"),
            Self::RefreshTokenReused => it(AuthenticationFailed, "refresh_token_reused")
                .detail("this refresh token was already used; the session has been revoked"),
            Self::TenantSelectionRequired(tenants) => {
                let choices = tenants
                    .iter()
                    .map(|(id, name)| serde_json::json!({ "id": id.0, "name": name }))
                    .collect();
                it(Conflict, "tenant_selection_required")
                    .detail("the account belongs to several tenants; repeat with tenant_id")
                    .extension("tenants", serde_json::Value::Array(choices))
            }
            Self::NotAMember => it(Forbidden, "not_a_member").detail("not a member of that tenant"),
            Self::NetworkChanged => it(AuthenticationFailed, "session_network_changed").detail(
                "this session's refresh tokens work only from the network it was opened from; \
                 the session has ended, sign in again",
            ),
            Self::TenantSuspended => it(Forbidden, "tenant_suspended")
                .detail("the tenant is suspended; contact its owner or the operator"),
            Self::MembershipDeactivated => it(Forbidden, "membership_deactivated")
                .detail("your access to this tenant was deactivated by its administrators"),
            Self::InvalidToken(kind) => it(BadRequest, "invalid_token")
                .title("Invalid token")
                .detail(format!("the {kind} token is not valid")),
            Self::TokenExpired(kind) => it(Gone, "token_expired")
                .title("Token expired")
                .detail(format!("the {kind} link has expired; request a new one")),
            Self::TokenUsed(kind) => {
                it(Conflict, "token_used").detail(format!("the {kind} link was already used"))
            }
            Self::UserNotFound => it(NotFound, "not_found").detail("user not found"),
            Self::SessionNotFound => it(NotFound, "not_found").detail("session not found"),
            Self::WrongPassword => {
                it(Forbidden, "wrong_password").detail("the current password is wrong")
            }
            Self::AlreadyVerified => {
                it(Conflict, "already_verified").detail("the email address is already verified")
            }
            Self::Forbidden(denied) => denied.describe(),
            Self::UserOnly => it(Forbidden, "user_only")
                .detail("this endpoint acts for a signed-in user; an API key cannot call it"),
            Self::MfaNotEnabled => {
                it(Conflict, "mfa_not_enabled").detail("the account has no confirmed second factor")
            }
            Self::MfaAlreadyEnabled => it(Conflict, "mfa_already_enabled")
                .detail("the account has a confirmed second factor; disable it first"),
            Self::InvalidMfaProof => it(Forbidden, "invalid_mfa_proof")
                .detail("the code or password is wrong, or the code was already used"),
            Self::MfaCodeRejected => it(Unauthenticated, "invalid_mfa_code")
                .detail("the code or backup code is wrong, or was already used"),
            Self::InvalidMfaToken => it(Unauthenticated, "invalid_mfa_token").detail(
                "the sign-in challenge is invalid, used, expired or out of attempts; sign in again",
            ),
            Self::ApiKeyNotFound => it(NotFound, "not_found").detail("API key not found"),
            Self::ApiKeyRevoked => {
                it(Unauthenticated, "api_key_revoked").detail("the API key was revoked")
            }
            Self::ApiKeyExpired => {
                it(Unauthenticated, "api_key_expired").detail("the API key has expired")
            }
            Self::ApiKeyNotActive(state) => it(Conflict, "api_key_not_active")
                .detail(format!("the API key is {state}; make a new one")),
            Self::RoleNotGrantable(role) => it(Forbidden, "role_not_grantable")
                .detail(format!("the role {} ranks above your own", role.as_str())),
            Self::NothingInvited(skipped) => {
                let first = skipped.first().map(|(_, r)| *r);
                let code = match first {
                    Some(r) if skipped.iter().all(|(_, s)| *s == r) => r.code(),
                    _ => "invitation_conflict",
                };
                let skipped = skipped
                    .iter()
                    .map(|(email, reason)| {
                        serde_json::json!({ "email": email, "code": reason.code() })
                    })
                    .collect();
                it(Conflict, code)
                    .detail("no address could be invited; see `skipped`")
                    .extension("skipped", serde_json::Value::Array(skipped))
            }
            Self::InvitationNotFound => it(NotFound, "not_found").detail("invitation not found"),
            Self::InvitationNotPending(status) => {
                it(Conflict, "invitation_not_pending").detail(format!("the invitation is {status}"))
            }
            Self::InvitationRevoked => it(Gone, "invitation_revoked")
                .title("Invitation revoked")
                .detail("the invitation was withdrawn; ask for a new one"),
            Self::ResendTooSoon(secs) => it(TooManyRequests, "resend_too_soon")
                .detail("an email for this invitation went out moments ago")
                .retry_after(u64::try_from(*secs).unwrap_or(0)),
            Self::AccountDisabled => it(Forbidden, "account_disabled")
                .detail("the account using this address is disabled"),
            Self::TooManyAttempts(throttled) => throttled.describe(),
            Self::Overloaded => it(Unavailable, "overloaded")
                .detail("too many sign-ins at once; retry shortly")
                .retry_after(1),
            Self::Tenancy(t) => t.describe(),
            Self::Database(db) => db.describe(),
            Self::Unexpected(err) => match err.downcast_ref::<sea_orm::DbErr>() {
                Some(db) => db.describe(),
                None => Described::internal(err.as_ref()),
            },
        }
    }
}
