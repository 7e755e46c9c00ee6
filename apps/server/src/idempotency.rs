//! `Idempotency-Key` on the POSTs that create or charge, declared on the route:
//! `#[post("/invitations", wrap = "from_fn(crate::idempotency::idempotent)")]`.
//!
//! A request without the header runs as usual. With it, the first request from a principal
//! runs and its response is kept for 24 hours; a repeat of it (same method, path and body)
//! gets that response again, marked `Idempotent-Replayed: true`; a different request with the
//! key answers 422 `idempotency_key_reused`. Requests with one key that arrive together run
//! once: the others wait for the first one's response (up to [`WAIT`], then 409
//! `idempotency_key_in_use`). A response that says nothing about the request — a 5xx, a 429 —
//! is not kept, so a retry runs afresh. The record itself is `tenantry_platform::idempotency`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{self, BoxBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest as _, HttpMessage as _, HttpResponse, ResponseError as _, web};
use chrono::Utc;
use tenantry_kernel::crypto::{hex, sha256};
use tenantry_platform::Platform;
use tenantry_platform::idempotency::{self, Claim, KeyScope, StoredResponse};

use crate::error::ApiError;
use crate::extract::{Auth, Authenticated};
use crate::input::read_body;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header that marks a replay.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a request waits for another one with its key to finish.
pub const WAIT: Duration = Duration::from_secs(10);
/// The response headers a replay repeats.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// The middleware: `wrap = "from_fn(crate::idempotency::idempotent)"` on a route.
pub async fn idempotent(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.call(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if idempotency::is_valid_key(k) => k.to_owned(),
        _ => {
            return Ok(req.error_response(
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_idempotency_key",
                    "Malformed header",
                )
                .detail(format!(
                    "Idempotency-Key must be 1 to {} visible ASCII characters",
                    idempotency::MAX_KEY_LENGTH
                )),
            ));
        }
    };
    let (http, payload) = req.parts_mut();
    let body = match read_body(http, payload).await {
        Ok(body) => body,
        Err(e) => return Ok(req.error_response(e)),
    };
    let (http, payload) = req.parts_mut();
    let ctx = match Auth::from_request(http, payload).await {
        Ok(Auth(ctx)) => ctx,
        Err(e) => return Ok(req.error_response(e)),
    };
    let Some(platform) = req
        .app_data::<web::Data<Arc<Platform>>>()
        .map(|p| Arc::clone(p))
    else {
        let e = ApiError::internal(&std::io::Error::other("platform missing"));
        return Ok(req.error_response(e));
    };
    let scope = KeyScope::of(&ctx, &key);
    let fingerprint = fingerprint(req.method().as_str(), req.path(), &body);
    req.extensions_mut().insert(Authenticated(ctx));
    req.set_payload(Payload::from(body));

    let waited = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let claim = idempotency::claim(
            &platform.db,
            &platform.sealer,
            &scope,
            &fingerprint,
            Utc::now(),
        )
        .await;
        match claim {
            Err(e) => return Ok(req.error_response(ApiError::from(e))),
            Ok(Claim::Acquired) => return run(req, next, &platform, &scope).await,
            Ok(Claim::Replay(stored)) => return Ok(req.into_response(replay(&stored))),
            Ok(Claim::Reused) => {
                return Ok(req.error_response(
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "Idempotency key reused",
                    )
                    .detail(
                        "this Idempotency-Key was sent with a different request; use a new key \
                         for a new request",
                    ),
                ));
            }
            Ok(Claim::InProgress) if waited.elapsed() < WAIT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Ok(Claim::InProgress) => {
                return Ok(req.error_response(
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "idempotency_key_in_use",
                        "Idempotency key in use",
                    )
                    .detail("a request with this Idempotency-Key is still running; retry later")
                    .header(header::RETRY_AFTER, "1"),
                ));
            }
        }
    }
}

