//! The outbox port: a command writes the events whose side effects (emails, webhooks) must
//! follow it into the same transaction; a relay hands them to the job queue after commit.

use sea_orm::DbErr;

use crate::Event;
use crate::db::Txn;

/// Stores events in the caller's transaction for delivery after commit.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// Adds `event` to the outbox; it exists only if `txn` commits.
    async fn put(&self, txn: &Txn, event: Event) -> Result<(), DbErr>;

    /// Tells the relay that committed events are waiting (a hint; the relay also polls).
    fn wake(&self);
}
