//! Background jobs on apalis: the queue lives in the same database as the data (SQLite
//! embedded, PostgreSQL in production), so nothing else has to run.
//!
//! | job | trigger | retries |
//! |---|---|---|
//! | [`EmailJob::Verification`] | outbox events `user.registered`, `user.verification_requested` | 6 attempts, exponential backoff 2 s → 5 min |
//! | [`EmailJob::PasswordReset`] | outbox event `user.password_reset_requested` | the same |
//! | [`EmailJob::Invitation`] | outbox event `invitation.email_queued` | its own schedule, below |
//! | invitation email retries | cron, every minute | after 5 min, 30 min, 2 h; then failed |
//! | cleanup (sessions, spent tokens, expired idempotency keys) | cron, every 15 minutes | next tick |
//! | invitation cleanup | cron, daily at 03:30 UTC | next day |
//!
//! An invitation email is a row with its own state (`invitation_emails`): a failed SMTP
//! attempt is recorded there and retried by the every-minute sweep when due, so a mail server
//! that is down for hours loses nothing, and one bad address never holds up another.
//!
//! [`run`] starts the outbox relay and every worker; the server calls it in embedded mode,
//! `tenantry-worker` in production.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tenantry_identity::{
    INVITATION_EMAIL_QUEUED, PASSWORD_RESET_REQUESTED, USER_REGISTERED, VERIFICATION_REQUESTED,
};
use tenantry_kernel::db::Db;
use tenantry_kernel::{Event, TenantId, UserId};

use crate::Platform;
use crate::mailer::{MailError, invitation_email, password_reset_email, verification_email};
use crate::outbox::SqlOutbox;

/// An email to send, named by its purpose; the worker builds it from current data (a token is
/// created only when the email is actually sent).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmailJob {
    /// The address-verification email.
    Verification {
        /// The user to verify.
        user_id: UserId,
    },
    /// A password-reset link, if an active account uses `email`.
    PasswordReset {
        /// The address the reset was asked for.
        email: String,
    },
    /// The first attempt at one invitation email; retries come from the sweep.
    Invitation {
        /// The tenant the invitation belongs to; the lookup is scoped to it.
        tenant_id: TenantId,
        /// The `invitation_emails` record.
        email_id: uuid::Uuid,
    },
}

impl EmailJob {
    /// Attempts before the job is given up.
    pub const MAX_ATTEMPTS: usize = 6;

    /// Which email this is, for logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            EmailJob::Verification { .. } => "email.verification",
            EmailJob::PasswordReset { .. } => "email.password_reset",
            EmailJob::Invitation { .. } => "email.invitation",
        }
    }
}

/// Where jobs are queued: the apalis storage matching the database.
#[derive(Clone)]
pub enum JobQueue {
    /// apalis-sqlite, in the embedded database file, and the pool it runs on.
    Sqlite(SqliteStorage<EmailJob>, apalis_sqlite::SqlitePool),
    /// apalis-postgres, and the pool it runs on.
    Postgres(PostgresStorage<EmailJob>, sea_orm::sqlx::PgPool),
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobQueue::Sqlite(..) => "JobQueue::Sqlite",
            JobQueue::Postgres(..) => "JobQueue::Postgres",
        })
    }
}

