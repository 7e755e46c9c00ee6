//! Sessions and refresh-token families.
//!
//! A session is one login. Each refresh rotates its token: the presented token is marked
//! rotated and a new one issued in the same session. Presenting a rotated token again means it
//! was copied — the whole session (every token descended from that login) is revoked.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use tenantry_kernel::crypto::new_token;
use tenantry_kernel::db::Txn;
use tenantry_kernel::{
    Actor, AuditEntry, AuditSink, ClientMeta, LocationId, SessionId, SessionPort, TenantId, UserId,
};

use tenantry_tenancy::TenantSettings;

use crate::IdentityError;
use crate::entity::{refresh_token, session};

/// Where and for how long a new session acts.
pub(crate) struct Scope {
    /// The location its tokens name.
    pub location: Option<LocationId>,
    /// How long it lasts.
    pub lifetime: Duration,
    /// The network its refresh tokens are bound to, if the tenant binds them.
    pub network: Option<String>,
    /// Whether it may only enroll a second factor: the tenant requires one the member lacks.
    pub restricted: bool,
}

impl Scope {
    /// A session in `tenant_settings`' tenant, for `client`, acting in `location`, of a member
    /// who has a second factor or not.
    pub(crate) fn new(
        tenant_settings: &TenantSettings,
        client: &ClientMeta,
        location: Option<LocationId>,
        has_second_factor: bool,
    ) -> Self {
        Self {
            location,
            lifetime: tenant_settings.session_lifetime(),
            network: if tenant_settings.security.bind_refresh_tokens_to_network {
                network_of(client.ip.as_deref())
            } else {
                None
            },
            restricted: tenant_settings.security.require_mfa && !has_second_factor,
        }
    }
}

/// The network an address belongs to, as refresh-token binding compares them: the /24 of an
/// IPv4 address, the /64 of an IPv6 one (an IPv4-mapped IPv6 address counts as IPv4).
#[must_use]
pub fn network_of(ip: Option<&str>) -> Option<String> {
    let ip: std::net::IpAddr = ip?.parse().ok()?;
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    Some(match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    })
}

/// Opens a session and returns it with its first raw refresh token.
pub(crate) async fn open<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    user: UserId,
    scope: Scope,
    client: &ClientMeta,
) -> Result<(SessionId, String), IdentityError> {
    let Scope {
        location,
        lifetime,
        network,
        restricted,
    } = scope;
    let now = Utc::now();
    let id = SessionId::new();
    let expires_at = now + lifetime;
    session::ActiveModel {
        id: Set(id.0),
        tenant_id: Set(tenant.0),
        user_id: Set(user.0),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        ip: Set(client.ip.clone()),
        user_agent: Set(client.user_agent.clone()),
        location_id: Set(location.map(|l| l.0)),
        network: Set(network),
        restricted: Set(restricted),
    }
    .insert(conn)
    .await?;
    let raw = issue_refresh_token(conn, tenant, id, expires_at).await?;
    Ok((id, raw))
}

/// Stores a new refresh token for `session` and returns its raw form.
pub(crate) async fn issue_refresh_token<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    session: SessionId,
    expires_at: DateTime<Utc>,
) -> Result<String, IdentityError> {
    let (raw, hash) = new_token()?;
    refresh_token::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        session_id: Set(session.0),
        token_hash: Set(hash),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        rotated_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(raw)
}

/// Revokes a session if it is still live; answers whether this call revoked it.
pub(crate) async fn revoke<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    session: SessionId,
    reason: &str,
) -> Result<bool, IdentityError> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::Id.eq(session.0))
        .filter(session::Column::TenantId.eq(tenant.0))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Revokes a live session and records who ended it and why, in `txn`; answers whether this
/// call revoked it (false: it had already ended).
pub(crate) async fn revoke_audited(
    txn: &Txn,
    audit: &dyn AuditSink,
    tenant: TenantId,
    session: SessionId,
    by: (Actor, &ClientMeta),
    reason: &str,
) -> Result<bool, IdentityError> {
    if !revoke(txn, tenant, session, reason).await? {
        return Ok(false);
    }
    let (actor, client) = by;
    audit
        .record(
            txn,
            AuditEntry::new(
                Some(tenant),
                actor,
                "session.revoked",
                "session",
                Some(session.to_string()),
                client,
            )
            .with_change(None, Some(json!({"reason": reason}))),
        )
        .await?;
    Ok(true)
}

/// Revokes every live session of `user`, in every tenant, except `keep`; answers how many.
pub(crate) async fn revoke_all_of_user<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    keep: Option<SessionId>,
    reason: &str,
) -> Result<u64, IdentityError> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::UserId.eq(user.0))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep.0));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

/// Ends members' sessions for tenancy, through the kernel's [`SessionPort`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MemberSessions;

#[async_trait::async_trait]
impl SessionPort for MemberSessions {
    async fn end_member_sessions(
        &self,
        txn: &Txn,
        tenant: TenantId,
        user: UserId,
        reason: &str,
    ) -> Result<u64, sea_orm::DbErr> {
        let result = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
            .col_expr(session::Column::RevokedReason, Expr::value(reason))
            .filter(session::Column::TenantId.eq(tenant.0))
            .filter(session::Column::UserId.eq(user.0))
            .filter(session::Column::RevokedAt.is_null())
            .exec(txn)
            .await?;
        Ok(result.rows_affected)
    }
}

/// Marks a refresh token rotated, unless someone else already did; answers whether we won.
pub(crate) async fn mark_rotated<C: ConnectionTrait>(
    conn: &C,
    token_id: uuid::Uuid,
) -> Result<bool, IdentityError> {
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::Id.eq(token_id))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Whether a session may still be used at `now`.
pub(crate) fn is_live(s: &session::Model, now: DateTime<Utc>) -> bool {
    is_live_with(s.revoked_at, s.expires_at, now)
}

/// Whether a session revoked at `revoked_at` (if ever) and expiring at `expires_at` may still
/// be used at `now`: for a session read as columns of a wider query.
pub(crate) fn is_live_with(
    revoked_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    revoked_at.is_none() && expires_at > now
}

#[cfg(test)]
mod tests {
    use super::network_of;

    #[test]
    fn networks_are_the_v4_slash_24_and_the_v6_slash_64() {
        assert_eq!(
            network_of(Some("203.0.113.77")).as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network_of(Some("::ffff:203.0.113.9")).as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network_of(Some("2001:db8:1:2:aaaa::1")).as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(network_of(Some("not an address")), None);
        assert_eq!(network_of(None), None);
    }
}
