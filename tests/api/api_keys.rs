//! API keys over HTTP: made with scopes the maker holds, shown once, stored hashed, acting as
//! their own principal with those scopes only, bound to a location or not, changed, revoked
//! and expired.

use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde_json::{Value, json};
use tenantry_audit::entity as audit_log;
use tenantry_identity::entity::api_key;
use tenantry_kernel::{Actor, ClientMeta, TenantId};
use tenantry_tenancy::TenantStatus;

use crate::helpers::{Account, TestApp, assert_problem, problem_fields};
use crate::on_both_databases;

/// Makes a key as `who`, answering the created body.
async fn make_key(app: &TestApp, who: &Account, body: Value) -> Value {
    let res = app
        .post_authed("/api/v1/api-keys", &who.access_token, Some(body))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

fn secret(created: &Value) -> &str {
    created["secret"].as_str().unwrap()
}

fn granted(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["granted"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

async fn a_key_with_one_scope_may_do_that_and_nothing_else(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let created = make_key(
        &app,
        &owner,
        json!({"name": " Directory sync ", "scopes": ["users.read"]}),
    )
    .await;
    let key = secret(&created).to_owned();
    assert!(key.starts_with(&format!("{}_", created["prefix"].as_str().unwrap())));
    assert!(key.starts_with("tnt_"));
    assert_eq!(created["name"], "Directory sync");
    assert_eq!(created["scopes"], json!(["users.read"]));
    assert_eq!(created["created_by"], owner.user_id.as_str());
    assert!(created["last_used_at"].is_null());
    let id = created["id"].as_str().unwrap().to_owned();

    // Only the hash of the secret is stored.
    let row = api_key::Entity::find_by_id(id.parse::<uuid::Uuid>().unwrap())
        .one(&app.platform.db)
        .await
        .unwrap()
        .unwrap();
    let (_, raw) = tenantry_identity::split_key(&key).unwrap();
    assert!(!row.secret_hash.contains(raw));
    assert_eq!(
        row.secret_hash,
        tenantry_kernel::crypto::token_hash(raw),
        "the stored form is the secret's SHA-256"
    );

    // What the scope allows answers; nothing else does.
    assert_eq!(
        app.get_authed("/api/v1/users", &key).await.status(),
        StatusCode::OK
    );
    for path in [
        "/api/v1/locations",
        "/api/v1/tenants/current",
        "/api/v1/roles",
        "/api/v1/api-keys",
    ] {
        assert_problem(
            app.get_authed(path, &key).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_problem(
        app.post_authed(
            "/api/v1/invitations",
            &key,
            Some(json!({"emails": ["x@example.com"], "role": "member"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A key is not a user.
    assert_problem(app.me(&key).await, StatusCode::FORBIDDEN, "user_only").await;
    let perms = app.get_json("/api/v1/permissions", &key).await;
    assert_eq!(granted(&perms), ["users.read"]);

    // Listing shows the key without its secret, and when it was last used.
    let list = app.get_json("/api/v1/api-keys", &owner.access_token).await;
    let listed = &list["items"][0];
    assert!(listed.get("secret").is_none());
    assert!(!list.to_string().contains(&key));
    assert!(listed["last_used_at"].is_string());

    // New scopes apply on the key's next request, and acts are audited as the key's.
    let res = app
        .patch_authed(
            &format!("/api/v1/api-keys/{id}"),
            &owner.access_token,
            &json!({"scopes": ["users.read", "locations.read", "locations.manage"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .post_authed("/api/v1/locations", &key, Some(json!({"name": "Depot"})))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("location.created"))
        .one(&app.platform.db)
        .await
        .unwrap()
        .expect("audited");
    assert_eq!(audit.actor_type, "api_key");
    assert_eq!(audit.actor_id.as_deref(), Some(id.as_str()));

    // Revoked: 401 at once, still listed, no longer changeable.
    let res = app
        .delete_authed(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed("/api/v1/users", &key).await,
        StatusCode::UNAUTHORIZED,
        "api_key_revoked",
    )
    .await;
    let shown = app
        .get_json(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert!(shown["revoked_at"].is_string());
    assert_problem(
        app.patch_authed(
            &format!("/api/v1/api-keys/{id}"),
            &owner.access_token,
            &json!({"name": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "api_key_not_active",
    )
    .await;
    let actions: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::ResourceType.eq("api_key"))
        .all(&app.platform.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(
        actions,
        ["api_key.created", "api_key.updated", "api_key.revoked"]
    );

    // A wrong secret under a real prefix, or a made-up key, is just an invalid token.
    let (prefix, _) = tenantry_identity::split_key(&key).unwrap();
    for bad in [
        format!("tnt_{prefix}_not-the-secret"),
        "tnt_0123456789ab_whatever".to_owned(),
        "tnt_garbage".to_owned(),
    ] {
        assert_problem(
            app.get_authed("/api/v1/users", &bad).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
}
on_both_databases!(a_key_with_one_scope_may_do_that_and_nothing_else);

async fn keys_hold_no_more_than_their_maker_and_stop_when_expired(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let manager = app
        .join(&owner, "manager@example.com", "Manager", "manager")
        .await;
    assert_problem(
        app.post_authed(
            "/api/v1/api-keys",
            &manager.access_token,
            Some(json!({"name": "mine", "scopes": ["users.read"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Someone allowed to make keys still makes them only from what they hold.
    let res = app
        .post_authed(
            "/api/v1/roles",
            &owner.access_token,
            Some(json!({"key": "integrator", "name": "Integrator", "permissions": ["api_keys.read", "api_keys.manage"]})),
        )
        .await;
    let role = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_authed(
            &format!("/api/v1/users/{}/roles", manager.user_id),
            &owner.access_token,
            Some(json!({"role_id": role})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let problem = assert_problem(
        app.post_authed(
            "/api/v1/api-keys",
            &manager.access_token,
            Some(json!({"name": "mine", "scopes": ["users.read", "tenant.update"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "permission_not_held",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("tenant.update")
    );
    let problem = assert_problem(
        app.post_authed(
            "/api/v1/api-keys",
            &manager.access_token,
            Some(json!({
                "name": "",
                "scopes": ["users.read", "users.fly"],
                "expires_at": "2001-01-01T00:00:00Z",
            })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem_fields(&problem),
        ["name", "scopes[1]", "expires_at"]
    );
    let problem = assert_problem(
        app.post_authed(
            "/api/v1/api-keys",
            &manager.access_token,
            Some(
                json!({"name": "x", "scopes": ["users.read"], "location_id": uuid::Uuid::now_v7()}),
            ),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(problem["detail"], "location not found");
    let created = make_key(
        &app,
        &manager,
        json!({
            "name": "sync",
            "scopes": ["users.read"],
            "expires_at": chrono::Utc::now() + chrono::Duration::days(30),
        }),
    )
    .await;
    let key = secret(&created).to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    // Widening it past the maker's permissions is refused too.
    assert_problem(
        app.patch_authed(
            &format!("/api/v1/api-keys/{id}"),
            &manager.access_token,
            &json!({"scopes": ["roles.manage"]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "permission_not_held",
    )
    .await;
    // Another tenant sees no such key.
    let other = app.register("other@example.com", "Other").await;
    assert_problem(
        app.get_authed(&format!("/api/v1/api-keys/{id}"), &other.access_token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Once its expiry has passed the key answers 401.
    assert_eq!(
        app.get_authed("/api/v1/users", &key).await.status(),
        StatusCode::OK
    );
    let row = api_key::Entity::find_by_id(id.parse::<uuid::Uuid>().unwrap())
        .one(&app.platform.db)
        .await
        .unwrap()
        .unwrap();
    let mut expired = row.into_active_model();
    expired.expires_at = Set(Some(chrono::Utc::now() - chrono::Duration::seconds(1)));
    expired.update(&app.platform.db).await.unwrap();
    assert_problem(
        app.get_authed("/api/v1/users", &key).await,
        StatusCode::UNAUTHORIZED,
        "api_key_expired",
    )
    .await;
}
on_both_databases!(keys_hold_no_more_than_their_maker_and_stop_when_expired);

async fn a_key_bound_to_a_location_acts_only_there(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let ids = [
        app.create_location(&owner, "Zurich").await,
        app.create_location(&owner, "Basel").await,
    ];
    let created = make_key(
        &app,
        &owner,
        json!({"name": "till", "scopes": ["locations.read", "locations.manage"], "location_id": ids[0]}),
    )
    .await;
    let key = secret(&created).to_owned();
    let rename = |id: &str, header: Option<&str>| {
        let mut req = app
            .client
            .patch(app.url(&format!("/api/v1/locations/{id}")))
            .bearer_auth(&key)
            .json(&json!({"name": "Renamed"}));
        if let Some(h) = header {
            req = req.header("x-location-id", h);
        }
        req.send()
    };
    assert_eq!(
        rename(&ids[0], None).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        rename(&ids[1], None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_problem(
        rename(&ids[1], Some(&ids[1])).await.unwrap(),
        StatusCode::FORBIDDEN,
        "not_a_location_member",
    )
    .await;
    // Tenant-wide commands are out of its reach.
    assert_problem(
        app.post_authed("/api/v1/locations", &key, Some(json!({"name": "New"})))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // A suspended tenant's keys stop too.
    app.platform
        .tenancy
        .set_status(
            TenantId(owner.tenant_id.parse().unwrap()),
            TenantStatus::Suspended,
            Actor::System("test"),
            &ClientMeta::default(),
        )
        .await
        .unwrap();
    assert_problem(
        rename(&ids[0], None).await.unwrap(),
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    )
    .await;
}
on_both_databases!(a_key_bound_to_a_location_acts_only_there);
