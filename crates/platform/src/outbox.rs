//! The transactional outbox: events written in a command's transaction, handed to the job
//! queue after commit by a relay.
//!
//! Delivery is at least once: the relay marks an event dispatched only after its job is
//! queued, and pushes each job with the event id as apalis idempotency key, so a relay that
//! crashes in between (or two relays racing) cannot queue the same job twice.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{QueryOrder, QuerySelect, Set};
use tenantry_kernel::Event;
use tenantry_kernel::db::{Db, Txn};
use tokio::sync::Notify;

/// The `outbox` table.
pub mod entity {
    #![expect(missing_docs, reason = "generated entity shape")]
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Option<Uuid>,
        pub event_type: String,
        pub payload: Json,
        pub created_at: DateTimeUtc,
        pub dispatched_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The outbox over SeaORM, with an in-process wake-up for the relay.
#[derive(Debug, Default)]
pub struct SqlOutbox {
    notify: Arc<Notify>,
}

impl SqlOutbox {
    /// A new outbox.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves when [`wake`](tenantry_kernel::Outbox::wake) is called.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Up to `limit` undelivered events, oldest first.
    pub async fn pending(db: &Db, limit: u64) -> Result<Vec<Event>, DbErr> {
        let rows = entity::Entity::find()
            .filter(entity::Column::DispatchedAt.is_null())
            .order_by_asc(entity::Column::CreatedAt)
            .limit(limit)
            .all(db)
            .await?;
        rows.into_iter()
            .map(|r| serde_json::from_value(r.payload).map_err(|e| DbErr::Json(e.to_string())))
            .collect()
    }

    /// How many events wait for the relay.
    pub async fn pending_count(db: &Db) -> Result<u64, DbErr> {
        entity::Entity::find()
            .filter(entity::Column::DispatchedAt.is_null())
            .count(db)
            .await
    }

    /// Marks an event delivered.
    pub async fn mark_dispatched(db: &Db, id: Uuid) -> Result<(), DbErr> {
        entity::Entity::update_many()
            .col_expr(entity::Column::DispatchedAt, Expr::value(Utc::now()))
            .filter(entity::Column::Id.eq(id))
            .exec(db)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl tenantry_kernel::Outbox for SqlOutbox {
    async fn put(&self, txn: &Txn, event: Event) -> Result<(), DbErr> {
        let payload = serde_json::to_value(&event).map_err(|e| DbErr::Json(e.to_string()))?;
        let row = entity::ActiveModel {
            id: Set(event.id),
            tenant_id: Set(event.tenant_id.map(|t| t.0)),
            event_type: Set(event.event_type),
            payload: Set(payload),
            created_at: Set(event.occurred_at),
            dispatched_at: Set(None),
        };
        // An append nothing reads back: sent with the transaction's next statement.
        txn.defer_insert(row).await
    }

    fn wake(&self) {
        self.notify.notify_one();
    }
}
