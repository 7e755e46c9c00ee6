//! The catalogue of domain errors as the server answers them.

use tenantry_identity::{IdentityError as I, SkipReason, TokenKind};
use tenantry_kernel::{AccessDenied, Permission, PermissionSet, Role, Throttled};
use tenantry_kernel::{TenantId, ValidationErrors};
use tenantry_tenancy::TenancyError as T;

use super::ApiError;

/// Every domain error's status and code, in one place to review. The matches list every
/// variant, so a new one fails to compile until it is listed here too.
#[test]
fn every_domain_error_answers_with_its_status_and_code() {
    let tenancy = |e: T| match &e {
        T::NotFound
        | T::Forbidden(_)
        | T::StaleVersion(_)
        | T::AlreadyMember
        | T::MemberNotFound
        | T::LastOwner
        | T::RoleNotManageable(_)
        | T::SelfTarget(_)
        | T::OwnerOnly(_)
        | T::MemberDeactivated
        | T::MemberAlready(_)
        | T::SeatLimitReached { .. }
        | T::LocationNotFound
        | T::NotLocationMember
        | T::LocationCodeTaken
        | T::RoleNotFound
        | T::RoleKeyTaken
        | T::SystemRoleImmutable
        | T::RoleLimitReached(_)
        | T::PermissionsNotHeld(_)
        | T::RoleAlreadyGranted
        | T::GrantNotFound
        | T::SystemRoleRequired
        | T::NotOnLocation
        | T::OwnerIsTenantWide
        | T::Invalid(_)
        | T::Database(_) => ApiError::from(e),
    };
    let identity = |e: I| match &e {
        I::Invalid(_)
        | I::EmailTaken
        | I::InvalidCredentials
        | I::InvalidAccessToken
        | I::SessionEnded
        | I::InvalidRefreshToken
        | I::RefreshTokenReused
        | I::TenantSelectionRequired(_)
        | I::NotAMember
        | I::NetworkChanged
        | I::TenantSuspended
        | I::MembershipDeactivated
        | I::InvalidToken(_)
        | I::TokenExpired(_)
        | I::TokenUsed(_)
        | I::SessionNotFound
        | I::WrongPassword
        | I::AlreadyVerified
        | I::RoleNotGrantable(_)
        | I::NothingInvited(_)
        | I::InvitationNotFound
        | I::InvitationNotPending(_)
        | I::InvitationRevoked
        | I::ResendTooSoon(_)
        | I::AccountDisabled
        | I::UserNotFound
        | I::Forbidden(_)
        | I::UserOnly
        | I::ApiKeyNotFound
        | I::ApiKeyRevoked
        | I::ApiKeyExpired
        | I::MfaNotEnabled
        | I::MfaAlreadyEnabled
        | I::InvalidMfaProof
        | I::MfaCodeRejected
        | I::InvalidMfaToken
        | I::ApiKeyNotActive(_)
        | I::TooManyAttempts(_)
        | I::Overloaded
        | I::Tenancy(_)
        | I::Database(_)
        | I::Unexpected(_) => ApiError::from(e),
    };
    let denied = AccessDenied(Permission::TenantUpdate);
    let throttled = Throttled {
        limit: 5,
        retry_after_secs: 12,
        reset_secs: 60,
    };
    let db = || sea_orm::DbErr::Custom("boom".into());
    let cases: Vec<(ApiError, u16, &str)> = vec![
        (tenancy(T::NotFound), 404, "not_found"),
        (tenancy(T::Forbidden(denied)), 403, "forbidden"),
        (tenancy(T::StaleVersion(3)), 412, "stale_version"),
        (tenancy(T::AlreadyMember), 409, "already_member"),
        (tenancy(T::MemberNotFound), 404, "not_found"),
        (tenancy(T::LastOwner), 409, "last_owner"),
        (
            tenancy(T::RoleNotManageable(Role::Owner)),
            403,
            "role_not_grantable",
        ),
        (tenancy(T::SelfTarget("remove")), 409, "cannot_target_self"),
        (tenancy(T::OwnerOnly("do this")), 403, "owner_only"),
        (tenancy(T::MemberDeactivated), 409, "member_deactivated"),
        (
            tenancy(T::MemberAlready("active")),
            409,
            "member_state_unchanged",
        ),
        (
            tenancy(T::SeatLimitReached {
                limit: 1,
                used: 1,
                requested: 1,
            }),
            409,
            "seat_limit_reached",
        ),
        (tenancy(T::LocationNotFound), 404, "not_found"),
        (tenancy(T::NotLocationMember), 403, "not_a_location_member"),
        (tenancy(T::LocationCodeTaken), 409, "location_code_taken"),
        (tenancy(T::RoleNotFound), 404, "not_found"),
        (tenancy(T::RoleKeyTaken), 409, "role_key_taken"),
        (
            tenancy(T::SystemRoleImmutable),
            409,
            "system_role_immutable",
        ),
        (tenancy(T::RoleLimitReached(50)), 409, "role_limit_reached"),
        (
            tenancy(T::PermissionsNotHeld(PermissionSet::empty())),
            403,
            "permission_not_held",
        ),
        (tenancy(T::RoleAlreadyGranted), 409, "role_already_granted"),
        (tenancy(T::GrantNotFound), 404, "not_found"),
        (tenancy(T::SystemRoleRequired), 409, "system_role_required"),
        (tenancy(T::NotOnLocation), 409, "not_on_location"),
        (tenancy(T::OwnerIsTenantWide), 409, "owner_is_tenant_wide"),
        (
            tenancy(T::Invalid(ValidationErrors::default())),
            422,
            "validation_failed",
        ),
        (tenancy(T::Database(db())), 500, "internal_error"),
        (
            identity(I::Invalid(ValidationErrors::default())),
            422,
            "validation_failed",
        ),
        (identity(I::EmailTaken), 409, "email_taken"),
        (identity(I::InvalidCredentials), 401, "invalid_credentials"),
        (identity(I::InvalidAccessToken), 401, "invalid_token"),
        (identity(I::SessionEnded), 401, "session_ended"),
        (
            identity(I::InvalidRefreshToken),
            401,
            "invalid_refresh_token",
        ),
        (identity(I::RefreshTokenReused), 401, "refresh_token_reused"),
        (
            identity(I::TenantSelectionRequired(vec![(
                TenantId::new(),
                "A".into(),
            )])),
            409,
            "tenant_selection_required",
        ),
        (identity(I::NotAMember), 403, "not_a_member"),
        (identity(I::NetworkChanged), 401, "session_network_changed"),
        (identity(I::TenantSuspended), 403, "tenant_suspended"),
        (
            identity(I::MembershipDeactivated),
            403,
            "membership_deactivated",
        ),
        (
            identity(I::InvalidToken(TokenKind::Verification)),
            400,
            "invalid_token",
        ),
        (
            identity(I::TokenExpired(TokenKind::PasswordReset)),
            410,
            "token_expired",
        ),
        (
            identity(I::TokenUsed(TokenKind::Invitation)),
            409,
            "token_used",
        ),
        (identity(I::SessionNotFound), 404, "not_found"),
        (identity(I::WrongPassword), 403, "wrong_password"),
        (identity(I::AlreadyVerified), 409, "already_verified"),
        (
            identity(I::RoleNotGrantable(Role::Admin)),
            403,
            "role_not_grantable",
        ),
        (
            identity(I::NothingInvited(vec![(
                "a@example.com".into(),
                SkipReason::AlreadyMember,
            )])),
            409,
            "already_member",
        ),
        (
            identity(I::NothingInvited(vec![(
                "a@example.com".into(),
                SkipReason::AlreadyInvited,
            )])),
            409,
            "already_invited",
        ),
        (
            identity(I::NothingInvited(vec![
                ("a@example.com".into(), SkipReason::AlreadyMember),
                ("b@example.com".into(), SkipReason::AlreadyInvited),
            ])),
            409,
            "invitation_conflict",
        ),
        (identity(I::InvitationNotFound), 404, "not_found"),
        (
            identity(I::InvitationNotPending("accepted")),
            409,
            "invitation_not_pending",
        ),
        (identity(I::InvitationRevoked), 410, "invitation_revoked"),
        (identity(I::ResendTooSoon(30)), 429, "resend_too_soon"),
        (identity(I::AccountDisabled), 403, "account_disabled"),
        (identity(I::UserNotFound), 404, "not_found"),
        (identity(I::Forbidden(denied)), 403, "forbidden"),
        (identity(I::UserOnly), 403, "user_only"),
        (identity(I::ApiKeyNotFound), 404, "not_found"),
        (identity(I::ApiKeyRevoked), 401, "api_key_revoked"),
        (identity(I::ApiKeyExpired), 401, "api_key_expired"),
        (identity(I::MfaNotEnabled), 409, "mfa_not_enabled"),
        (identity(I::MfaAlreadyEnabled), 409, "mfa_already_enabled"),
        (identity(I::InvalidMfaProof), 403, "invalid_mfa_proof"),
        (identity(I::MfaCodeRejected), 401, "invalid_mfa_code"),
        (identity(I::InvalidMfaToken), 401, "invalid_mfa_token"),
        (
            identity(I::ApiKeyNotActive("revoked")),
            409,
            "api_key_not_active",
        ),
        (identity(I::TooManyAttempts(throttled)), 429, "rate_limited"),
        (identity(I::Overloaded), 503, "overloaded"),
        (identity(I::Tenancy(T::LastOwner)), 409, "last_owner"),
        (identity(I::Database(db())), 500, "internal_error"),
        (
            identity(I::Unexpected(anyhow::anyhow!("boom"))),
            500,
            "internal_error",
        ),
    ];
    for (e, status, code) in cases {
        assert_eq!((e.0.status.as_u16(), e.0.code), (status, code), "{e}");
    }
}

