//! How statements reach the database (`kernel::db::Db`): on PostgreSQL a finished statement
//! leaves its connection warm for the next instead of handing it back to the pool (and its
//! ping); on SQLite every write waits in line for the one writer while reads go on beside it,
//! each handed its reader by the read before it.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use tenantry_kernel::db::{begin_write, is_unavailable};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_both_databases;

fn sql(app: &TestApp, sql: &str) -> Statement {
    Statement::from_string(app.platform.db.get_database_backend(), sql)
}

/// With several connections open, statements one after the other run on the one that just
/// finished (the pool alone hands them out in turn), and warm connections still go to
/// transactions: as many as the pool holds begin at once, within the acquire timeout.
async fn a_finished_statement_leaves_its_connection_warm_and_transactions_still_get_them(
    app: TestApp,
) {
    let db = &app.platform.db;
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    // Five connections open at once, then all of them idle.
    let sleeps = (0..5).map(|_| db.execute_raw(sql(&app, "SELECT pg_sleep(0.1)")));
    for done in futures::future::join_all(sleeps).await {
        done.unwrap();
    }
    let mut pids = Vec::new();
    for _ in 0..10 {
        let row = db
            .query_one_raw(sql(&app, "SELECT pg_backend_pid() AS pid"))
            .await
            .unwrap()
            .unwrap();
        pids.push(row.try_get::<i32>("", "pid").unwrap());
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one connection served them all: {pids:?}");

    let begins = (0..5).map(|_| db.begin());
    let txns: Vec<_> = futures::future::join_all(begins)
        .await
        .into_iter()
        .map(|t| t.expect("a transaction gets a connection while others sit warm"))
        .collect();
    for txn in txns {
        txn.commit().await.unwrap();
    }
}
on_both_databases!(
    a_finished_statement_leaves_its_connection_warm_and_transactions_still_get_them,
    settings = |s| {
        s.database_max_connections = 5;
        s.database_acquire_timeout_ms = 1000;
        // Nothing but the test uses the pool.
        s.embedded_worker = false;
    }
);

/// PostgreSQL: however the pool's own returns interleave with them, callers that need the
/// pool find it supplied while connections sit warm. Round after round, every connection is
/// left warm, then as many transactions as the pool holds begin at once on tasks of their
/// own and stay open until all have begun, each within the acquire timeout. A pool that
/// showed a connection idle which an earlier caller was about to take once kept the next
/// caller waiting beside a warm one until its timeout.
async fn transactions_racing_for_the_pool_are_never_kept_waiting_by_warm_connections(app: TestApp) {
    let db = &app.platform.db;
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    const POOL: usize = 5;
    for round in 0..40 {
        let sleeps = (0..POOL).map(|_| db.execute_raw(sql(&app, "SELECT pg_sleep(0.02)")));
        for done in futures::future::join_all(sleeps).await {
            done.unwrap();
        }
        let all_begun = std::sync::Arc::new(tokio::sync::Barrier::new(POOL));
        let tasks: Vec<_> = (0..POOL)
            .map(|_| {
                let (db, all_begun) = (db.clone(), all_begun.clone());
                tokio::spawn(async move {
                    let txn = db.begin().await;
                    all_begun.wait().await;
                    txn?.commit().await
                })
            })
            .collect();
        for task in tasks {
            let done = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a transaction waited past 5 s"))
                .unwrap();
            done.unwrap_or_else(|e| panic!("round {round}: a transaction got no connection: {e}"));
        }
    }
}
on_both_databases!(
    transactions_racing_for_the_pool_are_never_kept_waiting_by_warm_connections,
    settings = |s| {
        s.database_max_connections = 5;
        s.database_acquire_timeout_ms = 1000;
        s.embedded_worker = false;
    }
);

/// PostgreSQL: each thread's statements run on a connection that thread took from the pool
/// (whose socket its own runtime serves), not on whichever finished last. Two threads, each a
/// runtime of its own as each HTTP worker is, first take connections at once, then take turns
/// with one statement each: every turn finds its own thread's connection. Before, the one
/// the other thread had just used served both, and as that thread sat waiting for its turn
/// (its runtime not running), the statement never heard its reply.
async fn each_thread_runs_its_statements_on_a_connection_it_took(app: TestApp) {
    let db = app.platform.db.clone();
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let turn = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|me| {
            let (db, start, turn) = (db.clone(), start.clone(), turn.clone());
            let stmt = |sql: &str| Statement::from_string(DatabaseBackend::Postgres, sql);
            let (sleep, pid) = (
                stmt("SELECT pg_sleep(0.1)"),
                stmt("SELECT pg_backend_pid() AS pid"),
            );
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                start.wait();
                rt.block_on(async {
                    let sleeps = (0..3).map(|_| db.execute_raw(sleep.clone()));
                    for done in futures::future::join_all(sleeps).await {
                        done.unwrap();
                    }
                });
                let mut pids = Vec::new();
                for _ in 0..10 {
                    for whose in 0..2 {
                        turn.wait();
                        if whose == me {
                            let asked = db.query_one_raw(pid.clone());
                            let row = rt.block_on(async {
                                tokio::time::timeout(Duration::from_secs(3), asked).await
                            });
                            pids.push(row.ok().map(|row| {
                                row.unwrap().unwrap().try_get::<i32>("", "pid").unwrap()
                            }));
                        }
                    }
                }
                pids
            })
        })
        .collect();
    let mut pids = Vec::new();
    for thread in threads {
        pids.push(
            tokio::task::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap(),
        );
    }
    // None: the statement had no answer within 3 s.
    for (thread, mine) in pids.iter().enumerate() {
        assert!(
            mine[0].is_some() && mine.iter().all(|p| *p == mine[0]),
            "thread {thread} kept one connection: {mine:?}"
        );
    }
    assert_ne!(
        pids[0][0], pids[1][0],
        "each thread had a connection of its own: {pids:?}"
    );
}
on_both_databases!(
    each_thread_runs_its_statements_on_a_connection_it_took,
    settings = |s| {
        s.database_max_connections = 8;
        s.embedded_worker = false;
    }
);

