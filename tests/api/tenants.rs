//! The current tenant: reading, optimistic updates, permissions and isolation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};
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
