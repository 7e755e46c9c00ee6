//! The OpenAPI document: assembled from the `#[utoipa::path]` on every handler, served at
//! `/api/openapi.json`, committed as `openapi/openapi.json` and compared with the code by a test.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    api_keys, auth, health, invitations, locations, members, mfa, permissions, roles, sessions,
    tenants, users, well_known,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry",
        description = "Multi-tenant SaaS backend core: tenants, identity, sessions and more.\n\nErrors are RFC 9457 problem+json documents with a stable `code`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        health::health,
        health::health_db,
        well_known::jwks,
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::verify_email,
        auth::logout_all,
        auth::change_password,
        auth::resend_verification,
        auth::forgot_password,
        auth::reset_password,
        invitations::preview,
        invitations::accept,
        sessions::list_sessions,
        sessions::revoke_session,
        auth::switch_tenant,
        permissions::list,
        users::me,
        users::my_tenants,
        tenants::get_current,
        tenants::update_current,
        tenants::get_settings,
        tenants::update_settings,
        invitations::create,
        invitations::list,
        invitations::get_one,
        invitations::resend,
        invitations::revoke,
        members::list,
        members::get_one,
        members::update,
        members::change_role,
        members::deactivate,
        members::reactivate,
        members::remove,
        members::get_expertise,
        members::set_expertise,
        members::transfer_ownership,
        locations::list,
        locations::create,
        locations::get_one,
        locations::update,
        locations::remove,
        locations::get_settings,
        locations::update_settings,
        locations::list_members,
        locations::set_member,
        locations::remove_member,
        roles::list,
        roles::create,
        roles::get_one,
        roles::update,
        roles::remove,
        roles::member_roles,
        roles::grant,
        roles::revoke,
        api_keys::create,
        api_keys::list,
        api_keys::get_one,
        api_keys::update,
        api_keys::revoke,
        mfa::status,
        mfa::enroll,
        mfa::confirm,
        mfa::disable,
        mfa::regenerate,
        mfa::verify,
    ),
    components(schemas(crate::error::Problem, crate::error::ProblemField)),
    modifiers(&BearerAuth, &RateLimited, &DatabaseBusy),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Sign-up, sign-in, sessions and tokens"),
        (name = "users", description = "User accounts"),
        (name = "tenants", description = "Tenants"),
        (name = "invitations", description = "Inviting people into a tenant"),
        (name = "access", description = "Permissions, roles and credentials"),
        (name = "locations", description = "A tenant's stores, branches or sites; act in one with `X-Location-Id`"),
        (name = "members", description = "The tenant's member directory: profiles, roles, status and expertise"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from login, register or refresh"))
                    .build(),
            ),
        );
    }
}

/// Every operation of a path.
fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// The unauthenticated operations that check a secret or mail one, limited per client
/// address and per account (authenticated ones answer 429 anyway).
const CREDENTIAL_OPERATIONS: [&str; 8] = [
    "register_user",
    "login_user",
    "verify_mfa",
    "verify_email",
    "request_password_reset",
    "reset_password",
    "preview_invitation",
    "accept_invitation",
];

/// Adds the 429 every rate-limited operation can answer: every authenticated one (per
/// principal) and the credential endpoints (per address and account).
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Content, Ref, ResponseBuilder, header::Header};
        let seconds = |what: &str| {
            let mut h = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
            h.description = Some(what.to_owned());
            h
        };
        let response = ResponseBuilder::new()
            .description(
                "Over the rate limit (`rate_limited`); `Retry-After` says when to try again",
            )
            .content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .header(
                "Retry-After",
                seconds("Seconds until a request is allowed again"),
            )
            .header("RateLimit-Limit", seconds("Requests allowed per minute"))
            .header("RateLimit-Remaining", seconds("Requests left now: 0"))
            .header(
                "RateLimit-Reset",
                seconds("Seconds until the allowance is full again"),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in operations_mut(item) {
                let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let credential = op
                    .operation_id
                    .as_deref()
                    .is_some_and(|id| CREDENTIAL_OPERATIONS.contains(&id));
                if authenticated || credential {
                    op.responses
                        .responses
                        .insert("429".to_owned(), response.clone().into());
                }
            }
        }
    }
}

