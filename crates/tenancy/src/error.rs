//! What tenancy commands can fail with.

use tenantry_kernel::{AccessDenied, ValidationErrors};

/// A tenancy command failed.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// The tenant does not exist, or is not the caller's.
    #[error("tenant not found")]
    NotFound,
    /// The caller lacks a permission.
    #[error(transparent)]
    Forbidden(#[from] AccessDenied),
    /// `If-Match` named a version that is no longer current.
    #[error("the tenant was changed since version {0}")]
    StaleVersion(i32),
    /// The user already belongs to the tenant.
    #[error("already a member of the tenant")]
    AlreadyMember,
    /// The input did not parse.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
}
