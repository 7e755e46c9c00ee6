//! Invitations over HTTP: invite, email, accept, and every way it can go wrong.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Account, TestApp, assert_problem, problem_fields};
use crate::on_both_databases;

/// Invites `emails` with `role` as `inviter`; answers the response.
async fn invite(app: &TestApp, inviter: &str, emails: &[&str], role: &str) -> reqwest::Response {
    app.post_authed(
        "/api/v1/invitations",
        inviter,
        Some(json!({"emails": emails, "role": role})),
    )
    .await
}

/// Invites one address and answers the created invitation.
async fn invite_one(app: &TestApp, inviter: &str, email: &str, role: &str) -> Value {
    let res = invite(app, inviter, &[email], role).await;
    assert_eq!(res.status(), StatusCode::CREATED, "invite {email}");
    let body: Value = res.json().await.unwrap();
    body["items"][0].clone()
}

async fn accept(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post_json("/api/v1/auth/accept-invite", body).await
}

/// Invites `email` with `role`, accepts as a new account and answers its access token.
async fn new_member(app: &TestApp, owner: &Account, email: &str, role: &str) -> String {
    invite_one(app, &owner.access_token, email, role).await;
    let token = app.mail.invitation_token(email).await;
    let res = accept(
        app,
        &json!({"token": token, "name": "New Member", "password": "a long enough password"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn a_new_address_is_invited_accepts_and_signs_in_with_the_role(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let res = app
        .post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["Grace@Example.com"], "role": "admin", "message": "Welcome aboard"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["skipped"], json!([]));
    let created = &body["items"][0];
    assert_eq!(created["email"], "grace@example.com");
    assert_eq!(created["role"], "admin");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["invited_by"], owner.user_id.as_str());

    // The email arrives at the SMTP sink through the outbox and the job queue.
    let raw = app.mail.next_message_to("grace@example.com").await;
    let message = crate::sessions::decoded(&raw);
    assert!(
        message.contains("Test User invited you to Acme"),
        "{message}"
    );
    assert!(message.contains("Welcome aboard"), "{message}");
    let token = crate::sessions::token_from_email(&message);

    let preview = app
        .post_json(
            "/api/v1/auth/accept-invite/preview",
            &json!({"token": token}),
        )
        .await;
    assert_eq!(preview.status(), StatusCode::OK);
    let preview: Value = preview.json().await.unwrap();
    assert_eq!(preview["tenant_name"], "Acme");
    assert_eq!(preview["role"], "admin");
    assert_eq!(preview["inviter_name"], "Test User");
    assert_eq!(preview["account_exists"], false);

    // A new account needs a name and a password.
    let missing = assert_problem(
        accept(&app, &json!({"token": token})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields = problem_fields(&missing);
    assert_eq!(fields, ["name", "password"]);

    let res = accept(
        &app,
        &json!({"token": token, "name": "Grace Hopper", "password": "compilers all the way"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["account_created"], true);
    assert_eq!(accepted["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(accepted["role"], "admin");
    let me: Value = app
        .me(accepted["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
    assert_eq!(me["current_tenant"]["id"], owner.tenant_id.as_str());
    assert!(
        me["email_verified_at"].is_string(),
        "the link proved the address"
    );

    // The new member signs in with their password and holds the invited role.
    let login = app
        .login("grace@example.com", "compilers all the way")
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    let me: Value = app
        .me(login["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");

    // The link works once.
    assert_problem(
        accept(
            &app,
            &json!({"token": token, "name": "Again", "password": "compilers all the way"}),
        )
        .await,
        StatusCode::CONFLICT,
        "token_used",
    )
    .await;
    let list: Value = app
        .get_json("/api/v1/invitations", &owner.access_token)
        .await;
    assert_eq!(list["items"][0]["status"], "accepted");
    assert_eq!(list["items"][0]["email_delivery"]["status"], "sent");
    assert_eq!(list["items"][0]["email_delivery"]["attempts"], 1);

    // Both commands left their audit record in the tenant, naming the invitation and who
    // acted: the owner invited, the new member accepted.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let invitation_id = created["id"].as_str().unwrap();
    let rows = tenantry_audit::entity::Entity::find()
        .filter(tenantry_audit::entity::Column::ResourceId.eq(invitation_id))
        .order_by_asc(tenantry_audit::entity::Column::Id)
        .all(&app.platform.db)
        .await
        .unwrap();
    let trail: Vec<(&str, Option<&str>, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.action.as_str(),
                r.actor_id.as_deref(),
                r.tenant_id.map(|t| t.to_string()),
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            (
                "invitation.created",
                Some(owner.user_id.as_str()),
                Some(owner.tenant_id.clone())
            ),
            (
                "invitation.accepted",
                accepted["user_id"].as_str(),
                Some(owner.tenant_id.clone())
            ),
        ]
    );
}
on_both_databases!(a_new_address_is_invited_accepts_and_signs_in_with_the_role);

async fn an_existing_account_joins_and_signs_in_to_the_new_tenant(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let other = app.register("bob@example.com", "Bob's Shop").await;
    invite_one(&app, &owner.access_token, "bob@example.com", "member").await;
    let token = app.mail.invitation_token("bob@example.com").await;
    let preview: Value = app
        .post_json(
            "/api/v1/auth/accept-invite/preview",
            &json!({"token": token}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(preview["account_exists"], true);

    // No name or password needed, and none handed out: the owner signs in as usual.
    let res = accept(&app, &json!({"token": token})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["account_created"], false);
    assert_eq!(accepted["user_id"], other.user_id.as_str());
    assert!(accepted["access_token"].is_null());

    let res = app.login("bob@example.com", &other.password).await;
    assert_problem(res, StatusCode::CONFLICT, "tenant_selection_required").await;
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "bob@example.com", "password": other.password, "tenant_id": owner.tenant_id}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let me: Value = app
        .me(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "member");
    assert_eq!(me["current_tenant"]["id"], owner.tenant_id.as_str());
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);

    // From the session in their own tenant, Bob sees both tenants and switches over.
    let mine = app
        .get_json("/api/v1/users/me/tenants", &other.access_token)
        .await;
    let listed: Vec<(&str, &str, bool)> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["tenant"]["id"].as_str().unwrap(),
                m["role"].as_str().unwrap(),
                m["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (other.tenant_id.as_str(), "owner", true),
            (owner.tenant_id.as_str(), "member", false)
        ]
    );
    let res = app
        .post_authed(
            "/api/v1/auth/switch-tenant",
            &other.access_token,
            Some(json!({"tenant_id": owner.tenant_id})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let switched: Value = res.json().await.unwrap();
    let me: Value = app
        .me(switched["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["current_tenant"]["id"], owner.tenant_id.as_str());
    assert_eq!(me["role"], "member");
    let refreshed = app
        .refresh(switched["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    // The owner is no member of Bob's tenant, and an unknown tenant is no better.
    for tenant in [other.tenant_id.clone(), uuid::Uuid::now_v7().to_string()] {
        assert_problem(
            app.post_authed(
                "/api/v1/auth/switch-tenant",
                &owner.access_token,
                Some(json!({"tenant_id": tenant})),
            )
            .await,
            StatusCode::FORBIDDEN,
            "not_a_member",
        )
        .await;
    }

    // Now a member, the address cannot be invited again.
    assert_problem(
        invite(&app, &owner.access_token, &["bob@example.com"], "member").await,
        StatusCode::CONFLICT,
        "already_member",
    )
    .await;
}
on_both_databases!(an_existing_account_joins_and_signs_in_to_the_new_tenant);

async fn twenty_concurrent_invitations_of_one_address_leave_one_pending(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let statuses = futures::future::join_all((0..20).map(|_| async {
        invite(&app, &owner.access_token, &["race@example.com"], "member")
            .await
            .status()
    }))
    .await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 19), "{statuses:?}");
    let list: Value = app
        .get_json("/api/v1/invitations", &owner.access_token)
        .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "pending");
}
on_both_databases!(
    twenty_concurrent_invitations_of_one_address_leave_one_pending,
    settings = crate::helpers::pooled
);

async fn invitations_are_checked_and_confined_to_their_tenant(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let stranger = app.register("stranger@example.com", "Elsewhere").await;
    let path = "/api/v1/invitations";

    // Bad input is named field by field; a mixed batch is refused whole.
    let res = app
        .post_authed(
            path,
            &owner.access_token,
            Some(json!({"emails": ["ok@example.com", "nope", "OK@example.com"], "role": "wizard"})),
        )
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields = problem_fields(&body);
    assert_eq!(fields, ["emails[1]", "emails[2]", "role"]);
    let many: Vec<String> = (0..101).map(|i| format!("u{i}@example.com")).collect();
    let res = app
        .post_authed(
            path,
            &owner.access_token,
            Some(json!({"emails": many, "role": "member"})),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let list: Value = app.get_json(path, &owner.access_token).await;
    assert_eq!(list["items"], json!([]), "nothing was half-created");

    // Members cannot invite; admins cannot hand out owner.
    let member = new_member(&app, &owner, "member@example.com", "member").await;
    assert_problem(
        invite(&app, &member, &["x@example.com"], "member").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let admin = new_member(&app, &owner, "admin@example.com", "admin").await;
    assert_problem(
        invite(&app, &admin, &["x@example.com"], "owner").await,
        StatusCode::FORBIDDEN,
        "role_not_grantable",
    )
    .await;
    let by_admin = invite_one(&app, &admin, "x@example.com", "admin").await;
    assert_eq!(by_admin["role"], "admin");

    // A batch skips what it must and reports it.
    let res = invite(
        &app,
        &owner.access_token,
        &["x@example.com", "member@example.com", "y@example.com"],
        "member",
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["email"], "y@example.com");
    assert_eq!(
        body["skipped"],
        json!([
            {"email": "member@example.com", "code": "already_member"},
            {"email": "x@example.com", "code": "already_invited"},
        ])
    );

    // Another tenant sees none of it: every id answers 404, the list is empty.
    let id = by_admin["id"].as_str().unwrap();
    let one = format!("/api/v1/invitations/{id}");
    assert_problem(
        app.get_authed(&one, &stranger.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.delete_authed(&one, &stranger.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.post_authed(&format!("{one}/resend"), &stranger.access_token, None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let theirs: Value = app.get_json(path, &stranger.access_token).await;
    assert_eq!(theirs["items"], json!([]));
    let mine = app.get_authed(&one, &owner.access_token).await;
    assert_eq!(mine.status(), StatusCode::OK);

    // Revoked: the link is dead, and the revocation is final.
    let token = app.mail.invitation_token("x@example.com").await;
    let res = app.delete_authed(&one, &owner.access_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        accept(
            &app,
            &json!({"token": token, "name": "X", "password": "long enough pw"}),
        )
        .await,
        StatusCode::GONE,
        "invitation_revoked",
    )
    .await;
    assert_problem(
        app.delete_authed(&one, &owner.access_token).await,
        StatusCode::CONFLICT,
        "invitation_not_pending",
    )
    .await;
    let revoked: Value = app
        .get_json("/api/v1/invitations?status=revoked", &owner.access_token)
        .await;
    assert_eq!(revoked["items"][0]["id"], id);
    assert_problem(
        app.get_authed("/api/v1/invitations?status=lost", &owner.access_token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        accept(&app, &json!({"token": "not-a-token"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
}
on_both_databases!(invitations_are_checked_and_confined_to_their_tenant);

async fn resend_rotates_the_link_and_restarts_the_expiry(app: TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use tenantry_identity::entity::invitation;

    let owner = app.register("owner@example.com", "Acme").await;
    let created = invite_one(&app, &owner.access_token, "late@example.com", "member").await;
    let id = created["id"].as_str().unwrap();
    let old_token = app.mail.invitation_token("late@example.com").await;
    let resend = format!("/api/v1/invitations/{id}/resend");

    // Within a minute of the last email, a resend is refused.
    let res = app.post_authed(&resend, &owner.access_token, None).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "resend_too_soon").await;

    // Time passes: the invitation lapses and its email is over a minute old.
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    invitation::Entity::update_many()
        .col_expr(invitation::Column::ExpiresAt, Expr::value(past))
        .filter(invitation::Column::Id.eq(id.parse::<uuid::Uuid>().unwrap()))
        .exec(&app.platform.db)
        .await
        .unwrap();
    tenantry_identity::entity::invitation_email::Entity::update_many()
        .col_expr(
            tenantry_identity::entity::invitation_email::Column::CreatedAt,
            Expr::value(past),
        )
        .exec(&app.platform.db)
        .await
        .unwrap();
    for path in [
        "/api/v1/auth/accept-invite/preview",
        "/api/v1/auth/accept-invite",
    ] {
        assert_problem(
            app.post_json(path, &json!({"token": old_token})).await,
            StatusCode::GONE,
            "token_expired",
        )
        .await;
    }
    let expired: Value = app
        .get_json("/api/v1/invitations?status=expired", &owner.access_token)
        .await;
    assert_eq!(expired["items"][0]["id"], id);

    let res = app.post_authed(&resend, &owner.access_token, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let resent: Value = res.json().await.unwrap();
    assert_eq!(resent["status"], "pending");
    let expires: chrono::DateTime<chrono::Utc> =
        resent["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(
        ttl > chrono::Duration::hours(71) && ttl <= chrono::Duration::hours(72),
        "{ttl}"
    );

    // The old link is dead; the new email's link works.
    let new_token = app.mail.invitation_token("late@example.com").await;
    assert_ne!(new_token, old_token);
    assert_problem(
        accept(&app, &json!({"token": old_token})).await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
    let res = accept(
        &app,
        &json!({"token": new_token, "name": "Late", "password": "better late than never"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_problem(
        app.post_authed(&resend, &owner.access_token, None).await,
        StatusCode::CONFLICT,
        "invitation_not_pending",
    )
    .await;
}
on_both_databases!(resend_rotates_the_link_and_restarts_the_expiry);

async fn tenant_policy_limits_who_and_how_many_may_be_invited(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let settings = "/api/v1/tenants/current/settings";
    let res = app
        .put_authed(
            settings,
            &owner.access_token,
            &json!({"security": {"allowed_email_domains": ["Example.com"]}, "limits": {"seats": 3}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = invite(
        &app,
        &owner.access_token,
        &["a@example.com", "b@elsewhere.org"],
        "member",
    )
    .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "emails[1]");
    assert_eq!(body["errors"][0]["code"], "domain_not_allowed");

    // Three seats: the owner plus two pending invitations; a third does not fit.
    let res = invite(
        &app,
        &owner.access_token,
        &["a@example.com", "b@example.com", "c@example.com"],
        "member",
    )
    .await;
    assert_problem(res, StatusCode::CONFLICT, "seat_limit_reached").await;
    let res = invite(
        &app,
        &owner.access_token,
        &["a@example.com", "b@example.com"],
        "member",
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_problem(
        invite(&app, &owner.access_token, &["c@example.com"], "member").await,
        StatusCode::CONFLICT,
        "seat_limit_reached",
    )
    .await;
}
on_both_databases!(tenant_policy_limits_who_and_how_many_may_be_invited);

async fn attacker_text_never_becomes_a_link_in_an_invitation_email(app: TestApp) {
    // Names people see in emails refuse links and addresses.
    let res = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "mallory@example.com", "password": "correct horse battery",
                    "name": "Ada https://evil.example/login", "tenant_name": "evil.example"}),
        )
        .await;
    let bad = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem_fields(&bad), ["name", "tenant_name"]);
    assert_eq!(bad["errors"][0]["code"], "links_not_allowed");
    let owner = app.register("owner@example.com", "Acme").await;
    let res = app
        .put_authed(
            "/api/v1/tenants/current/settings",
            &owner.access_token,
            &json!({"branding": {"display_name": "Log in at evil.example"}}),
        )
        .await;
    let bad = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem_fields(&bad), ["branding.display_name"]);

    // Names stored before the rule are disarmed in the email all the same.
    use sea_orm::ConnectionTrait as _;
    app.platform
        .db
        .execute_unprepared(
            "UPDATE users SET name = 'Ada https://evil.example/login' WHERE email = 'owner@example.com'",
        )
        .await
        .unwrap();
    app.platform
        .db
        .execute_unprepared("UPDATE tenants SET name = 'evil.example Ltd'")
        .await
        .unwrap();
    let res = app
        .post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["grace@example.com"], "role": "member",
                        "message": "Log in at https://evil.example/login\nor write to help@evil.example"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.run_pending_jobs().await;
    let raw = app.mail.next_message_to("grace@example.com").await;
    let message = crate::sessions::decoded(&raw)
        .replace("\r\n ", " ")
        .replace("\n ", " ");
    assert!(
        message.contains("> Log in at https[:]//evil[.]example/login\n")
            && message.contains("> or write to help[@]evil[.]example\n"),
        "{message}"
    );
    assert!(
        message.contains("These are their words, not ours"),
        "{message}"
    );
    assert!(
        message.contains("Ada https[:]//evil[.]example/login invited you to evil[.]example Ltd"),
        "{message}"
    );
    for live in ["https://evil", "evil.example", "@evil"] {
        assert!(!message.contains(live), "{live} in {message}");
    }

    // Accepting as a new account names it under the same rule.
    let token = crate::sessions::token_from_email(&raw);
    let res = accept(
        &app,
        &json!({"token": token, "name": "Grace www.evil.example", "password": "a long enough password"}),
    )
    .await;
    let bad = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem_fields(&bad), ["name"]);
}
on_both_databases!(attacker_text_never_becomes_a_link_in_an_invitation_email);
