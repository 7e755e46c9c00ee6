//! The current tenant: reading, optimistic updates, permissions and isolation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, problem_fields};
use crate::on_both_databases;

async fn an_owner_updates_the_tenant_with_optimistic_concurrency(app: TestApp) {
    let owner = app.register("owner@example.com", "Old Name").await;
    let res = app
        .get_authed("/api/v1/tenants/current", &owner.access_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let tenant: Value = res.json().await.unwrap();
    assert_eq!(tenant["slug"], "old-name");

    let put = |if_match: &'static str, name: &'static str| {
        let req = app
            .client
            .put(app.url("/api/v1/tenants/current"))
            .bearer_auth(&owner.access_token)
            .header("if-match", if_match)
            .json(&json!({"name": name}));
        async move { req.send().await.unwrap() }
    };
    let res = put("\"1\"", "New Name").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["name"], "New Name");
    assert_eq!(updated["version"], 2);

    // A writer holding the old version is refused and changes nothing.
    assert_problem(
        put("\"1\"", "Lost Update").await,
        StatusCode::PRECONDITION_FAILED,
        "stale_version",
    )
    .await;
    let now: Value = app
        .get_authed("/api/v1/tenants/current", &owner.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["name"], "New Name");

    assert_problem(
        put("\"2\"", "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        put("garbage", "X").await,
        StatusCode::BAD_REQUEST,
        "invalid_if_match",
    )
    .await;
}
on_both_databases!(an_owner_updates_the_tenant_with_optimistic_concurrency);

async fn a_user_cannot_reach_another_tenant(app: TestApp) {
    let a = app.register("a@example.com", "Tenant A").await;
    let b = app.register("b@example.com", "Tenant B").await;
    // Signing in to a tenant one does not belong to is refused.
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": a.email, "password": a.password, "tenant_id": b.tenant_id}),
        )
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, "not_a_member").await;
    // A's writes land in A only.
    let res = app
        .client
        .put(app.url("/api/v1/tenants/current"))
        .bearer_auth(&a.access_token)
        .json(&json!({"name": "Renamed A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen_by_b: Value = app
        .get_authed("/api/v1/tenants/current", &b.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen_by_b["name"], "Tenant B");
    assert_eq!(seen_by_b["id"], b.tenant_id.as_str());
}
on_both_databases!(a_user_cannot_reach_another_tenant);

async fn tenant_settings_are_read_replaced_checked_and_applied(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let path = "/api/v1/tenants/current/settings";
    let res = app.get_authed(path, &owner.access_token).await;
    assert_eq!(res.headers()["etag"], "\"0\"");
    let defaults: Value = res.json().await.unwrap();
    assert_eq!(defaults["locale"], "en");
    assert_eq!(defaults["timezone"], "UTC");
    assert_eq!(defaults["security"]["session_lifetime_hours"], 720);
    assert_eq!(defaults["security"]["invitation_ttl_hours"], 72);
    assert_eq!(defaults["limits"]["seats"], Value::Null);
    assert_eq!(defaults["limits"]["api_requests_per_minute"], 100);
    assert_eq!(defaults["security"]["require_mfa"], false);

    // Every bad field is named by its path, and nothing changes.
    let res = app
        .put_authed(
            path,
            &owner.access_token,
            &json!({
                "branding": {"primary_color": "blue"},
                "timezone": "Mars/Olympus_Mons",
                "security": {"session_lifetime_hours": 0},
                "limits": {"api_requests_per_minute": 0},
                "features": {"Not Valid": true},
            }),
        )
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields = problem_fields(&body);
    assert_eq!(
        fields,
        [
            "branding.primary_color",
            "timezone",
            "security.session_lifetime_hours",
            "limits.api_requests_per_minute",
            "features.Not Valid"
        ]
    );
    let res = app
        .put_authed(path, &owner.access_token, &json!({"colour": "red"}))
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.get_json(path, &owner.access_token).await, defaults);

    let wanted = json!({
        "branding": {"display_name": "Acme Support", "primary_color": "#0a7cff", "accent_color": null, "logo_file_id": null},
        "locale": "de-CH",
        "timezone": "Europe/Zurich",
        "security": {"session_lifetime_hours": 2, "allowed_email_domains": ["acme.test"], "invitation_ttl_hours": 24, "bind_refresh_tokens_to_network": false, "require_mfa": false},
        "limits": {"seats": 10, "api_requests_per_minute": 60},
        "features": {"beta.reports": true},
    });
    let res = app.put_authed(path, &owner.access_token, &wanted).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"1\"");
    assert_eq!(res.json::<Value>().await.unwrap(), wanted);
    assert_eq!(app.get_json(path, &owner.access_token).await, wanted);

    // A stale If-Match is refused.
    let res = app
        .client
        .put(app.url(path))
        .bearer_auth(&owner.access_token)
        .header("if-match", "\"0\"")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::PRECONDITION_FAILED, "stale_version").await;

    // The policy applies: sign-ins last two hours, invitations one day.
    let login: Value = app
        .login(&owner.email, &owner.password)
        .await
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap();
    let sessions = app.get_json("/api/v1/auth/sessions", access).await;
    let current = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        current["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires - chrono::Utc::now();
    assert!(
        lifetime <= chrono::Duration::hours(2) && lifetime > chrono::Duration::minutes(119),
        "{lifetime}"
    );
    let res = app
        .post_authed(
            "/api/v1/invitations",
            access,
            Some(json!({"emails": ["new@acme.test"], "role": "member"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let ttl = body["items"][0]["expires_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        - chrono::Utc::now();
    assert!(ttl <= chrono::Duration::hours(24) && ttl > chrono::Duration::hours(23));

    // Members read the settings but may not change them.
    let token = app.mail.invitation_token("new@acme.test").await;
    let accepted: Value = app
        .post_json(
            "/api/v1/auth/accept-invite",
            &json!({"token": token, "name": "New", "password": "long enough password"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let member = accepted["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_json(path, &member).await, wanted);
    assert_problem(
        app.put_authed(path, &member, &json!({})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
on_both_databases!(tenant_settings_are_read_replaced_checked_and_applied);

/// PUTs `limits` as the tenant's settings and answers the response.
async fn set_limits(
    app: &TestApp,
    owner: &crate::helpers::Account,
    limits: Value,
) -> reqwest::Response {
    app.put_authed(
        "/api/v1/tenants/current/settings",
        &owner.access_token,
        &json!({ "limits": limits }),
    )
    .await
}

async fn a_tenant_cannot_raise_its_own_allowances(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let bad = assert_problem(
        set_limits(&app, &owner, json!({"api_requests_per_minute": 1_000_000})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem_fields(&bad), ["limits.api_requests_per_minute"]);
    let res = set_limits(
        &app,
        &owner,
        json!({"api_requests_per_minute": 100, "seats": 5000}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "no seat ceiling by default");
    // The request allowance in effect is still the default.
    let res = app.get_authed("/api/v1/users", &owner.access_token).await;
    assert_eq!(res.headers()["ratelimit-limit"], "100");
}
on_both_databases!(a_tenant_cannot_raise_its_own_allowances);

async fn configured_ceilings_bound_what_a_tenant_sets_and_has(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    // With no limits of its own, the tenant has the ceilings.
    let settings = app
        .get_json("/api/v1/tenants/current/settings", &owner.access_token)
        .await;
    assert_eq!(
        settings["limits"],
        json!({"seats": 3, "api_requests_per_minute": 10})
    );
    let res = app.get_authed("/api/v1/users", &owner.access_token).await;
    assert_eq!(res.headers()["ratelimit-limit"], "10");
    let bad = assert_problem(
        set_limits(
            &app,
            &owner,
            json!({"seats": 4, "api_requests_per_minute": 11}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem_fields(&bad),
        ["limits.seats", "limits.api_requests_per_minute"]
    );
    let res = set_limits(
        &app,
        &owner,
        json!({"seats": 2, "api_requests_per_minute": 10}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Two seats: the owner and one invitation.
    let res = app
        .post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["a@example.com", "b@example.com"], "role": "member"})),
        )
        .await;
    assert_problem(res, StatusCode::CONFLICT, "seat_limit_reached").await;
}
on_both_databases!(
    configured_ceilings_bound_what_a_tenant_sets_and_has,
    settings = |s| {
        s.tenant_limits = tenantry_tenancy::Ceilings {
            api_requests_per_minute: 10,
            seats: Some(3),
        };
    }
);
