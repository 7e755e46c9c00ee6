//! Access: the permission catalogue, and what each caller holds of it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;

/// The names the catalogue lists, and those the caller holds.
fn catalogue(list: &Value) -> (Vec<&str>, Vec<&str>) {
    let items = list["items"].as_array().unwrap();
    let names = items.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let held = items
        .iter()
        .filter(|p| p["granted"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    (names, held)
}

async fn the_permission_catalogue_lists_every_permission_and_what_the_caller_holds(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;

    let list = app
        .get_json("/api/v1/permissions", &owner.access_token)
        .await;
    let (names, held) = catalogue(&list);
    let every = [
        "tenant.read",
        "tenant.update",
        "users.read",
        "users.invite",
        "users.manage",
        "locations.read",
        "locations.manage",
        "roles.read",
        "roles.manage",
        "api_keys.read",
        "api_keys.manage",
    ];
    assert_eq!(names, every);
    assert_eq!(held, every);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["description"].as_str().unwrap().is_empty())
    );

    let list = app
        .get_json("/api/v1/permissions", &member.access_token)
        .await;
    let (names, held) = catalogue(&list);
    assert_eq!(names, every);
    assert_eq!(held, ["tenant.read", "users.read", "locations.read"]);

    let res = app
        .client
        .get(app.url("/api/v1/permissions"))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "missing_token").await;
}
on_both_databases!(the_permission_catalogue_lists_every_permission_and_what_the_caller_holds);
