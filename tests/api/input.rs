//! What the edge takes from a request: JSON objects only, no control characters in any
//! string, one line where a field is one line. Each refusal is a 422 naming the field, and
//! nothing is stored.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, problem_fields};
use crate::on_both_databases;

async fn control_characters_are_refused_wherever_text_comes_in(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let t = &owner.access_token;
    for (path, body, field) in [
        (
            "/api/v1/locations",
            json!({"name": "Zurich", "address": "a\u{0}b"}),
            "address",
        ),
        (
            "/api/v1/roles",
            json!({"key": "viewer", "name": "Viewer", "description": "a\u{0}b",
                   "permissions": ["users.read"]}),
            "description",
        ),
        (
            "/api/v1/invitations",
            json!({"emails": ["grace@example.com"], "message": "Hello\u{0}"}),
            "message",
        ),
        (
            "/api/v1/invitations",
            json!({"emails": ["grace@example.com", "ada\u{7}@example.com"]}),
            "emails[1]",
        ),
        (
            "/api/v1/locations",
            json!({"name": "Bern\u{1b}[2J"}),
            "name",
        ),
    ] {
        let bad = assert_problem(
            app.post_authed(path, t, Some(body)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(problem_fields(&bad), [field], "{path}: {bad}");
        assert_eq!(bad["errors"][0]["code"], "invalid_characters");
    }
    let bad = assert_problem(
        app.get_authed("/api/v1/users?q=%00", t).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem_fields(&bad), ["q"]);

    // Nothing of the refused requests was stored.
    let locations = app.get_json("/api/v1/locations", t).await;
    assert_eq!(locations["items"], json!([]));
    let roles = app.get_json("/api/v1/roles", t).await;
    assert!(
        roles["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["key"] != "viewer")
    );
    let invitations = app.get_json("/api/v1/invitations", t).await;
    assert_eq!(invitations["items"], json!([]));

    // A name is one line; an address may take several.
    let bad = assert_problem(
        app.post_authed(
            "/api/v1/locations",
            t,
            Some(json!({"name": "Zurich\nMain"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem_fields(&bad), ["name"]);
    let res = app
        .post_authed(
            "/api/v1/locations",
            t,
            Some(json!({"name": "Zurich", "address": "Bahnhofplatz 1\n8001 Zürich"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["address"], "Bahnhofplatz 1\n8001 Zürich");
}
on_both_databases!(control_characters_are_refused_wherever_text_comes_in);

async fn a_json_array_is_never_taken_for_an_object(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let ada = app
        .join(&owner, "ada@example.com", "Ada Lovelace", "member")
        .await;
    let t = &owner.access_token;
    let ada_path = format!("/api/v1/users/{}", ada.user_id);
    let cases = [
        (
            app.patch_authed(&ada_path, t, &json!(["CTO via array", "+41 44 668 18 00"]))
                .await,
            "body",
        ),
        (
            app.put_authed("/api/v1/tenants/current", t, &json!(["Evil Corp"]))
                .await,
            "body",
        ),
        (
            app.put_authed(
                &format!("{ada_path}/expertise"),
                t,
                &json!([["hacking"], null]),
            )
            .await,
            "body",
        ),
        (
            app.put_authed(
                "/api/v1/tenants/current/settings",
                t,
                &json!({"branding": ["Evil Corp", "#000000"]}),
            )
            .await,
            "branding",
        ),
    ];
    for (res, field) in cases {
        let bad = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(problem_fields(&bad), [field], "{bad}");
        assert_eq!(bad["errors"][0]["code"], "invalid_type");
    }
    let member = app.get_json(&ada_path, t).await;
    assert_eq!(member["job_title"], Value::Null);
    assert_eq!(member["phone"], Value::Null);
    assert_eq!(member["expertise"]["tags"], json!([]));
    let tenant = app.get_json("/api/v1/tenants/current", t).await;
    assert_eq!(tenant["name"], "Acme");
    let settings = app.get_authed("/api/v1/tenants/current/settings", t).await;
    assert_eq!(
        settings.headers()["etag"],
        "\"0\"",
        "the settings never changed"
    );
}
on_both_databases!(a_json_array_is_never_taken_for_an_object);
