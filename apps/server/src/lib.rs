//! Tenantry's HTTP shell on actix-web: routes, extractors, problem+json rendering, the
//! OpenAPI document, and the embedded workers of the single-binary mode.
//!
//! Business rules live in the domain crates; handlers here parse, call one service method,
//! and map the result.

pub mod app;
pub mod client_ip;
pub mod codec_errors;
pub mod contract;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod request_id;
pub mod routes;

pub use app::Application;
