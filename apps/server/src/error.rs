//! The one place where every error becomes an RFC 9457 problem+json response.
//!
//! Domain errors map to a status and a stable `code`; unexpected ones are logged with their
//! cause chain and answered with a bare 500 carrying only the request id.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use tenantry_identity::IdentityError;
use tenantry_kernel::{FieldError, ValidationErrors};
use tenantry_tenancy::TenancyError;
use utoipa::ToSchema;

use crate::request_id;

/// An RFC 9457 problem document, as every error response carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type: `/problems/{code}`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation_failed")]
    pub problem_type: String,
    /// A short summary for people.
    #[schema(example = "Invalid request")]
    pub title: &'static str,
    /// The HTTP status.
    #[schema(example = 422)]
    pub status: u16,
    /// Stable, machine-readable code.
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    /// What went wrong in this case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level errors (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Tenants to choose from (`tenant_selection_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<TenantChoice>>,
    /// Addresses an invite call skipped, when it skipped them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Vec<crate::routes::invitations::SkippedAddress>>,
    /// The request id, to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field's name.
    pub field: String,
    /// Stable code (`invalid_email`, `too_short`, `required`, `unknown_field`).
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// A tenant a user may sign in to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantChoice {
    /// Tenant id.
    pub id: uuid::Uuid,
    /// Tenant name.
    pub name: String,
}

/// An error on its way to becoming a problem response (boxed: errors travel through every
/// `Result` of the request path, and most of them carry little).
#[derive(Debug)]
pub struct ApiError(Box<Parts>);

#[derive(Debug)]
struct Parts {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: Option<String>,
    errors: Vec<ProblemField>,
    tenants: Option<Vec<TenantChoice>>,
    skipped: Option<Vec<crate::routes::invitations::SkippedAddress>>,
    headers: Vec<(header::HeaderName, String)>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0.status.as_u16(), self.0.code)
    }
}

impl ApiError {
    /// A problem with a status, code and title.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, title: &'static str) -> Self {
        Self(Box::new(Parts {
            status,
            code,
            title,
            detail: None,
            errors: Vec::new(),
            tenants: None,
            skipped: None,
            headers: Vec::new(),
        }))
    }

    /// Adds a case-specific explanation.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.0.headers.push((name, value.into()));
        self
    }

    /// A 422 listing invalid fields.
    #[must_use]
    pub fn validation(errors: Vec<ProblemField>) -> Self {
        let n = errors.len();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Invalid request",
        )
        .detail(if n == 1 {
            "1 field is invalid".to_owned()
        } else {
            format!("{n} fields are invalid")
        });
        e.0.errors = errors;
        e
    }

    /// 401 for a missing or bad bearer token.
    #[must_use]
    pub fn unauthenticated(code: &'static str, detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, "Authentication required")
            .detail(detail)
            .header(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"tenantry\", error=\"invalid_token\"",
            )
    }

    /// 405 for a method the resource lacks, with the ones it has in `Allow`.
    #[must_use]
    pub fn method_not_allowed(method: &actix_web::http::Method, allowed: &[&str]) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        )
        .detail(format!("{method} is not supported here"))
        .header(header::ALLOW, allowed.join(", "))
    }

    /// 404 for a route or resource that does not exist (or is another tenant's).
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found")
    }

    /// A 500 that reveals nothing; the cause is logged here.
    #[must_use]
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "unexpected error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        )
    }
}

#[cfg(test)]
impl ApiError {
    /// The field and code of every field error, for tests.
    pub(crate) fn field_codes(&self) -> Vec<(String, String)> {
        self.0
            .errors
            .iter()
            .map(|e| (e.field.clone(), e.code.clone()))
            .collect()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = Problem {
            problem_type: format!("/problems/{}", self.0.code),
            title: self.0.title,
            status: self.0.status.as_u16(),
            code: self.0.code,
            detail: self.0.detail.clone(),
            errors: self
                .0
                .errors
                .iter()
                .map(|e| ProblemField {
                    field: e.field.clone(),
                    code: e.code.clone(),
                    message: e.message.clone(),
                })
                .collect(),
            tenants: self.0.tenants.clone(),
            skipped: self.0.skipped.clone(),
            request_id: request_id::current(),
        };
        let mut res = HttpResponse::build(self.0.status);
        res.content_type("application/problem+json");
        for (name, value) in &self.0.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                res.insert_header((name.clone(), value));
            }
        }
        res.json(body)
    }
}

