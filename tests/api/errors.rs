//! Every client mistake is an RFC 9457 problem with a stable code, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;

async fn every_client_mistake_is_a_problem_document(app: TestApp) {
    let post_raw = |path: &'static str, ct: &'static str, body: String| {
        let req = app
            .client
            .post(app.url(path))
            .header("content-type", ct)
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let login = "/api/v1/auth/login";
    assert_problem(
        post_raw(login, "application/json", "{not json".into()).await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_problem(
        post_raw(login, "text/plain", "{}".into()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let body = assert_problem(
        app.post_json(
            login,
            &json!({"email": "a@b.co", "password": "x", "admin": true}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "admin");
    assert_eq!(body["errors"][0]["code"], "unknown_field");
    let body = assert_problem(
        app.post_json(login, &json!({"email": "a@b.co"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "password");
    assert_eq!(body["errors"][0]["code"], "required");
    assert_problem(
        app.post_json(login, &json!({"email": 42, "password": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    let body = assert_problem(
        app.post_json(
            "/api/v1/auth/register",
            &json!({"email": "not-an-email", "password": "short", "name": " ", "tenant_name": "Fine"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let codes: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("email".into(), "invalid_email".into()),
            ("password".into(), "too_short".into()),
            ("name".into(), "required".into())
        ]
    );

    let huge = format!(
        "{{\"email\":\"a@b.co\",\"password\":\"{}\"}}",
        "x".repeat(20_000)
    );
    assert_problem(
        post_raw(login, "application/json", huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    let res = app
        .client
        .get(app.url("/api/v1/nowhere"))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.client.delete(app.url(login)).send().await.unwrap();
    assert_eq!(res.headers().get("allow").unwrap(), "POST");
    assert_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let res = app
        .client
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("www-authenticate").is_some());
    assert_problem(res, StatusCode::UNAUTHORIZED, "missing_token").await;

    // No bad refresh or verification token is a server error.
    assert_problem(
        app.refresh("nonsense").await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.post_json("/api/v1/auth/verify-email", &json!({"token": "nonsense"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
}
on_both_databases!(every_client_mistake_is_a_problem_document);

async fn responses_carry_request_ids_and_security_headers(app: TestApp) {
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let res = app.client.get(app.url("/health/db")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("x-request-id").is_some());
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}
on_both_databases!(responses_carry_request_ids_and_security_headers);

/// Sends `request` as it is (no client normalises its path) and answers the status, the
/// headers (lowercased) and the body.
pub async fn raw_exchange(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let port = app.address.rsplit(':').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_owned())
}

async fn answers_from_outside_the_handlers_are_problems_too(app: TestApp) {
    let (status, head, body) = raw_exchange(
        &app,
        b"GET /api/docs/../../etc/passwd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404, "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "not_found");
    assert!(problem["request_id"].is_string());
}
on_both_databases!(answers_from_outside_the_handlers_are_problems_too);

async fn a_request_that_gets_no_connection_in_time_is_a_503(app: TestApp) {
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
    let account = app.register("busy@example.com", "Busy").await;
    let (path, body) = (
        format!("/api/v1/users/{}", account.user_id),
        json!({"job_title": "Waiting"}),
    );
    let write = || app.patch_authed(&path, &account.access_token, &body);
    // The connection every write needs, held: on PostgreSQL the pool's one connection, on
    // SQLite its one writer (which a transaction takes with its first statement).
    let held = app.platform.db.begin().await.unwrap();
    held.execute_unprepared("SELECT 1").await.unwrap();
    let res = write().await;
    assert_eq!(res.headers()["retry-after"], "1");
    assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "database_busy").await;
    let res = app.me(&account.access_token).await;
    if app.platform.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        assert_eq!(res.headers()["retry-after"], "1");
        assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "database_busy").await;
    } else {
        // SQLite's readers never wait for its writer.
        assert_eq!(res.status(), StatusCode::OK);
    }
    drop(held);
    assert_eq!(write().await.status(), StatusCode::OK);
    assert_eq!(app.me(&account.access_token).await.status(), StatusCode::OK);
}
on_both_databases!(
    a_request_that_gets_no_connection_in_time_is_a_503,
    settings = |s| s.database_acquire_timeout_ms = 300
);

/// Connections are not pinged before every use any more: one the database dropped (a restart,
/// a proxy, an operator) meets the next statement, which answers 503 — never 500 — and the
/// pool replaces it, so the request after it works. (SQLite's connections are files: nothing
/// to drop.)
async fn a_connection_the_database_dropped_answers_503_and_is_replaced(app: TestApp) {
    use sea_orm::ConnectionTrait as _;
    let account = app.register("dropped@example.com", "Dropped").await;
    assert_eq!(app.me(&account.access_token).await.status(), StatusCode::OK);
    if app.platform.db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return;
    }
    let admin = sea_orm::Database::connect(std::env::var("TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    let database = app
        .platform
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT current_database() AS name",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "name")
        .unwrap();
    let ended = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            [database.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert!(ended >= 1, "the server's connection was ended");

    let res = app.me(&account.access_token).await;
    assert_eq!(res.headers()["retry-after"], "1");
    assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "database_busy").await;
    assert_eq!(app.me(&account.access_token).await.status(), StatusCode::OK);
}
on_both_databases!(
    a_connection_the_database_dropped_answers_503_and_is_replaced,
    // Nothing but the requests uses the pool's one connection (no relay ticking).
    settings = |s| s.embedded_worker = false
);

async fn requests_the_http_parser_refuses_get_problems_too(app: TestApp) {
    // A request target longer than a URI may be (the 100 000-character search).
    let long = format!(
        "GET /api/v1/users?q={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "a".repeat(100_000)
    );
    let (status, head, body) = raw_exchange(&app, long.as_bytes()).await;
    assert_eq!(status, 400, "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "malformed_request");
    assert_eq!(problem["status"], 400);
    assert!(problem["request_id"].is_string());

    // A header line that is no header.
    let (status, head, body) = raw_exchange(
        &app,
        b"GET /health HTTP/1.1\r\nHost: t\r\nnot a header\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{head}");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "malformed_request");

    // The server goes on serving.
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
on_both_databases!(requests_the_http_parser_refuses_get_problems_too);
