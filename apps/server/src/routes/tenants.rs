//! The caller's own tenant and its settings.

use actix_web::{HttpResponse, get, put};
use serde::{Deserialize, Serialize};
use tenantry_tenancy::{
    Branding, Limits, SecurityPolicy, StoredSettings, Tenant, TenantName, TenantSettings,
    TenantUpdate,
};
use utoipa::ToSchema;

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, IfMatch, etag};
use crate::input::Json;

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
    body: Json<UpdateTenantRequest>,
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

/// How the tenant presents itself.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BrandingBody {
    /// Name shown instead of the tenant's own (emails, pages), 1 to 100 characters.
    #[schema(example = "Acme Support")]
    pub display_name: Option<String>,
    /// `#rrggbb`.
    #[schema(example = "#0a7cff")]
    pub primary_color: Option<String>,
    /// `#rrggbb`.
    pub accent_color: Option<String>,
    /// An uploaded file holding the logo.
    pub logo_file_id: Option<uuid::Uuid>,
}

/// Sign-in and invitation rules.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityPolicyBody {
    /// Hours a sign-in lasts before members must sign in again (1 to 8760; default 720).
    /// Applies to sign-ins after the change.
    #[schema(example = 720, minimum = 1, maximum = 8760)]
    pub session_lifetime_hours: u32,
    /// When not empty, invitations go only to addresses at these domains.
    #[schema(example = json!(["example.com"]))]
    pub allowed_email_domains: Vec<String>,
    /// Hours an invitation stays valid (1 to 720; default 72).
    #[schema(example = 72, minimum = 1, maximum = 720)]
    pub invitation_ttl_hours: u32,
    /// When true, a session's refresh tokens work only from the network (IPv4 /24, IPv6 /64)
    /// it was opened from; a refresh from elsewhere ends the session. Applies to sign-ins
    /// after the change. Default false.
    pub bind_refresh_tokens_to_network: bool,
    /// When true, members without a second factor get, at their next sign-in or token
    /// refresh, a session that may only enroll one (`/api/v1/users/me/mfa/…`). Default false.
    pub require_mfa: bool,
}

/// Usage limits.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsBody {
    /// Members plus pending invitations allowed; `null` for no limit of the tenant's own.
    /// The installation may set a ceiling (`tenant_limits.seats`; none by default): then at
    /// most that, and `null` means that.
    #[schema(example = 25, minimum = 1)]
    pub seats: Option<u32>,
    /// Requests per minute each principal (a member's session, an API key) may make: 1 to
    /// the installation's ceiling (`tenant_limits.api_requests_per_minute`, 100 by default;
    /// the default, 100, is always taken and capped at the ceiling). A change applies within
    /// a minute.
    #[schema(example = 100, minimum = 1, maximum = 100)]
    pub api_requests_per_minute: u32,
}

/// A tenant's settings. `PUT` replaces them all: a field left out takes its default.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettingsBody {
    /// Branding.
    pub branding: BrandingBody,
    /// BCP 47 language tag.
    #[schema(example = "en")]
    pub locale: String,
    /// IANA time zone.
    #[schema(example = "Europe/Zurich")]
    pub timezone: String,
    /// Security policy.
    pub security: SecurityPolicyBody,
    /// Limits.
    pub limits: LimitsBody,
    /// Feature toggles by name (`a-z`, `0-9`, `_`, `-`, `.`; at most 100).
    #[schema(example = json!({"beta.reports": true}))]
    pub features: std::collections::BTreeMap<String, bool>,
}

impl Default for BrandingBody {
    fn default() -> Self {
        TenantSettings::default().branding.into()
    }
}

impl Default for SecurityPolicyBody {
    fn default() -> Self {
        TenantSettings::default().security.into()
    }
}

impl Default for LimitsBody {
    fn default() -> Self {
        TenantSettings::default().limits.into()
    }
}

impl Default for TenantSettingsBody {
    fn default() -> Self {
        TenantSettings::default().into()
    }
}