impl JobQueue {
    /// Connects apalis to the database at `url` and creates its tables.
    ///
    /// apalis gets its own small pool: its set-up changes connection settings
    /// (`synchronous = OFF` on SQLite) that Tenantry's own data must not inherit.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let opts = apalis_sqlite::SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = apalis_sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(opts)
                .await?;
            SqliteStorage::setup(&pool).await?;
            Ok(JobQueue::Sqlite(SqliteStorage::new(&pool), pool))
        } else {
            let pool = sea_orm::sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect(url)
                .await?;
            PostgresStorage::setup(&pool).await?;
            Ok(JobQueue::Postgres(PostgresStorage::new(&pool), pool))
        }
    }

    /// Queues an email once per `key` (the outbox event id).
    pub async fn push_email(&self, job: EmailJob, key: &str) -> anyhow::Result<()> {
        let task = TaskBuilder::new(job)
            .max_attempts(EmailJob::MAX_ATTEMPTS)
            .idempotency_key(key);
        let pushed: anyhow::Result<()> = match self {
            JobQueue::Sqlite(s, _) => s.clone().push_task(task.build()).await.map_err(Into::into),
            JobQueue::Postgres(s, _) => s.clone().push_task(task.build()).await.map_err(Into::into),
        };
        match pushed {
            // Another relay (or this one, before a crash) queued it already.
            Err(e) if already_queued(&e) => Ok(()),
            other => other,
        }
    }
}

/// How the job queue stands.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueDepth {
    /// Jobs waiting to run, due or not.
    pub queued: u64,
    /// How long the longest-waiting due job has been due, in seconds (0 when none is).
    pub oldest_due_secs: f64,
}

impl JobQueue {
    /// The jobs waiting, and the age of the oldest due one.
    pub async fn depth(&self) -> anyhow::Result<QueueDepth> {
        let (queued, oldest) = match self {
            JobQueue::Sqlite(_, pool) => {
                let (n, age): (i64, Option<i64>) = sea_orm::sqlx::query_as(
                    "SELECT COUNT(*), CAST(strftime('%s', 'now') AS INTEGER) \
                     - MIN(CASE WHEN run_at <= CAST(strftime('%s', 'now') AS INTEGER) \
                     THEN run_at END) FROM Jobs WHERE status = 'Pending'",
                )
                .fetch_one(pool)
                .await?;
                (n, age.map(|a| a as f64))
            }
            JobQueue::Postgres(_, pool) => {
                sea_orm::sqlx::query_as::<_, (i64, Option<f64>)>(
                    "SELECT COUNT(*), EXTRACT(EPOCH FROM now() - MIN(run_at) \
                     FILTER (WHERE run_at <= now()))::float8 \
                     FROM apalis.jobs WHERE status = 'Pending'",
                )
                .fetch_one(pool)
                .await?
            }
        };
        Ok(QueueDepth {
            queued: u64::try_from(queued).unwrap_or(0),
            oldest_due_secs: oldest.unwrap_or(0.0).max(0.0),
        })
    }
}

/// Whether a push failed only because a job with the same idempotency key exists.
fn already_queued(e: &anyhow::Error) -> bool {
    // The apalis errors wrap sqlx's transparently, so the sqlx error is not a link of the
    // chain itself: look for the apalis error and inspect what it holds.
    let unique = |db: &sea_orm::sqlx::Error| {
        db.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
    };
    e.chain().any(|cause| {
        matches!(cause.downcast_ref::<apalis_postgres::Error>(), Some(apalis_postgres::Error::Database(db)) if unique(db))
            || matches!(cause.downcast_ref::<apalis_sqlite::Error>(), Some(apalis_sqlite::Error::Database(db)) if unique(db))
    })
}

/// Hands every pending outbox event to the job queue; answers how many were dispatched.
pub async fn relay_once(db: &Db, queue: &JobQueue) -> anyhow::Result<usize> {
    let mut dispatched = 0;
    loop {
        let batch = SqlOutbox::pending(db, 100).await?;
        if batch.is_empty() {
            return Ok(dispatched);
        }
        for event in batch {
            dispatch(queue, &event).await?;
            SqlOutbox::mark_dispatched(db, event.id).await?;
            dispatched += 1;
        }
    }
}

