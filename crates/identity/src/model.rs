//! Identity's domain types. Request inputs are parsed into these at the edge; past it, an
//! [`Email`] is always a plausible, normalised address and a [`Password`] always within bounds.

use chrono::{DateTime, Utc};
use tenantry_kernel::{
    FieldError, LocationId, PermissionSet, Role, SessionId, TenantId, UserId, ValidationErrors,
    text,
};
use tenantry_tenancy::{Tenant, TenantName};

/// A character of an address's local part: RFC 5322 `atext` in ASCII (letters, digits and
/// ``!#$%&'*+-/=?^_`{|}~``).
macro_rules! atext {
    () => {
        "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
    };
}

/// What [`Email::parse`] takes, as an ECMA-262 pattern (with `maxLength` 254 and
/// [`EMAIL_LOCAL_PART_PATTERN`]): whitespace around, then a dot-atom of ASCII `atext` (no
/// leading, trailing or doubled dot), an `@`, and two or more dot-separated domain labels.
pub const EMAIL_PATTERN: &str = concat!(
    "^",
    tenantry_kernel::space_class!(),
    "*",
    atext!(),
    "+(?:\\.",
    atext!(),
    "+)*@",
    tenantry_kernel::host_name_pattern!(),
    tenantry_kernel::space_class!(),
    "*$",
);

/// The second half of the address rule, which one pattern cannot say together with the
/// first: at most 64 characters before the `@`.
pub const EMAIL_LOCAL_PART_PATTERN: &str =
    concat!("^", tenantry_kernel::space_class!(), "*[^@]{1,64}@");

/// An email address, trimmed and lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The most characters an address may have, as sent.
    pub const MAX: usize = 254;
    /// The most characters before the `@` (RFC 5321).
    pub const MAX_LOCAL: usize = 64;

    /// Parses `raw` as the `field` of a request.
    ///
    /// The rule is what every mail relay delivers to: a dot-atom of ASCII `atext` of at most
    /// 64 characters, an `@`, and a host name of two or more labels (letters, digits, inner
    /// hyphens, at most 63 characters each), at most 254 characters as sent. An
    /// internationalised domain is given in its ASCII form (`xn--…`); local parts outside
    /// ASCII (which need SMTPUTF8 of every relay on the way) and quoted local parts are
    /// refused. Whether the address receives mail is what verification proves.
    /// [`EMAIL_PATTERN`] and [`EMAIL_LOCAL_PART_PATTERN`] say the same to clients.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(field, "invalid_email", "not an email address");
        if raw.chars().count() > Self::MAX {
            return Err(FieldError::new(field, "too_long", "at most 254 characters"));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "required", "must not be empty"));
        }
        let (local, domain) = trimmed.split_once('@').ok_or_else(invalid)?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let local_ok = local.len() <= Self::MAX_LOCAL
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(atext));
        if local_ok && text::is_host_name(domain) {
            Ok(Self(trimmed.to_lowercase()))
        } else {
            Err(invalid())
        }
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 8 to 128 characters (NIST SP 800-63B: length, no composition rules).
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(**redacted**)")
    }
}

impl Password {
    /// Minimum length in characters.
    pub const MIN: usize = 8;
    /// Maximum length in characters; bounds the hashing work one request can ask for.
    pub const MAX: usize = 128;

