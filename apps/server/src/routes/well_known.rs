//! Documents published at the root for other parties.

use actix_web::{HttpResponse, get};

use super::AppState;

/// The JSON Web Key Set that verifies Tenantry's access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", operation_id = "get_jwks",
    responses((status = 200, description = "JSON Web Key Set (RFC 7517)", body = Object)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: AppState) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.identity.jwks())
}
