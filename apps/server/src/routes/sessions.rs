//! The caller's signed-in sessions: list them, end one.

use actix_web::{HttpResponse, delete, get, web};
use serde::Serialize;
use tenantry_identity::SessionInfo;
use tenantry_kernel::SessionId;
use utoipa::ToSchema;

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, PageQuery};
use crate::input::Query;

/// One signed-in session (a device or browser).
#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    /// The session's id.
    pub id: uuid::Uuid,
    /// When the user signed in.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the session last refreshed its tokens.
    pub last_used_at: chrono::DateTime<chrono::Utc>,
    /// When the session ends unless it is revoked first.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The client address at sign-in.
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    /// The client's `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl From<SessionInfo> for SessionResponse {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: s.id.0,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
            current: s.current,
        }
    }
}

/// A page of sessions, newest first.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    /// The sessions on this page.
    pub items: Vec<SessionResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the caller's live sessions in the current tenant, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", operation_id = "list_sessions",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of sessions", body = SessionList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`, or an unknown parameter", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/auth/sessions")]
pub async fn list_sessions(
    state: AppState,
    auth: Auth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .identity
        .list_sessions(&auth.0, query.request()?)
        .await?;
    Ok(HttpResponse::Ok().json(SessionList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Ends one of the caller's sessions (signs that device out); its tokens stop working at once.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth", operation_id = "revoke_session",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Session ended"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live session of the caller's has this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[delete("/auth/sessions/{id}")]
pub async fn revoke_session(
    state: AppState,
    auth: Auth,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .identity
        .revoke_session(&auth.0, SessionId(id.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
