//! The job queue behind the outbox relay.

use tenantry_platform::jobs::EmailJob;

use sea_orm::ConnectionTrait as _;

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn queueing_the_same_event_twice_is_not_an_error(app: TestApp) {
    // Two relays, or one that crashed between queueing and marking the event, push the same
    // idempotency key again; that must count as done, or the event is retried for ever.
    let account = app.register("twice@example.com", "Twice").await;
    let job = || EmailJob::Verification {
        user_id: account.user_id.parse::<uuid::Uuid>().unwrap().into(),
    };
    let key = uuid::Uuid::now_v7().to_string();
    app.platform
        .jobs
        .push_email(job(), &key)
        .await
        .expect("first push");
    app.platform
        .jobs
        .push_email(job(), &key)
        .await
        .expect("second push of the same key");
}
on_both_databases!(queueing_the_same_event_twice_is_not_an_error);

fn short_grace(s: &mut tenantry_platform::Settings) {
    s.worker_shutdown_grace_ms = 300;
}

/// A stop waits for jobs under way only as long as the grace: an email stuck on a relay that
/// takes the connection and never answers (lettre gives up after a minute, then the job
/// would wait out its backoff) no longer holds the process. The email is not lost: its job is
/// still there, unfinished, for a live worker to take up again.
async fn a_stop_waits_for_jobs_only_as_long_as_the_grace(app: TestApp) {
    app.mail.set_silent(true);
    app.register("stuck@example.com", "Stuck").await;
    app.run_pending_jobs().await;
    app.mail.next_held_connection().await;

    app.server.stop(true).await;
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), app.served).await;
    let run = stopped.expect("the server still stopping 30 s after the stop (grace 0.3 s)");
    run.expect("the server's run finishes")
        .expect("and stops without error");

    let backend = app.platform.db.get_database_backend();
    let table = match backend {
        sea_orm::DatabaseBackend::Postgres => "apalis.jobs",
        _ => "Jobs",
    };
    let unfinished = app
        .platform
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE status IN ('Pending', 'Queued', 'Running')"
            ),
        ))
        .await
        .expect("count jobs")
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("a count");
    assert_eq!(unfinished, 1, "the stuck email's job is kept for later");
}
on_both_databases!(
    a_stop_waits_for_jobs_only_as_long_as_the_grace,
    settings = super::short_grace
);
