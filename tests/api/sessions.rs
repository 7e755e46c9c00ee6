//! Sign-up, verification, sign-in, refresh rotation and reuse detection, sign-out.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;

/// The text of a (possibly quoted-printable) email.
pub(crate) fn decoded(raw: &str) -> String {
    if raw.contains("Content-Transfer-Encoding: quoted-printable") {
        raw.replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=")
    } else {
        raw.to_owned()
    }
}

/// The verification token from the link in an email.
pub(crate) fn token_from_email(raw: &str) -> String {
    let message = decoded(raw);
    let start = message
        .find("token=")
        .expect("the email carries a link with a token")
        + "token=".len();
    message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn the_whole_session_lifecycle_works_over_http(app: TestApp) {
    let account = app.register("ada@example.com", "Analytical Engines").await;

    // The verification email leaves through the job queue and the SMTP server.
    app.run_pending_jobs().await;
    let message = app.mail.next_message().await;
    assert!(
        message.contains("To: \"Test User\" <ada@example.com>")
            || message.contains("ada@example.com"),
        "{message}"
    );
    let token = token_from_email(&message);
    assert_eq!(token.len(), 43, "{message}");
    // The link opens a page that changes nothing by itself; the token rides in the fragment,
    // which browsers never send.
    assert!(
        decoded(&message).contains("http://tenantry.test/verify-email#token="),
        "{message}"
    );
    let page = app
        .client
        .get(app.url("/verify-email"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    let script = html
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads its script");
    let js = app.client.get(app.url(script)).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.text()
            .await
            .unwrap()
            .contains("/api/v1/auth/verify-email")
    );

    let me: Value = app.me(&account.access_token).await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);

    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Single use.
    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_problem(res, StatusCode::CONFLICT, "token_used").await;

    let res = app.login(&account.email, &account.password).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    let res = app.me(&access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["role"], "owner");
    assert_eq!(me["current_tenant"]["id"], account.tenant_id.as_str());
    assert_eq!(me["current_tenant"]["name"], "Analytical Engines");
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "tenant.update")
    );

    // Refresh rotates: the new pair works, the old refresh token does not.
    let res = app.refresh(&refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    let new_access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    assert_eq!(app.me(&new_access).await.status(), StatusCode::OK);

    // Reusing the rotated token revokes the whole family: every token of that login dies.
    assert_problem(
        app.refresh(&refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    assert_problem(
        app.refresh(&new_refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    )
    .await;
    app.assert_signed_out(&new_access).await;
    // Other sessions are untouched.
    assert_eq!(app.me(&account.access_token).await.status(), StatusCode::OK);

    // Logout ends the current session at once.
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&account.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.me(&account.access_token).await;
    let res_headers = res.headers().clone();
    assert_problem(res, StatusCode::UNAUTHORIZED, "session_ended").await;
    assert!(res_headers.get("www-authenticate").is_some());
    assert_problem(
        app.refresh(&account.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    )
    .await;
}
on_both_databases!(the_whole_session_lifecycle_works_over_http);

async fn an_access_token_verifies_with_nothing_but_the_published_jwks(app: TestApp) {
    let account = app.register("grace@example.com", "Compilers").await;
    let jwks: jsonwebtoken::jwk::JwkSet = app.get_public_json("/.well-known/jwks.json").await;
    let header = jsonwebtoken::decode_header(&account.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["http://tenantry.test"]);
    let claims = jsonwebtoken::decode::<Value>(&account.access_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], account.user_id.as_str());
    assert_eq!(claims["tid"], account.tenant_id.as_str());
    for claim in ["sid", "iat", "exp", "jti", "iss"] {
        assert!(!claims[claim].is_null(), "claim {claim}");
    }
}
on_both_databases!(an_access_token_verifies_with_nothing_but_the_published_jwks);

async fn unknown_email_and_wrong_password_answer_the_same(app: TestApp) {
    let account = app.register("alan@example.com", "Bletchley").await;
    let wrong = assert_problem(
        app.login(&account.email, "not the password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        app.login("nobody@example.com", "not the password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
}
on_both_databases!(unknown_email_and_wrong_password_answer_the_same);

/// One hashing thread, one queue place and a short wait: a burst of logins is partly served
/// and partly refused with 503, none waits past the bound, and the server recovers.
async fn a_login_flood_is_shed_with_503_and_retry_after(app: TestApp) {
    let account = app.register("flood@example.com", "Floodgate").await;
    // Each check costs at least ~20 ms of one core, so 24 at once cannot all finish within the
    // 200 ms a caller may wait.
    let attempts = (0..24).map(|_| app.login(&account.email, &account.password));
    let answers = futures::future::join_all(attempts).await;
    let (mut served, mut shed) = (0, 0);
    for res in answers {
        match res.status() {
            StatusCode::OK => served += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                let retry_after = res.headers().get("retry-after").cloned();
                assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
                assert!(retry_after.is_some(), "a shed login says when to retry");
                shed += 1;
            }
            other => panic!("a login in the flood answered {other}"),
        }
    }
    assert!(served >= 1, "the pool kept serving during the flood");
    assert!(
        shed >= 1,
        "the excess was shed, not queued ({served} served)"
    );
    assert_eq!(
        app.login(&account.email, &account.password).await.status(),
        StatusCode::OK,
        "after the flood a login is served again"
    );
}
on_both_databases!(
    a_login_flood_is_shed_with_503_and_retry_after,
    settings = |s| {
        crate::helpers::pooled(s);
        s.hash_threads = 1;
        s.hash_queue = 1;
        s.hash_max_wait_ms = 200;
        // Shedding is under test here, not the sign-in rate limit.
        s.auth_requests_per_minute = 1000;
    }
);

async fn a_duplicate_email_is_a_conflict(app: TestApp) {
    app.register("dup@example.com", "First").await;
    let res = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "DUP@example.com ", "password": "another password", "name": "Other", "tenant_name": "Second"}),
        )
        .await;
    assert_problem(res, StatusCode::CONFLICT, "email_taken").await;
}
on_both_databases!(a_duplicate_email_is_a_conflict);

async fn a_tampered_access_token_is_refused(app: TestApp) {
    let a = app.register("a@example.com", "Tenant A").await;
    let b = app.register("b@example.com", "Tenant B").await;
    // Swap the tenant claim for B's, keep A's signature.
    let mut parts: Vec<String> = a.access_token.split('.').map(str::to_owned).collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    claims["tid"] = Value::String(b.tenant_id.clone());
    parts[1] = engine.encode(serde_json::to_vec(&claims).unwrap());
    let forged = parts.join(".");
    assert_problem(
        app.me(&forged).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.me("not-a-jwt").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}
on_both_databases!(a_tampered_access_token_is_refused);

/// Fifty parallel refreshes of one token, a hundred times, on a pool far smaller than fifty:
/// one wins each time, the others are reuse (and revoke the session) — and none is a 5xx. A
/// refresh that held a connection while it waited for a second one starved the pool.
async fn parallel_refreshes_of_one_token_never_starve_the_pool(app: TestApp) {
    let account = app.register("racer@example.com", "Racetrack").await;
    let mut reused = 0;
    for trial in 0..100 {
        let login: Value = app
            .login(&account.email, &account.password)
            .await
            .json()
            .await
            .unwrap();
        let token = login["refresh_token"].as_str().unwrap().to_owned();
        let answers = futures::future::join_all((0..50).map(|_| app.refresh(&token))).await;
        let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        assert!(
            statuses.iter().all(|s| *s < 500),
            "trial {trial}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "trial {trial}: {statuses:?}"
        );
        reused += statuses.iter().filter(|s| **s == 401).count();
    }
    assert_eq!(reused, 100 * 49);
}
on_both_databases!(
    parallel_refreshes_of_one_token_never_starve_the_pool,
    settings = |s| {
        s.database_max_connections = 3;
        s.auth_requests_per_minute = 10_000;
    }
);
