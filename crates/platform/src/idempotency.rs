//! Idempotency keys: the record behind `Idempotency-Key` on the POSTs that create or charge.
//!
//! A request with a key first *claims* it: one insert, which the primary key settles between
//! racing requests. The winner runs and then *completes* the key with its response (or
//! *releases* it, when the response says nothing about the request — a 5xx or a 429 — so a
//! retry runs afresh). Every other request with the key, from the same principal in the same
//! tenant, gets the stored response; one with a different method, path or body gets
//! [`Claim::Reused`]. A key lives 24 hours; a claim whose request died is taken over once its
//! lease has passed.
//!
//! A stored body is sealed (AES-256-GCM under `encryption_key`, bound to its key's scope): an
//! answer may carry a secret shown once — a new API key — and is never kept readable at rest.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{Condition, Set};
use tenantry_kernel::db::{Db, UniqueKey, violates};
use tenantry_kernel::{Principal, RequestContext, Sealer, TenantId};

/// How long a key and its response are kept.
pub const RETENTION: Duration = Duration::hours(24);
/// How long a running request holds its key before another may assume it died.
pub const LEASE: Duration = Duration::minutes(1);
/// The longest key accepted.
pub const MAX_KEY_LENGTH: usize = 255;

const KEY: UniqueKey = UniqueKey {
    name: "idempotency_keys_pkey",
    table: "idempotency_keys",
    columns: &["tenant_id", "principal", "key"],
};

/// The `idempotency_keys` table.
pub mod entity {
    #![expect(missing_docs, reason = "generated entity shape")]
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub principal: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub fingerprint: String,
        pub status_code: Option<i32>,
        pub response_headers: Option<String>,
        pub response_body: Option<String>,
        pub locked_until: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One caller's key: the tenant, the principal and the key it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyScope {
    /// The tenant the request acts in.
    pub tenant: TenantId,
    /// `user:<id>` or `api_key:<id>`.
    pub principal: String,
    /// The `Idempotency-Key` value.
    pub key: String,
}

impl KeyScope {
    /// The scope of `key` sent by the caller of `ctx`.
    #[must_use]
    pub fn of(ctx: &RequestContext, key: &str) -> Self {
        let principal = match &ctx.principal {
            Principal::User { user_id, .. } => format!("user:{}", user_id.0),
            Principal::ApiKey { key_id } => format!("api_key:{}", key_id.0),
            Principal::System { job } => format!("system:{job}"),
        };
        Self {
            tenant: ctx.tenant_id,
            principal,
            key: key.to_owned(),
        }
    }

    /// What a sealed body is bound to: one scope's body never opens as another's.
    fn seal_context(&self) -> String {
        format!(
            "idempotency:{}:{}:{}",
            self.tenant.0, self.principal, self.key
        )
    }

    fn matches(&self) -> Condition {
        Condition::all()
            .add(entity::Column::TenantId.eq(self.tenant.0))
            .add(entity::Column::Principal.eq(self.principal.as_str()))
            .add(entity::Column::Key.eq(self.key.as_str()))
    }
}

/// Whether `key` is acceptable as an idempotency key: 1 to 255 visible ASCII characters.
#[must_use]
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LENGTH && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// Its status code.
    pub status: u16,
    /// The headers a replay repeats (content type, location, entity tag), by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// Its body.
    pub body: String,
}

/// What claiming a key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it, then complete or release the key.
    Acquired,
    /// The first request with the key finished; this is its response.
    Replay(StoredResponse),
    /// The key was used for a different request (method, path or body).
    Reused,
    /// The first request with the key is still running.
    InProgress,
}

