//! The audit log: an append-only table that every command writes to inside its own
//! transaction, through the kernel's [`AuditSink`] port.
//!
//! The database refuses UPDATE and DELETE on `audit_log` (triggers installed by the
//! migration), so not even a bug in Tenantry can rewrite history. Queries and export arrive
//! later; this crate owns only the write path for now.

use sea_orm::{DbErr, Set};
use tenantry_kernel::db::Txn;
use tenantry_kernel::{AuditEntry, AuditSink};

pub mod entity;

/// [`AuditSink`] that appends rows to `audit_log`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeaAuditSink;

#[async_trait::async_trait]
impl AuditSink for SeaAuditSink {
    async fn record(&self, txn: &Txn, entry: AuditEntry) -> Result<(), DbErr> {
        let row = entity::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(entry.tenant_id.map(|t| t.0)),
            occurred_at: Set(chrono::Utc::now()),
            actor_type: Set(entry.actor.kind().to_owned()),
            actor_id: Set(entry.actor.id()),
            action: Set(entry.action.to_owned()),
            resource_type: Set(entry.resource_type.to_owned()),
            resource_id: Set(entry.resource_id),
            ip: Set(entry.client.ip),
            user_agent: Set(entry.client.user_agent),
            request_id: Set(entry.client.request_id),
            old_values: Set(entry.old_values),
            new_values: Set(entry.new_values),
        };
        // An append nothing reads back: sent with the transaction's next statement.
        txn.defer_insert(row).await
    }
}
