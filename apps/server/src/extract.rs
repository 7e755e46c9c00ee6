//! Extractors: the authenticated [`RequestContext`], the caller's [`ClientMeta`], `If-Match`
//! and pages of lists. JSON bodies and query strings are read by [`crate::input`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use serde::Deserialize;
use tenantry_kernel::{ClientMeta, LocationId, PageRequest, RequestContext, ValidationErrors};
use tenantry_platform::Platform;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::request_id::RequestId;

/// Where the request came from.
pub struct Client(pub ClientMeta);

/// The client's address: the TCP peer, or behind a trusted proxy the address it forwarded.
#[must_use]
pub fn client_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    Some(
        match req.app_data::<web::Data<crate::client_ip::TrustedProxies>>() {
            Some(proxies) => proxies.client(peer, forwarded),
            None => peer,
        },
    )
}

fn client_meta(req: &HttpRequest) -> ClientMeta {
    ClientMeta {
        ip: client_ip(req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}

impl FromRequest for Client {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Client(client_meta(req))))
    }
}

/// The authenticated caller: a bearer access token turned into a [`RequestContext`]. A
/// `X-Location-Id` header chooses the location to act in, over the one the token names.
pub struct Auth(pub RequestContext);

/// A context a middleware authenticated already (see [`crate::idempotency`]); the handler's
/// [`Auth`] takes it instead of authenticating the request a second time.
#[derive(Clone)]
pub(crate) struct Authenticated(pub(crate) RequestContext);

/// The header that chooses a location to act in.
pub const LOCATION_HEADER: &str = "x-location-id";

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(done) = req.extensions().get::<Authenticated>() {
            let ctx = done.0.clone();
            return Box::pin(async move { Ok(Auth(ctx)) });
        }
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned());
        let platform = req
            .app_data::<web::Data<Arc<Platform>>>()
            .map(|p| Arc::clone(p));
        let client = client_meta(req);
        let path = req.path().to_owned();
        // `Some(None)`: the header is there but names no location.
        let location = req.headers().get(LOCATION_HEADER).map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<uuid::Uuid>().ok())
                .map(LocationId)
        });
        Box::pin(async move {
            let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
                ApiError::unauthenticated(
                    "missing_token",
                    "send an access token: Authorization: Bearer <token>",
                )
            })?;
            let platform = platform
                .ok_or_else(|| ApiError::internal(&std::io::Error::other("platform missing")))?;
            let location = match location {
                None => None,
                Some(Some(id)) => Some(id),
                Some(None) => {
                    return Err(ApiError::new(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        "invalid_location_header",
                        "Malformed header",
                    )
                    .detail("X-Location-Id must be a location id"));
                }
            };
            let ctx = platform
                .identity
                .authenticate(&token, client, location)
                .await?;
            if ctx.enrollment_only && !enrollment_may_call(&path) {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::FORBIDDEN,
                    "mfa_enrollment_required",
                    "Second factor required",
                )
                .detail(
                    "the tenant requires two-factor authentication: enroll a factor at \
                     /api/v1/users/me/mfa/totp and confirm it; this session can do nothing else",
                ));
            }
            crate::ratelimit::gate_api(&platform, &ctx).await?;
            Ok(Auth(ctx))
        })
    }
}

/// What a session limited to enrolling a second factor may call: who it is, the factor
/// endpoints, and signing out.
fn enrollment_may_call(path: &str) -> bool {
    path == "/api/v1/users/me"
        || path == "/api/v1/users/me/mfa"
        || path.starts_with("/api/v1/users/me/mfa/")
        || path == "/api/v1/auth/logout"
}

/// The version named by `If-Match`, if the header is present (`*` means any).
pub struct IfMatch(pub Option<i32>);

/// What `If-Match` takes: `*`, or one entity tag as this API sends them (`"3"`, or weak
/// `W/"3"`), or nothing (which matches no version). The API document states it as this
/// pattern.
pub const IF_MATCH_PATTERN: &str = r#"^(?:\*|(?:W/)?"[0-9]{1,9}")?$"#;

/// A version no resource has: an empty `If-Match` is an empty list of entity tags (RFC 9110
/// §13.1.1), which no version matches, so the precondition fails (412).
const NO_VERSION: i32 = i32::MIN;

/// The version an `If-Match` value names: `Ok(None)` for `*`.
fn parse_if_match(text: &str) -> Result<Option<i32>, ()> {
    if text == "*" {
        return Ok(None);
    }
    if text.is_empty() {
        return Ok(Some(NO_VERSION));
    }
    let digits = text
        .strip_prefix("W/")
        .unwrap_or(text)
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|d| (1..=9).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(())?;
    digits.parse().map(Some).map_err(|_| ())
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            // A value that is not visible ASCII is no entity tag (and not an empty one).
            Some(v) => v
                .to_str()
                .map_err(|_| ())
                .and_then(|text| parse_if_match(text.trim()))
                .map(IfMatch)
                .map_err(|()| {
                    ApiError::new(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        "invalid_if_match",
                        "Malformed header",
                    )
                    .detail("If-Match must be *, or an ETag this API returned, such as \"3\"")
                }),
        };
        std::future::ready(parsed)
    }
}

/// The `ETag` for a resource version.
#[must_use]
pub fn etag(version: i32) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// For `#[serde(default, deserialize_with = "crate::extract::nullable")]` on an
/// `Option<Option<String>>`: `Some(None)` for an explicit `null`, `None` for an absent field.
pub fn nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Which page of a list: `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The validated page request; a bad limit or cursor is a 422 naming it.
    pub fn request(&self) -> Result<PageRequest, ValidationErrors> {
        PageRequest::parse(self.limit, self.cursor.as_deref()).map_err(ValidationErrors)
    }
}

/// Path settings: a path segment that cannot be an id names nothing, so it is a 404 — unless
/// the path names another resource that lacks the method (`PATCH /users/me` reaches the
/// handler of `PATCH /users/{id}`), which is a 405 with `Allow`.
#[must_use]
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err, req| {
        let allowed = crate::openapi::allowed_methods(req.path());
        if allowed.is_empty() || allowed.contains(&req.method().as_str()) {
            ApiError::not_found().into()
        } else {
            ApiError::method_not_allowed(req.method(), &allowed).into()
        }
    })
}
