//! Liveness and readiness.

use actix_web::{HttpResponse, get};
use sea_orm::{ConnectionTrait, Statement};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::error::ApiError;

/// Health status.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when healthy.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The database backend, on the readiness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health", operation_id = "get_health",
    responses((status = 200, description = "The process is alive", body = Health)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        database: None,
    })
}

/// Readiness: the database answers a query.
#[utoipa::path(get, path = "/health/db", tag = "health", operation_id = "get_health_db",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/health/db")]
pub async fn health_db(state: AppState) -> Result<HttpResponse, ApiError> {
    let backend = state.db.get_database_backend();
    match state
        .db
        .execute_raw(Statement::from_string(backend, "SELECT 1"))
        .await
    {
        Ok(_) => Ok(HttpResponse::Ok().json(Health {
            status: "ok",
            database: Some(if state.settings.is_sqlite() {
                "sqlite"
            } else {
                "postgres"
            }),
        })),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            Err(ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "Service unavailable",
            )
            .detail("the database does not answer"))
        }
    }
}
