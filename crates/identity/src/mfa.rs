//! Two-factor authentication with TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps).
//!
//! The shared secret (160 random bits) is sealed with the installation's encryption key and
//! bound to its account. A code is accepted for the current step or one step either side, and
//! only for a step later than the last one accepted, so no code works twice. Ten single-use
//! backup codes are shown once and stored as SHA-256 hashes.
//!
//! Signing in to an account with a confirmed factor takes two steps: the password answers a
//! short-lived, single-use challenge token (five attempts), and the code completes it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;
use tenantry_kernel::crypto::{constant_time_eq, new_token, random_bytes, token_hash};
use tenantry_kernel::db::begin_write;
use tenantry_kernel::{
    Actor, Attempt, AuditEntry, ClientMeta, LocationId, RequestContext, SessionId, TenantId, UserId,
};
use totp_rs::{Algorithm, TOTP};

use crate::entity::{mfa_backup_code, mfa_challenge, session, totp_factor, user};
use crate::{IdentityError, SeaIdentity, TokenPair};

/// How many backup codes an account gets.
pub const BACKUP_CODES: usize = 10;
/// How long a sign-in challenge lasts.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);
/// How many wrong codes a challenge takes before it dies.
pub const CHALLENGE_ATTEMPTS: i32 = 5;
const STEP_SECS: i64 = 30;
const SECRET_BYTES: usize = 20;

/// A factor just enrolled, before it is confirmed.
#[derive(Clone, Debug)]
pub struct TotpEnrollment {
    /// The secret, base32, for typing into an authenticator.
    pub secret: String,
    /// The `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

/// What second factors an account has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MfaStatus {
    /// When the TOTP factor was confirmed; `None` without one.
    pub totp_confirmed_at: Option<DateTime<Utc>>,
    /// Whether an enrollment awaits confirmation.
    pub totp_pending: bool,
    /// Unused backup codes left.
    pub backup_codes_remaining: u64,
}

/// What proves the account holder is present for a sensitive change.
#[derive(Clone, Debug)]
pub enum Proof {
    /// A current TOTP code.
    Code(String),
    /// The account's password.
    Password(String),
}

/// What completes a sign-in challenge.
#[derive(Clone, Debug)]
pub enum SecondFactor {
    /// A TOTP code.
    Code(String),
    /// An unused backup code.
    BackupCode(String),
}

/// The outcome of a password sign-in.
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    /// Signed in.
    Tokens(TokenPair),
    /// The account has a second factor: complete the sign-in with it and this token.
    MfaRequired {
        /// The challenge token for `POST /api/v1/auth/mfa/verify`.
        mfa_token: String,
        /// Seconds it stays valid.
        expires_in: i64,
    },
}

/// Second factors of the signed-in account.
#[async_trait::async_trait]
pub trait MfaService: Send + Sync {
    /// What second factors the caller's account has.
    async fn mfa_status(&self, ctx: &RequestContext) -> Result<MfaStatus, IdentityError>;

    /// Starts enrolling a TOTP factor (replacing an unconfirmed one).
    async fn enroll_totp(&self, ctx: &RequestContext) -> Result<TotpEnrollment, IdentityError>;

    /// Confirms the enrolled factor with a code and answers the backup codes, shown once.
    /// A session restricted to enrollment becomes a full one.
    async fn confirm_totp(
        &self,
        ctx: &RequestContext,
        code: &str,
    ) -> Result<Vec<String>, IdentityError>;

    /// Removes the factor and the backup codes.
    async fn disable_totp(&self, ctx: &RequestContext, proof: Proof) -> Result<(), IdentityError>;

    /// Replaces the backup codes; the old ones stop working.
    async fn regenerate_backup_codes(
        &self,
        ctx: &RequestContext,
        proof: Proof,
    ) -> Result<Vec<String>, IdentityError>;

    /// Completes a sign-in challenge with a code or a backup code.
    async fn verify_mfa(
        &self,
        mfa_token: &str,
        factor: SecondFactor,
        client: &ClientMeta,
    ) -> Result<TokenPair, IdentityError>;
}

/// The signed-in user behind `ctx` and its session; an API key is refused.
pub(crate) fn user_session(ctx: &RequestContext) -> Result<(UserId, SessionId), IdentityError> {
    ctx.user_session().ok_or(IdentityError::UserOnly)
}