/// An app on SQLite with two readers, a 300 ms acquire timeout and no embedded worker, and an
/// empty table `queued (n)`.
async fn queue_app() -> TestApp {
    let app = spawn_app(Backend::Sqlite, |s| {
        s.database_max_connections = 2;
        s.database_acquire_timeout_ms = 300;
        s.embedded_worker = false;
    })
    .await
    .unwrap();
    let create = sql(&app, "CREATE TABLE queued (n INTEGER NOT NULL)");
    app.platform.db.execute_raw(create).await.unwrap();
    app
}

/// SQLite: while a transaction holds the writer, another write waits in line for it (and,
/// past the acquire timeout, answers as unavailable: a 503), reads go on, and the readers
/// themselves refuse to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_for_the_one_writer_while_reads_go_on() {
    let app = queue_app().await;
    let db = &app.platform.db;
    let held = begin_write(db).await.unwrap();
    held.execute_raw(sql(&app, "INSERT INTO queued (n) VALUES (1)"))
        .await
        .unwrap();

    let waited = tokio::time::timeout(
        Duration::from_secs(5),
        db.execute_raw(sql(&app, "INSERT INTO queued (n) VALUES (2)")),
    )
    .await
    .expect("the pool's acquire timeout ends the wait");
    let err = waited.expect_err("the writer is taken");
    assert!(is_unavailable(&err), "{err}");
    // Reads go on beside the writer, and see what it committed (nothing yet).
    assert_eq!(count(&app).await, 0);
    let query_only = db
        .query_one_raw(sql(&app, "SELECT query_only AS on_ FROM pragma_query_only"))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i32>("", "on_")
        .unwrap();
    assert_eq!(query_only, 1, "reads run on connections that cannot write");

    held.commit().await.unwrap();
    db.execute_raw(sql(&app, "INSERT INTO queued (n) VALUES (2)"))
        .await
        .unwrap();
    assert_eq!(count(&app).await, 2);
}

