//! The member directory over HTTP: listing and searching, profiles and expertise, roles with
//! their ranks, deactivation and removal ending sessions, the last owner kept, ownership
//! transfer, suspended tenants, and isolation between tenants.

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tenantry_audit::entity as audit_log;

use crate::helpers::{
    Account, TestApp, assert_problem, item_names as names, problem_fields as fields,
};
use crate::on_both_databases;

fn user_path(account: &Account) -> String {
    format!("/api/v1/users/{}", account.user_id)
}

async fn members_are_listed_by_name_filtered_searched_and_paged(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let grace = app
        .join(&owner, "grace@example.com", "Grace Hopper", "admin")
        .await;
    let alan = app
        .join(&owner, "alan@example.com", "Alan Turing", "member")
        .await;
    app.join(&owner, "ada@lovelace.org", "Ada Lovelace", "member")
        .await;

    // Every member may read the directory; it is ordered by name.
    let all = app.get_json("/api/v1/users", &alan.access_token).await;
    assert_eq!(
        names(&all),
        ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Test User"]
    );
    let grace_entry = &all["items"][2];
    assert_eq!(grace_entry["id"], grace.user_id.as_str());
    assert_eq!(grace_entry["email"], "grace@example.com");
    assert_eq!(grace_entry["role"], "admin");
    assert_eq!(grace_entry["status"], "active");
    assert_eq!(
        grace_entry["expertise"],
        json!({"tags": [], "hourly_rate": null})
    );

    let admins = app
        .get_json("/api/v1/users?role=admin", &alan.access_token)
        .await;
    assert_eq!(names(&admins), ["Grace Hopper"]);
    // Search covers name and address, ignoring case; `%` is a literal, not a wildcard.
    let search = app
        .get_json("/api/v1/users?q=LOVELACE", &alan.access_token)
        .await;
    assert_eq!(names(&search), ["Ada Lovelace"]);
    let by_mail = app
        .get_json("/api/v1/users?q=grace%40", &alan.access_token)
        .await;
    assert_eq!(names(&by_mail), ["Grace Hopper"]);
    let literal = app
        .get_json("/api/v1/users?q=%25", &alan.access_token)
        .await;
    assert_eq!(names(&literal), Vec::<&str>::new());
    let gone = app
        .get_json("/api/v1/users?status=deactivated", &alan.access_token)
        .await;
    assert_eq!(names(&gone), Vec::<&str>::new());

    // Pages follow each other without overlap or gap.
    let first = app
        .get_json("/api/v1/users?limit=3", &alan.access_token)
        .await;
    assert_eq!(
        names(&first),
        ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_json(
            &format!("/api/v1/users?limit=3&cursor={cursor}"),
            &alan.access_token,
        )
        .await;
    assert_eq!(names(&second), ["Test User"]);
    assert_eq!(second["next_cursor"], Value::Null);

    let bad = assert_problem(
        app.get_authed(
            "/api/v1/users?role=root&status=gone&location_id=x&limit=0&cursor=zz",
            &alan.access_token,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        fields(&bad),
        ["role", "status", "location_id", "limit", "cursor"]
    );

    let one = app.get_json(&user_path(&grace), &alan.access_token).await;
    assert_eq!(one["name"], "Grace Hopper");
    assert_problem(
        app.get_authed(
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            &alan.access_token,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
on_both_databases!(members_are_listed_by_name_filtered_searched_and_paged);

async fn profiles_and_expertise_are_edited_by_their_owner_or_a_manager(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let ada = app
        .join(&owner, "ada@example.com", "Ada Lovelace", "member")
        .await;
    let alan = app
        .join(&owner, "alan@example.com", "Alan Turing", "member")
        .await;

    let res = app
        .patch_authed(
            &user_path(&ada),
            &ada.access_token,
            &json!({"job_title": " Analyst ", "phone": "+44 20 7946 0958"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["job_title"], "Analyst");
    assert_eq!(me["phone"], "+44 20 7946 0958");

    // A field left out stays; null clears.
    let me: Value = app
        .patch_authed(&user_path(&ada), &ada.access_token, &json!({"phone": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["job_title"], "Analyst");
    assert_eq!(me["phone"], Value::Null);

    let bad = assert_problem(
        app.patch_authed(
            &user_path(&ada),
            &ada.access_token,
            &json!({"job_title": "x".repeat(101), "phone": "call me"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&bad), ["job_title", "phone"]);

    // A member cannot edit a colleague; the owner can.
    assert_problem(
        app.patch_authed(
            &user_path(&ada),
            &alan.access_token,
            &json!({"job_title": "Intern"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = app
        .patch_authed(
            &user_path(&ada),
            &owner.access_token,
            &json!({"job_title": "Lead Analyst"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let path = format!("{}/expertise", user_path(&ada));
    let empty = app.get_json(&path, &alan.access_token).await;
    assert_eq!(empty, json!({"tags": [], "hourly_rate": null}));
    let res = app
        .put_authed(
            &path,
            &ada.access_token,
            &json!({"tags": [" Statistics ", "engines", "STATISTICS"],
                    "hourly_rate": {"amount_minor": 12500, "currency": "GBP"}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored = json!({"tags": ["statistics", "engines"],
                        "hourly_rate": {"amount_minor": 12500, "currency": "GBP"}});
    assert_eq!(res.json::<Value>().await.unwrap(), stored);
    assert_eq!(app.get_json(&path, &alan.access_token).await, stored);
    let listed = app.get_json(&user_path(&ada), &alan.access_token).await;
    assert_eq!(listed["expertise"], stored);

    let bad = assert_problem(
        app.put_authed(
            &path,
            &ada.access_token,
            &json!({"tags": ["ok", ""], "hourly_rate": {"amount_minor": -5, "currency": "gbp"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        fields(&bad),
        [
            "tags[1]",
            "hourly_rate.amount_minor",
            "hourly_rate.currency"
        ]
    );
    assert_eq!(app.get_json(&path, &alan.access_token).await, stored);
    assert_problem(
        app.put_authed(
            &path,
            &alan.access_token,
            &json!({"tags": [], "hourly_rate": null}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
on_both_databases!(profiles_and_expertise_are_edited_by_their_owner_or_a_manager);

async fn roles_change_within_rank_and_the_last_owner_stays(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let admin = app
        .join(&owner, "admin@example.com", "Admin", "admin")
        .await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let role = |who: &Account| format!("{}/role", user_path(who));

    // A member cannot invite; promoted, the same token can on its very next request.
    let invite = json!({"emails": ["x@example.com"], "role": "member"});
    assert_problem(
        app.post_authed(
            "/api/v1/invitations",
            &member.access_token,
            Some(invite.clone()),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = app
        .put_authed(
            &role(&member),
            &admin.access_token,
            &json!({"role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "admin");
    let res = app
        .post_authed("/api/v1/invitations", &member.access_token, Some(invite))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // An admin neither hands out ownership nor touches an owner.
    assert_problem(
        app.put_authed(
            &role(&member),
            &admin.access_token,
            &json!({"role": "owner"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "role_not_grantable",
    )
    .await;
    assert_problem(
        app.put_authed(
            &role(&owner),
            &admin.access_token,
            &json!({"role": "member"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "role_not_grantable",
    )
    .await;
    let bad = assert_problem(
        app.put_authed(
            &role(&member),
            &owner.access_token,
            &json!({"role": "root"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&bad), ["role"]);

    // The only owner cannot step down, until there is another.
    assert_problem(
        app.put_authed(
            &role(&owner),
            &owner.access_token,
            &json!({"role": "admin"}),
        )
        .await,
        StatusCode::CONFLICT,
        "last_owner",
    )
    .await;
    let res = app
        .put_authed(
            &role(&admin),
            &owner.access_token,
            &json!({"role": "owner"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .put_authed(
            &role(&owner),
            &owner.access_token,
            &json!({"role": "member"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = app.me(&owner.access_token).await.json().await.unwrap();
    assert_eq!(me["role"], "member");

    let changes = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("member.role_changed"))
        .order_by_asc(audit_log::Column::Id)
        .all(&app.platform.db)
        .await
        .unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(
        changes[0].resource_id.as_deref(),
        Some(member.user_id.as_str())
    );
    assert_eq!(changes[0].actor_id.as_deref(), Some(admin.user_id.as_str()));
    assert_eq!(changes[0].old_values, Some(json!({"role": "member"})));
    assert_eq!(changes[0].new_values, Some(json!({"role": "admin"})));
}
on_both_databases!(roles_change_within_rank_and_the_last_owner_stays);

async fn deactivation_ends_sessions_at_once_and_reactivation_needs_a_seat(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let admin = app
        .join(&owner, "admin@example.com", "Admin", "admin")
        .await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let deactivate = |who: &Account| format!("{}/deactivate", user_path(who));
    let reactivate = |who: &Account| format!("{}/reactivate", user_path(who));

    let res = app
        .post_authed(&deactivate(&member), &admin.access_token, None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "deactivated");
    assert!(body["deactivated_at"].is_string());

    // The member's tokens stop working on the next request, and no new sign-in starts.
    app.assert_signed_out(&member.access_token).await;
    assert_problem(
        app.refresh(&member.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    )
    .await;
    assert_problem(
        app.login(&member.email, &member.password).await,
        StatusCode::FORBIDDEN,
        "membership_deactivated",
    )
    .await;
    let listed = app
        .get_json("/api/v1/users?status=deactivated", &admin.access_token)
        .await;
    assert_eq!(names(&listed), ["Member"]);

    assert_problem(
        app.post_authed(&deactivate(&member), &admin.access_token, None)
            .await,
        StatusCode::CONFLICT,
        "member_state_unchanged",
    )
    .await;
    assert_problem(
        app.post_authed(&deactivate(&admin), &admin.access_token, None)
            .await,
        StatusCode::CONFLICT,
        "cannot_target_self",
    )
    .await;
    assert_problem(
        app.post_authed(&deactivate(&owner), &admin.access_token, None)
            .await,
        StatusCode::FORBIDDEN,
        "role_not_grantable",
    )
    .await;

    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("member.deactivated"))
        .one(&app.platform.db)
        .await
        .unwrap()
        .expect("deactivation audited");
    assert_eq!(audit.new_values.unwrap()["sessions_ended"], 1);

    // With every seat taken by active members, there is none to come back to.
    let res = app
        .put_authed(
            "/api/v1/tenants/current/settings",
            &owner.access_token,
            &json!({"limits": {"seats": 2}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(
        app.post_authed(&reactivate(&member), &admin.access_token, None)
            .await,
        StatusCode::CONFLICT,
        "seat_limit_reached",
    )
    .await;
    let res = app
        .put_authed(
            "/api/v1/tenants/current/settings",
            &owner.access_token,
            &json!({"limits": {"seats": 3}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .post_authed(&reactivate(&member), &admin.access_token, None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "active");
    assert_problem(
        app.post_authed(&reactivate(&member), &admin.access_token, None)
            .await,
        StatusCode::CONFLICT,
        "member_state_unchanged",
    )
    .await;
    assert_eq!(
        app.login(&member.email, &member.password).await.status(),
        StatusCode::OK
    );
}
on_both_databases!(deactivation_ends_sessions_at_once_and_reactivation_needs_a_seat);

async fn removal_and_leaving_end_membership_but_the_last_owner_stays(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let admin = app
        .join(&owner, "admin@example.com", "Admin", "admin")
        .await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let leaver = app
        .join(&owner, "leaver@example.com", "Leaver", "member")
        .await;

    assert_problem(
        app.delete_authed(&user_path(&admin), &member.access_token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = app
        .delete_authed(&user_path(&member), &admin.access_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.assert_signed_out(&member.access_token).await;
    assert_problem(
        app.get_authed(&user_path(&member), &admin.access_token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.login(&member.email, &member.password).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    )
    .await;

    // Anyone may leave; the last owner may not.
    let res = app
        .delete_authed(&user_path(&leaver), &leaver.access_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.assert_signed_out(&leaver.access_token).await;
    assert_problem(
        app.delete_authed(&user_path(&owner), &owner.access_token)
            .await,
        StatusCode::CONFLICT,
        "last_owner",
    )
    .await;
    let left = app.get_json("/api/v1/users", &owner.access_token).await;
    assert_eq!(names(&left), ["Admin", "Test User"]);
    let actions: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::ResourceType.eq("member"))
        .order_by_asc(audit_log::Column::Id)
        .all(&app.platform.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, ["member.removed", "member.left"]);
}
on_both_databases!(removal_and_leaving_end_membership_but_the_last_owner_stays);

async fn ownership_passes_to_an_active_member_in_one_step(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let heir = app.join(&owner, "heir@example.com", "Heir", "member").await;
    let idle = app.join(&owner, "idle@example.com", "Idle", "member").await;
    let transfer = |to: &str| json!({"user_id": to});
    const PATH: &str = "/api/v1/tenants/current/transfer-ownership";

    assert_problem(
        app.post_authed(PATH, &heir.access_token, Some(transfer(&idle.user_id)))
            .await,
        StatusCode::FORBIDDEN,
        "owner_only",
    )
    .await;
    assert_problem(
        app.post_authed(PATH, &owner.access_token, Some(transfer(&owner.user_id)))
            .await,
        StatusCode::CONFLICT,
        "cannot_target_self",
    )
    .await;
    assert_problem(
        app.post_authed(
            PATH,
            &owner.access_token,
            Some(transfer(&uuid::Uuid::now_v7().to_string())),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .post_authed(
            &format!("{}/deactivate", user_path(&idle)),
            &owner.access_token,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(
        app.post_authed(PATH, &owner.access_token, Some(transfer(&idle.user_id)))
            .await,
        StatusCode::CONFLICT,
        "member_deactivated",
    )
    .await;

    let res = app
        .post_authed(PATH, &owner.access_token, Some(transfer(&heir.user_id)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "owner");
    let me: Value = app.me(&owner.access_token).await.json().await.unwrap();
    assert_eq!(me["role"], "admin");
    let heir_me: Value = app.me(&heir.access_token).await.json().await.unwrap();
    assert_eq!(heir_me["role"], "owner");
    assert_problem(
        app.post_authed(PATH, &owner.access_token, Some(transfer(&heir.user_id)))
            .await,
        StatusCode::FORBIDDEN,
        "owner_only",
    )
    .await;
    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("tenant.ownership_transferred"))
        .one(&app.platform.db)
        .await
        .unwrap()
        .expect("transfer audited");
    assert_eq!(audit.new_values.unwrap()["owner"], heir.user_id.as_str());
}
on_both_databases!(ownership_passes_to_an_active_member_in_one_step);

async fn a_suspended_tenant_keeps_its_members_out_until_reactivated(app: TestApp) {
    use tenantry_kernel_ids::*;
    let owner = app.register("owner@example.com", "Acme").await;
    let tenant = tenant_id(&owner);
    app.platform
        .tenancy
        .set_status(tenant, suspended(), operator(), &Default::default())
        .await
        .unwrap();

    assert_problem(
        app.me(&owner.access_token).await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    )
    .await;
    assert_problem(
        app.login(&owner.email, &owner.password).await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    )
    .await;
    assert_problem(
        app.refresh(&owner.refresh_token).await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    )
    .await;

    app.platform
        .tenancy
        .set_status(tenant, active(), operator(), &Default::default())
        .await
        .unwrap();
    let me: Value = app.me(&owner.access_token).await.json().await.unwrap();
    assert_eq!(me["current_tenant"]["status"], "active");
    assert_eq!(
        app.login(&owner.email, &owner.password).await.status(),
        StatusCode::OK
    );
    let actions: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::ResourceType.eq("tenant"))
        .filter(audit_log::Column::Action.ne("tenant.created"))
        .order_by_asc(audit_log::Column::Id)
        .all(&app.platform.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, ["tenant.suspended", "tenant.reactivated"]);
}
on_both_databases!(a_suspended_tenant_keeps_its_members_out_until_reactivated);

/// Small constructors, so the test above reads as what it does.
mod tenantry_kernel_ids {
    use crate::helpers::Account;

    pub fn tenant_id(a: &Account) -> tenantry_kernel::TenantId {
        tenantry_kernel::TenantId(a.tenant_id.parse().unwrap())
    }
    pub fn suspended() -> tenantry_tenancy::TenantStatus {
        tenantry_tenancy::TenantStatus::Suspended
    }
    pub fn active() -> tenantry_tenancy::TenantStatus {
        tenantry_tenancy::TenantStatus::Active
    }
    pub fn operator() -> tenantry_kernel::Actor {
        tenantry_kernel::Actor::System("operator")
    }
}

async fn another_tenants_members_are_not_found(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let stranger = app.register("stranger@example.com", "Other").await;
    let path = user_path(&member);
    let t = &stranger.access_token;

    let checks = [
        app.get_authed(&path, t).await,
        app.patch_authed(&path, t, &json!({"job_title": "Spy"}))
            .await,
        app.put_authed(&format!("{path}/role"), t, &json!({"role": "member"}))
            .await,
        app.post_authed(&format!("{path}/deactivate"), t, None)
            .await,
        app.post_authed(&format!("{path}/reactivate"), t, None)
            .await,
        app.get_authed(&format!("{path}/expertise"), t).await,
        app.put_authed(
            &format!("{path}/expertise"),
            t,
            &json!({"tags": [], "hourly_rate": null}),
        )
        .await,
        app.post_authed(
            "/api/v1/tenants/current/transfer-ownership",
            t,
            Some(json!({"user_id": member.user_id})),
        )
        .await,
        app.delete_authed(&path, t).await,
    ];
    for res in checks {
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let theirs = app.get_json("/api/v1/users", t).await;
    assert_eq!(names(&theirs), ["Test User"]);
    // Nothing changed on the other side.
    let intact = app.get_json(&path, &owner.access_token).await;
    assert_eq!(intact["status"], "active");
    assert_eq!(intact["job_title"], Value::Null);
}
on_both_databases!(another_tenants_members_are_not_found);
