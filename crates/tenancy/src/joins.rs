//! Reads other domains join their own tables onto, so that what they ask of tenancy comes in
//! their one statement: a tenant's state (and a location's existence) beside a row of theirs,
//! and a user's memberships with their tenants.

use sea_orm::sea_query::Expr;
use sea_orm::sea_query::ExprTrait as _;
use tenantry_kernel::row::{self, FromRow as _};
use tenantry_kernel::{LocationId, Role, UserId};

use crate::entity::{location, membership, tenant};
use crate::{MemberStatus, Membership, TenancyError};

/// Joins onto `query` what a caller acting in the tenant named by `tenant_column` (a column
/// of the query's table) must know of it: the tenant's status, and at `location` whether it
/// is one of the tenant's. [`TenantState::from_row`] reads it.
pub fn join_tenant_state(
    query: &mut sea_orm::sea_query::SelectStatement,
    tenant_column: impl sea_orm::sea_query::IntoColumnRef,
    location: Option<LocationId>,
) {
    use sea_orm::sea_query::{Alias, JoinType};
    let tenant_column = tenant_column.into_column_ref();
    let owner = || Expr::col(tenant_column.clone());
    query
        .expr_as(
            Expr::col((tenant::Entity, tenant::Column::Status)),
            Alias::new("tenant_state_status"),
        )
        .join(
            JoinType::LeftJoin,
            tenant::Entity,
            Expr::col((tenant::Entity, tenant::Column::Id)).eq(owner()),
        );
    if let Some(location) = location {
        query
            .expr_as(
                Expr::col((location::Entity, location::Column::Id)),
                Alias::new("tenant_state_location"),
            )
            .join(
                JoinType::LeftJoin,
                location::Entity,
                Expr::col((location::Entity, location::Column::Id))
                    .eq(location.0)
                    .and(Expr::col((location::Entity, location::Column::TenantId)).eq(owner())),
            );
    }
}

/// What [`join_tenant_state`] added to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantState {
    /// The tenant exists and is active.
    pub active: bool,
    /// Whether the location asked for is the tenant's (`None`: none was asked for).
    pub location_exists: Option<bool>,
}

impl TenantState {
    /// Reads the state from a row of a query [`join_tenant_state`] extended for `location`.
    pub fn from_row(
        row: &sea_orm::QueryResult,
        location: Option<LocationId>,
    ) -> Result<Self, TenancyError> {
        let status: Option<String> = row::named(row, "tenant_state_status")?;
        let location_exists = match location {
            None => None,
            Some(_) => {
                Some(row::named::<Option<uuid::Uuid>>(row, "tenant_state_location")?.is_some())
            }
        };
        Ok(Self {
            active: status.as_deref() == Some(crate::TenantStatus::Active.as_str()),
            location_exists,
        })
    }
}

/// The memberships of `user` with their tenants, oldest first, as a query a caller may join
/// its own tables onto (it reads from `memberships`; the identity service adds the user's
/// account, so `/users/me` is one statement); [`memberships_from_rows`] reads the answer.
#[must_use]
pub fn memberships_query(user: UserId) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{JoinType, Query};
    let mut q = Query::select();
    q.column((membership::Entity, membership::Column::Role))
        .column((membership::Entity, membership::Column::Status));
    for c in <tenant::Column as sea_orm::Iterable>::iter() {
        q.column((tenant::Entity, c));
    }
    q.from(membership::Entity)
        .join(
            JoinType::InnerJoin,
            tenant::Entity,
            Expr::col((tenant::Entity, tenant::Column::Id))
                .equals((membership::Entity, membership::Column::TenantId)),
        )
        .and_where(Expr::col((membership::Entity, membership::Column::UserId)).eq(user.0))
        .order_by(
            (membership::Entity, membership::Column::CreatedAt),
            sea_orm::Order::Asc,
        );
    q
}

/// What the rows of [`memberships_query`] say.
pub fn memberships_from_rows(
    rows: &[sea_orm::QueryResult],
) -> Result<Vec<Membership>, TenancyError> {
    let mut memberships = Vec::with_capacity(rows.len());
    for found in rows {
        let mut columns = row::Columns::new(found);
        let role: String = columns.next("role")?;
        let status: String = columns.next("status")?;
        let t = tenant::Model::from_columns(&mut columns)?;
        if let (Some(role), Some(status)) = (Role::parse(&role), MemberStatus::parse(&status)) {
            memberships.push(Membership {
                tenant: t.into(),
                role,
                status,
            });
        }
    }
    Ok(memberships)
}