async fn dispatch(queue: &JobQueue, event: &Event) -> anyhow::Result<()> {
    match event.event_type.as_str() {
        USER_REGISTERED | VERIFICATION_REQUESTED => {
            let user_id: UserId = serde_json::from_value(event.data["user_id"].clone())?;
            queue
                .push_email(EmailJob::Verification { user_id }, &event.id.to_string())
                .await
        }
        PASSWORD_RESET_REQUESTED => {
            let email: String = serde_json::from_value(event.data["email"].clone())?;
            queue
                .push_email(EmailJob::PasswordReset { email }, &event.id.to_string())
                .await
        }
        INVITATION_EMAIL_QUEUED => {
            let tenant_id: TenantId = serde_json::from_value(event.data["tenant_id"].clone())?;
            let email_id: uuid::Uuid = serde_json::from_value(event.data["email_id"].clone())?;
            queue
                .push_email(
                    EmailJob::Invitation {
                        tenant_id,
                        email_id,
                    },
                    &event.id.to_string(),
                )
                .await
        }
        // Events without a consumer yet are simply marked delivered.
        _ => Ok(()),
    }
}

/// The link an email carries to `page` with a single-use token. The token rides in the
/// fragment: browsers never send it to a server, so it stays out of access logs and Referer
/// headers.
fn email_link(settings: &crate::Settings, page: &str, token: &str) -> String {
    format!("{}/{page}#token={token}", settings.link_base())
}

async fn send_email(job: EmailJob, platform: Data<Arc<Platform>>) -> Result<(), BoxDynError> {
    let kind = job.kind();
    let started = std::time::Instant::now();
    let (outcome, result) = match email_attempt(job, &platform).await {
        Ok(()) => ("ok", Ok(())),
        // A message that cannot be built (an address no relay takes, a bad sender) fails the
        // same way every time: it is reported once and not retried.
        Err(AttemptError::Mail(e @ MailError::Config(_))) => {
            tracing::error!(kind, error = %e, "email cannot be sent; not retried");
            ("failed", Ok(()))
        }
        Err(e) => {
            tracing::warn!(kind, error = %e, "email attempt failed; it is retried");
            ("retry", Err(e.into()))
        }
    };
    platform.metrics.job_run(kind, outcome, started);
    result
}

/// Runs a scheduled job, counted like any other.
async fn scheduled<E>(
    platform: &Platform,
    job: &'static str,
    run: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), E> {
    let started = std::time::Instant::now();
    let result = run.await;
    // A failed tick is not retried: the next tick runs it again.
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    platform.metrics.job_run(job, outcome, started);
    result
}

/// Why an email attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<tenantry_identity::IdentityError> for AttemptError {
    fn from(e: tenantry_identity::IdentityError) -> Self {
        Self::Other(e.into())
    }
}

async fn email_attempt(job: EmailJob, platform: &Platform) -> Result<(), AttemptError> {
    let link = |page: &str, token: &str| email_link(&platform.settings, page, token);
    let from = &platform.settings.mail_from;
    match job {
        EmailJob::Verification { user_id } => {
            let Some(mail) = platform
                .account_upkeep
                .issue_email_verification(user_id)
                .await?
            else {
                // Already verified (or the user is gone): nothing to send.
                return Ok(());
            };
            let url = link("verify-email", &mail.token);
            platform
                .mailer
                .send(verification_email(from, &mail.name, &mail.email, &url)?)
                .await?;
            tracing::info!(user_id = %user_id, "verification email sent");
        }
        EmailJob::PasswordReset { email } => {
            let Some(mail) = platform.account_upkeep.issue_password_reset(&email).await? else {
                // No active account uses the address: nothing is sent, and the caller was
                // told nothing either way.
                return Ok(());
            };
            let url = link("reset-password", &mail.token);
            platform
                .mailer
                .send(password_reset_email(from, &mail.name, &mail.email, &url)?)
                .await?;
            tracing::info!("password-reset email sent");
        }
        EmailJob::Invitation {
            tenant_id,
            email_id,
        } => {
            deliver_invitation_email(platform, tenant_id, email_id, Utc::now()).await?;
        }
    }
    Ok(())
}

