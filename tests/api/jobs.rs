//! The job queue behind the outbox relay.

use tenantry_platform::jobs::EmailJob;

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
