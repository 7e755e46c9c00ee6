//! The member directory: `/api/v1/users/{id}` and its role, status and expertise, and the
//! transfer of ownership.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use tenantry_kernel::{KeyPageRequest, Role, UserId, ValidationErrors};
use tenantry_tenancy::{Expertise, Member, MemberFilter, ProfileUpdate};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::error::ApiError;
use crate::extract::Auth;
use crate::input::{Json, Query};

/// An amount of money in the currency's minor unit.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    /// Minor units (cents), 0 to 100 000 000.
    #[schema(example = 8500, minimum = 0, maximum = 100_000_000)]
    pub amount_minor: i64,
    /// ISO 4217 code, upper case.
    #[schema(example = "EUR")]
    pub currency: String,
}

/// What a member is good at, and what an hour of their time costs.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpertiseBody {
    /// Up to 50 tags of 1 to 40 characters; stored lowercase, duplicates dropped.
    #[schema(example = json!(["plumbing", "heating"]), max_items = 50)]
    pub tags: Vec<String>,
    /// The hourly rate, or `null` when the member does not bill time.
    pub hourly_rate: Option<MoneyBody>,
}

impl From<Expertise> for ExpertiseBody {
    fn from(e: Expertise) -> Self {
        Self {
            tags: e.tags,
            hourly_rate: e.hourly_rate.map(|m| MoneyBody {
                amount_minor: m.amount_minor,
                currency: m.currency,
            }),
        }
    }
}

/// A location a member works at.
#[derive(Serialize, ToSchema)]
pub struct MemberLocationResponse {
    /// The location.
    pub location_id: uuid::Uuid,
    /// The system role held there: `admin`, `manager`, `expert` or `member`.
    #[schema(example = "member")]
    pub role: &'static str,
}

/// A member of the tenant.
#[derive(Serialize, ToSchema)]
pub struct MemberResponse {
    /// The user's id.
    pub id: uuid::Uuid,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// `owner`, `admin`, `manager`, `expert` or `member`.
    #[schema(example = "member")]
    pub role: &'static str,
    /// `active` or `deactivated`.
    #[schema(example = "active")]
    pub status: &'static str,
    /// Job title in this tenant.
    pub job_title: Option<String>,
    /// Phone number in this tenant.
    pub phone: Option<String>,
    /// Expertise and hourly rate.
    pub expertise: ExpertiseBody,
    /// The locations the member works at.
    pub locations: Vec<MemberLocationResponse>,
    /// When they joined the tenant.
    pub joined_at: chrono::DateTime<chrono::Utc>,
    /// When they were deactivated, while they are.
    pub deactivated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the membership last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Member> for MemberResponse {
    fn from(m: Member) -> Self {
        Self {
            id: m.user_id.0,
            name: m.name,
            email: m.email,
            role: m.role.as_str(),
            status: m.status.as_str(),
            job_title: m.job_title,
            phone: m.phone,
            expertise: m.expertise.into(),
            locations: m
                .locations
                .into_iter()
                .map(|l| MemberLocationResponse {
                    location_id: l.location_id.0,
                    role: l.role.as_str(),
                })
                .collect(),
            joined_at: m.joined_at,
            deactivated_at: m.deactivated_at,
            updated_at: m.updated_at,
        }
    }
}

/// A page of members, by name.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    /// The members on this page.
    pub items: Vec<MemberResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Which members: `?role=&status=&location_id=&q=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// Only members with this role: `owner`, `admin`, `manager`, `expert` or `member`.
    pub role: Option<String>,
    /// Only `active` or only `deactivated` members.
    pub status: Option<String>,
    /// Only members of this location.
    pub location_id: Option<String>,
    /// Only members whose name or email contains this text, ignoring case.
    pub q: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Lists the tenant's members by name, filtered and searched.
#[utoipa::path(get, path = "/api/v1/users", tag = "members", operation_id = "list_members",
    security(("bearer" = [])),
    params(MemberQuery),
    responses(
        (status = 200, description = "A page of members", body = MemberList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `role`, `status`, `location_id`, `q`, `limit` or `cursor`, or an unknown parameter", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/users")]
pub async fn list(
    state: AppState,
    auth: Auth,
    query: Query<MemberQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = MemberFilter::parse(
        q.role.as_deref(),
        q.status.as_deref(),
        q.location_id.as_deref(),
        q.q.as_deref(),
    );
    let page = KeyPageRequest::parse(q.limit, q.cursor.as_deref());
    let (filter, page) = match (filter, page) {
        (Ok(f), Ok(p)) => (f, p),
        (f, p) => {
            let mut errors = f.err().map(|e| e.0).unwrap_or_default();
            errors.extend(p.err().unwrap_or_default());
            return Err(ValidationErrors(errors).into());
        }
    };
    let page = state.members.list_members(&auth.0, filter, page).await?;
    Ok(HttpResponse::Ok().json(MemberList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One member of the tenant.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "members", operation_id = "get_member",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The member", body = MemberResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/{id}")]
pub async fn get_one(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let member = state.members.member(&auth.0, UserId(*id)).await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}

/// Profile fields to change; a field left out stays, `null` clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// Job title, up to 100 characters.
    #[serde(default, deserialize_with = "crate::extract::nullable")]
    #[schema(value_type = Option<String>, example = "Store manager")]
    pub job_title: Option<Option<String>>,
    /// Phone number: 5 to 15 digits, optionally with `+ ( ) - .` and spaces.
    #[serde(default, deserialize_with = "crate::extract::nullable")]
    #[schema(value_type = Option<String>, example = "+41 44 668 18 00")]
    pub phone: Option<Option<String>>,
}

/// Changes a member's profile in the tenant. Members may change their own; changing
/// someone else's takes `users.manage` and a role at least theirs.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "members", operation_id = "update_member",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, description = "The member as changed", body = MemberResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[patch("/users/{id}")]
pub async fn update(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    body: Json<UpdateMemberRequest>,
) -> Result<HttpResponse, ApiError> {
    let update = ProfileUpdate::parse(
        body.job_title.as_ref().map(Option::as_deref),
        body.phone.as_ref().map(Option::as_deref),
    )?;
    let member = state
        .members
        .update_member(&auth.0, UserId(*id), update)
        .await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}

/// The role to give.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// `owner`, `admin`, `manager`, `expert` or `member`.
    #[schema(example = "admin")]
    pub role: String,
}

/// Gives a member another role. Needs `users.manage`; nobody hands out or takes away a role
/// above their own, and the last active owner stays an owner.
#[utoipa::path(put, path = "/api/v1/users/{id}/role", tag = "members", operation_id = "change_member_role",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    request_body = ChangeRoleRequest,
    responses(
        (status = 200, description = "The member with the new role", body = MemberResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`), or the role ranks above the caller's (`role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active owner would lose ownership (`last_owner`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[put("/users/{id}/role")]
