//! The few pages Tenantry serves itself, for links in its emails when no product front end is
//! configured (`app_url`). They are static, change nothing when opened, and act only through
//! the public API.

use actix_web::http::header;
use actix_web::{HttpResponse, get};

/// Scripts from this origin, requests to the API on this origin, nothing else.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                        base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A static file under [`PAGE_CSP`]. Scripts may be cached for an hour; pages carry no
/// caching header (they are static and hold no secret: tokens stay in the URL fragment).
fn page(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP));
    if content_type.starts_with("text/javascript") {
        res.insert_header((header::CACHE_CONTROL, "public, max-age=3600"));
    }
    res.body(body)
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The page a verification email links to; it confirms the address with one button.
#[get("/verify-email")]
pub async fn verify_email() -> HttpResponse {
    page(HTML, include_str!("../pages/verify-email.html"))
}

/// The verification page's script.
#[get("/pages/verify-email.js")]
pub async fn verify_email_js() -> HttpResponse {
    page(JS, include_str!("../pages/verify-email.js"))
}

/// The page a password-reset email links to; it sets the new password.
#[get("/reset-password")]
pub async fn reset_password() -> HttpResponse {
    page(HTML, include_str!("../pages/reset-password.html"))
}

/// The reset page's script.
#[get("/pages/reset-password.js")]
pub async fn reset_password_js() -> HttpResponse {
    page(JS, include_str!("../pages/reset-password.js"))
}

/// The page an invitation email links to; it accepts the invitation, asking for a name and
/// password only when the address has no account yet.
#[get("/accept-invite")]
pub async fn accept_invite() -> HttpResponse {
    page(HTML, include_str!("../pages/accept-invite.html"))
}

/// The invitation page's script.
#[get("/pages/accept-invite.js")]
pub async fn accept_invite_js() -> HttpResponse {
    page(JS, include_str!("../pages/accept-invite.js"))
}
