//! Locations over HTTP: CRUD with versions, members, settings overrides, acting in a
//! location by header or token claim with grants that count only there, invitations into a
//! location, and isolation between tenants.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Account, TestApp, assert_problem, item_names as names, problem_fields};
use crate::on_both_databases;

/// Creates a location as `who` and answers its id.
async fn create(app: &TestApp, who: &Account, name: &str, code: Option<&str>) -> String {
    let res = app
        .post_authed(
            "/api/v1/locations",
            &who.access_token,
            Some(json!({"name": name, "code": code})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "create {name}");
    assert_eq!(res.headers()["etag"], "\"1\"");
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends `method path` with `body` as `token`, acting in `location` when given.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    location: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(l) = location {
        req = req.header("x-location-id", l);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn locations_are_created_read_changed_and_deleted(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let zurich = create(&app, &owner, " Zurich HB ", Some("ZH-01")).await;
    let geneva = create(&app, &owner, "Geneva", None).await;

    let list = app
        .get_json("/api/v1/locations", &member.access_token)
        .await;
    assert_eq!(names(&list), ["Geneva", "Zurich HB"]);
    let page = app
        .get_json("/api/v1/locations?limit=1", &member.access_token)
        .await;
    assert_eq!(names(&page), ["Geneva"]);
    let next = app
        .get_json(
            &format!(
                "/api/v1/locations?limit=1&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &member.access_token,
        )
        .await;
    assert_eq!(names(&next), ["Zurich HB"]);

    assert_problem(
        app.post_authed(
            "/api/v1/locations",
            &owner.access_token,
            Some(json!({"name": "Other", "code": "ZH-01"})),
        )
        .await,
        StatusCode::CONFLICT,
        "location_code_taken",
    )
    .await;
    let bad = assert_problem(
        app.post_authed(
            "/api/v1/locations",
            &owner.access_token,
            Some(json!({"name": "", "code": "has space"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(bad["errors"][0]["field"], "name");
    assert_eq!(bad["errors"][1]["field"], "code");
    assert_problem(
        app.post_authed(
            "/api/v1/locations",
            &member.access_token,
            Some(json!({"name": "Mine"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let path = format!("/api/v1/locations/{zurich}");
    let patch = |if_match: &'static str, body: Value| {
        let req = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&owner.access_token)
            .header("if-match", if_match)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let res = patch("\"1\"", json!({"address": "Bahnhofplatz, 8001 Zürich"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["address"], "Bahnhofplatz, 8001 Zürich");
    assert_eq!(changed["code"], "ZH-01");
    assert_problem(
        patch("\"1\"", json!({"name": "Lost"})).await,
        StatusCode::PRECONDITION_FAILED,
        "stale_version",
    )
    .await;
    let res = patch("\"2\"", json!({"code": null})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["code"], Value::Null);
    assert_problem(
        send(
            &app,
            reqwest::Method::PATCH,
            &path,
            &member.access_token,
            None,
            Some(json!({"name": "Mine"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Deleting a location takes its member list, not the members.
    let res = app
        .put_authed(
            &format!("/api/v1/locations/{geneva}/members/{}", member.user_id),
            &owner.access_token,
            &json!({"role": "member"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(
        app.delete_authed(&format!("/api/v1/locations/{geneva}"), &member.access_token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = app
        .delete_authed(&format!("/api/v1/locations/{geneva}"), &owner.access_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed(&format!("/api/v1/locations/{geneva}"), &owner.access_token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let me = app
        .get_json(
            &format!("/api/v1/users/{}", member.user_id),
            &owner.access_token,
        )
        .await;
    assert_eq!(me["status"], "active");
    assert_eq!(me["locations"], json!([]));
}
on_both_databases!(locations_are_created_read_changed_and_deleted);

async fn location_settings_override_the_tenant_and_inherit_the_rest(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let res = app
        .put_authed(
            "/api/v1/tenants/current/settings",
            &owner.access_token,
            &json!({"timezone": "Europe/Zurich", "locale": "de-CH",
                    "branding": {"primary_color": "#112233"},
                    "features": {"kiosk": false, "tips": true}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let store = create(&app, &owner, "New York", None).await;
    let path = format!("/api/v1/locations/{store}/settings");

    let res = app.get_authed(&path, &owner.access_token).await;
    assert_eq!(res.headers()["etag"], "\"1\"");
    let inherited: Value = res.json().await.unwrap();
    assert_eq!(inherited["overrides"]["timezone"], Value::Null);
    assert_eq!(inherited["effective"]["timezone"], "Europe/Zurich");

    let res = app
        .put_authed(
            &path,
            &owner.access_token,
            &json!({"timezone": "America/New_York", "locale": "en-US",
                    "branding": {"display_name": " Acme NYC "},
                    "features": {"kiosk": true}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["overrides"]["branding"]["display_name"], "Acme NYC");
    let effective = &view["effective"];
    assert_eq!(effective["timezone"], "America/New_York");
    assert_eq!(effective["locale"], "en-US");
    assert_eq!(effective["branding"]["display_name"], "Acme NYC");
    assert_eq!(effective["branding"]["primary_color"], "#112233");
    assert_eq!(effective["features"], json!({"kiosk": true, "tips": true}));
    assert_eq!(app.get_json(&path, &owner.access_token).await, view);

    let bad = assert_problem(
        app.put_authed(
            &path,
            &owner.access_token,
            &json!({"timezone": "Mars/Base", "branding": {"accent_color": "green"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem_fields(&bad), ["branding.accent_color", "timezone"]);
    assert_problem(
        app.client
            .put(app.url(&path))
            .bearer_auth(&owner.access_token)
            .header("if-match", "\"1\"")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        StatusCode::PRECONDITION_FAILED,
        "stale_version",
    )
    .await;
    assert_eq!(app.get_json(&path, &owner.access_token).await, view);
}
on_both_databases!(location_settings_override_the_tenant_and_inherit_the_rest);

async fn a_location_grant_counts_only_while_acting_in_that_location(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let manager = app
        .join(&owner, "manager@example.com", "Store Manager", "member")
        .await;
    let clerk = app
        .join(&owner, "clerk@example.com", "Clerk", "member")
        .await;
    let zurich = create(&app, &owner, "Zurich", None).await;
    let basel = create(&app, &owner, "Basel", None).await;
    let res = app
        .put_authed(
            &format!("/api/v1/locations/{zurich}/members/{}", manager.user_id),
            &owner.access_token,
            &json!({"role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let entry: Value = res.json().await.unwrap();
    assert_eq!(
        entry["locations"],
        json!([{"location_id": zurich, "role": "admin"}])
    );

    let token = manager.access_token.clone();
    let rename = |loc: String, acting: Option<String>| {
        let req = app
            .client
            .patch(app.url(&format!("/api/v1/locations/{loc}")))
            .bearer_auth(&token)
            .json(&json!({"address": "Somewhere"}));
        let req = match acting {
            Some(l) => req.header("x-location-id", l),
            None => req,
        };
        async move { req.send().await.unwrap() }
    };
    // Tenant-wide, the manager is a plain member.
    assert_problem(
        rename(zurich.clone(), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Acting in Zurich, they manage Zurich, and only Zurich.
    assert_eq!(
        rename(zurich.clone(), Some(zurich.clone())).await.status(),
        StatusCode::OK
    );
    assert_problem(
        rename(basel.clone(), Some(zurich.clone())).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Never the tenant as a whole.
    assert_problem(
        send(
            &app,
            reqwest::Method::POST,
            "/api/v1/locations",
            &manager.access_token,
            Some(&zurich),
            Some(json!({"name": "Rogue"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A location they do not work at cannot be chosen; one that does not exist is not found.
    assert_problem(
        rename(basel.clone(), Some(basel.clone())).await,
        StatusCode::FORBIDDEN,
        "not_a_location_member",
    )
    .await;
    assert_problem(
        rename(zurich.clone(), Some(uuid::Uuid::now_v7().to_string())).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        rename(zurich.clone(), Some("nope".to_owned())).await,
        StatusCode::BAD_REQUEST,
        "invalid_location_header",
    )
    .await;
    // Owners and admins may act in any location on their tenant-wide role.
    let res = send(
        &app,
        reqwest::Method::GET,
        "/api/v1/users/me",
        &owner.access_token,
        Some(&basel),
        None,
    )
    .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["location_id"],
        basel.as_str()
    );

    // The location admin adds a colleague to their location, acting there.
    let res = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/v1/locations/{zurich}/members/{}", clerk.user_id),
        &manager.access_token,
        Some(&zurich),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let staff = app
        .get_json(
            &format!("/api/v1/locations/{zurich}/members"),
            &clerk.access_token,
        )
        .await;
    assert_eq!(names(&staff), ["Clerk", "Store Manager"]);
    let filtered = app
        .get_json(
            &format!("/api/v1/users?location_id={zurich}"),
            &clerk.access_token,
        )
        .await;
    assert_eq!(names(&filtered), ["Clerk", "Store Manager"]);

    // Chosen at sign-in, the location rides in the token: no header needed.
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": manager.email, "password": manager.password, "location_id": zurich}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let me = app.get_json("/api/v1/users/me", access).await;
    assert_eq!(me["location_id"], zurich.as_str());
    let res = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/locations/{zurich}"),
        access,
        None,
        Some(json!({"name": "Zurich HB"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The refreshed token keeps it.
    let refreshed: Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let me = app
        .get_json(
            "/api/v1/users/me",
            refreshed["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(me["location_id"], zurich.as_str());
    assert_problem(
        app.post_json(
            "/api/v1/auth/login",
            &json!({"email": manager.email, "password": manager.password, "location_id": basel}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_a_location_member",
    )
    .await;

    // Taken off the location, the grant is gone on the next request.
    let res = app
        .delete_authed(
            &format!("/api/v1/locations/{zurich}/members/{}", manager.user_id),
            &owner.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        rename(zurich.clone(), Some(zurich.clone())).await,
        StatusCode::FORBIDDEN,
        "not_a_location_member",
    )
    .await;
    assert_problem(
        app.delete_authed(
            &format!("/api/v1/locations/{zurich}/members/{}", manager.user_id),
            &owner.access_token,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.put_authed(
            &format!("/api/v1/locations/{zurich}/members/{}", clerk.user_id),
            &owner.access_token,
            &json!({"role": "owner"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}
on_both_databases!(a_location_grant_counts_only_while_acting_in_that_location);

async fn an_invitation_into_a_location_makes_the_invitee_its_member(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let store = create(&app, &owner, "Bern", None).await;
    // A location id that names no location of the tenant is not found, as at sign-in.
    let bad = assert_problem(
        app.post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["x@example.com"], "role": "member",
                        "location_id": uuid::Uuid::now_v7()})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(bad["detail"], "location not found");
    let invitations = app
        .get_json("/api/v1/invitations", &owner.access_token)
        .await;
    assert_eq!(invitations["items"], json!([]));

    let res = app
        .post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["clerk@example.com"], "role": "member", "location_id": store})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["items"][0]["location_id"], store.as_str());
    let token = app.mail.invitation_token("clerk@example.com").await;
    let res = app
        .post_json(
            "/api/v1/auth/accept-invite",
            &json!({"token": token, "name": "Clerk", "password": "a long enough password"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let accepted: Value = res.json().await.unwrap();
    let member = app
        .get_json(
            &format!("/api/v1/users/{}", accepted["user_id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await;
    assert_eq!(
        member["locations"],
        json!([{"location_id": store, "role": "member"}])
    );
}
on_both_databases!(an_invitation_into_a_location_makes_the_invitee_its_member);

async fn another_tenants_locations_are_not_found(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let store = create(&app, &owner, "Lugano", Some("TI-1")).await;
    let stranger = app.register("stranger@example.com", "Other").await;
    let t = &stranger.access_token;
    let path = format!("/api/v1/locations/{store}");
    let members = format!("{path}/members/{}", member.user_id);

    let checks = [
        app.get_authed(&path, t).await,
        app.patch_authed(&path, t, &json!({"name": "Mine"})).await,
        app.get_authed(&format!("{path}/settings"), t).await,
        app.put_authed(&format!("{path}/settings"), t, &json!({}))
            .await,
        app.get_authed(&format!("{path}/members"), t).await,
        app.put_authed(&members, t, &json!({"role": "member"}))
            .await,
        app.delete_authed(&members, t).await,
        app.delete_authed(&path, t).await,
        // Nor can another tenant's location be chosen to act in.
        send(
            &app,
            reqwest::Method::GET,
            "/api/v1/users/me",
            t,
            Some(&store),
            None,
        )
        .await,
    ];
    for res in checks {
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    // A code is unique per tenant only.
    let res = app
        .post_authed(
            "/api/v1/locations",
            t,
            Some(json!({"name": "Their Lugano", "code": "TI-1"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let theirs = app.get_json("/api/v1/locations", t).await;
    assert_eq!(names(&theirs), ["Their Lugano"]);
    let intact = app.get_json(&path, &owner.access_token).await;
    assert_eq!(intact["name"], "Lugano");
}
on_both_databases!(another_tenants_locations_are_not_found);
