//! The credential limit, as a port: every check of a secret — a password, a one-time or
//! backup code, a single-use token mailed to its owner — and every request that mails one is
//! counted where the check happens, per client address and per account, whatever endpoint
//! or command it sits behind. A new endpoint that checks a password is limited because the
//! check is.
//!
//! Refresh tokens, access tokens and API keys are not counted: they carry 256 bits, so
//! guessing is not an attack, and counting them would lock out every client behind one
//! address.

use crate::ClientMeta;

/// What an attempt tries or asks for; each has its own allowance per address and per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// A password checked: sign-in, a password change, a password given as proof.
    Password,
    /// A one-time or backup code checked: second-factor sign-in, enrollment, proof.
    Code,
    /// A single-use token mailed to its owner: email verification, password reset,
    /// invitation.
    Token,
    /// A sign-up.
    SignUp,
    /// A request for a password-reset email.
    ResetRequest,
}

impl Attempt {
    /// The stable name buckets are kept under.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Code => "code",
            Self::Token => "token",
            Self::SignUp => "signup",
            Self::ResetRequest => "reset_request",
        }
    }
}

/// An attempt over its allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at most {limit} attempts a minute; retry in {retry_after_secs} s")]
pub struct Throttled {
    /// Attempts allowed a minute.
    pub limit: u32,
    /// Seconds until the next attempt is allowed.
    pub retry_after_secs: u64,
    /// Seconds until the allowance is whole again.
    pub reset_secs: u64,
}

/// Counts attempts and refuses those over the allowance.
#[async_trait::async_trait]
pub trait AttemptLimiter: Send + Sync {
    /// Counts one attempt from the client's address (before anything else is looked up).
    async fn by_address(&self, attempt: Attempt, client: &ClientMeta) -> Result<(), Throttled>;

    /// Counts one attempt on `account` — an address, an id, however the caller names the
    /// account; compared ignoring case.
    async fn on_account(&self, attempt: Attempt, account: &str) -> Result<(), Throttled>;
}
