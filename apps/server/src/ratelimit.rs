//! Rate limits at the HTTP edge: sign-in and other credential endpoints per client address
//! and per account, the tenant API per principal. Every limited answer carries
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; a refusal is 429 with
//! `Retry-After`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use tenantry_kernel::crypto::token_hash;
use tenantry_kernel::{Principal, RequestContext};
use tenantry_platform::Platform;
use tenantry_platform::ratelimit::Decision;

use crate::error::ApiError;

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The decision a request was let through on, for the response's headers.
#[derive(Clone, Copy, Debug)]
struct Applied(Decision);

fn headers(d: Decision) -> [(HeaderName, String); 3] {
    [
        (LIMIT, d.limit.to_string()),
        (REMAINING, d.remaining.to_string()),
        (RESET, d.reset_secs.to_string()),
    ]
}

/// A request over its allowance; it becomes a 429 problem.
#[derive(Clone, Copy, Debug)]
pub struct Limited(Decision);

impl From<Limited> for ApiError {
    fn from(Limited(d): Limited) -> Self {
        let mut e = ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        )
        .detail(format!(
            "at most {} requests a minute; retry in {} s",
            d.limit, d.retry_after_secs
        ))
        .header(RETRY_AFTER, d.retry_after_secs.to_string());
        for (name, value) in headers(d) {
            e = e.header(name, value);
        }
        e
    }
}

fn settle(req: &HttpRequest, d: Decision) -> Result<(), Limited> {
    if d.allowed {
        req.extensions_mut().insert(Applied(d));
        Ok(())
    } else {
        Err(Limited(d))
    }
}

/// Counts a request to the credential endpoint `endpoint` against the client's address and,
/// when the request names one, the account (an address, a token); refuses it with 429 once
/// either has used its allowance for the minute.
pub async fn gate_credentials(
    platform: &Platform,
    req: &HttpRequest,
    endpoint: &str,
    account: Option<&str>,
) -> Result<(), Limited> {
    let per_minute = platform.settings.auth_requests_per_minute;
    let ip =
        crate::extract::client_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let mut d = platform
        .limits
        .hit(&format!("{endpoint}:ip:{ip}"), per_minute)
        .await;
    if let Some(account) = account {
        // Hashed, so raw addresses and tokens never sit in the limiter's store.
        let key = token_hash(&account.trim().to_lowercase());
        let by_account = platform
            .limits
            .hit(&format!("{endpoint}:account:{key}"), per_minute)
            .await;
        d = d.tighter(by_account);
    }
    settle(req, d)
}

/// Counts an authenticated request against its principal's allowance in the tenant: each
/// member's sessions together, each API key on its own.
pub async fn gate_api(
    platform: &Platform,
    req: &HttpRequest,
    ctx: &RequestContext,
) -> Result<(), Limited> {
    let key = match &ctx.principal {
        Principal::User { user_id, .. } => format!("api:{}:user:{user_id}", ctx.tenant_id),
        Principal::ApiKey { key_id } => format!("api:{}:key:{key_id}", ctx.tenant_id),
        Principal::System { .. } => return Ok(()),
    };
    let per_minute = match platform.allowances.cached(ctx.tenant_id) {
        Some(n) => n,
        None => match platform.tenancy.settings_of(ctx.tenant_id).await {
            Ok(settings) => {
                let n = settings.limits.api_requests_per_minute;
                platform.allowances.remember(ctx.tenant_id, n);
                n
            }
            Err(e) => {
                // The limit is not worth failing the request over; the default applies.
                tracing::warn!(error = %e, "tenant allowance unreadable; using the default");
                tenantry_tenancy::DEFAULT_API_REQUESTS_PER_MINUTE
            }
        },
    };
    let d = platform.limits.hit(&key, per_minute).await;
    settle(req, d)
}

/// Puts the `RateLimit-*` headers of the decision a request passed on its response.
pub async fn headers_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let applied = res.request().extensions().get::<Applied>().copied();
    if let Some(Applied(d)) = applied {
        for (name, value) in headers(d) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(name, v);
            }
        }
    }
    Ok(res)
}
