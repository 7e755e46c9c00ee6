//! Invitations: bringing people into a tenant by email.
//!
//! - A token is 256 random bits, stored only as its SHA-256 and found by one indexed lookup.
//!   It is created when the email goes out, so the raw token exists only in that email; every
//!   resend (and every retry of a failed send) replaces it. An accepted or revoked
//!   invitation keeps its last hash, so its link answers "used" or "revoked", not "unknown".
//! - At most one invitation per (tenant, address) is pending: a partial unique index settles
//!   races, and the invite command locks the tenant so seat counts stay exact.
//! - Each email is a row in `invitation_emails` with its own retry schedule (5 min, 30 min,
//!   2 h, then failed), so one undeliverable address never holds up another and nothing is
//!   lost while the mail server is down.
//!
//! The module's parts, each depending only on those above it: `types` (what an invitation is
//! made of), `rows` (reads and writes of the invitation tables), `commands` (the checked
//! [`InvitationService`]) and `delivery` (the [`InvitationDelivery`] port its jobs use).

use chrono::Duration;
use tenantry_kernel::db::UniqueKey;

mod commands;
mod delivery;
mod rows;
mod types;

pub use commands::InvitationService;
pub use delivery::InvitationDelivery;
pub use types::*;

/// An address has one pending invitation per tenant.
pub(crate) const PENDING_INVITATION: UniqueKey = UniqueKey {
    name: "invitations_pending_email_key",
    table: "invitations",
    columns: &["tenant_id", "email"],
};

/// Outbox event that queues one invitation email; its payload names the tenant and the email.
pub const INVITATION_EMAIL_QUEUED: &str = "invitation.email_queued";

/// The most addresses one invite call may carry.
pub const MAX_BATCH: usize = 100;
/// What an invitation's message takes: up to 1000 characters, on several lines if need be.
pub const MESSAGE: tenantry_kernel::TextRule = tenantry_kernel::TextRule::lines(1000);
/// Attempts per invitation email: the first, then one after each delay of [`RETRY_DELAYS`].
pub const MAX_EMAIL_ATTEMPTS: i32 = 4;
/// Waits before the second, third and fourth attempt.
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
];
/// How long an attempt holds its email before another worker may assume it crashed.
pub(crate) const SEND_LEASE: Duration = Duration::minutes(10);
/// The shortest time between two emails for one invitation.
pub const RESEND_COOLDOWN: Duration = Duration::seconds(60);
/// Expired or revoked invitations are hidden this long after they ended...
pub(crate) const SOFT_DELETE_AFTER: Duration = Duration::days(30);
/// ...and removed for good this long after that.
pub(crate) const HARD_DELETE_AFTER: Duration = Duration::days(60);
/// Failed and cancelled email records are kept this long.
pub(crate) const EMAIL_RECORD_RETENTION: Duration = Duration::days(30);

/// Stored email states.
pub(crate) mod email_state {
    pub const PENDING: &str = "pending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}
