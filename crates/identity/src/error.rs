//! What identity commands can fail with. The server maps each variant, in one place, to a
//! problem+json status and code.

use tenantry_kernel::{AccessDenied, Role, TenantId, ValidationErrors};
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
    /// Inviting would take the tenant past its seat limit.
    #[error("seat limit {limit} reached: {used} in use, {requested} requested")]
    SeatLimitReached {
        /// The limit.
        limit: u32,
        /// Members plus pending invitations.
        used: u64,
        /// Seats the call asked for.
        requested: u64,
    },
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
    /// The user already belongs to the tenant.
    #[error("already a member of the tenant")]
    AlreadyMember,
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