/// Makes one attempt at an invitation email if it is due at `now`, and records the outcome
/// (a failure schedules the next attempt). Answers whether an attempt was made; an SMTP
/// failure is an outcome, not an error.
pub async fn deliver_invitation_email(
    platform: &Platform,
    tenant: TenantId,
    email_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let invitations = &platform.invitation_delivery;
    let Some(mail) = invitations
        .claim_invitation_email(tenant, email_id, now)
        .await?
    else {
        return Ok(false);
    };
    let link = email_link(&platform.settings, "accept-invite", &mail.token);
    let sent = match invitation_email(&platform.settings.mail_from, &mail, &link) {
        Ok(message) => platform.mailer.send(message).await,
        Err(e) => Err(e),
    };
    let outcome = sent.map_err(|e| e.to_string());
    match &outcome {
        Ok(()) => {
            tracing::info!(tenant_id = %tenant, %email_id, attempt = mail.attempt, "invitation email sent")
        }
        Err(error) => {
            tracing::warn!(tenant_id = %tenant, %email_id, attempt = mail.attempt, %error, "invitation email failed")
        }
    }
    invitations
        .record_invitation_email(tenant, email_id, mail.attempt, outcome, now)
        .await?;
    Ok(true)
}

/// Attempts every invitation email due at `now`, eight at a time, each on its own: a slow or
/// failing one delays no other. Answers how many attempts were made.
pub async fn deliver_due_invitation_emails(
    platform: &Platform,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let due = platform
        .invitation_delivery
        .due_invitation_emails(now, 500)
        .await?;
    let attempted = futures::stream::iter(due)
        .map(|(tenant, id)| async move {
            match deliver_invitation_email(platform, tenant, id, now).await {
                Ok(tried) => usize::from(tried),
                Err(e) => {
                    tracing::error!(tenant_id = %tenant, email_id = %id, error = format!("{e:#}"), "invitation email attempt failed");
                    0
                }
            }
        })
        .buffer_unordered(8)
        .fold(0, |n, tried| async move { n + tried })
        .await;
    Ok(attempted)
}

async fn retry_invitation_emails(
    _tick: Tick,
    platform: Data<Arc<Platform>>,
) -> Result<(), BoxDynError> {
    scheduled(
        &platform,
        "invitation_email_retries",
        retry_invitation_emails_now(&platform),
    )
    .await
}

async fn retry_invitation_emails_now(platform: &Platform) -> Result<(), BoxDynError> {
    let attempted = deliver_due_invitation_emails(platform, Utc::now()).await?;
    if attempted > 0 {
        tracing::info!(attempted, "invitation email retries done");
    }
    Ok(())
}

async fn invitation_cleanup(_tick: Tick, platform: Data<Arc<Platform>>) -> Result<(), BoxDynError> {
    scheduled(
        &platform,
        "invitation_cleanup",
        invitation_cleanup_now(&platform),
    )
    .await
}

async fn invitation_cleanup_now(platform: &Platform) -> Result<(), BoxDynError> {
    let report = platform
        .invitation_delivery
        .cleanup_invitations(Utc::now())
        .await?;
    tracing::info!(
        expired = report.expired,
        emails_cancelled = report.emails_cancelled,
        soft_deleted = report.soft_deleted,
        hard_deleted = report.hard_deleted,
        email_records_deleted = report.email_records_deleted,
        "invitation cleanup done"
    );
    Ok(())
}

async fn cleanup(_tick: Tick, platform: Data<Arc<Platform>>) -> Result<(), BoxDynError> {
    scheduled(&platform, "cleanup", cleanup_now(&platform)).await
}

async fn cleanup_now(platform: &Platform) -> Result<(), BoxDynError> {
    let report = platform.account_upkeep.purge_expired().await?;
    let idempotency_keys = crate::idempotency::purge(&platform.db, Utc::now()).await?;
    tracing::info!(
        sessions = report.sessions,
        idempotency_keys,
        verification_tokens = report.verification_tokens,
        password_reset_tokens = report.password_reset_tokens,
        "cleanup done"
    );
    Ok(())
}

