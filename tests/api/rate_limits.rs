//! Rate limits over HTTP: sign-in per client address and per account, the tenant API per
//! principal at the tenant's allowance, the `RateLimit-*` headers and 429 with
//! `Retry-After`, and one limit shared by two servers through Redis.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_problem, client_from, spawn_app};
use crate::on_both_databases;

fn header(res: &Response, name: &str) -> u64 {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn login_from(app: &TestApp, client: &reqwest::Client, email: &str) -> Response {
    client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "not the password"}))
        .send()
        .await
        .unwrap()
}

/// Asserts the refusal a client over its allowance gets.
async fn assert_limited(res: Response, limit: u64) {
    assert_eq!(header(&res, "ratelimit-limit"), limit);
    assert_eq!(header(&res, "ratelimit-remaining"), 0);
    let retry = header(&res, "retry-after");
    assert!((1..=60).contains(&retry), "retry after {retry}");
    assert!(header(&res, "ratelimit-reset") >= retry);
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

async fn the_21st_sign_in_attempt_in_a_minute_is_refused(app: TestApp) {
    // Twenty attempts from one address, each for another account, all answered…
    let from_one = client_from([127, 0, 0, 2]);
    for i in 0..20u64 {
        let res = login_from(&app, &from_one, &format!("nobody{i}@example.com")).await;
        assert_eq!(header(&res, "ratelimit-limit"), 20);
        assert_eq!(header(&res, "ratelimit-remaining"), 19 - i);
        assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // …and the 21st refused, whoever it is for.
    assert_limited(login_from(&app, &from_one, "someone@example.com").await, 20).await;
    // Another address is not affected.
    let res = login_from(&app, &client_from([127, 0, 0, 3]), "someone@example.com").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Twenty attempts on one account, each from another address: the 21st is refused too.
    for last in 10..30 {
        let res = login_from(&app, &client_from([127, 0, 0, last]), "victim@example.com").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(
        login_from(&app, &client_from([127, 0, 0, 40]), "Victim@Example.com").await,
        20,
    )
    .await;

    // The other credential endpoints are limited the same way.
    for _ in 0..20 {
        let res = app
            .post_json(
                "/api/v1/auth/forgot-password",
                &json!({"email": "victim@example.com"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let res = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "victim@example.com"}),
        )
        .await;
    assert_limited(res, 20).await;
}
on_both_databases!(the_21st_sign_in_attempt_in_a_minute_is_refused);

async fn each_principal_gets_the_tenants_api_allowance(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let res = app
        .post_authed(
            "/api/v1/api-keys",
            &owner.access_token,
            Some(json!({"name": "sync", "scopes": ["users.read"]})),
        )
        .await;
    let key = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .put_authed(
            "/api/v1/tenants/current/settings",
            &owner.access_token,
            &json!({"limits": {"api_requests_per_minute": 5}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    for left in (0..5).rev() {
        let res = app.get_authed("/api/v1/users", &owner.access_token).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "ratelimit-limit"), 5);
        assert_eq!(header(&res, "ratelimit-remaining"), left);
    }
    assert_limited(
        app.get_authed("/api/v1/users", &owner.access_token).await,
        5,
    )
    .await;
    // Another member, and an API key, each have their own allowance.
    assert_eq!(
        app.get_authed("/api/v1/users", &member.access_token)
            .await
            .status(),
        StatusCode::OK
    );
    let res = app.get_authed("/api/v1/users", &key).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "ratelimit-remaining"), 4);
}
on_both_databases!(each_principal_gets_the_tenants_api_allowance);

/// Two servers using one Redis enforce one limit: ten attempts on each, then the next is
/// refused by either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_redis_share_one_limit() {
    let Some(redis) = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED two_servers_sharing_redis_share_one_limit: TEST_REDIS_URL is not set, the shared limit is not tested"
        );
        return;
    };
    // A prefix of this run's own, so runs and tests never share buckets.
    let prefix = format!("tenantry-test:{}:", uuid::Uuid::now_v7().simple());
    let shared = |s: &mut tenantry_platform::Settings| {
        s.redis_url = Some(redis.clone());
        s.rate_limit_prefix.clone_from(&prefix);
    };
    let first = spawn_app(Backend::Sqlite, shared).await.unwrap();
    let second = spawn_app(Backend::Sqlite, shared).await.unwrap();
    let client = client_from([127, 0, 0, 5]);
    for i in 0..10u64 {
        for (n, app) in [&first, &second].into_iter().enumerate() {
            let res = login_from(app, &client, "someone@example.com").await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            let used = 2 * i + u64::try_from(n).unwrap() + 1;
            assert_eq!(header(&res, "ratelimit-remaining"), 20 - used);
        }
    }
    assert_limited(login_from(&first, &client, "someone@example.com").await, 20).await;
    assert_limited(login_from(&second, &client, "other@example.com").await, 20).await;
}