/// Claims `scope` for a request with `fingerprint` at `now`.
pub async fn claim(
    db: &Db,
    sealer: &Sealer,
    scope: &KeyScope,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<Claim, DbErr> {
    let row = entity::ActiveModel {
        tenant_id: Set(scope.tenant.0),
        principal: Set(scope.principal.clone()),
        key: Set(scope.key.clone()),
        fingerprint: Set(fingerprint.to_owned()),
        status_code: Set(None),
        response_headers: Set(None),
        response_body: Set(None),
        locked_until: Set(Some(now + LEASE)),
        created_at: Set(now),
        expires_at: Set(now + RETENTION),
    };
    match entity::Entity::insert(row).exec_without_returning(db).await {
        Ok(_) => return Ok(Claim::Acquired),
        Err(e) if violates(&e, &KEY) => {}
        Err(e) => return Err(e),
    }
    // Taken. An expired key, or a claim whose request died, is taken over (one request wins
    // the update); otherwise the holder's record answers.
    let taken_over = entity::Entity::update_many()
        .col_expr(entity::Column::Fingerprint, Expr::value(fingerprint))
        .col_expr(entity::Column::StatusCode, Expr::value(Option::<i32>::None))
        .col_expr(
            entity::Column::ResponseHeaders,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            entity::Column::ResponseBody,
            Expr::value(Option::<String>::None),
        )
        .col_expr(entity::Column::LockedUntil, Expr::value(Some(now + LEASE)))
        .col_expr(entity::Column::CreatedAt, Expr::value(now))
        .col_expr(entity::Column::ExpiresAt, Expr::value(now + RETENTION))
        .filter(scope.matches())
        .filter(
            Condition::any()
                .add(entity::Column::ExpiresAt.lte(now))
                .add(
                    Condition::all()
                        .add(entity::Column::StatusCode.is_null())
                        .add(entity::Column::LockedUntil.lte(now)),
                ),
        )
        .exec(db)
        .await?
        .rows_affected;
    if taken_over == 1 {
        return Ok(Claim::Acquired);
    }
    let Some(held) = entity::Entity::find()
        .filter(scope.matches())
        .one(db)
        .await?
    else {
        // Released between the insert and the read: the next attempt inserts.
        return Ok(Claim::InProgress);
    };
    if held.fingerprint != fingerprint {
        return Ok(Claim::Reused);
    }
    Ok(match (held.status_code, held.response_body) {
        (Some(status), Some(sealed)) => Claim::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            headers: held
                .response_headers
                .and_then(|h| serde_json::from_str(&h).ok())
                .unwrap_or_default(),
            body: open(sealer, scope, &sealed)?,
        }),
        _ => Claim::InProgress,
    })
}

/// Stores the response of the request that holds `scope`, its body sealed.
pub async fn complete(
    db: &Db,
    sealer: &Sealer,
    scope: &KeyScope,
    response: &StoredResponse,
) -> Result<(), DbErr> {
    let headers =
        serde_json::to_string(&response.headers).map_err(|e| DbErr::Json(e.to_string()))?;
    let sealed = sealer
        .seal(response.body.as_bytes(), &scope.seal_context())
        .map_err(|e| DbErr::Custom(format!("sealing a kept response: {e}")))?;
    let sealed = STANDARD.encode(sealed);
    entity::Entity::update_many()
        .col_expr(
            entity::Column::StatusCode,
            Expr::value(i32::from(response.status)),
        )
        .col_expr(entity::Column::ResponseHeaders, Expr::value(headers))
        .col_expr(entity::Column::ResponseBody, Expr::value(sealed))
        .col_expr(
            entity::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(scope.matches())
        .filter(entity::Column::StatusCode.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Opens a kept body; one that does not open (the encryption key changed) is an error, not
/// a replay of something else.
fn open(sealer: &Sealer, scope: &KeyScope, sealed: &str) -> Result<String, DbErr> {
    let unreadable =
        |e: &dyn std::fmt::Display| DbErr::Custom(format!("a kept response does not open: {e}"));
    let bytes = STANDARD.decode(sealed).map_err(|e| unreadable(&e))?;
    let plain = sealer
        .open(&bytes, &scope.seal_context())
        .map_err(|e| unreadable(&e))?;
    String::from_utf8(plain).map_err(|e| unreadable(&e))
}

/// Gives up the claim on `scope` without a response, so the next request with it runs.
pub async fn release(db: &Db, scope: &KeyScope) -> Result<(), DbErr> {
    entity::Entity::delete_many()
        .filter(scope.matches())
        .filter(entity::Column::StatusCode.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes the keys expired at `now`; answers how many.
pub async fn purge(db: &Db, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(entity::Entity::delete_many()
        .filter(entity::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}
