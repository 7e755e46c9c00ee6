//! How many statements a request sends: each is a round trip to the database, so the
//! statements every request pays are counted here (recorded from the connection).

use tenantry_kernel::ClientMeta;
use tenantry_platform::db::record_statements;

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn authentication_is_one_statement_and_me_two(app: TestApp) {
    let owner = app.register("counted@example.com", "Counted").await;
    let location = app.create_location(&owner, "Basel").await;
    let identity = &app.platform.identity;

    let (ctx, sent) =
        record_statements(identity.authenticate(&owner.access_token, ClientMeta::default(), None))
            .await;
    let ctx = ctx.expect("authenticated");
    assert_eq!(sent.len(), 1, "authentication: {sent:#?}");

    // At a location too: the location's existence and the member's role there come along.
    let (at, sent) = record_statements(identity.authenticate(
        &owner.access_token,
        ClientMeta::default(),
        Some(tenantry_kernel::LocationId(location.parse().unwrap())),
    ))
    .await;
    at.expect("authenticated at the location");
    assert_eq!(sent.len(), 1, "authentication at a location: {sent:#?}");

    let (me, sent) = record_statements(app.platform.accounts.me(&ctx)).await;
    let me = me.expect("me");
    assert_eq!(me.email, "counted@example.com");
    assert_eq!(me.memberships.len(), 1);
    assert_eq!(sent.len(), 1, "/users/me after authentication: {sent:#?}");
    assert!(
        sent.iter().all(|s| !s.sql.contains("password_hash")),
        "/users/me reads no password hash: {sent:#?}"
    );
}
on_both_databases!(authentication_is_one_statement_and_me_two);

async fn an_api_key_authenticates_in_one_statement(app: TestApp) {
    let owner = app.register("keyed@example.com", "Keyed").await;
    let location = app.create_location(&owner, "Basel").await;
    let res = app
        .post_authed(
            "/api/v1/api-keys",
            &owner.access_token,
            Some(serde_json::json!({"name": "sync", "scopes": ["users.read"]})),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let key = res.json::<serde_json::Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let identity = &app.platform.identity;
    // The first use records when the key was last used; later ones within the minute do not.
    identity
        .authenticate(&key, ClientMeta::default(), None)
        .await
        .expect("the key authenticates");
    let (ctx, sent) =
        record_statements(identity.authenticate(&key, ClientMeta::default(), None)).await;
    ctx.expect("the key authenticates again");
    assert_eq!(sent.len(), 1, "API-key authentication: {sent:#?}");

    let at = Some(tenantry_kernel::LocationId(location.parse().unwrap()));
    let (ctx, sent) =
        record_statements(identity.authenticate(&key, ClientMeta::default(), at)).await;
    ctx.expect("at one of the tenant's locations");
    assert_eq!(
        sent.len(),
        1,
        "API-key authentication at a location: {sent:#?}"
    );
    let elsewhere = Some(tenantry_kernel::LocationId(uuid::Uuid::now_v7()));
    let refused = identity
        .authenticate(&key, ClientMeta::default(), elsewhere)
        .await
        .expect_err("a location that is not the tenant's");
    assert!(
        matches!(
            refused,
            tenantry_identity::IdentityError::Tenancy(
                tenantry_tenancy::TenancyError::LocationNotFound
            )
        ),
        "{refused:?}"
    );
}
on_both_databases!(an_api_key_authenticates_in_one_statement);