/// Runs the request that holds the key and keeps its response.
async fn run(
    req: ServiceRequest,
    next: Next<BoxBody>,
    platform: &Platform,
    scope: &KeyScope,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = match next.call(req).await {
        Ok(response) => response,
        Err(e) => {
            release(platform, scope).await;
            return Err(e);
        }
    };
    let status = response.status();
    let (http, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let bytes = match body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            release(platform, scope).await;
            let e = ApiError::internal(&std::io::Error::other(e.to_string()));
            return Ok(ServiceResponse::new(http, e.error_response()));
        }
    };
    // A failure of the server, or a refusal for now, says nothing about the request.
    let says_nothing = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    match std::str::from_utf8(&bytes) {
        Ok(text) if !says_nothing => {
            let stored = StoredResponse {
                status: status.as_u16(),
                headers: KEPT_HEADERS
                    .iter()
                    .filter_map(|name| {
                        let value = head.headers().get(name)?.to_str().ok()?;
                        Some((name.as_str().to_owned(), value.to_owned()))
                    })
                    .collect(),
                body: text.to_owned(),
            };
            if let Err(e) =
                idempotency::complete(&platform.db, &platform.sealer, scope, &stored).await
            {
                // The request ran; its answer goes out. The key stays held until its lease
                // ends, and a retry after that runs again.
                tracing::error!(error = %e, "idempotency key could not be completed");
            }
        }
        _ => release(platform, scope).await,
    }
    Ok(ServiceResponse::new(
        http,
        head.set_body(BoxBody::new(bytes)),
    ))
}

async fn release(platform: &Platform, scope: &KeyScope) {
    if let Err(e) = idempotency::release(&platform.db, scope).await {
        tracing::error!(error = %e, "idempotency key could not be released");
    }
}

fn replay(stored: &StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.insert_header((name, value));
        }
    }
    response.insert_header((HeaderName::from_static(REPLAYED), "true"));
    response.body(stored.body.clone())
}

/// What makes two requests the same: method, path and body — a JSON body by its value (keys
/// in any order, any spacing), any other body by its bytes.
fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .map(|value| {
            let mut out = Vec::with_capacity(body.len());
            canonical_json(&value, &mut out);
            out
        });
    let body = canonical.as_deref().unwrap_or(body);
    let mut input = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
    input.extend_from_slice(method.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(path.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(body);
    hex(&sha256(&input))
}

/// `value` written with its object keys sorted and no spacing.
fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    serde_json::Value::String(key.clone())
                        .to_string()
                        .as_bytes(),
                );
                out.push(b':');
                canonical_json(item, out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn one_json_value_is_one_request_however_it_is_written() {
        let a = fingerprint(
            "POST",
            "/api/v1/roles",
            br#"{"key":"lead","name":"Lead","permissions":["roles.read"]}"#,
        );
        let b = fingerprint(
            "POST",
            "/api/v1/roles",
            b"{ \"permissions\": [\"roles.read\"],\n  \"name\": \"Lead\", \"key\": \"lead\" }",
        );
        assert_eq!(a, b);
        let other_value = fingerprint(
            "POST",
            "/api/v1/roles",
            br#"{"key":"lead","name":"Lead","permissions":["roles.write"]}"#,
        );
        let other_path = fingerprint(
            "POST",
            "/api/v1/locations",
            br#"{"key":"lead","name":"Lead","permissions":["roles.read"]}"#,
        );
        let reordered_array = fingerprint(
            "POST",
            "/api/v1/roles",
            br#"{"key":"lead","name":"Lead","permissions":["b","a"]}"#,
        );
        let array = fingerprint(
            "POST",
            "/api/v1/roles",
            br#"{"key":"lead","name":"Lead","permissions":["a","b"]}"#,
        );
        assert_ne!(a, other_value);
        assert_ne!(a, other_path);
        assert_ne!(array, reordered_array);
        // Not JSON: its bytes.
        assert_ne!(
            fingerprint("POST", "/x", b"{oops"),
            fingerprint("POST", "/x", b"{oops ")
        );
    }
}
