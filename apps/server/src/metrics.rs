//! HTTP metrics and `GET /metrics`.
//!
//! Every answer is counted by route template (`/api/v1/invitations/{id}`, never the path a
//! client sent, so the series stay few), method and status, and timed. `/metrics` renders the
//! process's series (`tenantry_platform::metrics`) for a scraper that presents the configured
//! `metrics_token`; without one configured the route does not exist and requests are not
//! counted.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use tenantry_kernel::crypto::constant_time_eq;
use tenantry_platform::Platform;
use tenantry_platform::metrics::{HTTP_DURATION, HTTP_REQUESTS};

use crate::error::ApiError;

/// Counts and times every answer (the outermost middleware, so error rendering is inside).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let platform = req
        .app_data::<web::Data<Arc<Platform>>>()
        .map(|p| Arc::clone(p));
    let res = next.call(req).await?;
    let Some(platform) = platform else {
        return Ok(res);
    };
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    platform.metrics.record(|| {
        metrics::histogram!(HTTP_DURATION, "route" => route.clone(), "method" => method.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status)
            .increment(1);
    });
    Ok(res)
}

/// `GET /metrics`: the Prometheus text exposition, for the bearer of `metrics_token`.
pub async fn endpoint(
    req: HttpRequest,
    platform: web::Data<Arc<Platform>>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = &platform.settings.metrics_token else {
        return Err(ApiError::not_found());
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), token.expose_secret().as_bytes()) {
        return Err(ApiError::unauthenticated(
            "invalid_token",
            "send the metrics token: Authorization: Bearer <metrics_token>",
        ));
    }
    let body = tenantry_platform::metrics::render(&platform).await;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
