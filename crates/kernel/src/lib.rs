//! The floor every Tenantry crate stands on: typed ids, the [`RequestContext`] a command runs
//! in, the permission catalogue, crypto helpers, validation errors, and the ports
//! ([`AuditSink`], [`Outbox`], [`SessionPort`]) through which domain crates reach shared
//! infrastructure and each other.
//!
//! The kernel owns no tables and knows nothing of HTTP or jobs.

pub mod attempts;
pub mod audit;
pub mod context;
pub mod crypto;
pub mod db;
pub mod error;
pub mod event;
pub mod id;
pub mod outbox;
pub mod page;
pub mod permission;
pub mod row;
pub mod sealed;
pub mod sessions;
pub mod shape;
pub mod text;
pub mod validation;

pub use attempts::{Attempt, AttemptLimiter, Throttled};
pub use audit::{AuditEntry, AuditSink};
pub use context::{AccessDenied, Actor, ClientMeta, NotHeld, Principal, RequestContext};
pub use error::{Described, DomainError, ErrorKind};
pub use event::Event;
pub use id::{ApiKeyId, LocationId, RoleId, SessionId, TenantId, UserId};
pub use outbox::Outbox;
pub use page::{KeyPageRequest, Page, PageRequest};
pub use permission::{Permission, PermissionSet, Role};
pub use sealed::{SealError, Sealer};
pub use sessions::SessionPort;
pub use text::TextRule;
pub use validation::{FieldError, ValidationErrors};
