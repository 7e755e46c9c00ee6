//! Two-factor authentication: the signed-in account's TOTP factor and backup codes under
//! `/api/v1/users/me/mfa`, and `POST /api/v1/auth/mfa/verify`, which completes a sign-in.

use actix_web::{HttpResponse, get, post};
use serde::{Deserialize, Serialize};
use tenantry_identity::{Proof, SecondFactor};
use tenantry_kernel::{FieldError, ValidationErrors};
use utoipa::ToSchema;

use super::AppState;
use super::auth::TokenResponse;
use crate::error::ApiError;
use crate::extract::{Auth, Client};
use crate::input::Json;

/// The account's TOTP factor.
#[derive(Serialize, ToSchema)]
pub struct TotpStatus {
    /// Whether a confirmed factor guards sign-in.
    pub enabled: bool,
    /// Whether an enrollment awaits its first code.
    pub pending: bool,
    /// When it was confirmed.
    pub confirmed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The account's second factors.
#[derive(Serialize, ToSchema)]
pub struct MfaStatusResponse {
    /// The TOTP factor.
    pub totp: TotpStatus,
    /// Unused backup codes left.
    pub backup_codes_remaining: u64,
}

/// The signed-in account's second factors.
#[utoipa::path(get, path = "/api/v1/users/me/mfa", tag = "users", operation_id = "get_my_mfa",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account's second factors", body = MfaStatusResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a user's token (`user_only`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/me/mfa")]
pub async fn status(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    let s = state.mfa.mfa_status(&auth.0).await?;
    Ok(HttpResponse::Ok().json(MfaStatusResponse {
        totp: TotpStatus {
            enabled: s.totp_confirmed_at.is_some(),
            pending: s.totp_pending,
            confirmed_at: s.totp_confirmed_at,
        },
        backup_codes_remaining: s.backup_codes_remaining,
    }))
}

/// A TOTP secret to put into an authenticator.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrollmentResponse {
    /// The secret, base32, for typing in.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    /// The same as an `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

/// Starts enrolling a TOTP factor (RFC 6238: SHA-1, 6 digits, 30 s). Until it is confirmed
/// with a code, sign-in does not ask for it; enrolling again replaces an unconfirmed secret.
#[utoipa::path(post, path = "/api/v1/users/me/mfa/totp", tag = "users", operation_id = "enroll_totp",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Enrolled; confirm with a code", body = TotpEnrollmentResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a user's token (`user_only`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A confirmed factor exists (`mfa_already_enabled`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/me/mfa/totp")]
pub async fn enroll(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    let e = state.mfa.enroll_totp(&auth.0).await?;
    Ok(HttpResponse::Created().json(TotpEnrollmentResponse {
        secret: e.secret,
        otpauth_uri: e.otpauth_uri,
    }))
}

/// A code from the authenticator.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    /// Six digits.
    #[schema(example = "492039")]
    pub code: String,
}

/// Single-use backup codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct BackupCodesResponse {
    /// Ten codes; each signs in once in place of a TOTP code. Store them now.
    pub backup_codes: Vec<String>,
}

/// Confirms the enrolled factor with a current code and answers ten backup codes. From now
/// on sign-in asks for a code. A session limited to enrollment becomes a full one.
#[utoipa::path(post, path = "/api/v1/users/me/mfa/totp/confirm", tag = "users", operation_id = "confirm_totp",
    security(("bearer" = [])),
    request_body = ConfirmTotpRequest,
    responses(
        (status = 200, description = "Confirmed", body = BackupCodesResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong code (`invalid_mfa_proof`), or not a user's token (`user_only`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing enrolled (`mfa_not_enabled`) or already confirmed (`mfa_already_enabled`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/me/mfa/totp/confirm")]
pub async fn confirm(
    state: AppState,
    auth: Auth,
    body: Json<ConfirmTotpRequest>,
) -> Result<HttpResponse, ApiError> {
    let codes = state.mfa.confirm_totp(&auth.0, &body.code).await?;
    Ok(HttpResponse::Ok().json(BackupCodesResponse {
        backup_codes: codes,
    }))
}

/// Proof that the account holder is present: a current code or the password, one of them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// A current TOTP code.
    pub code: Option<String>,
    /// The account's password.
    pub password: Option<String>,
}

impl ProofRequest {
    fn proof(self) -> Result<Proof, ValidationErrors> {
        match (self.code, self.password) {
            (Some(code), None) => Ok(Proof::Code(code)),
            (None, Some(password)) => Ok(Proof::Password(password)),
            _ => Err(ValidationErrors(vec![FieldError::new(
                "code",
                "one_of",
                "send either code or password",
            )])),
        }
    }
}

/// Turns the TOTP factor off and deletes the backup codes; needs a current code or the
/// password.
#[utoipa::path(post, path = "/api/v1/users/me/mfa/totp/disable", tag = "users", operation_id = "disable_totp",
    security(("bearer" = [])),
    request_body = ProofRequest,
    responses(
        (status = 204, description = "Disabled"),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong code or password (`invalid_mfa_proof`), or not a user's token (`user_only`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No confirmed factor (`mfa_not_enabled`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of `code` and `password`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/me/mfa/totp/disable")]
pub async fn disable(
    state: AppState,
    auth: Auth,
    body: Json<ProofRequest>,
) -> Result<HttpResponse, ApiError> {
    let proof = body.into_inner().proof()?;
    state.mfa.disable_totp(&auth.0, proof).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the backup codes; the old ones stop working. Needs a current code or the
/// password.
#[utoipa::path(post, path = "/api/v1/users/me/mfa/backup-codes", tag = "users", operation_id = "regenerate_backup_codes",
    security(("bearer" = [])),
    request_body = ProofRequest,
    responses(
        (status = 200, description = "New codes", body = BackupCodesResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong code or password (`invalid_mfa_proof`), or not a user's token (`user_only`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No confirmed factor (`mfa_not_enabled`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of `code` and `password`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/me/mfa/backup-codes")]
pub async fn regenerate(
    state: AppState,
    auth: Auth,
    body: Json<ProofRequest>,
) -> Result<HttpResponse, ApiError> {
    let proof = body.into_inner().proof()?;
    let codes = state.mfa.regenerate_backup_codes(&auth.0, proof).await?;
    Ok(HttpResponse::Ok().json(BackupCodesResponse {
        backup_codes: codes,
    }))
}

/// The second step of a sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyMfaRequest {
    /// The `mfa_token` the login answered.
    pub mfa_token: String,
    /// A current TOTP code…
    #[schema(example = "492039")]
    pub code: Option<String>,
    /// …or an unused backup code.
    pub backup_code: Option<String>,
}

/// Completes a sign-in with a TOTP code (±30 s of clock drift; a code used once is refused)
/// or a backup code (each works once).
#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "auth", operation_id = "verify_mfa",
    request_body = VerifyMfaRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong or used code (`invalid_mfa_code`), or an unknown, used, expired or exhausted challenge (`invalid_mfa_token`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of `code` and `backup_code`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/mfa/verify")]
pub async fn verify(
    state: AppState,
    client: Client,
    body: Json<VerifyMfaRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let factor = match (body.code, body.backup_code) {
        (Some(code), None) => SecondFactor::Code(code),
        (None, Some(code)) => SecondFactor::BackupCode(code),
        _ => {
            return Err(ValidationErrors(vec![FieldError::new(
                "code",
                "one_of",
                "send either code or backup_code",
            )])
            .into());
        }
    };
    let tokens = state
        .mfa
        .verify_mfa(&body.mfa_token, factor, &client.0)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(tokens)))
}
