//! Rate limits at the HTTP edge: the tenant API per principal, and the headers of every
//! limit a request met. (The credential limit is counted where secrets are checked, in the
//! identity service.) Every limited answer carries `RateLimit-Limit`, `RateLimit-Remaining`
//! and `RateLimit-Reset`; a refusal is 429 with `Retry-After`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tenantry_kernel::{Principal, RequestContext, Throttled};
use tenantry_platform::Platform;
use tenantry_platform::ratelimit::{Decision, record, track};

use crate::error::ApiError;

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

pub(crate) fn headers(d: Decision) -> [(HeaderName, String); 3] {
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
        refused(d)
    }
}

/// The 429 for a refused decision, with `Retry-After` and the `RateLimit-*` headers: the
/// same problem as a refused credential attempt ([`Throttled`]; a refusal has none left).
pub fn refused(d: Decision) -> ApiError {
    ApiError::from(Throttled {
        limit: d.limit,
        retry_after_secs: d.retry_after_secs,
        reset_secs: d.reset_secs,
    })
}

/// Counts an authenticated request against its principal's allowance in the tenant: each
/// member's sessions together, each API key on its own.
pub async fn gate_api(platform: &Platform, ctx: &RequestContext) -> Result<(), Limited> {
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
    record(d);
    if d.allowed { Ok(()) } else { Err(Limited(d)) }
}

/// Puts on a response the `RateLimit-*` headers of the tightest limit its request met,
/// wherever it met it (the tenant API here, a credential check in a service).
pub async fn headers_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (res, applied) = track(next.call(req)).await;
    let mut res = res?;
    if let Some(d) = applied {
        for (name, value) in headers(d) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(name, v);
            }
        }
    }
    Ok(res)
}
