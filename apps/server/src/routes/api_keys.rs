//! `/api/v1/api-keys`: the tenant's machine credentials. A key is sent like an access token,
//! `Authorization: Bearer tnt_<prefix>_<secret>`, and acts with its scopes only.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use tenantry_identity::{ApiKey, ApiKeyUpdate, NewApiKey};
use tenantry_kernel::{ApiKeyId, LocationId, Permission};
use utoipa::ToSchema;

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, PageQuery};
use crate::input::{Json, Query};

/// An API key, without its secret.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyResponse {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its name.
    #[schema(example = "CI deploys")]
    pub name: String,
    /// The public start of the key, to recognise it: `tnt_<prefix>_…`.
    #[schema(example = "tnt_3f9a0c12b7de")]
    pub prefix: String,
    /// The permissions it holds, in catalogue order.
    #[schema(example = json!(["users.read"]))]
    pub scopes: Vec<&'static str>,
    /// The location it is bound to: it acts there only.
    pub location_id: Option<uuid::Uuid>,
    /// Who made it.
    pub created_by: Option<uuid::Uuid>,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When it stops working; `null` for never.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was last used, to the minute.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.0,
            name: k.name,
            prefix: format!("{}{}", tenantry_identity::KEY_PREFIX, k.prefix),
            scopes: k.scopes.iter().map(Permission::as_str).collect(),
            location_id: k.location_id.map(|l| l.0),
            created_by: k.created_by.map(|u| u.0),
            created_at: k.created_at,
            updated_at: k.updated_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just made, with its secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    /// The key.
    #[serde(flatten)]
    pub key: ApiKeyResponse,
    /// The whole key to send as a bearer token. Store it now: it cannot be shown again.
    #[schema(example = "tnt_3f9a0c12b7de_Yt0v9b2cW1mQ3e7rT5uJ8kLz0xN4pS6dA2fG9hK1jV0")]
    pub secret: String,
}

/// A page of keys, newest first.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys on this page, revoked ones included.
    pub items: Vec<ApiKeyResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A new key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1 to 100 characters.
    #[schema(example = "CI deploys")]
    pub name: String,
    /// Permission names the caller holds; at least one.
    #[schema(example = json!(["users.read"]))]
    pub scopes: Vec<String>,
    /// When it stops working: in the future, at most three years away. Absent: never.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Bind it to this location: it then acts there only.
    pub location_id: Option<uuid::Uuid>,
}

/// Makes an API key (`api_keys.manage`). Its scopes must be permissions the caller holds (at
/// the location, for a bound key). The secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "access", operation_id = "create_api_key",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$", description = "Up to 255 visible ASCII characters. A retry with the same key and body gets the first response again (with `Idempotent-Replayed: true`) for 24 hours, instead of running twice")),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Made; the secret is shown once", body = CreatedApiKeyResponse),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `api_keys.manage` (`forbidden`) or a scope (`permission_not_held`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of the tenant has this `location_id`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this `Idempotency-Key` is still running (`idempotency_key_in_use`, with `Retry-After`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: `name`, `scopes[i]`, `expires_at`, `location_id`; or an `Idempotency-Key` sent before with a different request (`idempotency_key_reused`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post(
    "/api-keys",
    wrap = "actix_web::middleware::from_fn(crate::idempotency::idempotent)"
)]
pub async fn create(
    state: AppState,
    auth: Auth,
    body: Json<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = NewApiKey::parse(
        &body.name,
        &body.scopes,
        body.expires_at,
        body.location_id.map(LocationId),
        chrono::Utc::now(),
    )?;
    let created = state.api_keys.create_api_key(&auth.0, input).await?;
    Ok(HttpResponse::Created().json(CreatedApiKeyResponse {
        key: created.key.into(),
        secret: created.secret,
    }))
}

/// The tenant's API keys, newest first, revoked ones included (`api_keys.read`).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "access", operation_id = "list_api_keys",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of keys", body = ApiKeyList),
        (status = 401, description = "Missing or invalid credentials", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `api_keys.read` (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/api-keys")]
pub async fn list(
    state: AppState,
    auth: Auth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .api_keys
        .list_api_keys(&auth.0, query.request()?)
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One API key (`api_keys.read`).
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "access", operation_id = "get_api_key",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key", body = ApiKeyResponse),
        (status = 401, description = "Missing or invalid credentials", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `api_keys.read` (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No key of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/api-keys/{id}")]
pub async fn get_one(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let key = state.api_keys.api_key(&auth.0, ApiKeyId(*id)).await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::from(key)))
}

/// What to change; a field left out stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKeyRequest {
    /// A new name.
    pub name: Option<String>,
    /// The complete new list of scopes.
    pub scopes: Option<Vec<String>>,
}

/// Renames a key or changes its scopes (`api_keys.manage`); the caller must hold its old and
/// new scopes. The change applies to the key's next request.
#[utoipa::path(patch, path = "/api/v1/api-keys/{id}", tag = "access", operation_id = "update_api_key",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    request_body = UpdateApiKeyRequest,
    responses(
        (status = 200, description = "Changed", body = ApiKeyResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `api_keys.manage` (`forbidden`) or a scope (`permission_not_held`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No key of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Revoked or expired (`api_key_not_active`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[patch("/api-keys/{id}")]
pub async fn update(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    body: Json<UpdateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let update = ApiKeyUpdate::parse(body.name.as_deref(), body.scopes.as_deref())?;
    let key = state
        .api_keys
        .update_api_key(&auth.0, ApiKeyId(*id), update)
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::from(key)))
}

/// Revokes a key (`api_keys.manage`): its next request answers 401 `api_key_revoked`. It
/// stays listed, with `revoked_at`.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "access", operation_id = "revoke_api_key",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 401, description = "Missing or invalid credentials", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks `api_keys.manage` (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No key of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/api-keys/{id}")]
pub async fn revoke(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .api_keys
        .revoke_api_key(&auth.0, ApiKeyId(*id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