/// Adds the 503 every operation that reaches the database can answer when it is busy (no
/// connection in time): to the ones that already answer 503 for another reason, the reason.
struct DatabaseBusy;

impl Modify for DatabaseBusy {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder, header::Header};
        const BUSY: &str = "the database is busy (`database_busy`)";
        let mut retry = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
        retry.description = Some("Seconds to wait before retrying".to_owned());
        let response = ResponseBuilder::new()
            .description(format!("Busy: {BUSY}; retry after `Retry-After`"))
            .content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .header("Retry-After", retry)
            .build();
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/api/v1/") && path != "/health/db" {
                continue;
            }
            for op in operations_mut(item) {
                match op.responses.responses.get_mut("503") {
                    Some(RefOr::T(existing)) => {
                        existing.description = format!("{}, or {BUSY}", existing.description);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        op.responses
                            .responses
                            .insert("503".to_owned(), response.clone().into());
                    }
                }
            }
        }
    }
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The OpenAPI document.
#[must_use]
pub fn document() -> &'static utoipa::openapi::OpenApi {
    &DOCUMENT
}

/// The document as JSON, with what [`crate::contract`] adds.
fn refined() -> Result<serde_json::Value, serde_json::Error> {
    let mut doc = serde_json::to_value(document())?;
    crate::contract::refine(&mut doc);
    Ok(doc)
}

/// The document as pretty JSON with a trailing newline, as committed.
pub fn pretty_json() -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&refined()?).map(|mut s| {
        s.push('\n');
        s
    })
}

/// The document as this installation serves it: the limits a tenant may set are the ones
/// configured (`tenant_limits`), not the defaults the committed document states.
pub fn served_json(ceilings: &tenantry_tenancy::Ceilings) -> Result<String, serde_json::Error> {
    let mut doc = refined()?;
    let limits = &mut doc["components"]["schemas"]["LimitsBody"]["properties"];
    if let Some(rate) = limits.get_mut("api_requests_per_minute") {
        rate["maximum"] = ceilings.api_requests_per_minute.into();
    }
    if let (Some(seats), Some(most)) = (limits.get_mut("seats"), ceilings.seats) {
        seats["maximum"] = most.into();
    }
    serde_json::to_string_pretty(&doc)
}

/// The methods the API offers at `path`; empty when no route matches it. Of the templates
/// that match, the one with the most literal segments names the resource (`/users/me`, not
/// `/users/{id}`).
#[must_use]
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let best = document()
        .paths
        .paths
        .iter()
        .filter(|(template, _)| {
            let t: Vec<&str> = template.split('/').collect();
            t.len() == segments.len()
                && t.iter()
                    .zip(&segments)
                    .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
        })
        .max_by_key(|(template, _)| template.split('/').filter(|s| !s.starts_with('{')).count());
    let Some((_, item)) = best else {
        return Vec::new();
    };
    [
        ("GET", item.get.is_some()),
        ("PUT", item.put.is_some()),
        ("POST", item.post.is_some()),
        ("DELETE", item.delete.is_some()),
        ("PATCH", item.patch.is_some()),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(m, _)| m)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_methods_come_from_the_document() {
        assert_eq!(allowed_methods("/api/v1/tenants/current"), ["GET", "PUT"]);
        assert_eq!(allowed_methods("/api/v1/auth/login"), ["POST"]);
        // A literal segment names the resource over a parameter.
        assert_eq!(allowed_methods("/api/v1/users/me"), ["GET"]);
        assert_eq!(
            allowed_methods("/api/v1/users/0190cafe-0000-7000-8000-000000000000"),
            ["GET", "DELETE", "PATCH"]
        );
        assert!(allowed_methods("/api/v1/nothing").is_empty());
    }

    #[test]
    fn every_operation_has_a_verb_resource_id_and_a_tag() {
        for (path, item) in &document().paths.paths {
            for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                .into_iter()
                .flatten()
            {
                let id = op.operation_id.as_deref().unwrap_or_default();
                assert!(id.contains('_'), "{path}: operation id {id:?}");
                assert!(
                    op.tags.as_ref().is_some_and(|t| !t.is_empty()),
                    "{path}: no tag"
                );
            }
        }
    }
}