/// Exponential backoff between email attempts: 2 s doubling up to 5 min, with jitter.
fn backoff() -> anyhow::Result<ExponentialBackoff> {
    let mut maker = ExponentialBackoffMaker::new(
        Duration::from_secs(2),
        Duration::from_secs(300),
        0.5,
        HasherRng::default(),
    )?;
    Ok(maker.make_backoff())
}

/// Runs the outbox relay, the email worker and the cleanup schedule until `shutdown` fires.
pub async fn run(
    platform: Arc<Platform>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let relay = {
        let platform = Arc::clone(&platform);
        let mut stop = shutdown.clone();
        async move {
            loop {
                if let Err(e) = relay_once(&platform.db, &platform.jobs).await {
                    tracing::error!(error = format!("{e:#}"), "outbox relay failed");
                }
                tokio::select! {
                    () = platform.outbox.woken() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
        Ok::<(), std::io::Error>(())
    };
    let policy = RetryPolicy::retries(EmailJob::MAX_ATTEMPTS - 1).with_backoff(backoff()?);
    let cleanup_worker = WorkerBuilder::new("tenantry-cleanup")
        .backend(CronScheduler::new(cron::Schedule::from_str(
            "0 */15 * * * *",
        )?))
        .data(Arc::clone(&platform))
        .build(cleanup);
    let retry_worker = WorkerBuilder::new("tenantry-invitation-retry")
        .backend(CronScheduler::new(cron::Schedule::from_str("0 * * * * *")?))
        .data(Arc::clone(&platform))
        .build(retry_invitation_emails);
    let invitation_cleanup_worker = WorkerBuilder::new("tenantry-invitation-cleanup")
        .backend(CronScheduler::new(cron::Schedule::from_str(
            "0 30 3 * * *",
        )?))
        .data(Arc::clone(&platform))
        .build(invitation_cleanup);
    // Each process's email worker has a name of its own: apalis keeps a job `Running` under
    // its worker's name, and re-enqueues the jobs of a worker whose heartbeat stopped only
    // when another name is beating (two processes sharing one name would keep each other's
    // crashed jobs alive for ever).
    let email_worker = format!("tenantry-email-{}", uuid::Uuid::now_v7().simple());
    let email = async {
        match platform.jobs.clone() {
            JobQueue::Sqlite(s, _) => {
                WorkerBuilder::new(email_worker.as_str())
                    .backend(s)
                    .retry(policy)
                    .data(Arc::clone(&platform))
                    .build(send_email)
                    .run_until(stop(shutdown.clone()))
                    .await
            }
            JobQueue::Postgres(s, _) => {
                WorkerBuilder::new(email_worker.as_str())
                    .backend(s)
                    .retry(policy)
                    .data(Arc::clone(&platform))
                    .build(send_email)
                    .run_until(stop(shutdown.clone()))
                    .await
            }
        }
    };
    let all = async {
        tokio::join!(
            relay,
            email,
            cleanup_worker.run_until(stop(shutdown.clone())),
            retry_worker.run_until(stop(shutdown.clone())),
            invitation_cleanup_worker.run_until(stop(shutdown.clone())),
        )
    };
    // After the stop, jobs under way get the grace to finish; one still running then (an
    // email waiting out its retry backoff, a relay that does not answer) is left: it is
    // still `Running` under this process's worker, and a worker's heartbeat re-enqueues the
    // jobs of workers that stopped beating.
    let grace = Duration::from_millis(platform.settings.worker_shutdown_grace_ms);
    let mut stopped = shutdown.clone();
    let deadline = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        (_, email, cron, retry, daily) = all => {
            email?;
            cron?;
            retry?;
            daily?;
        }
        () = deadline => {
            tracing::warn!(
                grace_ms = platform.settings.worker_shutdown_grace_ms,
                "background jobs still running at the end of the shutdown grace are left to \
                 be taken up again"
            );
        }
    }
    Ok(())
}