impl From<Branding> for BrandingBody {
    fn from(b: Branding) -> Self {
        Self {
            display_name: b.display_name,
            primary_color: b.primary_color,
            accent_color: b.accent_color,
            logo_file_id: b.logo_file_id,
        }
    }
}

impl From<SecurityPolicy> for SecurityPolicyBody {
    fn from(s: SecurityPolicy) -> Self {
        Self {
            session_lifetime_hours: s.session_lifetime_hours,
            allowed_email_domains: s.allowed_email_domains,
            invitation_ttl_hours: s.invitation_ttl_hours,
            bind_refresh_tokens_to_network: s.bind_refresh_tokens_to_network,
            require_mfa: s.require_mfa,
        }
    }
}

impl From<Limits> for LimitsBody {
    fn from(l: Limits) -> Self {
        Self {
            seats: l.seats,
            api_requests_per_minute: l.api_requests_per_minute,
        }
    }
}

impl From<TenantSettings> for TenantSettingsBody {
    fn from(s: TenantSettings) -> Self {
        Self {
            branding: s.branding.into(),
            locale: s.locale,
            timezone: s.timezone,
            security: s.security.into(),
            limits: s.limits.into(),
            features: s.features,
        }
    }
}

impl From<TenantSettingsBody> for TenantSettings {
    fn from(b: TenantSettingsBody) -> Self {
        Self {
            branding: Branding {
                display_name: b.branding.display_name,
                primary_color: b.branding.primary_color,
                accent_color: b.branding.accent_color,
                logo_file_id: b.branding.logo_file_id,
            },
            locale: b.locale,
            timezone: b.timezone,
            security: SecurityPolicy {
                session_lifetime_hours: b.security.session_lifetime_hours,
                allowed_email_domains: b.security.allowed_email_domains,
                invitation_ttl_hours: b.security.invitation_ttl_hours,
                bind_refresh_tokens_to_network: b.security.bind_refresh_tokens_to_network,
                require_mfa: b.security.require_mfa,
            },
            limits: Limits {
                seats: b.limits.seats,
                api_requests_per_minute: b.limits.api_requests_per_minute,
            },
            features: b.features,
        }
    }
}

fn respond_settings(s: StoredSettings) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(etag(s.version))
        .json(TenantSettingsBody::from(s.settings))
}

/// The current tenant's settings; `ETag` carries their version ("0" until first changed).
#[utoipa::path(get, path = "/api/v1/tenants/current/settings", tag = "tenants", operation_id = "get_tenant_settings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = TenantSettingsBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/tenants/current/settings")]
pub async fn get_settings(state: AppState, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(respond_settings(state.tenancy.settings(&auth.0).await?))
}

/// Replaces the current tenant's settings (owners and admins). Fields left out take their
/// defaults. Send `If-Match` with the `ETag` you read to refuse the change if someone else
/// changed them meanwhile.
#[utoipa::path(put, path = "/api/v1/tenants/current/settings", tag = "tenants", operation_id = "update_tenant_settings",
    security(("bearer" = [])),
    params(("If-Match" = Option<String>, Header, description = "The `ETag` last read")),
    request_body = TenantSettingsBody,
    responses(
        (status = 200, description = "The new settings", body = TenantSettingsBody),
        (status = 400, description = "Malformed JSON or If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version (`stale_version`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, named by dotted path (`security.session_lifetime_hours`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[put("/tenants/current/settings")]
pub async fn update_settings(
    state: AppState,
    auth: Auth,
    if_match: IfMatch,
    body: Json<TenantSettingsBody>,
) -> Result<HttpResponse, ApiError> {
    let stored = state
        .tenancy
        .update_settings(&auth.0, body.into_inner().into(), if_match.0)
        .await?;
    // This server applies a new API allowance at once; others within their cache's minute.
    state.allowances.remember(
        auth.0.tenant_id,
        stored.settings.limits.api_requests_per_minute,
    );
    Ok(respond_settings(stored))
}