/// SQLite: a transaction takes the writer with its first statement, not when it begins, and
/// deferred writes do not take it either: until then other writes go ahead, and its commit
/// sends what it deferred.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_transaction_takes_the_writer_with_its_first_statement() {
    let app = queue_app().await;
    let db = &app.platform.db;
    let begun = begin_write(db).await.unwrap();
    begun
        .defer(sql(&app, "INSERT INTO queued (n) VALUES (1)"))
        .await
        .unwrap();
    db.execute_raw(sql(&app, "INSERT INTO queued (n) VALUES (10)"))
        .await
        .expect("the writer is free while the transaction has sent nothing");
    let other = begin_write(db).await.unwrap();
    other
        .execute_raw(sql(&app, "INSERT INTO queued (n) VALUES (100)"))
        .await
        .unwrap();
    other.commit().await.unwrap();
    begun.commit().await.unwrap();
    assert_eq!(number(&app, "SELECT SUM(n) AS n FROM queued").await, 111);

    // Taken by its first statement, it is held until the end.
    let held = begin_write(db).await.unwrap();
    held.execute_raw(sql(&app, "INSERT INTO queued (n) VALUES (1000)"))
        .await
        .unwrap();
    let err = db
        .execute_raw(sql(&app, "INSERT INTO queued (n) VALUES (2)"))
        .await
        .expect_err("the writer is taken");
    assert!(is_unavailable(&err), "{err}");
    held.commit().await.unwrap();
    assert_eq!(number(&app, "SELECT SUM(n) AS n FROM queued").await, 1111);
}

/// SQLite: transactions of deferred writes alone are committed by the writer's committer in
/// line with every other write: many at once all commit; while another transaction holds the
/// writer they wait, and one that waited past the acquire timeout answers unavailable and is
/// never committed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_batches_of_deferred_writes_commit_in_line_and_one_given_up_never_commits() {
    let app = queue_app().await;
    let db = &app.platform.db;
    let app = &app;
    let batch = |n: u32| async move {
        let txn = begin_write(db).await?;
        txn.defer(sql(app, &format!("INSERT INTO queued (n) VALUES ({n})")))
            .await?;
        txn.defer(sql(app, &format!("INSERT INTO queued (n) VALUES ({n})")))
            .await?;
        txn.commit().await
    };
    let all = futures::future::join_all((1..=40).map(batch)).await;
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    assert_eq!(
        number(app, "SELECT SUM(n) AS n FROM queued").await,
        2 * (1..=40).sum::<i64>()
    );

    let held = begin_write(db).await.unwrap();
    held.execute_raw(sql(app, "INSERT INTO queued (n) VALUES (-1)"))
        .await
        .unwrap();
    let err = batch(1000).await.expect_err("the writer is held");
    assert!(is_unavailable(&err), "{err}");
    held.rollback().await.unwrap();
    // The committer takes batches in order: the one given up would have gone first.
    batch(1).await.unwrap();
    assert_eq!(
        number(app, "SELECT SUM(n) AS n FROM queued").await,
        2 * (1..=40).sum::<i64>() + 2
    );
}

/// SQLite: reads queue for the readers, first come first served, and answer as unavailable
/// past the acquire timeout; a read abandoned while it runs gives its place back, so the
/// readers never shrink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_queue_for_the_readers_and_an_abandoned_one_gives_its_place_back() {
    let app = spawn_app(Backend::Sqlite, |s| {
        s.database_max_connections = 1;
        s.database_acquire_timeout_ms = 100;
        s.embedded_worker = false;
    })
    .await
    .unwrap();
    let db = &app.platform.db;
    let one = || db.query_one_raw(sql(&app, "SELECT 1 AS n"));
    one().await.unwrap();
    // Well over the 300 ms it is given, on fast machines too: about 1.5 s on 2 cores here.
    let long = db.query_one_raw(sql(
        &app,
        "SELECT count(*) AS n FROM (WITH RECURSIVE c(x) AS \
         (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 6000000) SELECT x FROM c)",
    ));
    let (abandoned, waited) = futures::future::join(
        tokio::time::timeout(Duration::from_millis(300), long),
        // Polled after the long read took the reader.
        one(),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the long read was abandoned while it ran"
    );
    let err = waited.expect_err("the one reader was taken");
    assert!(is_unavailable(&err), "{err}");
    // Its place came back: a read gets the reader again once the abandoned statement ends
    // (each try waits out the acquire timeout while it runs on).
    let mut tries = 0;
    while let Err(e) = one().await {
        assert!(is_unavailable(&e), "{e}");
        tries += 1;
        assert!(tries < 100, "the reader never came back");
    }
}

