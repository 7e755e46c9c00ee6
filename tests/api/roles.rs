//! Roles over HTTP: the seeded system roles, custom roles and their CRUD, several roles per
//! member tenant-wide or at a location, the no-escalation rule, and grants taking effect on
//! the member's next request.

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tenantry_audit::entity as audit_log;

use crate::helpers::{Account, TestApp, assert_problem, problem_fields};
use crate::on_both_databases;

/// The id of the role with `key` in `who`'s tenant.
async fn role_id(app: &TestApp, who: &Account, key: &str) -> String {
    let list = app.get_json("/api/v1/roles", &who.access_token).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no role {key}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Creates a custom role as `who` and answers its id.
async fn create_role(app: &TestApp, who: &Account, key: &str, permissions: &[&str]) -> String {
    let res = app
        .post_authed(
            "/api/v1/roles",
            &who.access_token,
            Some(json!({"key": key, "name": key, "permissions": permissions})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "create role {key}");
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn grant(
    app: &TestApp,
    by: &Account,
    to: &Account,
    role: &str,
    location: Option<&str>,
) -> reqwest::Response {
    app.post_authed(
        &format!("/api/v1/users/{}/roles", to.user_id),
        &by.access_token,
        Some(json!({"role_id": role, "location_id": location})),
    )
    .await
}

/// The keys (and locations) of the roles `user` holds, as `who` sees them.
async fn held(app: &TestApp, who: &Account, user: &Account) -> Vec<(String, Option<String>)> {
    let list = app
        .get_json(
            &format!("/api/v1/users/{}/roles", user.user_id),
            &who.access_token,
        )
        .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["role"]["key"].as_str().unwrap().to_owned(),
                g["location_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn tenant_wide(keys: &[&str]) -> Vec<(String, Option<String>)> {
    keys.iter().map(|k| ((*k).to_owned(), None)).collect()
}

async fn every_tenant_has_the_system_roles_and_they_cannot_be_changed(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let list = app.get_json("/api/v1/roles", &owner.access_token).await;
    let items = list["items"].as_array().unwrap();
    let keys: Vec<_> = items.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["admin", "expert", "manager", "member", "owner"]);
    assert!(items.iter().all(|r| r["system"] == true));
    let manager = items.iter().find(|r| r["key"] == "manager").unwrap();
    assert!(
        manager["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("users.invite"))
    );
    assert!(
        !manager["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("roles.manage"))
    );
    let page = app
        .get_json("/api/v1/roles?limit=2", &owner.access_token)
        .await;
    let next = app
        .get_json(
            &format!(
                "/api/v1/roles?limit=3&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &owner.access_token,
        )
        .await;
    let keys: Vec<_> = next["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["manager", "member", "owner"]);
    assert!(next["next_cursor"].is_null());

    let admin = role_id(&app, &owner, "admin").await;
    let res = app
        .get_authed(&format!("/api/v1/roles/{admin}"), &owner.access_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"1\"");
    assert_problem(
        app.put_authed(
            &format!("/api/v1/roles/{admin}"),
            &owner.access_token,
            &json!({"name": "Boss", "permissions": []}),
        )
        .await,
        StatusCode::CONFLICT,
        "system_role_immutable",
    )
    .await;
    assert_problem(
        app.delete_authed(&format!("/api/v1/roles/{admin}"), &owner.access_token)
            .await,
        StatusCode::CONFLICT,
        "system_role_immutable",
    )
    .await;
    // A plain member holds no `roles.read`.
    assert_problem(
        app.get_authed("/api/v1/roles", &member.access_token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Another tenant's role does not exist here.
    let other = app.register("other@example.com", "Other").await;
    for res in [
        app.get_authed(&format!("/api/v1/roles/{admin}"), &other.access_token)
            .await,
        app.delete_authed(&format!("/api/v1/roles/{admin}"), &other.access_token)
            .await,
        grant(&app, &other, &other, &admin, None).await,
    ] {
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
}
on_both_databases!(every_tenant_has_the_system_roles_and_they_cannot_be_changed);

async fn a_custom_read_role_reads_but_cannot_write(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let reader = create_role(&app, &owner, "role-reader", &["roles.read"]).await;
    assert_problem(
        app.get_authed("/api/v1/roles", &member.access_token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let res = grant(&app, &owner, &member, &reader, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let granted: Value = res.json().await.unwrap();
    assert_eq!(granted["role"]["key"], "role-reader");
    assert!(granted["location_id"].is_null());

    // The same token, on its next request: reads answer, writes do not.
    let list = app.get_json("/api/v1/roles", &member.access_token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 6);
    let perms = app
        .get_json("/api/v1/permissions", &member.access_token)
        .await;
    assert!(
        perms["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "roles.read" && p["granted"] == true)
    );
    assert_problem(
        app.post_authed(
            "/api/v1/roles",
            &member.access_token,
            Some(json!({"key": "mine", "name": "Mine", "permissions": []})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.put_authed(
            &format!("/api/v1/roles/{reader}"),
            &member.access_token,
            &json!({"name": "Reader", "permissions": ["roles.read", "roles.manage"]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.delete_authed(&format!("/api/v1/roles/{reader}"), &member.access_token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        grant(&app, &member, &member, &reader, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        held(&app, &member, &member).await,
        tenant_wide(&["member", "role-reader"])
    );

    // Taken away, it stops counting on the next request.
    let res = app
        .delete_authed(
            &format!("/api/v1/users/{}/roles/{reader}", member.user_id),
            &owner.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed("/api/v1/roles", &member.access_token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.delete_authed(
            &format!("/api/v1/users/{}/roles/{reader}", member.user_id),
            &owner.access_token,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
on_both_databases!(a_custom_read_role_reads_but_cannot_write);

async fn nobody_grants_or_defines_more_than_they_hold(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let manager = app
        .join(&owner, "manager@example.com", "Manager", "manager")
        .await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let (admin, owner_role, expert) = (
        role_id(&app, &owner, "admin").await,
        role_id(&app, &owner, "owner").await,
        role_id(&app, &owner, "expert").await,
    );

    // A manager may not grant owner or admin, but may grant expert.
    for role in [&admin, &owner_role] {
        assert_problem(
            grant(&app, &manager, &member, role, None).await,
            StatusCode::FORBIDDEN,
            "role_not_grantable",
        )
        .await;
    }
    let res = grant(&app, &manager, &member, &expert, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(held(&app, &owner, &member).await, tenant_wide(&["expert"]));

    // A custom role with a permission the manager lacks cannot be granted by them.
    let designer = create_role(&app, &owner, "designer", &["roles.read", "roles.manage"]).await;
    let problem = assert_problem(
        grant(&app, &manager, &member, &designer, None).await,
        StatusCode::FORBIDDEN,
        "permission_not_held",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("roles.manage"));
    // Managers do not define roles.
    assert_problem(
        app.post_authed(
            "/api/v1/roles",
            &manager.access_token,
            Some(json!({"key": "x1", "name": "X", "permissions": []})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // A member who may define roles still defines only what they hold.
    assert_eq!(
        grant(&app, &owner, &member, &designer, None).await.status(),
        StatusCode::CREATED
    );
    let problem = assert_problem(
        app.post_authed(
            "/api/v1/roles",
            &member.access_token,
            Some(json!({"key": "escalate", "name": "Escalate", "permissions": ["users.manage", "roles.read"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "permission_not_held",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("users.manage"));
    assert!(!problem["detail"].as_str().unwrap().contains("roles.read"));
    let own = create_role(&app, &member, "reader", &["roles.read"]).await;
    assert_problem(
        app.put_authed(
            &format!("/api/v1/roles/{own}"),
            &member.access_token,
            &json!({"name": "Reader", "permissions": ["tenant.update"]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "permission_not_held",
    )
    .await;
    // Nor edit or delete a role holding more than they do.
    let big = create_role(&app, &owner, "big", &["tenant.update"]).await;
    assert_problem(
        app.delete_authed(&format!("/api/v1/roles/{big}"), &member.access_token)
            .await,
        StatusCode::FORBIDDEN,
        "permission_not_held",
    )
    .await;

    // The last owner stays an owner, and keeps a system role.
    assert_problem(
        grant(&app, &owner, &owner, &admin, None).await,
        StatusCode::CONFLICT,
        "last_owner",
    )
    .await;
    assert_problem(
        app.delete_authed(
            &format!("/api/v1/users/{}/roles/{owner_role}", owner.user_id),
            &owner.access_token,
        )
        .await,
        StatusCode::CONFLICT,
        "system_role_required",
    )
    .await;
    assert_problem(
        grant(&app, &owner, &member, &designer, None).await,
        StatusCode::CONFLICT,
        "role_already_granted",
    )
    .await;
}
on_both_databases!(nobody_grants_or_defines_more_than_they_hold);

async fn roles_granted_at_a_location_count_only_there(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let zurich = app.create_location(&owner, "Zurich").await;
    let basel = app.create_location(&owner, "Basel").await;
    let keeper = create_role(&app, &owner, "store-keeper", &["locations.manage"]).await;
    assert_problem(
        grant(&app, &owner, &member, &keeper, Some(&zurich)).await,
        StatusCode::CONFLICT,
        "not_on_location",
    )
    .await;
    // A system role granted at a location puts the member on it.
    let member_role = role_id(&app, &owner, "member").await;
    assert_eq!(
        grant(&app, &owner, &member, &member_role, Some(&zurich))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        grant(&app, &owner, &member, &keeper, Some(&zurich))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        held(&app, &owner, &member).await,
        [
            ("member".to_owned(), None),
            ("member".to_owned(), Some(zurich.clone())),
            ("store-keeper".to_owned(), Some(zurich.clone())),
        ]
    );

    let rename = |location: &str, acting: Option<&str>| {
        let mut req = app
            .client
            .patch(app.url(&format!("/api/v1/locations/{location}")))
            .bearer_auth(&member.access_token)
            .json(&json!({"name": "Renamed"}));
        if let Some(l) = acting {
            req = req.header("x-location-id", l);
        }
        req.send()
    };
    assert_eq!(
        rename(&zurich, Some(&zurich)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        rename(&zurich, None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rename(&basel, Some(&zurich)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // The owner role, named by id, is refused at a location for what it is: the body has no
    // `role` field to name.
    let owner_role = role_id(&app, &owner, "owner").await;
    assert_problem(
        grant(&app, &owner, &member, &owner_role, Some(&zurich)).await,
        StatusCode::CONFLICT,
        "owner_is_tenant_wide",
    )
    .await;

    // Taking the member off the location takes its roles there with it.
    let res = app
        .delete_authed(
            &format!(
                "/api/v1/users/{}/roles/{member_role}?location_id={zurich}",
                member.user_id
            ),
            &owner.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(held(&app, &owner, &member).await, tenant_wide(&["member"]));
}
on_both_databases!(roles_granted_at_a_location_count_only_there);

async fn custom_roles_are_defined_changed_and_deleted_with_an_audit_trail(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let problem = assert_problem(
        app.post_authed(
            "/api/v1/roles",
            &owner.access_token,
            Some(
                json!({"key": "Bad Key", "name": " ", "permissions": ["users.read", "users.fly"]}),
            ),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem_fields(&problem), ["key", "name", "permissions[1]"]);
    let lead = create_role(&app, &owner, "support-lead", &["users.invite"]).await;
    assert_problem(
        app.post_authed(
            "/api/v1/roles",
            &owner.access_token,
            Some(json!({"key": "support-lead", "name": "Again", "permissions": []})),
        )
        .await,
        StatusCode::CONFLICT,
        "role_key_taken",
    )
    .await;
    assert_problem(
        app.post_authed(
            "/api/v1/roles",
            &owner.access_token,
            Some(json!({"key": "admin", "name": "Mine", "permissions": []})),
        )
        .await,
        StatusCode::CONFLICT,
        "role_key_taken",
    )
    .await;

    assert_eq!(
        grant(&app, &owner, &member, &lead, None).await.status(),
        StatusCode::CREATED
    );
    let invite = |email: &str| {
        app.post_authed(
            "/api/v1/invitations",
            &member.access_token,
            Some(json!({"emails": [email], "role": "member"})),
        )
    };
    assert_eq!(
        invite("first@example.com").await.status(),
        StatusCode::CREATED
    );

    // A stale If-Match is refused; a current one changes the role for its holders at once.
    let path = format!("/api/v1/roles/{lead}");
    let stale = app
        .client
        .put(app.url(&path))
        .bearer_auth(&owner.access_token)
        .header("if-match", "\"7\"")
        .json(&json!({"name": "Lead", "permissions": ["users.read"]}))
        .send()
        .await
        .unwrap();
    assert_problem(stale, StatusCode::PRECONDITION_FAILED, "stale_version").await;
    let res = app
        .client
        .put(app.url(&path))
        .bearer_auth(&owner.access_token)
        .header("if-match", "\"1\"")
        .json(
            &json!({"name": "Lead", "description": "Leads support", "permissions": ["users.read"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["permissions"], json!(["users.read"]));
    assert_eq!(body["description"], "Leads support");
    assert_problem(
        invite("second@example.com").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let res = app.delete_authed(&path, &owner.access_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed(&path, &owner.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(held(&app, &owner, &member).await, tenant_wide(&["member"]));

    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::Action.is_in(["role.created", "role.updated", "role.deleted"]))
        .order_by_asc(audit_log::Column::Id)
        .all(&app.platform.db)
        .await
        .unwrap();
    let actions: Vec<_> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["role.created", "role.updated", "role.deleted"]);
    assert_eq!(
        rows[1].old_values.as_ref().unwrap()["permissions"],
        json!(["users.invite"])
    );
    assert_eq!(rows[2].new_values.as_ref().unwrap()["grants_removed"], 1);
    let granted = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("member.role_granted"))
        .one(&app.platform.db)
        .await
        .unwrap()
        .expect("grant audited");
    assert_eq!(
        granted.resource_id.as_deref(),
        Some(member.user_id.as_str())
    );
    assert_eq!(granted.new_values.unwrap()["role"], "support-lead");
}
on_both_databases!(custom_roles_are_defined_changed_and_deleted_with_an_audit_trail);
