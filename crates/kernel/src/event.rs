//! The one envelope every domain event travels in — through the outbox, to jobs, webhooks,
//! notifications and the audit trail: `{id, type, tenant_id, occurred_at, data}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TenantId;

/// A domain event named `resource.verb`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// `resource.verb`, e.g. `user.registered`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The tenant the event belongs to, when it belongs to one.
    pub tenant_id: Option<TenantId>,
    /// When the change committed.
    pub occurred_at: DateTime<Utc>,
    /// Event-specific payload.
    pub data: serde_json::Value,
}

impl Event {
    /// A new event occurring now.
    #[must_use]
    pub fn new(event_type: &str, tenant_id: Option<TenantId>, data: serde_json::Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            tenant_id,
            occurred_at: Utc::now(),
            data,
        }
    }
}