/// The number `query` answers (as column `n`).
async fn number(app: &TestApp, query: &str) -> i64 {
    app.platform
        .db
        .query_one_raw(sql(app, query))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

async fn count(app: &TestApp) -> i64 {
    number(app, "SELECT COUNT(*) AS n FROM queued").await
}

/// A transaction's statements answer their own counts, its savepoints roll back alone, and a
/// transaction dropped unfinished leaves nothing behind and the file free to write. On SQLite
/// a transaction's `BEGIN` goes ahead of its first statement, and SQLite counts a `BEGIN` as
/// having changed what the statement before it changed: a lease's `UPDATE … WHERE attempts =
/// 0` once read as two rows changed, and its job gave up on the invitation email.
async fn a_transactions_statements_count_their_own_changes_and_a_dropped_one_ends(app: TestApp) {
    let db = &app.platform.db;
    let rows = |n: &str| sql(&app, n);
    db.execute_raw(rows("CREATE TABLE counted (n INTEGER NOT NULL)"))
        .await
        .unwrap();
    for n in 1..=3 {
        let one = format!("INSERT INTO counted (n) VALUES ({n})");
        assert_eq!(db.execute_raw(rows(&one)).await.unwrap().rows_affected(), 1);
    }
    let all = db
        .execute_raw(rows("UPDATE counted SET n = n + 10"))
        .await
        .unwrap();
    assert_eq!(all.rows_affected(), 3);

    let txn = begin_write(db).await.unwrap();
    let first = txn
        .execute_raw(rows("UPDATE counted SET n = n + 1 WHERE n = 11"))
        .await
        .unwrap();
    assert_eq!(
        first.rows_affected(),
        1,
        "the transaction's first statement"
    );
    let found = txn
        .query_all_raw(rows("SELECT n FROM counted ORDER BY n"))
        .await
        .unwrap();
    assert_eq!(found.len(), 3);
    // A savepoint dropped unfinished is rolled back before the transaction's next statement.
    let sp = txn.begin().await.unwrap();
    sp.execute_raw(rows("INSERT INTO counted (n) VALUES (99)"))
        .await
        .unwrap();
    drop(sp);
    let kept = txn
        .execute_raw(rows("INSERT INTO counted (n) VALUES (4)"))
        .await
        .unwrap();
    assert_eq!(
        kept.rows_affected(),
        1,
        "the statement after the savepoint's rollback"
    );
    txn.commit().await.unwrap();
    assert_eq!(
        number(&app, "SELECT SUM(n) AS n FROM counted").await,
        12 + 12 + 13 + 4
    );

    // Dropped after a statement: rolled back, and no connection is kept from writing.
    let txn = begin_write(db).await.unwrap();
    txn.execute_raw(rows("INSERT INTO counted (n) VALUES (1000)"))
        .await
        .unwrap();
    drop(txn);
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        use sea_orm::sqlx::{ConnectOptions as _, Connection as _, Executor as _};
        let url = &app.platform.settings.database_url;
        let other = std::str::FromStr::from_str(url).map(
            |o: sea_orm::sqlx::sqlite::SqliteConnectOptions| {
                o.busy_timeout(Duration::from_secs(10))
            },
        );
        let mut other = other.unwrap().connect().await.unwrap();
        // Waits (in SQLite's busy handler) only while the dropped transaction is rolled back.
        other
            .execute("BEGIN IMMEDIATE")
            .await
            .expect("the file is free to write");
        other.execute("ROLLBACK").await.unwrap();
        other.close().await.unwrap();
    }
    assert_eq!(
        number(&app, "SELECT SUM(n) AS n FROM counted").await,
        12 + 12 + 13 + 4
    );
    // Begun and committed with nothing in it.
    begin_write(db).await.unwrap().commit().await.unwrap();
    let after = db
        .execute_raw(rows("UPDATE counted SET n = n WHERE n = 4"))
        .await
        .unwrap();
    assert_eq!(after.rows_affected(), 1);
}
on_both_databases!(a_transactions_statements_count_their_own_changes_and_a_dropped_one_ends);

