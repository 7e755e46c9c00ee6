//! What both Tenantry binaries (`tenantry` and `tenantry-worker`) are built from: layered
//! configuration, the database connection (SQLite or PostgreSQL, chosen by URL) with
//! migrations, key material, the domain services wired together ([`Platform`]), the outbox
//! relay, the mailer, the rate limiter and the apalis workers.
//!
//! Not a domain crate: it owns only the `outbox` table, and depends on every domain crate so
//! that the apps do not have to wire them twice.

pub mod config;
pub mod db;
pub mod idempotency;
pub mod jobs;
pub mod keys;
pub mod mailer;
pub mod metrics;
pub mod outbox;
mod platform;
pub mod ratelimit;
pub mod telemetry;

pub use config::{Mode, Settings};
pub use platform::Platform;
