//! Prometheus metrics through the `metrics` facade, rendered in the text exposition format by
//! `metrics-exporter-prometheus`.
//!
//! Counters and histograms are recorded where things happen (requests by the server's
//! middleware, jobs by the job runtime, refusals by the rate limiter); gauges that describe a
//! state — the database's connections, the password-hash places, the job queue, the outbox —
//! are read when the metrics are scraped ([`render`]), so they cost nothing in between.
//!
//! | series | kind | labels |
//! |---|---|---|
//! | `tenantry_http_requests_total` | counter | `route` (template), `method`, `status` |
//! | `tenantry_http_request_duration_seconds` | histogram | `route`, `method` |
//! | `tenantry_jobs_total` | counter | `job`, `outcome` (`ok`, `retry`, `failed`) |
//! | `tenantry_job_duration_seconds` | histogram | `job` |
//! | `tenantry_jobs_queued` | gauge | |
//! | `tenantry_jobs_oldest_due_age_seconds` | gauge | |
//! | `tenantry_outbox_pending_events` | gauge | |
//! | `tenantry_db_connections_in_use`, `_idle`, `_waiting` | gauge | |
//! | `tenantry_rate_limit_rejections_total` | counter | `limit` (`api`, or the attempt kind) |
//! | `tenantry_rate_limit_redis_fallbacks_total` | counter | |
//! | `tenantry_password_hash_places_taken`, `_places` | gauge | |

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::Platform;

/// Requests answered.
pub const HTTP_REQUESTS: &str = "tenantry_http_requests_total";
/// Time to answer a request.
pub const HTTP_DURATION: &str = "tenantry_http_request_duration_seconds";
/// Job runs by outcome.
pub const JOBS: &str = "tenantry_jobs_total";
/// Time a job run took.
pub const JOB_DURATION: &str = "tenantry_job_duration_seconds";
/// Jobs waiting in the queue.
pub const JOBS_QUEUED: &str = "tenantry_jobs_queued";
/// How long the longest-waiting due job has been due.
pub const OLDEST_DUE: &str = "tenantry_jobs_oldest_due_age_seconds";
/// Outbox events not yet handed to the job queue.
pub const OUTBOX_PENDING: &str = "tenantry_outbox_pending_events";
/// Database connections lent out.
pub const DB_IN_USE: &str = "tenantry_db_connections_in_use";
/// Database connections at rest.
pub const DB_IDLE: &str = "tenantry_db_connections_idle";
/// Statements and transactions waiting for a connection.
pub const DB_WAITING: &str = "tenantry_db_connections_waiting";
/// Requests and credential attempts refused by a rate limit.
pub const RATE_LIMITED: &str = "tenantry_rate_limit_rejections_total";
/// Rate-limit checks let through because Redis did not answer.
pub const REDIS_FALLBACKS: &str = "tenantry_rate_limit_redis_fallbacks_total";
/// Password hashes running or queued.
pub const HASH_TAKEN: &str = "tenantry_password_hash_places_taken";
/// Places in the password-hash pool.
pub const HASH_PLACES: &str = "tenantry_password_hash_places";

/// Histogram buckets, in seconds: from a cached read to a slow job.
const BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One Tenantry instance's metrics: its own recorder, so two instances in one process (the
/// tests, a service linking Tenantry beside its own metrics) never mix their series.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A recorder with Tenantry's buckets and descriptions.
    #[must_use]
    pub fn new() -> Self {
        let builder = match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "metric buckets refused; histograms render as summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let metrics = Self { recorder, handle };
        metrics.record(describe);
        metrics
    }

    /// Runs `f`, whose `metrics::counter!`, `histogram!` and `gauge!` record here.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Counts one run of `job` with its outcome and time.
    pub fn job_run(&self, job: &'static str, outcome: &'static str, started: std::time::Instant) {
        self.record(|| {
            histogram!(JOB_DURATION, "job" => job).record(started.elapsed().as_secs_f64());
            counter!(JOBS, "job" => job, "outcome" => outcome).increment(1);
        });
    }
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer a request."
    );
    describe_counter!(JOBS, "Job runs, by job and outcome (ok, retry, failed).");
    describe_histogram!(JOB_DURATION, metrics::Unit::Seconds, "Time a job run took.");
    describe_gauge!(JOBS_QUEUED, "Jobs waiting in the queue.");
    describe_gauge!(
        OLDEST_DUE,
        metrics::Unit::Seconds,
        "How long the longest-waiting due job has been due."
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Outbox events not yet handed to the job queue."
    );
    describe_gauge!(
        DB_IN_USE,
        "Database connections lent to a statement or transaction."
    );
    describe_gauge!(DB_IDLE, "Database connections at rest.");
    describe_gauge!(
        DB_WAITING,
        "Statements and transactions waiting for a database connection."
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests and credential attempts refused by a rate limit."
    );
    describe_counter!(
        REDIS_FALLBACKS,
        "Rate-limit checks let through because Redis did not answer."
    );
    describe_gauge!(HASH_TAKEN, "Password hashes running or queued.");
    describe_gauge!(
        HASH_PLACES,
        "Places in the password-hash pool (threads and queue)."
    );
}

/// Reads the state gauges and renders every series of `platform` in the Prometheus text
/// format.
pub async fn render(platform: &Platform) -> String {
    let depth = platform.jobs.depth().await;
    let outbox = crate::outbox::SqlOutbox::pending_count(&platform.db).await;
    let pool = platform.db.pool_stats();
    let (taken, places) = platform.hasher.load();
    let metrics = &platform.metrics;
    metrics.record(|| {
        gauge!(DB_IN_USE).set(pool.in_use as f64);
        gauge!(DB_IDLE).set(pool.idle as f64);
        gauge!(DB_WAITING).set(pool.waiting as f64);
        gauge!(HASH_TAKEN).set(taken as f64);
        gauge!(HASH_PLACES).set(places as f64);
        match depth {
            Ok(depth) => {
                gauge!(JOBS_QUEUED).set(depth.queued as f64);
                gauge!(OLDEST_DUE).set(depth.oldest_due_secs);
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "job queue depth unread"),
        }
        match outbox {
            Ok(n) => gauge!(OUTBOX_PENDING).set(n as f64),
            Err(e) => tracing::warn!(error = %e, "outbox depth unread"),
        }
        for (limit, n) in platform.limits.rejections() {
            counter!(RATE_LIMITED, "limit" => limit).absolute(n);
        }
        counter!(REDIS_FALLBACKS).absolute(platform.limits.fallbacks());
    });
    metrics.handle.render()
}
