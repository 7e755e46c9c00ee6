//! The sessions port: tenancy ends a member's sessions when it deactivates or removes them,
//! without depending on the identity crate that owns sessions.

use sea_orm::DbErr;

use crate::db::Txn;
use crate::{TenantId, UserId};

/// Ends sessions inside the caller's transaction.
#[async_trait::async_trait]
pub trait SessionPort: Send + Sync {
    /// Revokes every live session `user` has in `tenant`, recording `reason`; answers how many
    /// ended. They end only if `txn` commits.
    async fn end_member_sessions(
        &self,
        txn: &Txn,
        tenant: TenantId,
        user: UserId,
        reason: &str,
    ) -> Result<u64, DbErr>;
}