    /// Parses a new password (sign-up, reset).
    pub fn parse(field: &str, raw: String) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if len < Self::MIN {
            return Err(FieldError::new(field, "too_short", "at least 8 characters"));
        }
        if len > Self::MAX {
            return Err(FieldError::new(field, "too_long", "at most 128 characters"));
        }
        Ok(Self(raw))
    }

    /// Checks a password given to be compared with the stored one (at sign-in, as the
    /// current password, as proof): present, and no longer than any password can be, which
    /// bounds the hashing work one request can ask for. Old passwords may be shorter than
    /// today's minimum.
    pub fn check_given(field: &str, raw: &str) -> Result<(), FieldError> {
        if raw.is_empty() {
            Err(FieldError::new(field, "required", "must not be empty"))
        } else if raw.chars().count() > Self::MAX {
            Err(FieldError::new(field, "too_long", "at most 128 characters"))
        } else {
            Ok(())
        }
    }

    /// The secret itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A person's display name: [`text::PERSON_OR_ORG_NAME`], since others see it in emails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Parses the `field` of a request.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        text::PERSON_OR_ORG_NAME.required(field, raw).map(Self)
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parsed sign-up.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The new user's address.
    pub email: Email,
    /// Their password.
    pub password: Password,
    /// Their display name.
    pub name: PersonName,
    /// The tenant they create.
    pub tenant_name: TenantName,
}

impl Registration {
    /// Parses every field, reporting all invalid ones at once.
    pub fn parse(
        email: &str,
        password: String,
        name: &str,
        tenant_name: &str,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let email = errors.check(Email::parse("email", email));
        let password = errors.check(Password::parse("password", password));
        let name = errors.check(PersonName::parse("name", name));
        let tenant_name = errors.check(TenantName::parse("tenant_name", tenant_name));
        match (email, password, name, tenant_name) {
            (Some(email), Some(password), Some(name), Some(tenant_name)) => Ok(Self {
                email,
                password,
                name,
                tenant_name,
            }),
            _ => Err(errors),
        }
    }
}

/// A parsed login attempt.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The address given.
    pub email: Email,
    /// The password given (not length-checked beyond the maximum: old passwords may be
    /// shorter than today's rule).
    pub password: String,
    /// The tenant to sign in to, for users with several.
    pub tenant_id: Option<TenantId>,
    /// The location to act in, if any.
    pub location_id: Option<LocationId>,
}

impl Credentials {
    /// Parses a login request.
    pub fn parse(
        email: &str,
        password: String,
        tenant_id: Option<TenantId>,
        location_id: Option<LocationId>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let email = errors.check(Email::parse("email", email));
        errors.check(Password::check_given("password", &password));
        errors.into_result()?;
        let email = email.ok_or_else(ValidationErrors::default)?;
        Ok(Self {
            email,
            password,
            tenant_id,
            location_id,
        })
    }
}

/// What a successful login, registration or refresh hands the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    /// The short-lived JWT.
    pub access_token: String,
    /// The opaque, single-use refresh token.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// The outcome of a registration.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The new user.
    pub user_id: UserId,
    /// The tenant they created and own.
    pub tenant: Tenant,
    /// Their first session's tokens.
    pub tokens: TokenPair,
}

/// A user as they see themselves.
#[derive(Clone, Debug)]
pub struct Me {
    /// Their id.
    pub id: UserId,
    /// Their address.
    pub email: String,
    /// Their display name.
    pub name: String,
    /// When they proved the address, if they have.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// The tenant this session acts in.
    pub current_tenant: Tenant,
    /// Their role there.
    pub role: Role,
    /// The permissions that role grants.
    pub permissions: PermissionSet,
    /// Every tenant they belong to.
    pub memberships: Vec<tenantry_tenancy::Membership>,
}

/// One of a user's live sessions (a signed-in device), as they see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// When the user signed in.
    pub created_at: DateTime<Utc>,
    /// When a token of this session was last refreshed.
    pub last_used_at: DateTime<Utc>,
    /// When the session ends unless revoked first.
    pub expires_at: DateTime<Utc>,
    /// The client address at sign-in.
    pub ip: Option<String>,
    /// The client's `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// An email carrying a single-use token (verification, password reset): the raw token exists
/// only here and in the email.
#[derive(Clone)]
pub struct TokenMail {
    /// The recipient.
    pub email: String,
    /// Their display name.
    pub name: String,
    /// The single-use token to put in the link.
    pub token: String,
}

impl std::fmt::Debug for TokenMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMail")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A verified address.
#[derive(Clone, Debug)]
pub struct VerifiedEmail {
    /// The user.
    pub user_id: UserId,
    /// The address proved.
    pub email: String,
    /// When.
    pub verified_at: DateTime<Utc>,
}

