//! The audit port. Every command writes one [`AuditEntry`] through an [`AuditSink`] inside its
//! own transaction, so the change and its record commit together or not at all.

use sea_orm::DbErr;

use crate::db::Txn;
use crate::{Actor, ClientMeta, RequestContext, TenantId};

/// Who did what, to what, from where, with the values before and after.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    /// The tenant the change happened in (none for account-level events outside any tenant).
    pub tenant_id: Option<TenantId>,
    /// Who acted.
    pub actor: Actor,
    /// `resource.verb`, e.g. `tenant.updated`.
    pub action: &'static str,
    /// The kind of resource touched (`tenant`, `user`, `session`).
    pub resource_type: &'static str,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// Address, user agent and request id of the caller.
    pub client: ClientMeta,
    /// The changed fields before the command (never secrets).
    pub old_values: Option<serde_json::Value>,
    /// The changed fields after the command (never secrets).
    pub new_values: Option<serde_json::Value>,
}

impl AuditEntry {
    /// An entry with no before/after values.
    #[must_use]
    pub fn new(
        tenant_id: Option<TenantId>,
        actor: Actor,
        action: &'static str,
        resource_type: &'static str,
        resource_id: Option<String>,
        client: &ClientMeta,
    ) -> Self {
        Self {
            tenant_id,
            actor,
            action,
            resource_type,
            resource_id,
            client: client.clone(),
            old_values: None,
            new_values: None,
        }
    }

    /// An entry for a command run in `ctx`: its tenant, its principal, its client.
    #[must_use]
    pub fn in_context(
        ctx: &RequestContext,
        action: &'static str,
        resource_type: &'static str,
        resource_id: impl ToString,
    ) -> Self {
        Self::new(
            Some(ctx.tenant_id),
            ctx.actor(),
            action,
            resource_type,
            Some(resource_id.to_string()),
            &ctx.client,
        )
    }

    /// Adds the values before and after the change.
    #[must_use]
    pub fn with_change(
        mut self,
        old_values: Option<serde_json::Value>,
        new_values: Option<serde_json::Value>,
    ) -> Self {
        self.old_values = old_values;
        self.new_values = new_values;
        self
    }
}

/// Appends audit entries inside the caller's transaction.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync {
    /// Appends `entry`; it becomes visible only if `txn` commits.
    async fn record(&self, txn: &Txn, entry: AuditEntry) -> Result<(), DbErr>;
}
