//! `Idempotency-Key` on POST /api/v1/invitations: one execution per key, the first response
//! replayed, a different request with the key refused, keys scoped to their caller, 24 hours.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenantry_kernel::TenantId;
use tenantry_platform::idempotency::{self, Claim, KeyScope};

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;

async fn invite_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/invitations"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn invitation_emails(app: &TestApp, token: &str) -> Vec<String> {
    let res = app.get_authed("/api/v1/invitations", token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn twenty_concurrent_posts_with_one_key_invite_once_and_answer_alike(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let body = json!({"emails": ["grace@example.com", "alan@example.com"], "role": "member"});
    let answers = futures::future::join_all((0..20).map(|_| async {
        let res = invite_with_key(&app, &owner.access_token, "create-7f3a", &body).await;
        let status = res.status();
        let replayed = res.headers().get("idempotent-replayed").is_some();
        let text = res.text().await.unwrap();
        (status, replayed, text)
    }))
    .await;
    for (status, _, text) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{text}");
    }
    let first = &answers[0].2;
    assert!(
        answers.iter().all(|(_, _, text)| text == first),
        "{answers:#?}"
    );
    let fresh = answers.iter().filter(|(_, replayed, _)| !replayed).count();
    assert_eq!(fresh, 1, "exactly one request ran: {answers:#?}");
    let created: Value = serde_json::from_str(first).unwrap();
    assert_eq!(created["items"].as_array().unwrap().len(), 2);

    let mut emails = invitation_emails(&app, &owner.access_token).await;
    emails.sort();
    assert_eq!(emails, ["alan@example.com", "grace@example.com"]);

    // Without a key, the same request runs again: both addresses are invited already.
    let again = app
        .post_authed("/api/v1/invitations", &owner.access_token, Some(body))
        .await;
    assert_problem(again, StatusCode::CONFLICT, "already_invited").await;
}
on_both_databases!(twenty_concurrent_posts_with_one_key_invite_once_and_answer_alike);

async fn a_key_sent_with_another_request_is_refused_and_changes_nothing(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let first = json!({"emails": ["grace@example.com"], "role": "member"});
    let res = invite_with_key(&app, &owner.access_token, "k-1", &first).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let other = json!({"emails": ["alan@example.com"], "role": "member"});
    let res = invite_with_key(&app, &owner.access_token, "k-1", &other).await;
    let problem = assert_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("different request")
    );
    assert_eq!(
        invitation_emails(&app, &owner.access_token).await,
        ["grace@example.com"]
    );

    // The key is its caller's: another tenant's owner may use the same one for its own request.
    let rival = app.register("rival@example.com", "Rival").await;
    let res = invite_with_key(&app, &rival.access_token, "k-1", &other).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(
        invitation_emails(&app, &rival.access_token).await,
        ["alan@example.com"]
    );
}
on_both_databases!(a_key_sent_with_another_request_is_refused_and_changes_nothing);

async fn a_refusal_is_replayed_as_it_was_and_a_bad_key_is_refused(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    // Inviting oneself skips every address: a 409, kept like any answer about the request.
    let body = json!({"emails": ["owner@example.com"], "role": "member"});
    let first = invite_with_key(&app, &owner.access_token, "self", &body).await;
    let first = assert_problem(first, StatusCode::CONFLICT, "already_member").await;
    let again = invite_with_key(&app, &owner.access_token, "self", &body).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/problem+json");
    let again = assert_problem(again, StatusCode::CONFLICT, "already_member").await;
    assert_eq!(again, first);

    for bad in ["", "has space", &"k".repeat(256), "naïve"] {
        let res = app
            .client
            .post(app.url("/api/v1/invitations"))
            .bearer_auth(&owner.access_token)
            .header("Idempotency-Key", bad.as_bytes())
            .json(&json!({"emails": ["grace@example.com"], "role": "member"}))
            .send()
            .await
            .unwrap();
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    }
    assert!(
        invitation_emails(&app, &owner.access_token)
            .await
            .is_empty()
    );

    // Without a valid token the key changes nothing: the request is refused as before.
    let res = invite_with_key(&app, "not-a-token", "k", &body).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
on_both_databases!(a_refusal_is_replayed_as_it_was_and_a_bad_key_is_refused);

async fn a_key_lasts_twenty_four_hours(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let body = json!({"emails": ["grace@example.com"], "role": "member"});
    let res = invite_with_key(&app, &owner.access_token, "daily", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let scope = KeyScope {
        tenant: TenantId(owner.tenant_id.parse().unwrap()),
        principal: format!("user:{}", owner.user_id),
        key: "daily".to_owned(),
    };
    let db = &app.platform.db;
    let now = Utc::now();
    // A day less a minute later, the key still belongs to the first request...
    let held = idempotency::claim(
        db,
        &app.platform.sealer,
        &scope,
        "another request",
        now + Duration::hours(23),
    )
    .await
    .unwrap();
    assert_eq!(held, Claim::Reused);
    assert_eq!(
        idempotency::purge(db, now + Duration::hours(23))
            .await
            .unwrap(),
        0
    );
    // ...and a day later it is free again, and the cleanup removes it.
    let later = now + Duration::hours(24) + Duration::minutes(1);
    let free = idempotency::claim(db, &app.platform.sealer, &scope, "another request", later)
        .await
        .unwrap();
    assert_eq!(free, Claim::Acquired);
    let much_later = later + Duration::hours(25);
    assert_eq!(idempotency::purge(db, much_later).await.unwrap(), 1);
}
on_both_databases!(a_key_lasts_twenty_four_hours);

async fn a_replayed_api_key_shows_its_secret_again_and_none_is_kept_readable(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let body = json!({"name": "sync", "scopes": ["users.read"]});
    let create = || async {
        app.client
            .post(app.url("/api/v1/api-keys"))
            .bearer_auth(&owner.access_token)
            .header("Idempotency-Key", "key-for-sync")
            .json(&body)
            .send()
            .await
            .expect("request")
    };
    let first = create().await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = create().await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    let secret = first["secret"].as_str().unwrap();

    let listed = app
        .get_authed("/api/v1/api-keys", &owner.access_token)
        .await;
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    use sea_orm::EntityTrait as _;
    let kept = idempotency::entity::Entity::find()
        .all(&app.platform.db)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    let stored = kept[0].response_body.as_deref().unwrap();
    assert!(
        !stored.contains(secret) && !stored.contains("tnt_"),
        "{stored}"
    );
}
on_both_databases!(a_replayed_api_key_shows_its_secret_again_and_none_is_kept_readable);
