//! The audit log: every command of the sign-up and session flow leaves one row saying who did
//! what, to what, from which address and client, with values before and after — and the
//! database refuses to change or delete a row once written.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, QueryOrder};
use serde_json::{Value, json};
use tenantry_audit::entity as audit_log;

use crate::helpers::TestApp;
use crate::on_both_databases;
use crate::sessions::token_from_email;

const AGENT: &str = "AuditProbe/1.0";

async fn every_command_is_audited_with_who_what_where_and_values(mut app: TestApp) {
    app.client = reqwest::Client::builder()
        .user_agent(AGENT)
        .build()
        .unwrap();
    let account = app.register("audit@example.com", "Before").await;

    let wrong = app.login(&account.email, "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let tokens: Value = app
        .login(&account.email, &account.password)
        .await
        .json()
        .await
        .unwrap();
    let refreshed: Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    let res = app
        .client
        .put(app.url("/api/v1/tenants/current"))
        .bearer_auth(access)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "After"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.run_pending_jobs().await;
    let token = token_from_email(&app.mail.next_message().await);
    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::OccurredAt)
        .order_by_asc(audit_log::Column::Id)
        .all(&app.platform.db)
        .await
        .unwrap();
    let mut actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "session.created",
            "session.refreshed",
            "session.revoked",
            "tenant.created",
            "tenant.updated",
            "user.email_verified",
            "user.login_failed",
            "user.registered",
        ]
    );
    let row = |action: &str| rows.iter().find(|r| r.action == action).unwrap();
    for r in &rows {
        assert_eq!(r.actor_type, "user", "{}", r.action);
        assert_eq!(
            r.actor_id.as_deref(),
            Some(account.user_id.as_str()),
            "{}",
            r.action
        );
        assert_eq!(r.ip.as_deref(), Some("127.0.0.1"), "{}", r.action);
        assert_eq!(r.user_agent.as_deref(), Some(AGENT), "{}", r.action);
        assert!(r.request_id.is_some(), "{} has a request id", r.action);
        let expected_tenant = match r.action.as_str() {
            // Account-level events happen outside any tenant.
            "user.login_failed" | "user.email_verified" => None,
            _ => Some(account.tenant_id.as_str()),
        };
        assert_eq!(
            r.tenant_id.map(|t| t.to_string()).as_deref(),
            expected_tenant,
            "{}",
            r.action
        );
    }
    let updated = row("tenant.updated");
    assert_eq!(updated.resource_type, "tenant");
    assert_eq!(
        updated.resource_id.as_deref(),
        Some(account.tenant_id.as_str())
    );
    assert_eq!(updated.old_values, Some(json!({"name": "Before"})));
    assert_eq!(updated.new_values, Some(json!({"name": "After"})));
    let revoked = row("session.revoked");
    assert_eq!(revoked.new_values, Some(json!({"reason": "logout"})));
    assert_eq!(
        row("session.created").resource_id,
        revoked.resource_id,
        "the session logged in is the one logged out"
    );

    // Secrets never reach the log.
    let everything = format!("{rows:?}");
    for secret in [
        account.password.as_str(),
        tokens["refresh_token"].as_str().unwrap(),
        access,
        token.as_str(),
    ] {
        assert!(
            !everything.contains(secret),
            "a secret leaked into the audit log"
        );
    }
}
on_both_databases!(every_command_is_audited_with_who_what_where_and_values);

async fn the_audit_log_refuses_updates_and_deletes(app: TestApp) {
    app.register("history@example.com", "Immutable").await;
    let db = &app.platform.db;
    let before = audit_log::Entity::find().all(db).await.unwrap();
    assert!(!before.is_empty());
    let update = db
        .execute_unprepared("UPDATE audit_log SET action = 'rewritten'")
        .await;
    assert!(update.is_err(), "UPDATE must be refused");
    let delete = db.execute_unprepared("DELETE FROM audit_log").await;
    assert!(delete.is_err(), "DELETE must be refused");
    assert_eq!(audit_log::Entity::find().all(db).await.unwrap(), before);
    assert_eq!(
        audit_log::Entity::find().count(db).await.unwrap(),
        before.len() as u64
    );
}
on_both_databases!(the_audit_log_refuses_updates_and_deletes);
