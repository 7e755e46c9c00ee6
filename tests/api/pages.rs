//! Keyset pages are index range scans: the database starts reading at the cursor, so a page
//! costs the same at any depth. Checked by asking the database how it runs each list's page
//! query (`EXPLAIN`), with the statement the service really sends.

use sea_orm::{ConnectionTrait as _, DatabaseBackend, Statement, TransactionTrait as _};
use serde_json::json;
use tenantry_kernel::{ClientMeta, KeyPageRequest, Page, PageRequest};
use tenantry_platform::db::record_statements;
use tenantry_tenancy::MemberFilter;

use crate::helpers::TestApp;
use crate::on_both_databases;

/// How the database runs the page query among `statements` (the one reading `table` in
/// order), one line per plan node.
async fn plan(app: &TestApp, table: &str, statements: &[Statement]) -> String {
    let from = format!("FROM \"{table}\"");
    let page = statements
        .iter()
        .find(|s| s.sql.contains(&from) && s.sql.contains("ORDER BY"))
        .unwrap_or_else(|| panic!("no page query on {table} in {statements:#?}"));
    let backend = app.platform.db.get_database_backend();
    let explain = match backend {
        DatabaseBackend::Postgres => format!("EXPLAIN {}", page.sql),
        _ => format!("EXPLAIN QUERY PLAN {}", page.sql),
    };
    let values = page.values.clone().map(|v| v.0).unwrap_or_default();
    let txn = app.platform.db.begin().await.expect("begin");
    if backend == DatabaseBackend::Postgres {
        // A table of a few rows is cheapest to read whole; the question is whether the
        // index can serve the page, not whether the planner wants it for ten rows.
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .expect("set");
    }
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(backend, explain, values))
        .await
        .expect("explain");
    txn.rollback().await.expect("rollback");
    let column = if backend == DatabaseBackend::Postgres {
        "QUERY PLAN"
    } else {
        "detail"
    };
    rows.iter()
        .map(|r| r.try_get::<String>("", column).expect("plan line"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How each database prints a cursor condition when it is an index range: the parts of
/// PostgreSQL's `Index Cond`, and SQLite's `SEARCH … (…)` constraints (any one of them).
type Cursor = (&'static [&'static str], &'static [&'static str]);

/// Asserts the plan reads `table` through an index starting at the cursor, in the order of
/// the index, and never filters rows by the cursor afterwards.
fn assert_range_scan(app: &TestApp, table: &str, plan: &str, cursor: Cursor) {
    let (postgres, sqlite) = cursor;
    match app.platform.db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let scan = plan
                .lines()
                .position(|l| l.contains("Index") && l.contains(&format!(" on {table}")))
                .unwrap_or_else(|| panic!("{table}: no index scan in\n{plan}"));
            let cond = plan
                .lines()
                .skip(scan + 1)
                .take_while(|l| !l.contains("->"))
                .find(|l| l.contains("Index Cond:"))
                .unwrap_or_else(|| panic!("{table}: no index condition in\n{plan}"));
            assert!(
                postgres.iter().all(|part| cond.contains(part)),
                "{table}: the cursor is not the index condition in\n{plan}"
            );
            assert!(
                !plan
                    .lines()
                    .any(|l| l.contains("Filter:") && l.contains(postgres[0])),
                "{table}: the cursor filters rows in\n{plan}"
            );
            assert!(
                !plan.contains("Sort"),
                "{table}: the index does not give the order in\n{plan}"
            );
        }
        _ => {
            assert!(
                plan.lines()
                    .any(|l| l.starts_with(&format!("SEARCH {table} USING"))
                        && sqlite.iter().any(|range| l.contains(range))),
                "{table}: the cursor is not the index range in\n{plan}"
            );
            assert!(
                !plan.contains("USE TEMP B-TREE"),
                "{table}: the index does not give the order in\n{plan}"
            );
        }
    }
}

/// Lists the first page of one item with `list`, then the second, recording what it sends:
/// the second page's query on `table` must be a range scan starting at the cursor.
async fn assert_second_page_scans<T, E, F, Fut>(app: &TestApp, table: &str, cursor: Cursor, list: F)
where
    E: std::fmt::Debug,
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, E>>,
{
    let first = list(None).await.expect("the first page");
    let (second, sent) = record_statements(list(first.next_cursor)).await;
    assert_eq!(second.expect("the second page").items.len(), 1, "{table}");
    assert_range_scan(app, table, &plan(app, table, &sent).await, cursor);
}

async fn every_keyset_page_is_an_index_range_scan(app: TestApp) {
    let owner = app.register("pages@example.com", "Pages").await;
    for name in ["Basel", "Zug"] {
        app.create_location(&owner, name).await;
    }
    for (key, name) in [("auditor", "Auditor"), ("clerk", "Clerk")] {
        let res = app
            .post_authed(
                "/api/v1/roles",
                &owner.access_token,
                Some(json!({"key": key, "name": name, "permissions": ["users.read"]})),
            )
            .await;
        assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    }
    for name in ["sync", "backup"] {
        let res = app
            .post_authed(
                "/api/v1/api-keys",
                &owner.access_token,
                Some(json!({"name": name, "scopes": ["users.read"]})),
            )
            .await;
        assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    }
    app.join(&owner, "ada@example.com", "Ada", "member").await;
    app.join(&owner, "alan@example.com", "Alan", "member").await;
    let res = app
        .post_authed(
            "/api/v1/invitations",
            &owner.access_token,
            Some(json!({"emails": ["grace@example.com", "edsger@example.com"], "role": "member"})),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    for _ in 0..2 {
        let res = app.login(&owner.email, &owner.password).await;
        assert_eq!(res.status(), reqwest::StatusCode::OK);
    }

    let p = &app.platform;
    let ctx = p
        .identity
        .authenticate(&owner.access_token, ClientMeta::default(), None)
        .await
        .expect("the owner's context");
    let by_id = |cursor: Option<String>| PageRequest::parse(Some(1), cursor.as_deref()).unwrap();
    let by_key =
        |cursor: Option<String>| KeyPageRequest::parse(Some(1), cursor.as_deref()).unwrap();
    let id_cursor: Cursor = (&["(id < "], &["id<?"]);
    // The key is unique in its tenant, so SQLite may take the key alone as the range.
    let role_cursor: Cursor = (
        &["ROW((key)::text, id) > ROW("],
        &["(key,id)>(?,?)", "key>?"],
    );
    let member_cursor: Cursor = (
        &["ROW((name)::text, user_id) > ROW("],
        &["(name,user_id)>(?,?)"],
    );

    let ctx = &ctx;
    assert_second_page_scans(&app, "locations", id_cursor, move |c| {
        p.locations.list_locations(ctx, by_id(c))
    })
    .await;
    assert_second_page_scans(&app, "api_keys", id_cursor, move |c| {
        p.api_keys.list_api_keys(ctx, by_id(c))
    })
    .await;
    assert_second_page_scans(&app, "invitations", id_cursor, move |c| {
        p.invitations.list_invitations(ctx, None, by_id(c))
    })
    .await;
    assert_second_page_scans(&app, "sessions", id_cursor, move |c| {
        p.identity.list_sessions(ctx, by_id(c))
    })
    .await;
    assert_second_page_scans(&app, "roles", role_cursor, move |c| {
        p.roles.list_roles(ctx, by_key(c))
    })
    .await;
    assert_second_page_scans(&app, "memberships", member_cursor, move |c| {
        p.members
            .list_members(ctx, MemberFilter::default(), by_key(c))
    })
    .await;
}
on_both_databases!(every_keyset_page_is_an_index_range_scan);
