//! Identity: user accounts, passwords, sessions with rotating refresh tokens, email
//! verification, and the access tokens that turn into a [`tenantry_kernel::RequestContext`].
//!
//! Owns the `users`, `sessions`, `refresh_tokens`, `email_verification_tokens`,
//! `password_reset_tokens`, `invitations`, `invitation_emails`, `api_keys`, `totp_factors`,
//! `mfa_backup_codes` and `mfa_challenges` tables.
//! Tenants and memberships belong to `tenantry-tenancy`, reached through its service trait.

mod accounts;
mod api_keys;
pub mod entity;
mod error;
mod invitations;
pub mod jwt;
mod mfa;
mod model;
pub mod password;
mod service;
pub mod sessions;
mod signin;
mod upkeep;

pub use accounts::AccountService;
pub use api_keys::{
    ApiKey, ApiKeyService, ApiKeyUpdate, CreatedApiKey, KEY_PREFIX, MAX_LIFETIME_DAYS, NewApiKey,
    split_key,
};
pub use error::{IdentityError, TokenKind};
pub use invitations::{
    Accepted, EmailDelivery, INVITATION_EMAIL_QUEUED, Invitation, InvitationCleanup,
    InvitationDelivery, InvitationMail, InvitationPreview, InvitationService, InvitationStatus,
    InviteOutcome, MAX_BATCH, MAX_EMAIL_ATTEMPTS, MESSAGE, NewInvitations, RESEND_COOLDOWN,
    RETRY_DELAYS, SkipReason,
};
pub use jwt::{AccessClaims, TokenSigner};
pub use mfa::{
    BACKUP_CODES, CHALLENGE_ATTEMPTS, LoginOutcome, MfaService, MfaStatus, Proof, SecondFactor,
    TotpEnrollment,
};
pub use model::{
    Credentials, EMAIL_LOCAL_PART_PATTERN, EMAIL_PATTERN, Email, Me, Password, PersonName,
    PurgeReport, Registered, Registration, SessionInfo, TokenMail, TokenPair, VerifiedEmail,
};
pub use password::{Admission, HashPool, PasswordHasher};
pub use service::{
    IdentitySettings, PASSWORD_RESET_REQUESTED, SeaIdentity, USER_REGISTERED,
    VERIFICATION_REQUESTED,
};
pub use sessions::MemberSessions;
pub use signin::IdentityService;
pub use upkeep::AccountUpkeep;