/// `INSERT INTO deferred (n) VALUES (<n>)`, with `n` a parameter.
fn insert_n(app: &TestApp, n: i64) -> Statement {
    use sea_orm::sea_query::{Alias, Query};
    let insert = Query::insert()
        .into_table(Alias::new("deferred"))
        .columns([Alias::new("n")])
        .values_panic([n.into()])
        .to_owned();
    app.platform.db.get_database_backend().build(&insert)
}

/// Whether `txn` fails when it defers a second `n = 2` and commits (at the defer on
/// PostgreSQL, which runs it at once; at the commit on SQLite).
async fn a_duplicate_fails_it(app: &TestApp, txn: tenantry_kernel::db::Txn) -> bool {
    match txn.defer(insert_n(app, 2)).await {
        Err(_) => true,
        Ok(()) => txn.commit().await.is_err(),
    }
}

/// A transaction's deferred writes (its audit entries and outbox events) run in order before
/// its next statement, with their parameters apart from that statement's and their counts
/// not in its count; a transaction of deferred writes alone commits them; a rollback, a
/// dropped transaction or a dropped savepoint undoes them; and one that fails fails the
/// transaction, leaving nothing of it. (On SQLite's writer they are sent with the next
/// statement or the commit; on PostgreSQL they run at once.)
async fn deferred_writes_run_in_order_in_their_transaction_and_fail_it_when_they_fail(
    app: TestApp,
) {
    let db = &app.platform.db;
    let rows = |n: &str| sql(&app, n);
    db.execute_raw(rows("CREATE TABLE deferred (n BIGINT NOT NULL UNIQUE)"))
        .await
        .unwrap();
    let sum = "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM deferred";

    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 1)).await.unwrap();
    txn.defer(insert_n(&app, 2)).await.unwrap();
    let moved = txn
        .execute_raw(rows("UPDATE deferred SET n = n + 10 WHERE n = 1"))
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1, "its own count, after the inserts");
    txn.defer(insert_n(&app, 3)).await.unwrap();
    let above = Statement::from_sql_and_values(
        db.get_database_backend(),
        match db.get_database_backend() {
            DatabaseBackend::Postgres => "SELECT n FROM deferred WHERE n > $1 ORDER BY n",
            _ => "SELECT n FROM deferred WHERE n > ? ORDER BY n",
        },
        [1_i64.into()],
    );
    let found: Vec<i64> = txn
        .query_all_raw(above)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<i64>("", "n").unwrap())
        .collect();
    assert_eq!(found, [2, 3, 11], "the select's parameter is its own");
    txn.defer(insert_n(&app, 4)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(number(&app, sum).await, 2 + 3 + 11 + 4);

    // Nothing but deferred writes: the commit sends them.
    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 100)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(number(&app, sum).await, 120);

    // Rolled back, dropped, or in a savepoint dropped: undone.
    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 1000)).await.unwrap();
    txn.rollback().await.unwrap();
    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 2000)).await.unwrap();
    drop(txn);
    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 5)).await.unwrap();
    let sp = txn.begin().await.unwrap();
    sp.defer(insert_n(&app, 3000)).await.unwrap();
    drop(sp);
    txn.commit().await.unwrap();
    assert_eq!(number(&app, sum).await, 125);

    // A deferred write that fails (here a duplicate) fails its transaction, all of it.
    let txn = begin_write(db).await.unwrap();
    txn.execute_raw(insert_n(&app, 6)).await.unwrap();
    assert!(
        a_duplicate_fails_it(&app, txn).await,
        "the duplicate fails the transaction"
    );
    assert_eq!(number(&app, sum).await, 125, "nothing of it is kept");
    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 7)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(number(&app, sum).await, 132, "the next transaction writes");
    // The same with nothing but deferred writes.
    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 8)).await.unwrap();
    assert!(
        a_duplicate_fails_it(&app, txn).await,
        "the duplicate fails the transaction"
    );
    let txn = begin_write(db).await.unwrap();
    txn.defer(insert_n(&app, 9)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(number(&app, sum).await, 141, "nothing of it is kept");
}
on_both_databases!(deferred_writes_run_in_order_in_their_transaction_and_fail_it_when_they_fail);

