//! How a failure describes itself to whoever answers for it: a small set of kinds (each one
//! HTTP status in the server), a stable code, and what the client is told. Every domain error
//! implements [`DomainError`]; the server renders any of them through one conversion, so a new
//! domain adds no mapping code there.

use serde_json::{Map, Value};

use crate::{AccessDenied, FieldError, Throttled, ValidationErrors};

/// What kind of failure an error is. The server answers each kind with one status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request names something unusable, beyond its fields' syntax (400).
    BadRequest,
    /// No usable credentials: the client must authenticate (401, with a challenge).
    Unauthenticated,
    /// Credentials were presented and refused (401).
    AuthenticationFailed,
    /// Authenticated, but not allowed (403).
    Forbidden,
    /// Missing, or another tenant's (404).
    NotFound,
    /// At odds with the current state (409).
    Conflict,
    /// Existed, and is gone for good (410).
    Gone,
    /// `If-Match` named a version that is no longer current (412).
    StaleVersion,
    /// Fields failed validation (422).
    Invalid,
    /// Too many requests; retry later (429).
    TooManyRequests,
    /// Busy for the moment; retry shortly (503).
    Unavailable,
    /// Nothing the client can fix (500): logged with its cause, never described.
    Internal,
}

impl ErrorKind {
    /// The title a problem of this kind carries unless its error names its own.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "Bad request",
            ErrorKind::Unauthenticated => "Authentication required",
            ErrorKind::AuthenticationFailed => "Authentication failed",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotFound => "Not found",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Gone => "Gone",
            ErrorKind::StaleVersion => "Resource changed",
            ErrorKind::Invalid => "Invalid request",
            ErrorKind::TooManyRequests => "Too many requests",
            ErrorKind::Unavailable => "Service busy",
            ErrorKind::Internal => "Internal server error",
        }
    }
}

/// One failure as its error describes it ([`DomainError::describe`]).
#[derive(Debug)]
pub struct Described<'a> {
    /// Its kind.
    pub kind: ErrorKind,
    /// The stable, machine-readable code.
    pub code: &'static str,
    /// A short summary for people: the kind's unless set.
    pub title: &'static str,
    /// What went wrong in this case.
    pub detail: Option<String>,
    /// The fields that failed validation.
    pub fields: &'a [FieldError],
    /// Members of the problem beyond the standard ones (`tenants`, `skipped`).
    pub extensions: Map<String, Value>,
    /// Seconds after which a retry may succeed.
    pub retry_after: Option<u64>,
    /// The allowance that refused the request, for the rate-limit headers.
    pub throttled: Option<Throttled>,
    /// What to log for an internal or unavailable failure.
    pub cause: Option<&'a (dyn std::error::Error + Send + Sync + 'static)>,
}

impl<'a> Described<'a> {
    /// A failure of `kind` with `code`, its kind's title and nothing else.
    #[must_use]
    pub fn new(kind: ErrorKind, code: &'static str) -> Self {
        Self {
            kind,
            code,
            title: kind.title(),
            detail: None,
            fields: &[],
            extensions: Map::new(),
            retry_after: None,
            throttled: None,
            cause: None,
        }
    }

    /// An internal failure caused by `cause`, which is logged and never shown.
    #[must_use]
    pub fn internal(cause: &'a (dyn std::error::Error + Send + Sync + 'static)) -> Self {
        Self {
            cause: Some(cause),
            ..Self::new(ErrorKind::Internal, "internal_error")
        }
    }

    /// With an explanation of this case.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// With a title of its own.
    #[must_use]
    pub fn title(mut self, title: &'static str) -> Self {
        self.title = title;
        self
    }

    /// With an extension member.
    #[must_use]
    pub fn extension(mut self, name: &str, value: Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// With the seconds after which a retry may succeed.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

/// An error that says what kind of failure it is and what its client is told.
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    /// How this failure is answered.
    fn describe(&self) -> Described<'_>;
}

impl DomainError for ValidationErrors {
    fn describe(&self) -> Described<'_> {
        Described {
            fields: &self.0,
            ..Described::new(ErrorKind::Invalid, "validation_failed")
                .detail(ValidationErrors::summary(self.0.len()))
        }
    }
}

impl DomainError for AccessDenied {
    fn describe(&self) -> Described<'_> {
        Described::new(ErrorKind::Forbidden, "forbidden").detail(self.to_string())
    }
}

impl DomainError for Throttled {
    fn describe(&self) -> Described<'_> {
        Described {
            throttled: Some(*self),
            ..Described::new(ErrorKind::TooManyRequests, "rate_limited")
                .detail(format!(
                    "at most {} requests a minute; retry in {} s",
                    self.limit, self.retry_after_secs
                ))
                .retry_after(self.retry_after_secs)
        }
    }
}

impl DomainError for sea_orm::DbErr {
    /// Busy (no connection in time, SQLite's writer taken) is a 503 to retry; anything else
    /// an internal failure.
    fn describe(&self) -> Described<'_> {
        if crate::db::is_unavailable(self) {
            Described {
                cause: Some(self),
                ..Described::new(ErrorKind::Unavailable, "database_busy")
                    .detail("the database is busy; retry shortly")
                    .retry_after(1)
            }
        } else {
            Described::internal(self)
        }
    }
}