/// Whether `user` has a confirmed second factor.
pub(crate) async fn has_second_factor(
    conn: &impl ConnectionTrait,
    user: UserId,
) -> Result<bool, IdentityError> {
    Ok(totp_factor::Entity::find_by_id(user.0)
        .filter(totp_factor::Column::ConfirmedAt.is_not_null())
        .one(conn)
        .await?
        .is_some())
}

fn seal_context(user: UserId) -> String {
    format!("totp:{user}")
}

fn totp_of(secret: Vec<u8>) -> Result<TOTP, IdentityError> {
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret)
        .map_err(|e| IdentityError::Unexpected(anyhow::anyhow!("totp: {e:?}")))
}

/// The step a code is valid for: the current one or one either side, later than
/// `last_used`. `None` when it matches none.
fn matching_step(totp: &TOTP, code: &str, now: i64, last_used: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.div_euclid(STEP_SECS);
    let mut found = None;
    // Every candidate is computed and compared, so timing does not reveal which one matched.
    for step in [current - 1, current, current + 1] {
        let at = u64::try_from(step * STEP_SECS).ok()?;
        if constant_time_eq(totp.generate(at).as_bytes(), code.as_bytes())
            && last_used.is_none_or(|last| step > last)
        {
            found = Some(step);
        }
    }
    found
}

/// A backup code as shown: `xxxxx-xxxxx` from an alphabet without look-alikes.
fn new_backup_code() -> Result<String, IdentityError> {
    const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes = random_bytes::<10>().map_err(|e| IdentityError::Unexpected(e.into()))?;
    let mut out = String::with_capacity(11);
    for (i, b) in bytes.iter().enumerate() {
        if i == 5 {
            out.push('-');
        }
        // A byte modulo 31 leans slightly to the first eight letters; ten of them still carry
        // about 49 bits, and a challenge allows five guesses.
        out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
    }
    Ok(out)
}

