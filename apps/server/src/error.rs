//! The one place where every error becomes an RFC 9457 problem+json response.
//!
//! Every domain error describes itself ([`DomainError`]: a kind, a stable `code`, its detail
//! and extension members); one conversion turns any of them into a problem, the kind deciding
//! the status. Unexpected ones are logged with their cause chain and answered with a bare 500
//! carrying only the request id.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use tenantry_kernel::{Described, DomainError, ErrorKind, FieldError, ValidationErrors};
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
    /// The request id, to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Members of this problem type beyond the standard ones: the tenants to choose from
    /// (`tenant_selection_required`: `tenants`, each `id` and `name`), the addresses an
    /// invite call skipped when it skipped them all (`skipped`, each `email` and `code`).
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extensions: Map<String, Value>,
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
    extensions: Map<String, Value>,
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
            extensions: Map::new(),
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
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            ErrorKind::Invalid.title(),
        )
        .detail(ValidationErrors::summary(errors.len()));
        e.0.errors = errors;
        e
    }

    /// 401 for a missing or bad bearer token.
    #[must_use]
    pub fn unauthenticated(code: &'static str, detail: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            code,
            ErrorKind::Unauthenticated.title(),
        )
        .detail(detail)
        .header(header::WWW_AUTHENTICATE, CHALLENGE)
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
        tracing::error!(error = %chain(cause), "unexpected error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        )
    }

    /// The problem a failure describes: its kind's status (401s with a challenge where no
    /// usable credentials came), its code, title, detail, fields and extension members, and
    /// `Retry-After` and the rate-limit headers where it has them. An internal failure's cause
    /// is logged, an unavailable one's too, and neither is shown.
    #[must_use]
    pub fn described(d: Described<'_>) -> Self {
        if d.kind == ErrorKind::Internal {
            return match d.cause {
                Some(cause) => Self::internal(cause),
                None => Self::internal(&std::io::Error::other(d.code)),
            };
        }
        if let (ErrorKind::Unavailable, Some(cause)) = (d.kind, d.cause) {
            tracing::warn!(error = %chain(cause), code = d.code, "unavailable; answering 503");
        }
        let mut e = Self::new(status_of(d.kind), d.code, d.title);
        e.0.detail = d.detail;
        e.0.errors = d.fields.iter().cloned().map(ProblemField::from).collect();
        e.0.extensions = d.extensions;
        if d.kind == ErrorKind::Unauthenticated {
            e = e.header(header::WWW_AUTHENTICATE, CHALLENGE);
        }
        if let Some(secs) = d.retry_after {
            e = e.header(header::RETRY_AFTER, secs.to_string());
        }
        if let Some(t) = d.throttled {
            for (name, value) in crate::ratelimit::headers(tenantry_platform::ratelimit::Decision {
                allowed: false,
                limit: t.limit,
                remaining: 0,
                reset_secs: t.reset_secs,
                retry_after_secs: t.retry_after_secs,
            }) {
                e = e.header(name, value);
            }
        }
        e
    }
}

/// The challenge a 401 for missing or unusable credentials carries.
const CHALLENGE: &str = "Bearer realm=\"tenantry\", error=\"invalid_token\"";

/// The status every failure of `kind` is answered with.
fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated | ErrorKind::AuthenticationFailed => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::StaleVersion => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `cause` and its sources, joined by colons.
fn chain(cause: &dyn std::error::Error) -> String {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

/// Any domain error, answered as it describes itself.
impl<E: DomainError> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self::described(e.describe())
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
            request_id: request_id::current(),
            extensions: self.0.extensions.clone(),
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

impl ApiError {
    /// A database failure: 503 with `Retry-After` when the database is only busy (no
    /// connection in time, SQLite's writer taken), else a 500.
    #[must_use]
    pub fn database(e: &sea_orm::DbErr) -> Self {
        Self::described(e.describe())
    }
}

#[cfg(test)]
mod tests;
