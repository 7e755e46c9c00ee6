//! The member directory's reads: the members page and the locations of the members on it,
//! as statements written once per shape (`kernel::shape`), read by position (`kernel::row`).

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait as _, Func, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait as _, Statement,
};
use tenantry_kernel::page::after_condition;
use tenantry_kernel::shape::Shapes;
use tenantry_kernel::{KeyPageRequest, LocationId, Role, TenantId, row};

use crate::entity::{location_member, membership};
use crate::{MemberFilter, MemberLocation, TenancyError};

/// The statement of one page of `tenant`'s members by name, filtered by `filter`.
pub(crate) fn members_page(
    backend: DatabaseBackend,
    tenant: TenantId,
    filter: &MemberFilter,
    page: &KeyPageRequest,
) -> Result<Statement, DbErr> {
    // The arguments: the tenant, the page's size, then those of each part the page has
    // (a bit of the shape's key each), in the order the statement takes them.
    static PAGE: Shapes = Shapes::new("members page");
    let mut args: Vec<sea_orm::Value> = vec![tenant.0.into(), page.fetch().into()];
    let mut key = 0u64;
    let mut part = |bit: u64, values: Vec<sea_orm::Value>| {
        key |= bit;
        let at = args.len();
        args.extend(values);
        at
    };
    let role = filter.role.map(|r| part(1, vec![r.as_str().into()]));
    let status = filter.status.map(|st| part(2, vec![st.as_str().into()]));
    let location = filter.location.map(|l| part(4, vec![l.0.into()]));
    let search = filter
        .search
        .as_deref()
        .map(|text| part(8, vec![escape_like(text).into()]));
    let after = page
        .after
        .as_ref()
        .map(|(k, id)| part(16, vec![k.as_str().into(), (*id).into()]));
    PAGE.statement(backend, key, args, |a| {
        let arg = |i: usize| a[i].clone();
        let mut q = membership::Entity::find().filter(membership::Column::TenantId.eq(arg(0)));
        if let Some(i) = role {
            q = q.filter(membership::Column::Role.eq(arg(i)));
        }
        if let Some(i) = status {
            q = q.filter(membership::Column::Status.eq(arg(i)));
        }
        if let Some(i) = location {
            q = q.filter(
                membership::Column::UserId.in_subquery(
                    Query::select()
                        .column(location_member::Column::UserId)
                        .from(location_member::Entity)
                        .and_where(location_member::Column::TenantId.eq(arg(0)))
                        .and_where(location_member::Column::LocationId.eq(arg(i)))
                        .to_owned(),
                ),
            );
        }
        if let Some(i) = search {
            let pattern = || arg(i).unwrap::<String>();
            q = q.filter(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(membership::Column::Name)))
                            .like(LikeExpr::new(pattern()).escape('\\')),
                    )
                    .add(
                        Expr::col(membership::Column::Email)
                            .like(LikeExpr::new(pattern()).escape('\\')),
                    ),
            );
        }
        if let Some(i) = after {
            q = q.filter(after_condition(
                membership::Column::Name,
                membership::Column::UserId,
                (arg(i), arg(i + 1)),
            ));
        }
        q.order_by_asc(membership::Column::Name)
            .order_by_asc(membership::Column::UserId)
            .limit(arg(1).unwrap::<u64>())
            .into_query()
    })
}

/// The locations each of `users` works at in `tenant`.
pub(crate) async fn locations_of(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    users: &[uuid::Uuid],
) -> Result<HashMap<uuid::Uuid, Vec<MemberLocation>>, TenancyError> {
    /// One location of a member's.
    #[derive(row::FromRow)]
    struct Held {
        user_id: uuid::Uuid,
        location_id: uuid::Uuid,
        role: String,
    }
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    // One shape per number of members asked about (a page holds at most 101).
    static LOCATIONS: Shapes = Shapes::new("members' locations");
    let mut args: Vec<sea_orm::Value> = Vec::with_capacity(users.len() + 1);
    args.push(tenant.0.into());
    args.extend(users.iter().map(|&u| sea_orm::Value::from(u)));
    let key = users.len() as u64;
    let stmt = LOCATIONS.statement(conn.get_database_backend(), key, args, |a| {
        location_member::Entity::find()
            .select_only()
            .columns([
                location_member::Column::UserId,
                location_member::Column::LocationId,
                location_member::Column::Role,
            ])
            .filter(location_member::Column::TenantId.eq(a[0].clone()))
            .filter(location_member::Column::UserId.is_in(a[1..].iter().cloned()))
            .order_by_asc(location_member::Column::CreatedAt)
            .into_query()
    })?;
    let mut by_user: HashMap<uuid::Uuid, Vec<MemberLocation>> = HashMap::new();
    for r in row::all_of::<Held>(conn, stmt).await? {
        by_user.entry(r.user_id).or_default().push(MemberLocation {
            location_id: LocationId(r.location_id),
            role: Role::parse(&r.role).unwrap_or(Role::Member),
        });
    }
    Ok(by_user)
}

/// A `LIKE` pattern matching text that contains `s`, its wildcards taken literally.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(escape_like("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
