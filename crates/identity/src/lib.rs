//! Identity: user accounts, passwords, sessions with rotating refresh tokens, email
//! verification, and the access tokens that turn into a [`tenantry_kernel::RequestContext`].
//!
//! Owns the `users`, `sessions`, `refresh_tokens` and `email_verification_tokens` tables.
//! Tenants and memberships belong to `tenantry-tenancy`, reached through its service trait.

pub mod entity;
mod error;
pub mod jwt;
mod model;
pub mod password;
mod service;
mod sessions;

pub use error::{IdentityError, TokenKind};
pub use jwt::{AccessClaims, TokenSigner};
pub use model::{
    Credentials, Email, Me, Password, PersonName, PurgeReport, Registered, Registration,
    SessionInfo, TokenMail, TokenPair, VerifiedEmail,
};
pub use password::{Admission, HashPool, PasswordHasher};
pub use service::{
    IdentityService, IdentitySettings, PASSWORD_RESET_REQUESTED, SeaIdentity, USER_REGISTERED,
    VERIFICATION_REQUESTED,
};
