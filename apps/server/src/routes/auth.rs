//! Sign-up, sign-in, token refresh, sign-out and email verification.

use actix_web::{HttpResponse, post};
use serde::{Deserialize, Serialize};
use tenantry_identity::{Credentials, LoginOutcome, Password, Registration, TokenPair};
use tenantry_kernel::{LocationId, TenantId, ValidationErrors};
use utoipa::ToSchema;

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, Client};
use crate::input::Json;

/// Sign-up: a new user and the tenant they create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The user's email address.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 128
    )]
    pub password: String,
    /// The user's display name.
    #[schema(example = "Ada Lovelace", max_length = 100)]
    pub name: String,
    /// The new tenant's name.
    #[schema(example = "Analytical Engines Ltd", max_length = 100)]
    pub tenant_name: String,
}

/// Sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's email address.
    pub email: String,
    /// The account's password.
    pub password: String,
    /// The tenant to sign in to; required when the account belongs to several.
    pub tenant_id: Option<uuid::Uuid>,
    /// A location of the tenant to act in; the access tokens of this session carry it.
    pub location_id: Option<uuid::Uuid>,
}

/// A refresh token to rotate.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// An email verification token, from the link in the verification email.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The `token` from the link in the email (`…/verify-email#token=…`).
    pub token: String,
}

/// An address to send a password-reset link to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The account's email address.
    #[schema(example = "ada@example.com")]
    pub email: String,
}

/// A new password, with the token from the reset email.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The `token` from the link in the email (`…/reset-password#token=…`).
    pub token: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// A password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password in use now.
    pub current_password: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Tokens for a session.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT (EdDSA) to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque, single-use token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(t: TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
        }
    }
}

/// The account has a second factor: complete the sign-in with `POST /api/v1/auth/mfa/verify`.
#[derive(Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// Single-use token for `POST /api/v1/auth/mfa/verify`; five wrong codes end it.
    pub mfa_token: String,
    /// Seconds the token stays valid.
    #[schema(example = 300)]
    pub expires_in: i64,
}

/// The outcome of a sign-in: tokens, or a second-factor challenge.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    /// Signed in.
    Tokens(TokenResponse),
    /// A second factor is needed.
    MfaRequired(MfaRequiredResponse),
}

impl From<LoginOutcome> for LoginResponse {
    fn from(o: LoginOutcome) -> Self {
        match o {
            LoginOutcome::Tokens(t) => Self::Tokens(t.into()),
            LoginOutcome::MfaRequired {
                mfa_token,
                expires_in,
            } => Self::MfaRequired(MfaRequiredResponse {
                mfa_required: true,
                mfa_token,
                expires_in,
            }),
        }
    }
}

/// A new account, its tenant, and its first tokens.
#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    /// The new user's id.
    pub user_id: uuid::Uuid,
    /// The new tenant's id.
    pub tenant_id: uuid::Uuid,
    /// The new tenant's URL-safe handle.
    pub tenant_slug: String,
    /// Short-lived JWT.
    pub access_token: String,
    /// Opaque, single-use refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// A verified address.
#[derive(Serialize, ToSchema)]
pub struct VerifyEmailResponse {
    /// The user whose address was verified.
    pub user_id: uuid::Uuid,
    /// The address.
    pub email: String,
    /// When it was verified.
    pub verified_at: chrono::DateTime<chrono::Utc>,
}

/// Creates a user, their tenant (which they own) and a session. A verification email is sent
/// in the background.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", operation_id = "register_user",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account and tenant created", body = RegisterResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email already registered (`email_taken`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many sign-ups at once (`overloaded`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/register")]
pub async fn register(
    state: AppState,
    client: Client,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = Registration::parse(&body.email, body.password, &body.name, &body.tenant_name)?;
    let done = state.accounts.register(input, &client.0).await?;
    Ok(HttpResponse::Created().json(RegisterResponse {
        user_id: done.user_id.0,
        tenant_id: done.tenant.id.0,
        tenant_slug: done.tenant.slug,
        access_token: done.tokens.access_token,
        refresh_token: done.tokens.refresh_token,
        token_type: "Bearer",
        expires_in: done.tokens.expires_in,
    }))
}

/// Signs in with email and password. For an account with a second factor the answer is
/// `{mfa_required: true, mfa_token}` instead of tokens; `POST /api/v1/auth/mfa/verify`
/// completes it.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login_user",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in, or a second factor is needed", body = LoginResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown email or wrong password (`invalid_credentials`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a member of the tenant asked for (`not_a_member`), membership deactivated (`membership_deactivated`), tenant suspended (`tenant_suspended`), or not a member of the location asked for (`not_a_location_member`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such location in the tenant", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Several tenants: repeat with `tenant_id` (`tenant_selection_required`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many sign-ins at once (`overloaded`), with Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/login")]
pub async fn login(
    state: AppState,
    client: Client,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = Credentials::parse(
        &body.email,
        body.password,
        body.tenant_id.map(TenantId),
        body.location_id.map(LocationId),
    )?;
    let outcome = state.identity.login(input, &client.0).await?;
    Ok(HttpResponse::Ok().json(LoginResponse::from(outcome)))
}