pub async fn change_role(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    body: Json<ChangeRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let role = Role::parse_field("role", &body.role).map_err(ValidationErrors::from)?;
    let member = state
        .members
        .change_role(&auth.0, UserId(*id), role)
        .await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}

/// Deactivates a member: every session they have in the tenant ends at once, and they can
/// neither sign in to it nor use it until reactivated. Needs `users.manage`.
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "members", operation_id = "deactivate_member",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The member, deactivated", body = MemberResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already deactivated (`member_state_unchanged`), the caller itself (`cannot_target_self`), or the last active owner (`last_owner`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/{id}/deactivate")]
pub async fn deactivate(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let member = state
        .members
        .deactivate_member(&auth.0, UserId(*id))
        .await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}

/// Lets a deactivated member back in, if the tenant has a free seat. Needs `users.manage`.
#[utoipa::path(post, path = "/api/v1/users/{id}/reactivate", tag = "members", operation_id = "reactivate_member",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The member, active again", body = MemberResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already active (`member_state_unchanged`) or no free seat (`seat_limit_reached`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/{id}/reactivate")]
pub async fn reactivate(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let member = state
        .members
        .reactivate_member(&auth.0, UserId(*id))
        .await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}

/// Removes a member from the tenant and its locations and ends their sessions there. The
/// account itself stays. Members may remove themselves (leave); removing someone else needs
/// `users.manage`.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "members", operation_id = "remove_member",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active owner (`last_owner`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/users/{id}")]
pub async fn remove(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.members.remove_member(&auth.0, UserId(*id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A member's expertise tags and hourly rate.
#[utoipa::path(get, path = "/api/v1/users/{id}/expertise", tag = "members", operation_id = "get_member_expertise",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The expertise", body = ExpertiseBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/{id}/expertise")]
pub async fn get_expertise(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let expertise = state.members.expertise(&auth.0, UserId(*id)).await?;
    Ok(HttpResponse::Ok().json(ExpertiseBody::from(expertise)))
}

/// Replaces a member's expertise tags and hourly rate. Members may set their own; setting
/// someone else's takes `users.manage`.
#[utoipa::path(put, path = "/api/v1/users/{id}/expertise", tag = "members", operation_id = "set_member_expertise",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    request_body = ExpertiseBody,
    responses(
        (status = 200, description = "The expertise as stored", body = ExpertiseBody),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (`forbidden`, `role_not_grantable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid tags or rate, each named (`tags[2]`, `hourly_rate.currency`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[put("/users/{id}/expertise")]
pub async fn set_expertise(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
    body: Json<ExpertiseBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let expertise = Expertise::parse(
        &body.tags,
        body.hourly_rate
            .as_ref()
            .map(|m| (m.amount_minor, m.currency.as_str())),
    )?;
    let stored = state
        .members
        .set_expertise(&auth.0, UserId(*id), expertise)
        .await?;
    Ok(HttpResponse::Ok().json(ExpertiseBody::from(stored)))
}

/// Who receives ownership.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnershipRequest {
    /// An active member of the tenant.
    pub user_id: uuid::Uuid,
}

/// Hands ownership to another active member: they become an owner and the calling owner an
/// admin, in one step. Only an owner may do this.
#[utoipa::path(post, path = "/api/v1/tenants/current/transfer-ownership", tag = "tenants", operation_id = "transfer_tenant_ownership",
    security(("bearer" = [])),
    request_body = TransferOwnershipRequest,
    responses(
        (status = 200, description = "The new owner", body = MemberResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an owner (`owner_only`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No member of this tenant has this id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller itself (`cannot_target_self`) or a deactivated member (`member_deactivated`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`user_id` missing or not a UUID", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[post("/tenants/current/transfer-ownership")]
pub async fn transfer_ownership(
    state: AppState,
    auth: Auth,
    body: Json<TransferOwnershipRequest>,
) -> Result<HttpResponse, ApiError> {
    let member = state
        .members
        .transfer_ownership(&auth.0, UserId(body.user_id))
        .await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}