fn normalise_backup_code(raw: &str) -> String {
    raw.trim().to_lowercase().replace(' ', "")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl SeaIdentity {
    fn open_secret(&self, user: UserId, row: &totp_factor::Model) -> Result<TOTP, IdentityError> {
        let sealed = STANDARD
            .decode(&row.secret_sealed)
            .map_err(|e| IdentityError::Unexpected(e.into()))?;
        let secret = self
            .sealer
            .open(&sealed, &seal_context(user))
            .map_err(|e| IdentityError::Unexpected(e.into()))?;
        totp_of(secret)
    }

    /// Accepts `code` for `user`'s confirmed (or, when `pending` is allowed, unconfirmed)
    /// factor, recording its step so it cannot be used again.
    async fn accept_code(
        &self,
        conn: &impl ConnectionTrait,
        user: UserId,
        code: &str,
        pending: bool,
    ) -> Result<bool, IdentityError> {
        let Some(row) = totp_factor::Entity::find_by_id(user.0).one(conn).await? else {
            return Err(IdentityError::MfaNotEnabled);
        };
        if row.confirmed_at.is_none() && !pending {
            return Err(IdentityError::MfaNotEnabled);
        }
        let totp = self.open_secret(user, &row)?;
        let Some(step) = matching_step(&totp, code, Utc::now().timestamp(), row.last_used_step)
        else {
            return Ok(false);
        };
        // Conditional, so of two requests racing with one code only one wins.
        let won = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::LastUsedStep, Expr::value(step))
            .filter(totp_factor::Column::UserId.eq(user.0))
            .filter(
                sea_orm::Condition::any()
                    .add(totp_factor::Column::LastUsedStep.is_null())
                    .add(totp_factor::Column::LastUsedStep.lt(step)),
            )
            .exec(conn)
            .await?;
        Ok(won.rows_affected == 1)
    }

    /// Checks that the holder of `user`'s account is present, counting the attempt. Runs
    /// outside any transaction: a password check takes tens of milliseconds, too long to hold
    /// a write lock for.
    async fn check_proof(
        &self,
        user: UserId,
        proof: Proof,
        client: &ClientMeta,
    ) -> Result<(), IdentityError> {
        let account = user.to_string();
        let ok = match proof {
            Proof::Code(code) => {
                self.count(Attempt::Code, client, Some(&account)).await?;
                self.accept_code(&self.db, user, &code, false).await?
            }
            Proof::Password(password) => {
                crate::Password::check_given("password", &password)
                    .map_err(tenantry_kernel::ValidationErrors::from)?;
                self.count(Attempt::Password, client, Some(&account))
                    .await?;
                let checking = self.hasher.admit().await?;
                let stored = user::Entity::find_by_id(user.0)
                    .one(&self.db)
                    .await?
                    .ok_or(IdentityError::UserNotFound)?;
                checking.verify(&password, &stored.password_hash).await?
            }
        };
        if ok {
            Ok(())
        } else {
            Err(IdentityError::InvalidMfaProof)
        }
    }

    /// Replaces `user`'s backup codes inside `conn`, answering the new ones.
    async fn new_backup_codes(
        conn: &impl ConnectionTrait,
        user: UserId,
    ) -> Result<Vec<String>, IdentityError> {
        mfa_backup_code::Entity::delete_many()
            .filter(mfa_backup_code::Column::UserId.eq(user.0))
            .exec(conn)
            .await?;
        let now = Utc::now();
        let mut codes = Vec::with_capacity(BACKUP_CODES);
        let mut rows = Vec::with_capacity(BACKUP_CODES);
        for _ in 0..BACKUP_CODES {
            let code = new_backup_code()?;
            rows.push(mfa_backup_code::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                user_id: Set(user.0),
                code_hash: Set(token_hash(&code)),
                used_at: Set(None),
                created_at: Set(now),
            });
            codes.push(code);
        }
        mfa_backup_code::Entity::insert_many(rows)
            .exec(conn)
            .await?;
        Ok(codes)
    }

    fn mfa_entry(
        user: UserId,
        tenant: Option<TenantId>,
        action: &'static str,
        client: &ClientMeta,
    ) -> AuditEntry {
        AuditEntry::new(
            tenant,
            Actor::User(user),
            action,
            "user",
            Some(user.to_string()),
            client,
        )
    }

    /// Opens a sign-in challenge for `user`, answering its token.
    pub(crate) async fn open_challenge(
        &self,
        user: UserId,
        tenant: TenantId,
        location: Option<LocationId>,
    ) -> Result<(String, i64), IdentityError> {
        let (raw, hash) = new_token().map_err(|e| IdentityError::Unexpected(e.into()))?;
        let now = Utc::now();
        mfa_challenge::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            token_hash: Set(hash),
            user_id: Set(user.0),
            tenant_id: Set(tenant.0),
            location_id: Set(location.map(|l| l.0)),
            attempts: Set(0),
            expires_at: Set(now + CHALLENGE_TTL),
            used_at: Set(None),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok((raw, CHALLENGE_TTL.num_seconds()))
    }
}

