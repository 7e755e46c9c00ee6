//! Invitation emails while the mail server is down, and the daily cleanup. The background
//! workers are off here; the test drives the due-email sweep and the cleanup at chosen times.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tenantry_identity::InvitationCleanup;
use tenantry_identity::entity::{invitation, invitation_email};
use tenantry_platform::jobs::deliver_due_invitation_emails;

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn invitations(app: &TestApp, token: &str) -> Vec<Value> {
    let list: Value = app.get_json("/api/v1/invitations", token).await;
    list["items"].as_array().unwrap().clone()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("a timestamp").parse().unwrap()
}

async fn sweep(app: &TestApp, now: DateTime<Utc>) -> usize {
    deliver_due_invitation_emails(&app.platform, now)
        .await
        .expect("sweep")
}

async fn emails_wait_out_a_mail_server_outage_and_none_is_lost(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    app.mail.set_down(true);
    let res = app
        .post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["ann@example.com", "bob@example.com", "bounce@example.com"], "role": "member"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // First attempt, then the retries after 5 min, 30 min and 2 h: all while the server is
    // down, each one scheduling the next.
    let t0 = Utc::now();
    let mut now = t0;
    for (attempt, wait) in [(1, 5), (2, 30), (3, 120)] {
        assert_eq!(sweep(&app, now).await, 3, "attempt {attempt}");
        for inv in invitations(&app, &owner.access_token).await {
            let email = &inv["email_delivery"];
            assert_eq!(email["status"], "pending", "{inv}");
            assert_eq!(email["attempts"], attempt);
            let next = at(&email["next_attempt_at"]);
            assert_eq!(
                next - at(&email["last_attempt_at"]),
                Duration::minutes(wait)
            );
        }
        // Nothing is due a second early.
        let next = now + Duration::minutes(wait);
        assert_eq!(sweep(&app, next - Duration::seconds(1)).await, 0);
        now = next;
    }
    assert!(app.mail.is_empty().await);

    // The server is back for the fourth and last attempt: both deliverable emails arrive,
    // and the address the server refuses is marked failed without holding them up.
    app.mail.set_down(false);
    assert_eq!(sweep(&app, now).await, 3);
    let mut delivered = [
        crate::sessions::decoded(&app.mail.next_message().await),
        crate::sessions::decoded(&app.mail.next_message().await),
    ];
    delivered.sort();
    assert!(
        delivered[0].contains("To: ann@example.com"),
        "{}",
        delivered[0]
    );
    assert!(
        delivered[1].contains("To: bob@example.com"),
        "{}",
        delivered[1]
    );
    assert!(app.mail.is_empty().await);
    for inv in invitations(&app, &owner.access_token).await {
        let email = &inv["email_delivery"];
        assert_eq!(email["attempts"], 4);
        assert!(email["next_attempt_at"].is_null());
        let expected = if inv["email"] == "bounce@example.com" {
            "failed"
        } else {
            "sent"
        };
        assert_eq!(email["status"], expected, "{inv}");
    }
    assert_eq!(
        sweep(&app, now + Duration::days(1)).await,
        0,
        "nothing left"
    );

    // The delivered link works.
    let ann = delivered.iter().find(|m| m.contains("ann@")).unwrap();
    let res = app
        .post_json(
            "/api/v1/auth/accept-invite",
            &json!({"token": crate::sessions::token_from_email(ann), "name": "Ann", "password": "worth the wait"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}
on_both_databases!(
    emails_wait_out_a_mail_server_outage_and_none_is_lost,
    settings = |s| s.embedded_worker = false
);

async fn cleanup(app: &TestApp, now: DateTime<Utc>) -> InvitationCleanup {
    app.platform
        .invitation_delivery
        .cleanup_invitations(now)
        .await
        .expect("cleanup")
}

async fn the_daily_cleanup_expires_cancels_hides_and_deletes(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let mut ids = Vec::new();
    for email in [
        "lapsed@example.com",
        "revoked@example.com",
        "failed@example.com",
        "live@example.com",
    ] {
        let res = app
            .post_authed(
                "/api/v1/invitations",
                &owner.access_token,
                Some(json!({"emails": [email], "role": "member"})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        ids.push(
            body["items"][0]["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        );
    }
    let [lapsed, revoked, failed, _live] = ids[..] else {
        unreachable!()
    };
    let now = Utc::now();
    invitation::Entity::update_many()
        .col_expr(
            invitation::Column::ExpiresAt,
            Expr::value(now - Duration::hours(1)),
        )
        .filter(invitation::Column::Id.eq(lapsed))
        .exec(&app.platform.db)
        .await
        .unwrap();
    let res = app
        .delete_authed(
            &format!("/api/v1/invitations/{revoked}"),
            &owner.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    invitation_email::Entity::update_many()
        .col_expr(invitation_email::Column::Status, Expr::value("failed"))
        .filter(invitation_email::Column::InvitationId.eq(failed))
        .exec(&app.platform.db)
        .await
        .unwrap();

    // Today: the lapsed invitation is marked expired and its unsent email cancelled.
    assert_eq!(
        cleanup(&app, now).await,
        InvitationCleanup {
            expired: 1,
            emails_cancelled: 1,
            ..InvitationCleanup::default()
        }
    );
    // Of the four emails, only the live invitation's is still due: the others are cancelled
    // or failed.
    assert_eq!(sweep(&app, now).await, 1);

    // A month on: what ended 30 days ago is hidden; old failed and cancelled email records
    // go; the other two have lapsed meanwhile.
    let month = now + Duration::days(31);
    assert_eq!(
        cleanup(&app, month).await,
        InvitationCleanup {
            expired: 2,
            emails_cancelled: 0,
            soft_deleted: 2,
            hard_deleted: 0,
            email_records_deleted: 3,
        }
    );
    let visible: Vec<String> = invitations(&app, &owner.access_token)
        .await
        .iter()
        .map(|i| i["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(visible, ["live@example.com", "failed@example.com"]);
    let res = app
        .get_authed(
            &format!("/api/v1/invitations/{lapsed}"),
            &owner.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Two months after hiding, the rows are gone for good, emails with them.
    let later = month + Duration::days(61);
    let report = cleanup(&app, later).await;
    assert_eq!((report.soft_deleted, report.hard_deleted), (2, 2));
    let left = invitation::Entity::find()
        .filter(invitation::Column::Id.is_in([lapsed, revoked]))
        .count(&app.platform.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let left = invitation_email::Entity::find()
        .filter(invitation_email::Column::InvitationId.is_in([lapsed, revoked]))
        .count(&app.platform.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
on_both_databases!(
    the_daily_cleanup_expires_cancels_hides_and_deletes,
    settings = |s| s.embedded_worker = false
);