/// Rows read by position (`kernel::row`) are the rows SeaORM reads by name: memberships,
/// locations and sessions with their optional columns both empty and filled, on each
/// database. And a statement whose columns are not in the decoder's order is refused (in
/// debug builds, where every test runs) instead of read into the wrong fields.
async fn rows_read_by_position_are_the_rows_seaorm_reads(app: TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
    use tenantry_identity::entity::session;
    use tenantry_kernel::row::{self, FromRow};
    use tenantry_tenancy::entity::{location, membership};

    let owner = app.register("owner@rows.example", "Rows").await;
    let member = app
        .join(&owner, "member@rows.example", "Member", "member")
        .await;
    let res = app
        .patch_authed(
            &format!("/api/v1/users/{}", owner.user_id),
            &owner.access_token,
            &serde_json::json!({"job_title": "Owner", "phone": "+44 20 7946 0958"}),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let res = app
        .put_authed(
            &format!("/api/v1/users/{}/expertise", owner.user_id),
            &owner.access_token,
            &serde_json::json!({"tags": ["ledgers"],
                                "hourly_rate": {"amount_minor": 9000, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    app.create_location(&owner, "Bare").await;
    let res = app
        .post_authed(
            "/api/v1/locations",
            &owner.access_token,
            Some(serde_json::json!({"name": "Full", "code": "full-1", "address": "1 Quay"})),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    assert_eq!(app.refresh(&member.refresh_token).await.status(), 200);

    let db = &app.platform.db;
    let tenant: uuid::Uuid = owner.tenant_id.parse().unwrap();
    let members = membership::Entity::find().filter(membership::Column::TenantId.eq(tenant));
    let by_name = members.clone().all(db).await.unwrap();
    let by_position: Vec<membership::Model> = row::all(db, &members).await.unwrap();
    assert_eq!(by_position, by_name);
    assert!(
        by_name
            .iter()
            .any(|m| m.job_title.is_some() && m.hourly_rate_minor.is_some())
    );
    assert!(
        by_name
            .iter()
            .any(|m| m.job_title.is_none() && m.expertise_tags.is_none())
    );

    let locations = location::Entity::find().filter(location::Column::TenantId.eq(tenant));
    let by_name = locations.clone().all(db).await.unwrap();
    assert_eq!(
        row::all::<location::Model>(db, &locations).await.unwrap(),
        by_name
    );
    assert!(by_name.iter().any(|l| l.code.is_some()) && by_name.iter().any(|l| l.code.is_none()));

    let sessions = session::Entity::find().filter(session::Column::TenantId.eq(tenant));
    let by_name = sessions.clone().all(db).await.unwrap();
    assert_eq!(
        row::all::<session::Model>(db, &sessions).await.unwrap(),
        by_name
    );
    assert!(by_name.len() >= 2);

    if cfg!(debug_assertions) {
        // The same columns, two of them swapped: the decoder names what it expected.
        let swapped = membership::Entity::find()
            .select_only()
            .columns([membership::Column::UserId, membership::Column::TenantId])
            .filter(membership::Column::TenantId.eq(tenant))
            .build(db.get_database_backend());
        let rows = db.query_all_raw(swapped).await.unwrap();
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            membership::Model::from_row(&rows[0])
        }))
        .expect_err("a row in another order is refused");
        let message = refused
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("not the decoder's tenant_id"), "{message}");
    }
}
on_both_databases!(rows_read_by_position_are_the_rows_seaorm_reads);