/// What a domain error adds beyond its status and code arrives as it did from the server's
/// own mapping: extension members, titles, and the challenge, retry and rate-limit headers.
#[test]
fn extension_members_titles_and_headers_come_from_the_error() {
    use actix_web::ResponseError as _;
    let header = |e: &ApiError, name: &str| {
        e.0.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.clone())
    };
    let tenant = TenantId::new();
    let e = ApiError::from(I::TenantSelectionRequired(vec![(tenant, "Acme".into())]));
    assert_eq!(
        e.0.extensions["tenants"],
        serde_json::json!([{ "id": tenant.0, "name": "Acme" }])
    );
    let e = ApiError::from(I::NothingInvited(vec![(
        "a@example.com".into(),
        SkipReason::AlreadyInvited,
    )]));
    assert_eq!(
        e.0.extensions["skipped"],
        serde_json::json!([{ "email": "a@example.com", "code": "already_invited" }])
    );
    let e = ApiError::from(I::ResendTooSoon(30));
    assert_eq!(header(&e, "retry-after").as_deref(), Some("30"));
    assert_eq!(e.0.title, "Too many requests");
    let e = ApiError::from(I::InvalidAccessToken);
    assert_eq!(
        header(&e, "www-authenticate").as_deref(),
        Some("Bearer realm=\"tenantry\", error=\"invalid_token\"")
    );
    assert_eq!(e.0.title, "Authentication required");
    let e = ApiError::from(I::InvalidCredentials);
    assert_eq!(header(&e, "www-authenticate"), None);
    assert_eq!(e.0.title, "Authentication failed");
    let e = ApiError::from(I::TooManyAttempts(Throttled {
        limit: 5,
        retry_after_secs: 12,
        reset_secs: 60,
    }));
    assert_eq!(header(&e, "retry-after").as_deref(), Some("12"));
    assert_eq!(header(&e, "ratelimit-limit").as_deref(), Some("5"));
    assert_eq!(header(&e, "ratelimit-remaining").as_deref(), Some("0"));
    let titles = [
        (
            ApiError::from(I::InvalidToken(TokenKind::Verification)),
            "Invalid token",
        ),
        (
            ApiError::from(I::TokenExpired(TokenKind::Verification)),
            "Token expired",
        ),
        (ApiError::from(I::InvitationRevoked), "Invitation revoked"),
        (ApiError::from(T::StaleVersion(1)), "Resource changed"),
        (ApiError::from(I::Overloaded), "Service busy"),
    ];
    for (e, title) in titles {
        assert_eq!(e.0.title, title, "{e}");
    }
    let e = ApiError::from(I::Overloaded);
    assert_eq!(header(&e, "retry-after").as_deref(), Some("1"));
    // An internal failure says nothing of its cause.
    let e = ApiError::from(I::Unexpected(anyhow::anyhow!("secret detail")));
    assert_eq!(e.0.detail, None);
    assert_eq!(e.status_code().as_u16(), 500);
}
