//! Account security: sign out everywhere, change the password, ask for a new verification link.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;
use crate::sessions::token_from_email;

async fn tokens(app: &TestApp, email: &str, password: &str) -> Value {
    let res = app.login(email, password).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn logout_all_ends_every_session_at_once(app: TestApp) {
    let account = app.register("everywhere@example.com", "Everywhere").await;
    let laptop = tokens(&app, &account.email, &account.password).await;
    let phone = tokens(&app, &account.email, &account.password).await;
    let res = app
        .post_authed(
            "/api/v1/auth/logout-all",
            phone["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for access in [
        account.access_token.as_str(),
        laptop["access_token"].as_str().unwrap(),
        phone["access_token"].as_str().unwrap(),
    ] {
        app.assert_signed_out(access).await;
    }
    assert_problem(
        app.refresh(laptop["refresh_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    )
    .await;
    // Signing in again works.
    tokens(&app, &account.email, &account.password).await;
}
on_both_databases!(logout_all_ends_every_session_at_once);

async fn changing_the_password_keeps_this_session_and_ends_the_others(app: TestApp) {
    let account = app.register("rotate@example.com", "Rotate").await;
    let here = tokens(&app, &account.email, &account.password).await;
    let here_token = here["access_token"].as_str().unwrap();
    let path = "/api/v1/auth/change-password";

    let wrong = app.post_authed(
        path,
        here_token,
        Some(json!({"current_password": "not the password", "new_password": "a brand new secret"})),
    )
    .await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "wrong_password").await;
    let short = app
        .post_authed(
            path,
            here_token,
            Some(json!({"current_password": account.password, "new_password": "short"})),
        )
        .await;
    let body = assert_problem(short, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    // Neither failure changed anything.
    let elsewhere = tokens(&app, &account.email, &account.password).await;

    let res = app
        .post_authed(
            path,
            here_token,
            Some(
                json!({"current_password": account.password, "new_password": "a brand new secret"}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me(here_token).await.status(),
        StatusCode::OK,
        "this session stays"
    );
    for other in [
        account.access_token.as_str(),
        elsewhere["access_token"].as_str().unwrap(),
    ] {
        app.assert_signed_out(other).await;
    }
    assert_problem(
        app.login(&account.email, &account.password).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    tokens(&app, &account.email, "a brand new secret").await;
}
on_both_databases!(changing_the_password_keeps_this_session_and_ends_the_others);

async fn a_new_verification_link_can_be_asked_for_until_the_address_is_verified(app: TestApp) {
    let account = app.register("again@example.com", "Again").await;
    app.run_pending_jobs().await;
    let first = token_from_email(&app.mail.next_message().await);

    let path = "/api/v1/auth/resend-verification";
    let res = app.post_authed(path, &account.access_token, None).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    app.run_pending_jobs().await;
    let second = token_from_email(&app.mail.next_message().await);
    assert_ne!(first, second, "a fresh token each time");

    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": second}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.post_authed(path, &account.access_token, None).await;
    assert_problem(res, StatusCode::CONFLICT, "already_verified").await;
}
on_both_databases!(a_new_verification_link_can_be_asked_for_until_the_address_is_verified);

async fn reset_tokens_in_database(app: &TestApp) -> u64 {
    use sea_orm::{EntityTrait as _, PaginatorTrait as _};
    tenantry_identity::entity::password_reset::Entity::find()
        .count(&app.platform.db)
        .await
        .unwrap()
}

async fn ask_for_reset(app: &TestApp, email: &str) -> String {
    let res = app
        .post_json("/api/v1/auth/forgot-password", &json!({"email": email}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    app.run_pending_jobs().await;
    let message = app.mail.next_message().await;
    assert!(
        message.contains("Subject: Reset your password"),
        "{message}"
    );
    assert!(
        crate::sessions::decoded(&message).contains("http://tenantry.test/reset-password#token="),
        "{message}"
    );
    token_from_email(&message)
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/reset-password",
        &json!({"token": token, "new_password": password}),
    )
    .await
}

async fn a_forgotten_password_is_reset_through_the_emailed_link(app: TestApp) {
    let account = app.register("forgetful@example.com", "Forgetful").await;
    app.run_pending_jobs().await;
    app.mail.next_message().await; // the verification email
    let elsewhere = tokens(&app, &account.email, &account.password).await;

    // Unknown addresses get the same answer, and no token is made for them.
    let res = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let bad = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "not an address"}),
        )
        .await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let earlier = ask_for_reset(&app, &account.email).await;
    let token = ask_for_reset(&app, &account.email).await;
    assert_eq!(
        reset_tokens_in_database(&app).await,
        2,
        "one per request for the real account"
    );
    // What the email job does for the unknown address, run here so its outcome is certain:
    // no account, no token, no email.
    let unknown = app
        .platform
        .account_upkeep
        .issue_password_reset("nobody@example.com")
        .await
        .unwrap();
    assert!(unknown.is_none());
    assert_eq!(reset_tokens_in_database(&app).await, 2);

    let page = app
        .client
        .get(app.url("/reset-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    // A password that breaks the rules is refused and spends nothing.
    let short = reset(&app, &token, "short").await;
    let body = assert_problem(short, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    assert_eq!(
        reset(&app, &token, "the new secret").await.status(),
        StatusCode::NO_CONTENT
    );

    // Every session ended; only the new password works; the link and its older sibling are spent.
    for access in [
        account.access_token.as_str(),
        elsewhere["access_token"].as_str().unwrap(),
    ] {
        app.assert_signed_out(access).await;
    }
    assert_problem(
        app.login(&account.email, &account.password).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    tokens(&app, &account.email, "the new secret").await;
    assert_problem(
        reset(&app, &token, "another secret").await,
        StatusCode::CONFLICT,
        "token_used",
    )
    .await;
    assert_problem(
        reset(&app, &earlier, "another secret").await,
        StatusCode::CONFLICT,
        "token_used",
    )
    .await;
    assert_problem(
        reset(&app, "not-a-token", "another secret").await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
}
on_both_databases!(a_forgotten_password_is_reset_through_the_emailed_link);

async fn an_expired_reset_link_is_gone(app: TestApp) {
    use sea_orm::ConnectionTrait as _;
    let account = app.register("late@example.com", "Late").await;
    app.run_pending_jobs().await;
    app.mail.next_message().await; // the verification email
    let token = ask_for_reset(&app, &account.email).await;
    app.platform
        .db
        .execute_unprepared("UPDATE password_reset_tokens SET expires_at = created_at")
        .await
        .unwrap();
    assert_problem(
        reset(&app, &token, "too late now").await,
        StatusCode::GONE,
        "token_expired",
    )
    .await;
    tokens(&app, &account.email, &account.password).await;
}
on_both_databases!(an_expired_reset_link_is_gone);

async fn changing_the_password_voids_every_reset_link_mailed_before(app: TestApp) {
    let account = app.register("careful@example.com", "Careful").await;
    app.run_pending_jobs().await;
    app.mail.next_message().await; // the verification email
    let token = ask_for_reset(&app, &account.email).await;
    let res = app
        .post_authed(
            "/api/v1/auth/change-password",
            &account.access_token,
            Some(
                json!({"current_password": account.password, "new_password": "changed on purpose"}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Whoever holds the old link cannot undo the change.
    assert_problem(
        reset(&app, &token, "an attacker's choice").await,
        StatusCode::CONFLICT,
        "token_used",
    )
    .await;
    tokens(&app, &account.email, "changed on purpose").await;
}
on_both_databases!(changing_the_password_voids_every_reset_link_mailed_before);
