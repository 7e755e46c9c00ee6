//! `GET /api/v1/permissions`: the permission catalogue.

use actix_web::{HttpResponse, get};
use serde::Serialize;
use tenantry_kernel::Permission;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::Auth;

/// One permission of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct PermissionResponse {
    /// The stable name roles and API-key scopes use.
    #[schema(example = "users.invite")]
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
    /// Whether the caller holds it tenant-wide.
    pub granted: bool,
}

/// The permission catalogue.
#[derive(Serialize, ToSchema)]
pub struct PermissionList {
    /// Every permission, in catalogue order.
    pub items: Vec<PermissionResponse>,
}

/// Every permission Tenantry knows, with what it allows and whether the caller holds it.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "access", operation_id = "list_permissions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalogue", body = PermissionList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/permissions")]
pub async fn list(auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(PermissionList {
        items: Permission::ALL
            .into_iter()
            .map(|p| PermissionResponse {
                name: p.as_str(),
                description: p.description(),
                granted: auth.0.tenant_permissions.contains(p),
            })
            .collect(),
    }))
}
