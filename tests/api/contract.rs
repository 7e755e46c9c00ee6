//! What the API document says a request may be, the server takes, and what it says a request
//! may not be, the server refuses: the forms of cursors, `If-Match` and numbers, and the
//! methods each resource offers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;

async fn what_the_document_allows_the_server_takes(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let t = &owner.access_token;
    // Cursors of the documented forms are positions, whoever made them.
    let id = "0190cafe00007000800000000000beef";
    for path in [
        format!("/api/v1/locations?cursor={id}"),
        format!("/api/v1/users?cursor={id}4d"),
        format!("/api/v1/roles?cursor={id}00ff"),
        "/api/v1/users?cursor=".to_owned(),
    ] {
        assert_eq!(
            app.get_authed(&path, t).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    for path in [
        format!("/api/v1/locations?cursor={id}4d"),
        format!("/api/v1/users?cursor={}", id.to_uppercase()),
    ] {
        assert_problem(
            app.get_authed(&path, t).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }

    // `If-Match` takes a weak tag; an empty one matches no version; anything else is refused.
    let put = |if_match: &'static [u8], name: &'static str| {
        let req = app
            .client
            .put(app.url("/api/v1/tenants/current"))
            .bearer_auth(t)
            .header(
                "if-match",
                reqwest::header::HeaderValue::from_bytes(if_match).unwrap(),
            )
            .json(&json!({"name": name}));
        async move { req.send().await.unwrap() }
    };
    assert_eq!(put(b"W/\"1\"", "Acme Two").await.status(), StatusCode::OK);
    assert_problem(
        put(b"", "Acme Three").await,
        StatusCode::PRECONDITION_FAILED,
        "stale_version",
    )
    .await;
    for bad in [
        &b"2"[..],
        b"\"2",
        b"W/W/\"2\"",
        b"\"0000000002\"",
        b"\xc2\x84",
    ] {
        assert_problem(
            put(bad, "Acme Four").await,
            StatusCode::BAD_REQUEST,
            "invalid_if_match",
        )
        .await;
    }
    let tenant = app.get_json("/api/v1/tenants/current", t).await;
    assert_eq!(tenant["name"], "Acme Two");

    // An integer may carry a zero fraction, as JSON Schema counts it.
    let path = format!("/api/v1/users/{}/expertise", owner.user_id);
    let res = app
        .put_authed(
            &path,
            t,
            &json!({"tags": [], "hourly_rate": {"amount_minor": 8500.0, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["hourly_rate"]["amount_minor"],
        8500
    );

    // A path that names a resource without the method is a 405, not an id that is no id.
    let res = app
        .client
        .patch(app.url("/api/v1/users/me"))
        .bearer_auth(t)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}
on_both_databases!(what_the_document_allows_the_server_takes);

/// The document the server serves states every request string's form and this
/// installation's limits.
async fn the_served_document_states_the_installations_limits(app: TestApp) {
    let doc: Value = app.get_public_json("/api/openapi.json").await;
    let limits = &doc["components"]["schemas"]["LimitsBody"]["properties"];
    assert_eq!(limits["api_requests_per_minute"]["maximum"], 40);
    assert_eq!(limits["seats"]["maximum"], 7);
    let name = &doc["components"]["schemas"]["RegisterRequest"]["properties"]["name"];
    assert_eq!(name["maxLength"], 100);
    assert!(
        name["pattern"].as_str().unwrap().starts_with("^(?!"),
        "{name}"
    );
}
on_both_databases!(
    the_served_document_states_the_installations_limits,
    settings = |s| {
        s.tenant_limits = tenantry_tenancy::Ceilings {
            api_requests_per_minute: 40,
            seats: Some(7),
        };
    }
);
