//! The caller's own tenant.

use actix_web::{HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use tenantry_tenancy::{Tenant, TenantName, TenantUpdate};
use utoipa::ToSchema;

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, IfMatch, etag};

/// A tenant.
#[derive(Serialize, ToSchema)]
pub struct TenantResponse {
    /// Tenant id.
    pub id: uuid::Uuid,
    /// Display name.
    pub name: String,
    /// Unique URL-safe handle.
    pub slug: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Version, also sent as `ETag`.
    pub version: i32,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Tenant> for TenantResponse {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.0,
            name: t.name,
            slug: t.slug,
            status: t.status,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// The fields of a tenant its owners and admins may change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    /// New display name.
    #[schema(max_length = 100)]
    pub name: String,
}

fn respond(t: Tenant) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(etag(t.version))
        .json(TenantResponse::from(t))
}

/// The tenant the access token acts in.
#[utoipa::path(get, path = "/api/v1/tenants/current", tag = "tenants", operation_id = "get_current_tenant",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant; `ETag` carries its version", body = TenantResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/tenants/current")]
pub async fn get_current(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(respond(state.tenancy.current(&auth.0).await?))
}

/// Changes the tenant the access token acts in (owners and admins). Send `If-Match` with the
/// `ETag` you read to refuse the change if someone else changed the tenant meanwhile.
#[utoipa::path(put, path = "/api/v1/tenants/current", tag = "tenants", operation_id = "update_current_tenant",
    security(("bearer" = [])),
    params(("If-Match" = Option<String>, Header, description = "The `ETag` last read")),
    request_body = UpdateTenantRequest,
    responses(
        (status = 200, description = "The changed tenant", body = TenantResponse),
        (status = 400, description = "Malformed JSON or If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version (`stale_version`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[put("/tenants/current")]
pub async fn update_current(
    state: AppState,
    auth: Auth,
    if_match: IfMatch,
    body: web::Json<UpdateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let name =
        TenantName::parse("name", &body.name).map_err(tenantry_kernel::ValidationErrors::from)?;
    let update = TenantUpdate { name: Some(name) };
    Ok(respond(
        state
            .tenancy
            .update_current(&auth.0, update, if_match.0)
            .await?,
    ))
}
