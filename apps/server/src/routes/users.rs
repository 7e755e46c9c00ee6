//! Users as they see themselves, and the tenants they belong to.

use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::tenants::TenantResponse;
use crate::error::ApiError;
use crate::extract::Auth;

/// A tenant the user belongs to.
#[derive(Serialize, ToSchema)]
pub struct MembershipResponse {
    /// The tenant.
    pub tenant: TenantResponse,
    /// The user's role there: `owner`, `admin`, `manager`, `expert` or `member`.
    pub role: String,
    /// `active`, or `deactivated` when the tenant's administrators closed this access.
    #[schema(example = "active")]
    pub status: &'static str,
    /// Whether this session acts in this tenant.
    pub current: bool,
}

/// The signed-in user, the tenant this session acts in, and their rights there.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    /// User id.
    pub id: uuid::Uuid,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the address has been verified.
    pub email_verified: bool,
    /// When it was verified.
    pub email_verified_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the account was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The tenant this session acts in.
    pub current_tenant: TenantResponse,
    /// Role in the current tenant.
    pub role: String,
    /// The location this request acts in (from `X-Location-Id` or the token), if any.
    pub location_id: Option<uuid::Uuid>,
    /// Permissions in the current tenant.
    pub permissions: Vec<String>,
    /// Every tenant the user belongs to.
    pub memberships: Vec<MembershipResponse>,
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", operation_id = "get_current_user",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = MeResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/me")]
pub async fn me(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    let me = state.accounts.me(&auth.0).await?;
    Ok(HttpResponse::Ok().json(MeResponse {
        id: me.id.0,
        email: me.email,
        name: me.name,
        email_verified: me.email_verified_at.is_some(),
        email_verified_at: me.email_verified_at,
        created_at: me.created_at,
        current_tenant: me.current_tenant.into(),
        role: me.role.as_str().to_owned(),
        location_id: auth.0.location_id.map(|l| l.0),
        permissions: me
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        memberships: me
            .memberships
            .into_iter()
            .map(|m| MembershipResponse {
                current: m.tenant.id == auth.0.tenant_id,
                tenant: m.tenant.into(),
                role: m.role.as_str().to_owned(),
                status: m.status.as_str(),
            })
            .collect(),
    }))
}

/// Every tenant the signed-in user belongs to, with their role in each, oldest membership
/// first.
#[utoipa::path(get, path = "/api/v1/users/me/tenants", tag = "users", operation_id = "list_my_tenants",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's tenants", body = MyTenants),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/me/tenants")]
pub async fn my_tenants(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    let user = auth
        .0
        .user_id()
        .ok_or(tenantry_identity::IdentityError::UserOnly)?;
    let memberships = state.tenancy.memberships_of(user).await?;
    Ok(HttpResponse::Ok().json(MyTenants {
        items: memberships
            .into_iter()
            .map(|m| MembershipResponse {
                current: m.tenant.id == auth.0.tenant_id,
                tenant: m.tenant.into(),
                role: m.role.as_str().to_owned(),
                status: m.status.as_str(),
            })
            .collect(),
    }))
}

/// The tenants a user belongs to.
#[derive(Serialize, ToSchema)]
pub struct MyTenants {
    /// One entry per membership.
    pub items: Vec<MembershipResponse>,
}