async fn behind_a_trusted_proxy_the_forwarded_client_is_limited(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let via_proxy = |client: &str, email: &str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.1, {client}"))
            .json(&json!({"email": email, "password": "not the password"}))
            .send()
    };
    // The proxy (127.0.0.1, trusted) forwards one client twenty times: its 21st is refused…
    for i in 0..20 {
        let res = via_proxy("203.0.113.7", &format!("nobody{i}@example.com"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(
        via_proxy("203.0.113.7", "someone@example.com")
            .await
            .unwrap(),
        20,
    )
    .await;
    // …while another client behind the same proxy is not.
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.8")
        .json(&json!({"email": owner.email, "password": owner.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions = app.get_json("/api/v1/auth/sessions", &token).await;
    assert!(
        sessions["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["ip"] == "203.0.113.8"),
        "the session records the forwarded client: {sessions}"
    );

    // A peer that is no trusted proxy cannot pick its address by header.
    let direct = client_from([127, 0, 0, 9]);
    for i in 0..20 {
        let res = direct
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .json(&json!({"email": "x@example.com", "password": "not the password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let res = direct
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "192.0.2.200")
        .json(&json!({"email": "y@example.com", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_limited(res, 20).await;
}
on_both_databases!(
    behind_a_trusted_proxy_the_forwarded_client_is_limited,
    settings = |s| s.trusted_proxies = vec!["127.0.0.1".to_owned()]
);

/// The allowance of the credential-limit test: small, so each check is run out quickly.
const SMALL: u32 = 8;

/// A request from `client` as forwarded by the trusted proxy, with `token` if any.
async fn forwarded(
    app: &TestApp,
    client: String,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Response {
    let mut req = app
        .client
        .post(app.url(path))
        .header("x-forwarded-for", client)
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

/// Sends `attempt(i)` (each from another address) until one is refused with 429; asserts that
/// exactly `answered` were answered before, each with `status`.
async fn run_out<F, Fut>(answered: u32, status: StatusCode, attempt: F)
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    for i in 0..answered {
        let res = attempt(i).await;
        assert_eq!(res.status(), status, "attempt {i}");
    }
    assert_limited(attempt(answered).await, u64::from(SMALL)).await;
}

async fn every_check_of_a_secret_is_on_the_credential_limit(app: TestApp) {
    let addr = |scenario: u32, i: u32| format!("198.51.{scenario}.{i}");
    let (a, b, c, d) = (
        app.register("a@example.com", "A").await,
        app.register("b@example.com", "B").await,
        app.register("c@example.com", "C").await,
        app.register("d@example.com", "D").await,
    );
    let wrong = json!({"current_password": "not the password", "new_password": "a new password"});

    // A password change, from rotating addresses: the account's allowance, then 429 — also
    // for the right password.
    run_out(SMALL, StatusCode::FORBIDDEN, |i| {
        forwarded(
            &app,
            addr(1, i),
            "/api/v1/auth/change-password",
            Some(&a.access_token),
            wrong.clone(),
        )
    })
    .await;
    let right = json!({"current_password": a.password, "new_password": "a new password"});
    let res = forwarded(
        &app,
        "198.51.1.200".into(),
        "/api/v1/auth/change-password",
        Some(&a.access_token),
        right,
    )
    .await;
    assert_limited(res, u64::from(SMALL)).await;

    // Confirming an enrollment with wrong codes.
    let res = app
        .post_authed("/api/v1/users/me/mfa/totp", &b.access_token, None)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    run_out(SMALL, StatusCode::FORBIDDEN, |i| {
        forwarded(
            &app,
            addr(2, i),
            "/api/v1/users/me/mfa/totp/confirm",
            Some(&b.access_token),
            json!({"code": "000000"}),
        )
    })
    .await;

    // Disabling the factor by password shares the account's password allowance with every
    // other password check; by code, and regenerating backup codes, the code allowance (of
    // which confirming the factor took one).
    let (_, _) = crate::mfa::enable(&app, &c).await;
    run_out(SMALL, StatusCode::FORBIDDEN, |i| {
        forwarded(
            &app,
            addr(3, i),
            "/api/v1/users/me/mfa/totp/disable",
            Some(&c.access_token),
            json!({"password": "not it"}),
        )
    })
    .await;
    let (_, _) = crate::mfa::enable(&app, &d).await;
    run_out(SMALL - 1, StatusCode::FORBIDDEN, |i| {
        let path = if i % 2 == 0 {
            "/api/v1/users/me/mfa/totp/disable"
        } else {
            "/api/v1/users/me/mfa/backup-codes"
        };
        forwarded(
            &app,
            addr(4, i),
            path,
            Some(&d.access_token),
            json!({"code": "000000"}),
        )
    })
    .await;

    // A second factor at sign-in is counted on the account, not the challenge: signing in
    // again from another address opens a new challenge, but no new allowance.
    let e = app.register("e@example.com", "E").await;
    let (secret, _) = crate::mfa::enable(&app, &e).await;
    let login = |client: &'static str| {
        forwarded(
            &app,
            client.into(),
            "/api/v1/auth/login",
            None,
            json!({"email": e.email, "password": e.password}),
        )
    };
    let verify = |client: String, token: String, code: String| {
        forwarded(
            &app,
            client,
            "/api/v1/auth/mfa/verify",
            None,
            json!({"mfa_token": token, "code": code}),
        )
    };
    let mfa_token = |res: Response| async move {
        res.json::<Value>().await.unwrap()["mfa_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = mfa_token(login("198.51.5.100").await).await;
    for i in 0..5 {
        let res = verify(addr(5, i), first.clone(), "000000".into()).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    }
    let second = mfa_token(login("198.51.5.101").await).await;
    for i in 5..SMALL - 1 {
        let res = verify(addr(5, i), second.clone(), "000000".into()).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    }
    let right = crate::mfa::code_at(&secret, crate::mfa::now());
    assert_limited(
        verify(addr(5, SMALL), second, right).await,
        u64::from(SMALL),
    )
    .await;

    // Mailed tokens are counted by address too (verification had no limit at all).
    run_out(SMALL, StatusCode::BAD_REQUEST, |_| {
        forwarded(
            &app,
            "198.51.9.9".into(),
            "/api/v1/auth/verify-email",
            None,
            json!({"token": "a guess"}),
        )
    })
    .await;
}
on_both_databases!(
    every_check_of_a_secret_is_on_the_credential_limit,
    settings = |s| {
        s.auth_requests_per_minute = super::SMALL;
        s.trusted_proxies = vec!["127.0.0.1".to_owned()];
    }
);
