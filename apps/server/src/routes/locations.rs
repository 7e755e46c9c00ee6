//! `/api/v1/locations`: a tenant's stores, branches or sites, their members, and the settings
//! they override.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use tenantry_kernel::{KeyPageRequest, LocationId, Role, UserId, ValidationErrors};
use tenantry_tenancy::{
    BrandingOverrides, Location, LocationSettings, LocationSettingsView, LocationUpdate,
    NewLocation,
};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::members::{MemberList, MemberResponse};
use super::tenants::{BrandingBody, TenantSettingsBody};
use crate::error::ApiError;
use crate::extract::{Auth, IfMatch, PageQuery, etag};
use crate::input::{Json, Query};

/// A location of the tenant.
#[derive(Serialize, ToSchema)]
pub struct LocationResponse {
    /// Its id; send it as `X-Location-Id` to act there.
    pub id: uuid::Uuid,
    /// Its name.
    #[schema(example = "Zurich Main Station")]
    pub name: String,
    /// Its code, unique in the tenant.
    #[schema(example = "ZH-01")]
    pub code: Option<String>,
    /// Its postal address.
    pub address: Option<String>,
    /// Bumped by every change to the location or its settings; also the `ETag`.
    pub version: i32,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Location> for LocationResponse {
    fn from(l: Location) -> Self {
        Self {
            id: l.id.0,
            name: l.name,
            code: l.code,
            address: l.address,
            version: l.version,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

fn respond(location: Location) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(etag(location.version))
        .json(LocationResponse::from(location))
}

/// A page of locations, newest first.
#[derive(Serialize, ToSchema)]
pub struct LocationList {
    /// The locations on this page.
    pub items: Vec<LocationResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A new location.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLocationRequest {
    /// 1 to 100 characters.
    #[schema(example = "Zurich Main Station")]
    pub name: String,
    /// 1 to 32 of letters, digits, `-`, `_` and `.`; unique in the tenant.
    #[schema(example = "ZH-01")]
    pub code: Option<String>,
    /// Up to 500 characters.
    pub address: Option<String>,
}

/// Fields to change; a field left out stays, `null` clears `code` or `address`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLocationRequest {
    /// A new name.
    pub name: Option<String>,
    /// A new code, or `null` for none.
    #[serde(default, deserialize_with = "crate::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub code: Option<Option<String>>,
    /// A new address, or `null` for none.
    #[serde(default, deserialize_with = "crate::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
}

/// Lists the tenant's locations, newest first.
#[utoipa::path(get, path = "/api/v1/locations", tag = "locations", operation_id = "list_locations",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of locations", body = LocationList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/locations")]
pub async fn list(
    state: AppState,
    auth: Auth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .locations
        .list_locations(&auth.0, query.request()?)
        .await?;
    Ok(HttpResponse::Ok().json(LocationList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Creates a location (`locations.manage` tenant-wide: owners and admins).
#[utoipa::path(post, path = "/api/v1/locations", tag = "locations", operation_id = "create_location",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$", description = "Up to 255 visible ASCII characters. A retry with the same key and body gets the first response again (with `Idempotent-Replayed: true`) for 24 hours, instead of running twice")),
    request_body = CreateLocationRequest,
    responses(
        (status = 201, description = "Created", body = LocationResponse),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another location has this code (`location_code_taken`); or a request with this `Idempotency-Key` is still running (`idempotency_key_in_use`, with `Retry-After`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or an `Idempotency-Key` sent before with a different request (`idempotency_key_reused`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post(
    "/locations",
    wrap = "actix_web::middleware::from_fn(crate::idempotency::idempotent)"
)]
pub async fn create(
    state: AppState,
    auth: Auth,
    body: Json<CreateLocationRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = NewLocation::parse(&body.name, body.code.as_deref(), body.address.as_deref())?;
    let location = state.locations.create_location(&auth.0, input).await?;
    Ok(HttpResponse::Created()
        .insert_header(etag(location.version))
        .json(LocationResponse::from(location)))
}

/// One location.
#[utoipa::path(get, path = "/api/v1/locations/{id}", tag = "locations", operation_id = "get_location",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The location's id")),
    responses(
        (status = 200, description = "The location", body = LocationResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/locations/{id}")]
pub async fn get_one(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(respond(
        state.locations.location(&auth.0, LocationId(*id)).await?,
    ))
}

/// Changes a location: owners and admins anywhere, a location's admins while acting in it.
#[utoipa::path(patch, path = "/api/v1/locations/{id}", tag = "locations", operation_id = "update_location",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The location's id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` last read"),
    ),
    request_body = UpdateLocationRequest,
    responses(
        (status = 200, description = "The location as changed", body = LocationResponse),
        (status = 400, description = "Malformed JSON or If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed here (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another location has this code (`location_code_taken`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version (`stale_version`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[patch("/locations/{id}")]
pub async fn update(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    if_match: IfMatch,
    body: Json<UpdateLocationRequest>,
) -> Result<HttpResponse, ApiError> {
    let update = LocationUpdate::parse(
        body.name.as_deref(),
        body.code.as_ref().map(Option::as_deref),
        body.address.as_ref().map(Option::as_deref),
    )?;
    Ok(respond(
        state
            .locations
            .update_location(&auth.0, LocationId(*id), update, if_match.0)
            .await?,
    ))
}

/// Deletes a location and its member list (`locations.manage` tenant-wide). The members stay
/// in the tenant.
#[utoipa::path(delete, path = "/api/v1/locations/{id}", tag = "locations", operation_id = "delete_location",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The location's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/locations/{id}")]
pub async fn remove(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .locations
        .delete_location(&auth.0, LocationId(*id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant settings a location overrides; what it leaves out (or `null`) it inherits.
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LocationSettingsBody {
    /// Branding fields to use here.
    pub branding: BrandingBody,
    /// Language tag to use here.
    #[schema(example = "de-CH")]
    pub locale: Option<String>,
    /// Time zone to use here.
    #[schema(example = "Europe/Zurich")]
    pub timezone: Option<String>,
    /// Feature toggles to set here, over the tenant's.
    pub features: std::collections::BTreeMap<String, bool>,
}

impl From<LocationSettings> for LocationSettingsBody {
    fn from(s: LocationSettings) -> Self {
        Self {
            branding: BrandingBody {
                display_name: s.branding.display_name,
                primary_color: s.branding.primary_color,
                accent_color: s.branding.accent_color,
                logo_file_id: s.branding.logo_file_id,
            },
            locale: s.locale,
            timezone: s.timezone,
            features: s.features,
        }
    }
}

impl From<LocationSettingsBody> for LocationSettings {
    fn from(b: LocationSettingsBody) -> Self {
        Self {
            branding: BrandingOverrides {
                display_name: b.branding.display_name,
                primary_color: b.branding.primary_color,
                accent_color: b.branding.accent_color,
                logo_file_id: b.branding.logo_file_id,
            },
            locale: b.locale,
            timezone: b.timezone,
            features: b.features,
        }
    }
}

/// A location's overrides and the settings in effect there.
#[derive(Serialize, ToSchema)]
pub struct LocationSettingsResponse {
    /// What the location overrides.
    pub overrides: LocationSettingsBody,
    /// The tenant's settings with the overrides applied: what applies at this location.
    pub effective: TenantSettingsBody,
}

fn respond_settings(view: LocationSettingsView) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(etag(view.version))
        .json(LocationSettingsResponse {
            overrides: view.overrides.into(),
            effective: view.effective.into(),
        })
}

/// A location's overrides and the settings in effect there; `ETag` is the location's version.
#[utoipa::path(get, path = "/api/v1/locations/{id}/settings", tag = "locations", operation_id = "get_location_settings",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The location's id")),
    responses(
        (status = 200, description = "Overrides and effective settings", body = LocationSettingsResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/locations/{id}/settings")]
pub async fn get_settings(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(respond_settings(
        state
            .locations
            .location_settings(&auth.0, LocationId(*id))
            .await?,
    ))
}

/// Replaces a location's overrides: owners and admins anywhere, a location's admins while
/// acting in it.
#[utoipa::path(put, path = "/api/v1/locations/{id}/settings", tag = "locations", operation_id = "update_location_settings",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The location's id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` last read"),
    ),
    request_body = LocationSettingsBody,
    responses(
        (status = 200, description = "Overrides and effective settings", body = LocationSettingsResponse),
        (status = 400, description = "Malformed JSON or If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed here (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version (`stale_version`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, named by dotted path", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[put("/locations/{id}/settings")]
pub async fn update_settings(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    if_match: IfMatch,
    body: Json<LocationSettingsBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(respond_settings(
        state
            .locations
            .update_location_settings(
                &auth.0,
                LocationId(*id),
                body.into_inner().into(),
                if_match.0,
            )
            .await?,
    ))
}

/// Which page of a location's members: `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemberPageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The members of a location, by name; each lists their role at every location.
#[utoipa::path(get, path = "/api/v1/locations/{id}/members", tag = "locations", operation_id = "list_location_members",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The location's id"), MemberPageQuery),
    responses(
        (status = 200, description = "A page of members", body = MemberList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No location of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/locations/{id}/members")]
pub async fn list_members(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    query: Query<MemberPageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page =
        KeyPageRequest::parse(query.limit, query.cursor.as_deref()).map_err(ValidationErrors)?;
    let page = state
        .locations
        .location_members(&auth.0, LocationId(*id), page)
        .await?;
    Ok(HttpResponse::Ok().json(MemberList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The role to hold at a location.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRoleRequest {
    /// `admin`, `manager`, `expert` or `member`: the system role held at this location.
    #[schema(example = "member")]
    pub role: String,
}

/// Makes a tenant member a member of the location with a role, or changes their role there.
#[utoipa::path(put, path = "/api/v1/locations/{id}/members/{user_id}", tag = "locations", operation_id = "set_location_member",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The location's id"),
        ("user_id" = uuid::Uuid, Path, description = "A member of the tenant"),
    ),
    request_body = LocationRoleRequest,
    responses(
        (status = 200, description = "The member, with their locations", body = MemberResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed here (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such location or member in this tenant", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A role other than `admin`, `manager`, `expert` or `member`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[put("/locations/{id}/members/{user_id}")]
pub async fn set_member(
    state: AppState,
    auth: Auth,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    body: Json<LocationRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    // `owner` parses, and the location refuses it: ownership is tenant-wide.
    let role = Role::parse_field("role", &body.role).map_err(ValidationErrors::from)?;
    let member = state
        .locations
        .set_location_member(&auth.0, LocationId(id), UserId(user), role)
        .await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}

/// Takes a member off the location; they stay in the tenant.
#[utoipa::path(delete, path = "/api/v1/locations/{id}/members/{user_id}", tag = "locations", operation_id = "remove_location_member",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The location's id"),
        ("user_id" = uuid::Uuid, Path, description = "A member of the location"),
    ),
    responses(
        (status = 204, description = "Removed from the location"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed here (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such location, or the user is not its member", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/locations/{id}/members/{user_id}")]
pub async fn remove_member(
    state: AppState,
    auth: Auth,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    state
        .locations
        .remove_location_member(&auth.0, LocationId(id), UserId(user))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