/// Exchanges a refresh token for new tokens. The presented token stops working; presenting
/// it again revokes the whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", operation_id = "refresh_session",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Invalid, expired or reused refresh token (`invalid_refresh_token`, `refresh_token_reused`, `session_ended`), or a network-bound token from another network (`session_network_changed`, which ends the session)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Membership deactivated (`membership_deactivated`) or tenant suspended (`tenant_suspended`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/refresh")]
pub async fn refresh(
    state: AppState,
    client: Client,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state
        .identity
        .refresh(&body.refresh_token, &client.0)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(tokens)))
}

/// Ends the current session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout_session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/logout")]
pub async fn logout(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    state.identity.logout(&auth.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Confirms an email address with the token from the verification email.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", operation_id = "verify_email",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Address verified", body = VerifyEmailResponse),
        (status = 400, description = "Unknown token (`invalid_token`) or malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Token already used (`token_used`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Token expired (`token_expired`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/verify-email")]
pub async fn verify_email(
    state: AppState,
    client: Client,
    body: Json<VerifyEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let done = state.accounts.verify_email(&body.token, &client.0).await?;
    Ok(HttpResponse::Ok().json(VerifyEmailResponse {
        user_id: done.user_id.0,
        email: done.email,
        verified_at: done.verified_at,
    }))
}

/// The tenant to switch to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchTenantRequest {
    /// A tenant the caller belongs to (see `GET /api/v1/users/me/tenants`).
    pub tenant_id: uuid::Uuid,
    /// A location of that tenant to act in.
    pub location_id: Option<uuid::Uuid>,
}

/// Signs the caller in to another tenant they belong to: a new session there, with its own
/// tokens and the tenant's session lifetime. The current session is left as it is.
#[utoipa::path(post, path = "/api/v1/auth/switch-tenant", tag = "auth", operation_id = "switch_tenant",
    security(("bearer" = [])),
    request_body = SwitchTenantRequest,
    responses(
        (status = 200, description = "Tokens for the other tenant", body = TokenResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a member of that tenant (`not_a_member`), membership deactivated (`membership_deactivated`), tenant suspended (`tenant_suspended`), or not a member of the location (`not_a_location_member`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such location in that tenant", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`tenant_id` missing or not a UUID", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/switch-tenant")]
pub async fn switch_tenant(
    state: AppState,
    auth: Auth,
    body: Json<SwitchTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state
        .identity
        .switch_tenant(
            &auth.0,
            TenantId(body.tenant_id),
            body.location_id.map(LocationId),
        )
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(tokens)))
}

/// Ends every session of the caller, on every device and in every tenant, this one included.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", operation_id = "logout_all_sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out everywhere"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/logout-all")]
pub async fn logout_all(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    state.identity.logout_all(&auth.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the caller's password. Every other session ends; this one stays signed in.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", operation_id = "change_password",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed"),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The current password is wrong (`wrong_password`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "New password too short or too long", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many password checks at once (`overloaded`), with Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/change-password")]
pub async fn change_password(
    state: AppState,
    auth: Auth,
    body: Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = Password::parse("new_password", body.new_password).map_err(ValidationErrors::from)?;
    state
        .accounts
        .change_password(&auth.0, &body.current_password, new)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sends the caller a new verification email (through the job queue).
#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", operation_id = "resend_verification",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A new verification email is on its way"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address is already verified (`already_verified`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/resend-verification")]
pub async fn resend_verification(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    state.accounts.resend_verification(&auth.0).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Sends a password-reset link to the address if an account uses it. The answer is the same
/// either way, so it reveals nothing about which addresses have accounts.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", operation_id = "request_password_reset",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "If an account uses the address, a reset link is on its way"),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an email address", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/forgot-password")]
pub async fn forgot_password(
    state: AppState,
    client: Client,
    body: Json<ForgotPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .accounts
        .request_password_reset(&body.email, &client.0)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Sets a new password with the token from the reset email. The token works once, for one
/// hour; every session of the account ends.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", operation_id = "reset_password",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password set; every session ended"),
        (status = 400, description = "Unknown token (`invalid_token`) or malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Token already used (`token_used`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Token expired (`token_expired`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "New password too short or too long", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many password checks at once (`overloaded`), with Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/auth/reset-password")]
pub async fn reset_password(
    state: AppState,
    client: Client,
    body: Json<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = Password::parse("new_password", body.new_password).map_err(ValidationErrors::from)?;
    state
        .accounts
        .reset_password(&body.token, new, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
