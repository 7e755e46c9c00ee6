//! HTTP handlers, one module per resource. Each handler extracts, calls one service method
//! and maps the result.

pub mod api_keys;
pub mod auth;
pub mod health;
pub mod invitations;
pub mod locations;
pub mod members;
pub mod mfa;
pub mod pages;
pub mod permissions;
pub mod roles;
pub mod sessions;
pub mod tenants;
pub mod users;
pub mod well_known;

use std::sync::Arc;

use actix_web::web;
use tenantry_platform::Platform;

/// The shared application state handlers receive.
pub type AppState = web::Data<Arc<Platform>>;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::health)
        .service(health::health_db)
        .service(well_known::jwks)
        .service(pages::verify_email)
        .service(pages::verify_email_js)
        .service(pages::reset_password)
        .service(pages::reset_password_js)
        .service(pages::accept_invite)
        .service(pages::accept_invite_js)
        .service(
            web::scope("/api/v1")
                .service(auth::register)
                .service(auth::login)
                .service(auth::refresh)
                .service(auth::logout)
                .service(auth::verify_email)
                .service(auth::logout_all)
                .service(auth::change_password)
                .service(auth::resend_verification)
                .service(auth::forgot_password)
                .service(auth::reset_password)
                .service(invitations::preview)
                .service(invitations::accept)
                .service(sessions::list_sessions)
                .service(sessions::revoke_session)
                .service(auth::switch_tenant)
                .service(permissions::list)
                .service(users::me)
                .service(users::my_tenants)
                .service(tenants::get_current)
                .service(tenants::update_current)
                .service(tenants::get_settings)
                .service(tenants::update_settings)
                .service(invitations::create)
                .service(invitations::list)
                .service(invitations::get_one)
                .service(invitations::resend)
                .service(invitations::revoke)
                .service(members::transfer_ownership)
                .service(members::list)
                .service(members::get_one)
                .service(members::update)
                .service(members::change_role)
                .service(members::deactivate)
                .service(members::reactivate)
                .service(members::remove)
                .service(members::get_expertise)
                .service(members::set_expertise)
                .service(locations::list)
                .service(locations::create)
                .service(locations::get_one)
                .service(locations::update)
                .service(locations::remove)
                .service(locations::get_settings)
                .service(locations::update_settings)
                .service(locations::list_members)
                .service(locations::set_member)
                .service(locations::remove_member)
                .service(roles::list)
                .service(roles::create)
                .service(roles::get_one)
                .service(roles::update)
                .service(roles::remove)
                .service(roles::member_roles)
                .service(roles::grant)
                .service(roles::revoke)
                .service(api_keys::create)
                .service(api_keys::list)
                .service(api_keys::get_one)
                .service(api_keys::update)
                .service(api_keys::revoke)
                .service(mfa::status)
                .service(mfa::enroll)
                .service(mfa::confirm)
                .service(mfa::disable)
                .service(mfa::regenerate)
                .service(mfa::verify),
        );
}