/// How many rows the cleanup removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Expired or long-revoked sessions (their refresh tokens go with them).
    pub sessions: u64,
    /// Expired or used verification tokens.
    pub verification_tokens: u64,
    /// Expired or used password-reset tokens.
    pub password_reset_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published patterns take exactly the addresses the parser takes (the parser's edge
    /// has refused control characters other than tab and line breaks before).
    #[test]
    fn the_email_pattern_agrees_with_the_parser() {
        let pattern = regex::Regex::new(EMAIL_PATTERN).unwrap();
        let local_part = regex::Regex::new(EMAIL_LOCAL_PART_PATTERN).unwrap();
        let local_64 = format!("{}@example.com", "a".repeat(64));
        let local_65 = format!("{}@example.com", "a".repeat(65));
        let dotted_65 = format!("{}.{}@example.com", "a".repeat(32), "b".repeat(32));
        let spaced_64 = format!("   {}@example.com", "a".repeat(64));
        let label_63 = format!("ada@{}.com", "b".repeat(63));
        let label_64 = format!("ada@{}.com", "b".repeat(64));
        let long = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(60),
            "b".repeat(60),
            "c".repeat(60),
            "d".repeat(60)
        );
        for raw in [
            "ada@example.com",
            " Ada@Example.COM\n",
            "\u{a0}ada@example.com",
            "ada.lovelace+tenantry@example.com",
            "o'brien@example.ie",
            "!#$%&'*+/=?^_`{|}~-@example.com",
            "ada@mail-1.example.com",
            "ada@xn--bcher-kva.example",
            "ada@example",
            "ada@@example.com",
            "@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "\"ada\"@example.com",
            "ada@.example.com",
            "ada@example.com.",
            "ada@exa..mple.com",
            "ada@-example.com",
            "ada@example-.com",
            "ada@exa_mple.com",
            "ada@[127.0.0.1]",
            "a da@example.com",
            "a(da)@example.com",
            "ada@exa\u{3000}mple.com",
            "ünï@example.ch",
            "ada@cödé.ch",
            "xz%~@\u{7b02e}\u{115}\u{f9}?.\u{aa}x.hm",
            "ada@exa?mple.com",
            "ada@exa:mple.com",
            "",
            " ",
            local_64.as_str(),
            local_65.as_str(),
            dotted_65.as_str(),
            spaced_64.as_str(),
            label_63.as_str(),
            label_64.as_str(),
            long.as_str(),
            "x@y.z",
            "a@b.c.d",
            "a@1.2",
            "\u{feff}a@b.cd",
        ] {
            let took = Email::parse("email", raw).is_ok();
            let matches = pattern.is_match(raw)
                && local_part.is_match(raw)
                && raw.chars().count() <= Email::MAX;
            assert_eq!(took, matches, "{raw:?}");
        }
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("email", "  Ada@Example.COM ")
                .unwrap()
                .as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn implausible_emails_are_refused() {
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "ada@example..com",
        ] {
            assert_eq!(
                Email::parse("email", bad).unwrap_err().code,
                "invalid_email",
                "{bad}"
            );
        }
    }

    #[test]
    fn passwords_are_bounded_by_length_only() {
        assert_eq!(
            Password::parse("password", "short".into())
                .unwrap_err()
                .code,
            "too_short"
        );
        assert_eq!(
            Password::parse("password", "x".repeat(129))
                .unwrap_err()
                .code,
            "too_long"
        );
        assert!(Password::parse("password", "alllowercase".into()).is_ok());
        assert!(Password::parse("password", "ünïcödé!".into()).is_ok());
    }

    #[test]
    fn registration_reports_every_invalid_field() {
        let err = Registration::parse("nope", "short".into(), "", "Acme").unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name"]);
    }

    #[test]
    fn passwords_never_print() {
        let p = Password::parse("password", "hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
