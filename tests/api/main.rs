//! Black-box tests: the real server on a random port over a fresh database, driven over HTTP.
//! Each database test runs on SQLite and on PostgreSQL (`TEST_DATABASE_URL`).

mod access;
mod access_tokens;
mod account;
mod api_keys;
mod architecture;
mod audit;
mod contract;
mod database;
mod errors;
mod helpers;
mod idempotency;
mod input;
mod invitation_delivery;
mod invitations;
mod jobs;
mod locations;
mod members;
mod metrics;
mod mfa;
mod openapi;
mod pages;
mod rate_limits;
mod roles;
mod session_management;
mod sessions;
mod statements;
mod tenants;