impl ApiError {
    /// The problem for a bare error status some component answered with (a static-file
    /// service's 404, a 405), named after the status.
    #[must_use]
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthenticated",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            406 => "not_acceptable",
            408 => "request_timeout",
            411 => "length_required",
            413 => "payload_too_large",
            414 => "uri_too_long",
            415 => "unsupported_media_type",
            431 => "headers_too_large",
            503 => "service_unavailable",
            500..=599 => "internal_error",
            _ => "client_error",
        };
        Self::new(status, code, status.canonical_reason().unwrap_or("Error"))
    }
}

/// Middleware: every error answer is a problem document. Tenantry's own errors already are;
/// this catches what other components answer on their own (a bare 404 from the documentation
/// service), keeping their headers. (Handlers' errors reach it as responses: actix renders
/// them where they arise.)
pub async fn every_error_a_problem(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if res.status().as_u16() < 400 || is_problem {
        return Ok(res.map_into_left_body());
    }
    Ok(as_problem(res).map_into_right_body())
}

fn as_problem<B>(res: ServiceResponse<B>) -> ServiceResponse<BoxBody> {
    let (req, old) = res.into_parts();
    let mut problem = ApiError::from_status(old.status()).error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !problem.headers().contains_key(name)
        {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, problem)
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            code: e.code.to_owned(),
            message: e.message,
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError::validation(e.0.into_iter().map(ProblemField::from).collect())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::database(&e)
    }
}

impl ApiError {
    /// A database failure: 503 with `Retry-After` when the database is only busy (no
    /// connection in time, SQLite's writer taken), else a 500. Every domain error that
    /// carries a database error is rendered through here.
    #[must_use]
    pub fn database(e: &sea_orm::DbErr) -> Self {
        if tenantry_kernel::db::is_unavailable(e) {
            tracing::warn!(error = %e, "database busy; answering 503");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_busy",
                "Service busy",
            )
            .detail("the database is busy; retry shortly")
            .header(header::RETRY_AFTER, "1")
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::NotFound => ApiError::not_found().detail("tenant not found"),
            TenancyError::Forbidden(denied) => forbidden(&denied),
            TenancyError::StaleVersion(_) => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "stale_version",
                "Resource changed",
            )
            .detail("the resource was changed since the version in If-Match; fetch it again"),
            TenancyError::AlreadyMember => {
                ApiError::new(StatusCode::CONFLICT, "already_member", "Conflict")
                    .detail("the user already belongs to the tenant")
            }
            TenancyError::MemberNotFound => ApiError::not_found().detail("member not found"),
            TenancyError::LocationNotFound => ApiError::not_found().detail("location not found"),
            TenancyError::LastOwner => {
                ApiError::new(StatusCode::CONFLICT, "last_owner", "Conflict").detail(
                    "the tenant must keep at least one active owner; make someone else an \
                     owner first",
                )
            }
            TenancyError::RoleNotManageable(role) => {
                ApiError::new(StatusCode::FORBIDDEN, "role_not_grantable", "Forbidden")
                    .detail(format!("the role {} ranks above your own", role.as_str()))
            }
            TenancyError::SelfTarget(action) => {
                ApiError::new(StatusCode::CONFLICT, "cannot_target_self", "Conflict")
                    .detail(format!("you cannot {action} yourself"))
            }
            TenancyError::OwnerOnly(action) => {
                ApiError::new(StatusCode::FORBIDDEN, "owner_only", "Forbidden")
                    .detail(format!("only an owner may {action}"))
            }
            TenancyError::MemberDeactivated => {
                ApiError::new(StatusCode::CONFLICT, "member_deactivated", "Conflict")
                    .detail("the member is deactivated; reactivate them first")
            }
            TenancyError::MemberAlready(state) => {
                ApiError::new(StatusCode::CONFLICT, "member_state_unchanged", "Conflict")
                    .detail(format!("the member is already {state}"))
            }
            TenancyError::SeatLimitReached { limit, used } => {
                ApiError::new(StatusCode::CONFLICT, "seat_limit_reached", "Conflict").detail(
                    format!("the tenant has {limit} seats and {used} active members"),
                )
            }
            TenancyError::NotLocationMember => {
                ApiError::new(StatusCode::FORBIDDEN, "not_a_location_member", "Forbidden")
                    .detail("you are not a member of that location")
            }
            TenancyError::LocationCodeTaken => {
                ApiError::new(StatusCode::CONFLICT, "location_code_taken", "Conflict")
                    .detail("another location of the tenant has this code")
            }
            TenancyError::RoleNotFound => ApiError::not_found().detail("role not found"),
            TenancyError::RoleKeyTaken => {
                ApiError::new(StatusCode::CONFLICT, "role_key_taken", "Conflict")
                    .detail("the tenant has a role with this key")
            }
            TenancyError::SystemRoleImmutable => {
                ApiError::new(StatusCode::CONFLICT, "system_role_immutable", "Conflict")
                    .detail("system roles cannot be changed or deleted; define a custom role")
            }
            TenancyError::RoleLimitReached(limit) => {
                ApiError::new(StatusCode::CONFLICT, "role_limit_reached", "Conflict")
                    .detail(format!("a tenant may define at most {limit} custom roles"))
            }
            TenancyError::PermissionsNotHeld(missing) => {
                let names: Vec<_> = missing.iter().map(|p| p.as_str()).collect();
                ApiError::new(StatusCode::FORBIDDEN, "permission_not_held", "Forbidden").detail(
                    format!(
                        "you cannot hand out permissions you do not hold: {}",
                        names.join(", ")
                    ),
                )
            }
            TenancyError::RoleAlreadyGranted => {
                ApiError::new(StatusCode::CONFLICT, "role_already_granted", "Conflict")
                    .detail("the member holds this role there already")
            }
            TenancyError::GrantNotFound => {
                ApiError::not_found().detail("the member does not hold this role there")
            }
            TenancyError::SystemRoleRequired => {
                ApiError::new(StatusCode::CONFLICT, "system_role_required", "Conflict").detail(
                    "a member keeps one system role tenant-wide; grant another system role to \
                     replace it",
                )
            }
            TenancyError::NotOnLocation => {
                ApiError::new(StatusCode::CONFLICT, "not_on_location", "Conflict")
                    .detail("the member does not work at this location; add them to it first")
            }
            TenancyError::OwnerIsTenantWide => {
                ApiError::new(StatusCode::CONFLICT, "owner_is_tenant_wide", "Conflict")
                    .detail("the owner role is held tenant-wide, never at a location")
            }
            TenancyError::Invalid(v) => v.into(),
            TenancyError::Database(db) => ApiError::database(&db),
        }
    }
}

