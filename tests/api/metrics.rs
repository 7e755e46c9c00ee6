//! `GET /metrics`: closed unless configured, opened by its token, and carrying the series the
//! operators alert on. (CI also parses it with Prometheus's own Python client: .ci/metrics.py.)

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;

const TOKEN: &str = "scrape-me-3b1f9c0e";

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request")
}

/// The value of the sample `name{labels}` where every `label="value"` in `labels` is among
/// its labels.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let Some(rest) = l.strip_prefix(name) else {
                return false;
            };
            (rest.starts_with('{') || rest.starts_with(' '))
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn metrics_are_closed_unless_a_token_is_configured(app: TestApp) {
    let res = scrape(&app, None).await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = scrape(&app, Some(TOKEN)).await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}
on_both_databases!(metrics_are_closed_unless_a_token_is_configured);

async fn the_token_opens_metrics_with_every_series(app: TestApp) {
    for wrong in [None, Some("scrape-me"), Some("scrape-me-3b1f9c0e-and-more")] {
        let res = scrape(&app, wrong).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
    }

    let owner = app.register("owner@example.com", "Acme").await;
    let invited = app
        .post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["grace@example.com"], "role": "member"})),
        )
        .await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    let listed = app
        .get_authed(
            &format!("/api/v1/invitations/{}", uuid::Uuid::now_v7()),
            &owner.access_token,
        )
        .await;
    assert_eq!(listed.status(), StatusCode::NOT_FOUND);
    // Wrong passwords until the credential limit refuses one.
    for _ in 0..25 {
        app.post_json(
            "/api/v1/auth/login",
            &json!({"email": "owner@example.com", "password": "not the password at all"}),
        )
        .await;
    }

    let res = scrape(&app, Some(TOKEN)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();

    // Requests by route template, never by the path sent.
    let created = sample(
        &text,
        "tenantry_http_requests_total",
        &[
            ("route", "/api/v1/invitations"),
            ("method", "POST"),
            ("status", "201"),
        ],
    );
    assert_eq!(created, Some(1.0), "{text}");
    let missing = sample(
        &text,
        "tenantry_http_requests_total",
        &[
            ("route", "/api/v1/invitations/{id}"),
            ("method", "GET"),
            ("status", "404"),
        ],
    );
    assert_eq!(missing, Some(1.0), "{text}");
    assert!(
        !text.contains("/api/v1/invitations/0"),
        "a raw path became a label"
    );
    let timed = sample(
        &text,
        "tenantry_http_request_duration_seconds_count",
        &[("route", "/api/v1/invitations"), ("method", "POST")],
    );
    assert_eq!(timed, Some(1.0), "{text}");
    assert!(text.contains("tenantry_http_request_duration_seconds_bucket{"));

    let refused = sample(
        &text,
        "tenantry_rate_limit_rejections_total",
        &[("limit", "password")],
    );
    assert!(refused.is_some_and(|n| n >= 1.0), "{text}");

    for gauge in [
        "tenantry_db_connections_in_use",
        "tenantry_db_connections_idle",
        "tenantry_db_connections_waiting",
        "tenantry_password_hash_places_taken",
        "tenantry_password_hash_places",
        "tenantry_jobs_queued",
        "tenantry_jobs_oldest_due_age_seconds",
        "tenantry_outbox_pending_events",
    ] {
        assert!(
            sample(&text, gauge, &[]).is_some(),
            "{gauge} missing:\n{text}"
        );
    }
    assert!(sample(&text, "tenantry_password_hash_places", &[]).is_some_and(|n| n >= 1.0));
}
on_both_databases!(
    the_token_opens_metrics_with_every_series,
    settings = |s| s.metrics_token = Some(super::TOKEN.to_owned().into())
);
