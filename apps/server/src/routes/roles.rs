//! `/api/v1/roles` (the tenant's system and custom roles) and `/api/v1/users/{id}/roles` (the
//! roles a member holds, tenant-wide or at a location).

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use tenantry_kernel::{KeyPageRequest, LocationId, Permission, RoleId, UserId, ValidationErrors};
use tenantry_tenancy::{RoleDefinition, RoleGrant, RoleInput, parse_role_key};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, IfMatch, etag};
use crate::input::{Json, Query};

/// A role of the tenant.
#[derive(Serialize, ToSchema)]
pub struct RoleResponse {
    /// Its id in this tenant.
    pub id: uuid::Uuid,
    /// Its stable key.
    #[schema(example = "support-lead")]
    pub key: String,
    /// Its display name.
    #[schema(example = "Support lead")]
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The permissions it grants, in catalogue order.
    #[schema(example = json!(["tenant.read", "users.read"]))]
    pub permissions: Vec<&'static str>,
    /// `true` for the five system roles, which cannot be changed or deleted.
    pub system: bool,
    /// Bumped on every change; also the `ETag`.
    pub version: i32,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<RoleDefinition> for RoleResponse {
    fn from(r: RoleDefinition) -> Self {
        Self {
            id: r.id.0,
            key: r.key,
            name: r.name,
            description: r.description,
            permissions: r.permissions.iter().map(Permission::as_str).collect(),
            system: r.system.is_some(),
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn respond(status: actix_web::http::StatusCode, role: RoleDefinition) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(etag(role.version))
        .json(RoleResponse::from(role))
}

/// A page of roles, by key.
#[derive(Serialize, ToSchema)]
pub struct RoleList {
    /// The roles on this page.
    pub items: Vec<RoleResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RolePageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's roles, system and custom, by key (`roles.read`).
#[utoipa::path(get, path = "/api/v1/roles", tag = "access", operation_id = "list_roles",
    security(("bearer" = [])),
    params(RolePageQuery),
    responses(
        (status = 200, description = "A page of roles", body = RoleList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `roles.read` (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/roles")]
pub async fn list(
    state: AppState,
    auth: Auth,
    query: Query<RolePageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page =
        KeyPageRequest::parse(query.limit, query.cursor.as_deref()).map_err(ValidationErrors)?;
    let page = state.roles.list_roles(&auth.0, page).await?;
    Ok(HttpResponse::Ok().json(RoleList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A new custom role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    /// 2 to 40 of `a-z`, `0-9`, `-` and `_`, starting with a letter; unique in the tenant and
    /// never changed.
    #[schema(example = "support-lead")]
    pub key: String,
    /// 1 to 100 characters.
    #[schema(example = "Support lead")]
    pub name: String,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// Permission names from `GET /api/v1/permissions`, each one the caller holds.
    #[schema(example = json!(["users.read", "users.invite"]))]
    pub permissions: Vec<String>,
}

/// Defines a custom role (`roles.manage`). Its permissions must all be ones the caller holds.
#[utoipa::path(post, path = "/api/v1/roles", tag = "access", operation_id = "create_role",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$", description = "Up to 255 visible ASCII characters. A retry with the same key and body gets the first response again (with `Idempotent-Replayed: true`) for 24 hours, instead of running twice")),
    request_body = CreateRoleRequest,
    responses(
        (status = 201, description = "Created", body = RoleResponse),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `roles.manage` (`forbidden`), or a permission of the role (`permission_not_held`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key is taken (`role_key_taken`) or the tenant has 100 custom roles (`role_limit_reached`); or a request with this `Idempotency-Key` is still running (`idempotency_key_in_use`, with `Retry-After`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or an `Idempotency-Key` sent before with a different request (`idempotency_key_reused`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post(
    "/roles",
    wrap = "actix_web::middleware::from_fn(crate::idempotency::idempotent)"
)]
pub async fn create(
    state: AppState,
    auth: Auth,
    body: Json<CreateRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = parse_role_key(&body.key);
    let input = RoleInput::parse(&body.name, body.description.as_deref(), &body.permissions);
    let (key, input) = match (key, input) {
        (Ok(k), Ok(i)) => (k, i),
        (k, i) => {
            let mut errors: Vec<_> = k.err().into_iter().collect();
            errors.extend(i.err().map(|e| e.0).unwrap_or_default());
            return Err(ValidationErrors(errors).into());
        }
    };
    let role = state.roles.create_role(&auth.0, key, input).await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, role))
}

/// One role of the tenant (`roles.read`).
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "access", operation_id = "get_role",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The role's id")),
    responses(
        (status = 200, description = "The role; `ETag` is its version", body = RoleResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `roles.read` (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No role of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/roles/{id}")]
pub async fn get_one(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let role = state.roles.role(&auth.0, RoleId(*id)).await?;
    Ok(respond(actix_web::http::StatusCode::OK, role))
}

/// A custom role's new definition; the key stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    /// 1 to 100 characters.
    #[schema(example = "Support lead")]
    pub name: String,
    /// Up to 500 characters; absent clears it.
    pub description: Option<String>,
    /// The complete new list of permission names.
    #[schema(example = json!(["users.read"]))]
    pub permissions: Vec<String>,
}

/// Replaces a custom role's name, description and permissions (`roles.manage`). The caller
/// must hold every permission the role had and every one it will have. Members holding the
/// role get the new permissions on their next request.
#[utoipa::path(put, path = "/api/v1/roles/{id}", tag = "access", operation_id = "update_role",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The role's id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` last read"),
    ),
    request_body = UpdateRoleRequest,
    responses(
        (status = 200, description = "Updated", body = RoleResponse),
        (status = 400, description = "Malformed JSON or If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `roles.manage` (`forbidden`), or a permission of the role (`permission_not_held`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No role of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A system role (`system_role_immutable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version (`stale_version`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[put("/roles/{id}")]
pub async fn update(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    if_match: IfMatch,
    body: Json<UpdateRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = RoleInput::parse(&body.name, body.description.as_deref(), &body.permissions)?;
    let role = state
        .roles
        .update_role(&auth.0, RoleId(*id), input, if_match.0)
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, role))
}

/// Deletes a custom role and takes it from everyone holding it (`roles.manage`).
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "access", operation_id = "delete_role",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The role's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `roles.manage` (`forbidden`), or a permission of the role (`permission_not_held`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No role of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A system role (`system_role_immutable`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/roles/{id}")]
pub async fn remove(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.roles.delete_role(&auth.0, RoleId(*id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A role a member holds.
#[derive(Serialize, ToSchema)]
pub struct RoleGrantResponse {
    /// The role.
    pub role: RoleResponse,
    /// Where it is held: a location's id, or `null` tenant-wide.
    pub location_id: Option<uuid::Uuid>,
    /// When it was granted.
    pub granted_at: chrono::DateTime<chrono::Utc>,
}

impl From<RoleGrant> for RoleGrantResponse {
    fn from(g: RoleGrant) -> Self {
        Self {
            role: g.role.into(),
            location_id: g.location_id.map(|l| l.0),
            granted_at: g.granted_at,
        }
    }
}

/// Every role a member holds.
#[derive(Serialize, ToSchema)]
pub struct RoleGrantList {
    /// The system role tenant-wide first, then the roles held at locations, then the custom
    /// roles, oldest grant first.
    pub items: Vec<RoleGrantResponse>,
}

/// The roles a member holds (`roles.read`, or the member themself).
#[utoipa::path(get, path = "/api/v1/users/{id}/roles", tag = "access", operation_id = "list_member_roles",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The member's user id")),
    responses(
        (status = 200, description = "The member's roles", body = RoleGrantList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `roles.read` (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/{id}/roles")]
pub async fn member_roles(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let grants = state.roles.member_roles(&auth.0, UserId(*id)).await?;
    Ok(HttpResponse::Ok().json(RoleGrantList {
        items: grants.into_iter().map(Into::into).collect(),
    }))
}

/// A role to grant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRoleRequest {
    /// The role's id (`GET /api/v1/roles`).
    pub role_id: uuid::Uuid,
    /// Grant it at this location only; absent or `null` grants it tenant-wide.
    pub location_id: Option<uuid::Uuid>,
}

/// Grants a role to a member. Tenant-wide it takes `users.manage` and a rank at least the
/// member's; at a location, `locations.manage` there. Either way the caller must hold every
/// permission of the role where it is granted. A system role granted tenant-wide replaces the
/// member's system role (the last owner stays an owner); at a location it becomes the member's
/// role there. The change applies from the member's next request.
#[utoipa::path(post, path = "/api/v1/users/{id}/roles", tag = "access", operation_id = "grant_member_role",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$", description = "Up to 255 visible ASCII characters. A retry with the same key and body gets the first response again (with `Idempotent-Replayed: true`) for 24 hours, instead of running twice"), ("id" = uuid::Uuid, Path, description = "The member's user id")),
    request_body = GrantRoleRequest,
    responses(
        (status = 201, description = "Granted", body = RoleGrantResponse),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`), a role ranking above the caller's (`role_not_grantable`), or a permission the caller lacks (`permission_not_held`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member, role or location in this tenant", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Held already (`role_already_granted`), the last owner (`last_owner`), the member does not work at the location (`not_on_location`), or the owner role at a location (`owner_is_tenant_wide`); or a request with this `Idempotency-Key` is still running (`idempotency_key_in_use`, with `Retry-After`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`owner` at a location; or an `Idempotency-Key` sent before with a different request (`idempotency_key_reused`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post(
    "/users/{id}/roles",
    wrap = "actix_web::middleware::from_fn(crate::idempotency::idempotent)"
)]
pub async fn grant(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    body: Json<GrantRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let grant = state
        .roles
        .grant_role(
            &auth.0,
            UserId(*id),
            RoleId(body.role_id),
            body.location_id.map(LocationId),
        )
        .await?;
    Ok(HttpResponse::Created().json(RoleGrantResponse::from(grant)))
}

/// Where the grant to take away is held: `?location_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevokeQuery {
    /// The location the role is held at; absent for a tenant-wide grant.
    pub location_id: Option<uuid::Uuid>,
}

/// Takes a role from a member, with the same permissions as granting it. A member keeps one
/// system role tenant-wide: grant another instead. Taking a location's system role takes the
/// member off that location.
#[utoipa::path(delete, path = "/api/v1/users/{id}/roles/{role_id}", tag = "access", operation_id = "revoke_member_role",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The member's user id"),
        ("role_id" = uuid::Uuid, Path, description = "The role's id"),
        RevokeQuery,
    ),
    responses(
        (status = 204, description = "Taken away"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`, `permission_not_held`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member or role, or the member does not hold it there", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The member's tenant-wide system role (`system_role_required`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed `location_id`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/users/{id}/roles/{role_id}")]
pub async fn revoke(
    state: AppState,
    auth: Auth,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    query: Query<RevokeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user, role) = path.into_inner();
    state
        .roles
        .revoke_role(
            &auth.0,
            UserId(user),
            RoleId(role),
            query.location_id.map(LocationId),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
