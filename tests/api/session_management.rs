//! The sessions list and ending one session: newest first, paged, the current one marked,
//! nobody else's sessions visible or revocable, and refresh tokens bound to their network.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, client_from};
use crate::on_both_databases;

/// Signs in with a given `User-Agent` and returns the token pair.
async fn login_from(app: &TestApp, email: &str, password: &str, agent: &str) -> Value {
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .get_authed(&format!("/api/v1/auth/sessions{query}"), token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn sessions_are_listed_newest_first_and_end_one_at_a_time(app: TestApp) {
    let account = app.register("grace@example.com", "Compilers").await;
    let laptop = login_from(&app, &account.email, &account.password, "Laptop/1.0").await;
    let phone = login_from(&app, &account.email, &account.password, "Phone/2.0").await;
    let phone_token = phone["access_token"].as_str().unwrap();

    let all = list(&app, phone_token, "").await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{all}");
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(items[0]["user_agent"], "Phone/2.0");
    assert_eq!(items[1]["user_agent"], "Laptop/1.0");
    assert_eq!(items[0]["ip"], "127.0.0.1");
    let current: Vec<bool> = items
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, [true, false, false]);

    // Pages of two: the cursor leads to the rest, then runs out.
    let first = list(&app, phone_token, "?limit=2").await;
    assert_eq!(ids(&first), ids(&all)[..2]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = list(&app, phone_token, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&second), ids(&all)[2..]);
    assert_eq!(second["next_cursor"], Value::Null);

    // The phone signs the laptop out: the laptop's tokens stop working at once.
    let laptop_id = &ids(&all)[1];
    let res = app
        .delete_authed(&format!("/api/v1/auth/sessions/{laptop_id}"), phone_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.assert_signed_out(laptop["access_token"].as_str().unwrap())
        .await;
    assert_problem(
        app.refresh(laptop["refresh_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    )
    .await;
    assert_eq!(ids(&list(&app, phone_token, "").await).len(), 2);
    // Ended already: nothing left to end.
    assert_problem(
        app.delete_authed(&format!("/api/v1/auth/sessions/{laptop_id}"), phone_token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(app.me(phone_token).await.status(), StatusCode::OK);
}
on_both_databases!(sessions_are_listed_newest_first_and_end_one_at_a_time);

async fn bad_list_parameters_and_ids_are_problems(app: TestApp) {
    let account = app.register("hopper@example.com", "Cobol").await;
    let token = &account.access_token;
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
        ("?cursor=not-a-cursor", "cursor"),
        ("?sort=asc", "sort"),
    ] {
        let body = assert_problem(
            app.get_authed(&format!("/api/v1/auth/sessions{query}"), token)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    for id in ["not-a-uuid", "01a1fcc2-5357-7134-9e14-b38b179edd3b"] {
        assert_problem(
            app.delete_authed(&format!("/api/v1/auth/sessions/{id}"), token)
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert_problem(
        app.client
            .get(app.url("/api/v1/auth/sessions"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "missing_token",
    )
    .await;
}
on_both_databases!(bad_list_parameters_and_ids_are_problems);

async fn another_tenants_sessions_are_not_found(app: TestApp) {
    let alice = app.register("alice@example.com", "Alpha").await;
    let bob = app.register("bob@example.com", "Beta").await;
    let alice_sessions = ids(&list(&app, &alice.access_token, "").await);
    let bob_sessions = ids(&list(&app, &bob.access_token, "").await);
    assert_eq!(alice_sessions.len(), 1);
    assert_eq!(bob_sessions.len(), 1);
    assert_ne!(alice_sessions, bob_sessions);

    // Bob cannot end Alice's session: it does not exist for him, exactly like an unknown id.
    let res = app
        .delete_authed(
            &format!("/api/v1/auth/sessions/{}", alice_sessions[0]),
            &bob.access_token,
        )
        .await;
    let body = assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(body["detail"], "session not found");
    assert_eq!(app.me(&alice.access_token).await.status(), StatusCode::OK);
    assert_eq!(
        ids(&list(&app, &alice.access_token, "").await),
        alice_sessions
    );
}
on_both_databases!(another_tenants_sessions_are_not_found);

async fn refresh_via(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn bound_refresh_tokens_work_only_from_their_network(app: TestApp) {
    let account = app.register("owner@example.com", "Acme").await;
    // Sessions opened before the policy stay unbound.
    let unbound = account.refresh_token.clone();
    let res = app
        .put_authed(
            "/api/v1/tenants/current/settings",
            &account.access_token,
            &json!({"security": {"bind_refresh_tokens_to_network": true}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let home = client_from([127, 0, 0, 1]);
    let neighbour = client_from([127, 0, 0, 2]);
    let elsewhere = client_from([127, 0, 1, 1]);

    let res = home
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": account.email, "password": account.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    // Another address of the same /24 is the same network.
    let res = refresh_via(&app, &neighbour, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();

    assert_problem(
        refresh_via(&app, &elsewhere, rotated["refresh_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "session_network_changed",
    )
    .await;
    // The session is over, for its access token too.
    app.assert_signed_out(rotated["access_token"].as_str().unwrap())
        .await;
    let res = refresh_via(&app, &elsewhere, &unbound).await;
    assert_eq!(res.status(), StatusCode::OK);
}
on_both_databases!(bound_refresh_tokens_work_only_from_their_network);