fn forbidden(denied: &tenantry_kernel::AccessDenied) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(denied.to_string())
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        use IdentityError as E;
        let conflict = |code, detail: &str| {
            ApiError::new(StatusCode::CONFLICT, code, "Conflict").detail(detail)
        };
        match e {
            E::Invalid(v) => v.into(),
            E::EmailTaken => conflict("email_taken", "an account with this email already exists"),
            E::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Authentication failed",
            )
            .detail("invalid email or password"),
            E::InvalidAccessToken => {
                ApiError::unauthenticated("invalid_token", "the access token is invalid or expired")
            }
            E::SessionEnded => {
                ApiError::unauthenticated("session_ended", "the session has ended; sign in again")
            }
            E::InvalidRefreshToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_refresh_token",
                "Authentication failed",
            )
            .detail("the refresh token is invalid or expired"),
            E::RefreshTokenReused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "Authentication failed",
            )
            .detail("this refresh token was already used; the session has been revoked"),
            E::TenantSelectionRequired(tenants) => {
                let mut err = conflict(
                    "tenant_selection_required",
                    "the account belongs to several tenants; repeat with tenant_id",
                );
                err.0.tenants = Some(
                    tenants
                        .into_iter()
                        .map(|(id, name)| TenantChoice { id: id.0, name })
                        .collect(),
                );
                err
            }
            E::NotAMember => ApiError::new(StatusCode::FORBIDDEN, "not_a_member", "Forbidden")
                .detail("not a member of that tenant"),
            E::NetworkChanged => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_network_changed",
                "Authentication failed",
            )
            .detail(
                "this session's refresh tokens work only from the network it was opened from; \
                 the session has ended, sign in again",
            ),
            E::TenantSuspended => {
                ApiError::new(StatusCode::FORBIDDEN, "tenant_suspended", "Forbidden")
                    .detail("the tenant is suspended; contact its owner or the operator")
            }
            E::MembershipDeactivated => {
                ApiError::new(StatusCode::FORBIDDEN, "membership_deactivated", "Forbidden")
                    .detail("your access to this tenant was deactivated by its administrators")
            }
            E::InvalidToken(kind) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_token", "Invalid token")
                    .detail(format!("the {kind} token is not valid"))
            }
            E::TokenExpired(kind) => {
                ApiError::new(StatusCode::GONE, "token_expired", "Token expired")
                    .detail(format!("the {kind} link has expired; request a new one"))
            }
            E::TokenUsed(kind) => {
                conflict("token_used", &format!("the {kind} link was already used"))
            }
            E::UserNotFound => ApiError::not_found().detail("user not found"),
            E::SessionNotFound => ApiError::not_found().detail("session not found"),
            E::WrongPassword => ApiError::new(StatusCode::FORBIDDEN, "wrong_password", "Forbidden")
                .detail("the current password is wrong"),
            E::AlreadyVerified => {
                conflict("already_verified", "the email address is already verified")
            }
            E::Forbidden(denied) => forbidden(&denied),
            E::UserOnly => ApiError::new(StatusCode::FORBIDDEN, "user_only", "Forbidden")
                .detail("this endpoint acts for a signed-in user; an API key cannot call it"),
            E::MfaNotEnabled => conflict(
                "mfa_not_enabled",
                "the account has no confirmed second factor",
            ),
            E::MfaAlreadyEnabled => conflict(
                "mfa_already_enabled",
                "the account has a confirmed second factor; disable it first",
            ),
            E::InvalidMfaProof => {
                ApiError::new(StatusCode::FORBIDDEN, "invalid_mfa_proof", "Forbidden")
                    .detail("the code or password is wrong, or the code was already used")
            }
            E::MfaCodeRejected => ApiError::unauthenticated(
                "invalid_mfa_code",
                "the code or backup code is wrong, or was already used",
            ),
            E::InvalidMfaToken => ApiError::unauthenticated(
                "invalid_mfa_token",
                "the sign-in challenge is invalid, used, expired or out of attempts; sign in again",
            ),
            E::ApiKeyNotFound => ApiError::not_found().detail("API key not found"),
            E::ApiKeyRevoked => {
                ApiError::unauthenticated("api_key_revoked", "the API key was revoked")
            }
            E::ApiKeyExpired => {
                ApiError::unauthenticated("api_key_expired", "the API key has expired")
            }
            E::ApiKeyNotActive(state) => {
                ApiError::new(StatusCode::CONFLICT, "api_key_not_active", "Conflict")
                    .detail(format!("the API key is {state}; make a new one"))
            }
            E::RoleNotGrantable(role) => {
                ApiError::new(StatusCode::FORBIDDEN, "role_not_grantable", "Forbidden")
                    .detail(format!("the role {} ranks above your own", role.as_str()))
            }
            E::SeatLimitReached {
                limit,
                used,
                requested,
            } => conflict(
                "seat_limit_reached",
                &format!(
                    "the tenant has {limit} seats; {used} are taken by members and pending \
                     invitations, and {requested} more were asked for"
                ),
            ),
            E::NothingInvited(skipped) => {
                let first = skipped.first().map(|(_, r)| *r);
                let code = match first {
                    Some(r) if skipped.iter().all(|(_, s)| *s == r) => r.code(),
                    _ => "invitation_conflict",
                };
                let mut err = conflict(code, "no address could be invited; see `skipped`");
                err.0.skipped = Some(
                    skipped
                        .into_iter()
                        .map(
                            |(email, reason)| crate::routes::invitations::SkippedAddress {
                                email,
                                code: reason.code(),
                            },
                        )
                        .collect(),
                );
                err
            }
            E::InvitationNotFound => ApiError::not_found().detail("invitation not found"),
            E::InvitationNotPending(status) => conflict(
                "invitation_not_pending",
                &format!("the invitation is {status}"),
            ),
            E::InvitationRevoked => {
                ApiError::new(StatusCode::GONE, "invitation_revoked", "Invitation revoked")
                    .detail("the invitation was withdrawn; ask for a new one")
            }
            E::ResendTooSoon(secs) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "resend_too_soon",
                "Too many requests",
            )
            .detail("an email for this invitation went out moments ago")
            .header(header::RETRY_AFTER, secs.to_string()),
            E::AccountDisabled => {
                ApiError::new(StatusCode::FORBIDDEN, "account_disabled", "Forbidden")
                    .detail("the account using this address is disabled")
            }
            E::AlreadyMember => conflict(
                "already_member",
                "the account already belongs to the tenant",
            ),
            E::TooManyAttempts(t) => {
                crate::ratelimit::refused(tenantry_platform::ratelimit::Decision {
                    allowed: false,
                    limit: t.limit,
                    remaining: 0,
                    reset_secs: t.reset_secs,
                    retry_after_secs: t.retry_after_secs,
                })
            }
            E::Overloaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Service busy",
            )
            .detail("too many sign-ins at once; retry shortly")
            .header(header::RETRY_AFTER, "1"),
            E::Tenancy(t) => t.into(),
            E::Database(db) => ApiError::database(&db),
            E::Unexpected(err) => match err.downcast_ref::<sea_orm::DbErr>() {
                Some(db) => ApiError::database(db),
                None => ApiError::internal(err.as_ref()),
            },
        }
    }
}