#[async_trait::async_trait]
impl MfaService for SeaIdentity {
    async fn mfa_status(&self, ctx: &RequestContext) -> Result<MfaStatus, IdentityError> {
        let (user, _) = user_session(ctx)?;
        let factor = totp_factor::Entity::find_by_id(user.0)
            .one(&self.db)
            .await?;
        let remaining = mfa_backup_code::Entity::find()
            .filter(mfa_backup_code::Column::UserId.eq(user.0))
            .filter(mfa_backup_code::Column::UsedAt.is_null())
            .count(&self.db)
            .await?;
        Ok(MfaStatus {
            totp_confirmed_at: factor.as_ref().and_then(|f| f.confirmed_at),
            totp_pending: factor.is_some_and(|f| f.confirmed_at.is_none()),
            backup_codes_remaining: remaining,
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn enroll_totp(&self, ctx: &RequestContext) -> Result<TotpEnrollment, IdentityError> {
        let (user, _) = user_session(ctx)?;
        let txn = begin_write(&self.db).await?;
        let existing = totp_factor::Entity::find_by_id(user.0).one(&txn).await?;
        if existing.as_ref().is_some_and(|f| f.confirmed_at.is_some()) {
            return Err(IdentityError::MfaAlreadyEnabled);
        }
        let account = user::Entity::find_by_id(user.0)
            .one(&txn)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        let secret = random_bytes::<SECRET_BYTES>()
            .map_err(|e| IdentityError::Unexpected(e.into()))?
            .to_vec();
        let sealed = self
            .sealer
            .seal(&secret, &seal_context(user))
            .map_err(|e| IdentityError::Unexpected(e.into()))?;
        let totp = totp_of(secret)?;
        let now = Utc::now();
        let row = totp_factor::ActiveModel {
            user_id: Set(user.0),
            secret_sealed: Set(STANDARD.encode(sealed)),
            confirmed_at: Set(None),
            last_used_step: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        if existing.is_some() {
            row.update(&txn).await?;
        } else {
            row.insert(&txn).await?;
        }
        self.audit
            .record(
                &txn,
                Self::mfa_entry(user, Some(ctx.tenant_id), "mfa.totp_enrolled", &ctx.client),
            )
            .await?;
        txn.commit().await?;
        let secret = totp.get_secret_base32();
        let issuer = percent_encode(&self.settings.mfa_issuer);
        let label = format!("{issuer}:{}", percent_encode(&account.email));
        Ok(TotpEnrollment {
            otpauth_uri: format!(
                "otpauth://totp/{label}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period=30"
            ),
            secret,
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn confirm_totp(
        &self,
        ctx: &RequestContext,
        code: &str,
    ) -> Result<Vec<String>, IdentityError> {
        let (user, session_id) = user_session(ctx)?;
        self.count(Attempt::Code, &ctx.client, Some(&user.to_string()))
            .await?;
        let txn = begin_write(&self.db).await?;
        let factor = totp_factor::Entity::find_by_id(user.0)
            .one(&txn)
            .await?
            .ok_or(IdentityError::MfaNotEnabled)?;
        if factor.confirmed_at.is_some() {
            return Err(IdentityError::MfaAlreadyEnabled);
        }
        if !self.accept_code(&txn, user, code, true).await? {
            return Err(IdentityError::InvalidMfaProof);
        }
        let now = Utc::now();
        totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::ConfirmedAt, Expr::value(now))
            .col_expr(totp_factor::Column::UpdatedAt, Expr::value(now))
            .filter(totp_factor::Column::UserId.eq(user.0))
            .exec(&txn)
            .await?;
        let codes = Self::new_backup_codes(&txn, user).await?;
        // The session that proved the factor may now do everything its member may.
        session::Entity::update_many()
            .col_expr(session::Column::Restricted, Expr::value(false))
            .filter(session::Column::Id.eq(session_id.0))
            .exec(&txn)
            .await?;
        self.audit
            .record(
                &txn,
                Self::mfa_entry(user, Some(ctx.tenant_id), "mfa.totp_confirmed", &ctx.client)
                    .with_change(None, Some(json!({"backup_codes": BACKUP_CODES}))),
            )
            .await?;
        txn.commit().await?;
        Ok(codes)
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn disable_totp(&self, ctx: &RequestContext, proof: Proof) -> Result<(), IdentityError> {
        let (user, _) = user_session(ctx)?;
        if !has_second_factor(&self.db, user).await? {
            return Err(IdentityError::MfaNotEnabled);
        }
        self.check_proof(user, proof, &ctx.client).await?;
        let txn = begin_write(&self.db).await?;
        totp_factor::Entity::delete_by_id(user.0).exec(&txn).await?;
        mfa_backup_code::Entity::delete_many()
            .filter(mfa_backup_code::Column::UserId.eq(user.0))
            .exec(&txn)
            .await?;
        self.audit
            .record(
                &txn,
                Self::mfa_entry(user, Some(ctx.tenant_id), "mfa.totp_disabled", &ctx.client),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn regenerate_backup_codes(
        &self,
        ctx: &RequestContext,
        proof: Proof,
    ) -> Result<Vec<String>, IdentityError> {
        let (user, _) = user_session(ctx)?;
        if !has_second_factor(&self.db, user).await? {
            return Err(IdentityError::MfaNotEnabled);
        }
        self.check_proof(user, proof, &ctx.client).await?;
        let txn = begin_write(&self.db).await?;
        let codes = Self::new_backup_codes(&txn, user).await?;
        self.audit
            .record(
                &txn,
                Self::mfa_entry(
                    user,
                    Some(ctx.tenant_id),
                    "mfa.backup_codes_regenerated",
                    &ctx.client,
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(codes)
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn verify_mfa(
        &self,
        mfa_token: &str,
        factor: SecondFactor,
        client: &ClientMeta,
    ) -> Result<TokenPair, IdentityError> {
        self.attempts.by_address(Attempt::Code, client).await?;
        let now = Utc::now();
        let challenge = mfa_challenge::Entity::find()
            .filter(mfa_challenge::Column::TokenHash.eq(token_hash(mfa_token)))
            .one(&self.db)
            .await?
            .filter(|c| {
                c.used_at.is_none() && c.expires_at > now && c.attempts < CHALLENGE_ATTEMPTS
            })
            .ok_or(IdentityError::InvalidMfaToken)?;
        let user = UserId(challenge.user_id);
        // Counted on the account, not the challenge: signing in again opens a new challenge,
        // but not a new allowance.
        self.attempts
            .on_account(Attempt::Code, &user.to_string())
            .await?;
        let tenant = TenantId(challenge.tenant_id);
        let policy = self.tenancy.settings_of(tenant).await?;
        let txn = begin_write(&self.db).await?;
        let (ok, method) = match &factor {
            SecondFactor::Code(code) => (self.accept_code(&txn, user, code, false).await?, "totp"),
            SecondFactor::BackupCode(code) => {
                let used = mfa_backup_code::Entity::update_many()
                    .col_expr(mfa_backup_code::Column::UsedAt, Expr::value(now))
                    .filter(mfa_backup_code::Column::UserId.eq(user.0))
                    .filter(
                        mfa_backup_code::Column::CodeHash
                            .eq(token_hash(&normalise_backup_code(code))),
                    )
                    .filter(mfa_backup_code::Column::UsedAt.is_null())
                    .exec(&txn)
                    .await?;
                (used.rows_affected == 1, "backup_code")
            }
        };
        if !ok {
            drop(txn);
            // Counted in its own write, so the attempt sticks although this request fails.
            let txn = begin_write(&self.db).await?;
            mfa_challenge::Entity::update_many()
                .col_expr(
                    mfa_challenge::Column::Attempts,
                    Expr::col(mfa_challenge::Column::Attempts).add(1),
                )
                .filter(mfa_challenge::Column::Id.eq(challenge.id))
                .exec(&txn)
                .await?;
            self.audit
                .record(
                    &txn,
                    Self::mfa_entry(user, Some(tenant), "mfa.verify_failed", client)
                        .with_change(None, Some(json!({"method": method}))),
                )
                .await?;
            txn.commit().await?;
            return Err(IdentityError::MfaCodeRejected);
        }
        // Single use: of two requests with one challenge only one signs in.
        let claimed = mfa_challenge::Entity::update_many()
            .col_expr(mfa_challenge::Column::UsedAt, Expr::value(now))
            .filter(mfa_challenge::Column::Id.eq(challenge.id))
            .filter(mfa_challenge::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(IdentityError::InvalidMfaToken);
        }
        self.audit
            .record(
                &txn,
                Self::mfa_entry(user, Some(tenant), "mfa.verified", client)
                    .with_change(None, Some(json!({"method": method}))),
            )
            .await?;
        let location = challenge.location_id.map(LocationId);
        let (session_id, refresh) = self
            .open_signed_in_session(
                &txn,
                (user, tenant, location),
                (&policy, true),
                (client, serde_json::Value::Null),
            )
            .await?;
        txn.commit().await?;
        self.token_pair(user, tenant, (session_id, location), refresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 seed and times, truncated to six digits.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let totp = totp_of(b"12345678901234567890".to_vec()).unwrap();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp.generate(time), code, "at {time}");
        }
    }

    #[test]
    fn a_code_counts_one_step_either_side_and_never_twice() {
        let totp = totp_of(b"12345678901234567890".to_vec()).unwrap();
        let now = 1_111_111_111; // step 37037037
        let step = now / STEP_SECS;
        let code = totp.generate(u64::try_from(now).unwrap());
        assert_eq!(matching_step(&totp, &code, now, None), Some(step));
        assert_eq!(matching_step(&totp, &code, now + 30, None), Some(step));
        assert_eq!(matching_step(&totp, &code, now - 30, None), Some(step));
        assert_eq!(matching_step(&totp, &code, now + 90, None), None);
        assert_eq!(matching_step(&totp, &code, now, Some(step)), None);
        assert_eq!(matching_step(&totp, "12345", now, None), None);
        assert_eq!(matching_step(&totp, "abcdef", now, None), None);
    }

    #[test]
    fn backup_codes_read_well_and_normalise() {
        let code = new_backup_code().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert!(!code.contains(['0', 'o', '1', 'l', 'i']));
        assert_eq!(normalise_backup_code(" ABCDE-FGHJK "), "abcde-fghjk");
    }
}
