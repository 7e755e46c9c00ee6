//! A tenant's settings: branding, locale, time zone, security policy, limits and feature
//! toggles. Stored as one document per tenant; a tenant that never changed them has every
//! default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tenantry_kernel::{FieldError, ValidationErrors, text};

/// Everything a tenant may configure about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    /// How the tenant presents itself in emails and pages.
    pub branding: Branding,
    /// BCP 47 language tag for emails and pages (`en`, `de-CH`).
    pub locale: String,
    /// IANA time zone (`Europe/Zurich`).
    pub timezone: String,
    /// Sign-in and invitation rules.
    pub security: SecurityPolicy,
    /// Usage limits (until plans own them).
    pub limits: Limits,
    /// Free-form feature toggles, by name.
    pub features: BTreeMap<String, bool>,
}

/// Settings as stored, with the version that is their `ETag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSettings {
    /// The settings.
    pub settings: TenantSettings,
    /// Bumped by every change; 0 until the first.
    pub version: i32,
    /// When they last changed; `None` while every value is the default.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How the tenant presents itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branding {
    /// Name shown instead of the tenant's own.
    pub display_name: Option<String>,
    /// `#rrggbb`.
    pub primary_color: Option<String>,
    /// `#rrggbb`.
    pub accent_color: Option<String>,
    /// An uploaded file holding the logo.
    pub logo_file_id: Option<uuid::Uuid>,
}

/// Sign-in and invitation rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityPolicy {
    /// How long a sign-in lasts before the member must sign in again, in hours.
    pub session_lifetime_hours: u32,
    /// When not empty, invitations go only to addresses at these domains.
    pub allowed_email_domains: Vec<String>,
    /// How long an invitation stays valid, in hours.
    pub invitation_ttl_hours: u32,
    /// Whether a session's refresh tokens work only from the network (IPv4 /24, IPv6 /64)
    /// the session was opened from.
    pub bind_refresh_tokens_to_network: bool,
    /// Whether members must have a second factor: those without one get sessions that may
    /// only enroll one.
    pub require_mfa: bool,
}

/// Usage limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Members plus pending invitations the tenant may have; `None` is unlimited (or, under
    /// a platform ceiling, the ceiling).
    pub seats: Option<u32>,
    /// Requests per minute each principal (a signed-in member, an API key) may make to the
    /// tenant's API.
    pub api_requests_per_minute: u32,
}

/// The default API rate: requests per minute per principal.
pub const DEFAULT_API_REQUESTS_PER_MINUTE: u32 = 100;

/// The most a tenant may allow itself. Allowances are the platform's to grant: until plans own
/// them, the operator sets these in configuration, and a tenant sets its own limits only up
/// to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ceilings {
    /// The highest `limits.api_requests_per_minute` a tenant may set.
    pub api_requests_per_minute: u32,
    /// The most `limits.seats` a tenant may set; `None` sets no ceiling. Under one, a tenant
    /// without a seat limit of its own has the ceiling.
    pub seats: Option<u32>,
}

impl Default for Ceilings {
    /// Today's defaults: the default API rate, and no seat ceiling.
    fn default() -> Self {
        Self {
            api_requests_per_minute: DEFAULT_API_REQUESTS_PER_MINUTE,
            seats: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            seats: None,
            api_requests_per_minute: DEFAULT_API_REQUESTS_PER_MINUTE,
        }
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            branding: Branding::default(),
            locale: "en".to_owned(),
            timezone: "UTC".to_owned(),
            security: SecurityPolicy::default(),
            limits: Limits::default(),
            features: BTreeMap::new(),
        }
    }
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self {
            session_lifetime_hours: 24 * 30,
            allowed_email_domains: Vec::new(),
            invitation_ttl_hours: 72,
            bind_refresh_tokens_to_network: false,
            require_mfa: false,
        }
    }
}

/// Bounds the settings are checked against.
const MAX_SESSION_HOURS: u32 = 24 * 365;
const MAX_INVITATION_HOURS: u32 = 24 * 30;
const MAX_DOMAINS: usize = 50;
const MAX_FEATURES: usize = 100;

impl TenantSettings {
    /// Checks every field, naming each bad one by its dotted path — the limits against the
    /// platform's `ceilings` — and normalises domains to lowercase and trims names on the way.
    pub fn validated(mut self, ceilings: &Ceilings) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let b = &mut self.branding;
        if let Some(name) = &b.display_name {
            // Shown in emails in place of the tenant's name, so it follows the same rule.
            b.display_name = errors
                .check(text::PERSON_OR_ORG_NAME.required("branding.display_name", name))
                .or_else(|| Some(name.clone()));
        }
        for (field, value) in [
            ("branding.primary_color", &b.primary_color),
            ("branding.accent_color", &b.accent_color),
        ] {
            if let Some(c) = value
                && !is_hex_color(c)
            {
                errors.0.push(FieldError::new(
                    field,
                    "invalid_color",
                    "a colour as #rrggbb",
                ));
            }
        }
        if !is_language_tag(&self.locale) {
            errors.0.push(FieldError::new(
                "locale",
                "invalid_locale",
                "a BCP 47 language tag such as en or de-CH",
            ));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            errors.0.push(FieldError::new(
                "timezone",
                "invalid_timezone",
                "an IANA time zone such as Europe/Zurich",
            ));
        }
        let s = &mut self.security;
        if !(1..=MAX_SESSION_HOURS).contains(&s.session_lifetime_hours) {
            errors.0.push(FieldError::new(
                "security.session_lifetime_hours",
                "out_of_range",
                format!("between 1 and {MAX_SESSION_HOURS}"),
            ));
        }
        if !(1..=MAX_INVITATION_HOURS).contains(&s.invitation_ttl_hours) {
            errors.0.push(FieldError::new(
                "security.invitation_ttl_hours",
                "out_of_range",
                format!("between 1 and {MAX_INVITATION_HOURS}"),
            ));
        }
        if s.allowed_email_domains.len() > MAX_DOMAINS {
            errors.0.push(FieldError::new(
                "security.allowed_email_domains",
                "too_many",
                format!("at most {MAX_DOMAINS} domains"),
            ));
        }
        for (i, d) in s.allowed_email_domains.iter_mut().enumerate() {
            let valid = d.chars().count() <= 253 && tenantry_kernel::text::is_host_name(d.trim());
            *d = d.trim().to_ascii_lowercase();
            if !valid {
                errors.0.push(FieldError::new(
                    &format!("security.allowed_email_domains[{i}]"),
                    "invalid_domain",
                    "a domain name such as example.com",
                ));
            }
        }
        s.allowed_email_domains.sort();
        s.allowed_email_domains.dedup();
        match (self.limits.seats, ceilings.seats) {
            (Some(0), None) => errors.0.push(FieldError::new(
                "limits.seats",
                "out_of_range",
                "at least 1, or null for no limit",
            )),
            (Some(n), Some(most)) if !(1..=most).contains(&n) => errors.0.push(FieldError::new(
                "limits.seats",
                "out_of_range",
                format!("between 1 and {most}"),
            )),
            // No limit is the default, and under a ceiling means the ceiling (see `within`).
            _ => {}
        }
        // The default is always taken (what is in effect is capped at the ceiling); any other
        // value must be within it.
        let rate = self.limits.api_requests_per_minute;
        if rate != DEFAULT_API_REQUESTS_PER_MINUTE
            && !(1..=ceilings.api_requests_per_minute).contains(&rate)
        {
            errors.0.push(FieldError::new(
                "limits.api_requests_per_minute",
                "out_of_range",
                format!("between 1 and {}", ceilings.api_requests_per_minute),
            ));
        }
        if self.features.len() > MAX_FEATURES {
            errors.0.push(FieldError::new(
                "features",
                "too_many",
                format!("at most {MAX_FEATURES} toggles"),
            ));
        }
        for name in self.features.keys() {
            if !is_feature_name(name) {
                errors.0.push(FieldError::new(
                    &format!("features.{name}"),
                    "invalid_name",
                    "1 to 64 of a-z, 0-9, '_', '-' and '.'",
                ));
            }
        }
        errors.into_result().map(|()| self)
    }

    /// The settings in effect under `ceilings`: an allowance stored before a ceiling was
    /// lowered, or the default above a low one, counts only up to it.
    #[must_use]
    pub fn within(mut self, ceilings: &Ceilings) -> Self {
        let limits = &mut self.limits;
        limits.api_requests_per_minute = limits
            .api_requests_per_minute
            .min(ceilings.api_requests_per_minute);
        if let Some(most) = ceilings.seats {
            limits.seats = Some(limits.seats.map_or(most, |n| n.min(most)));
        }
        self
    }

    /// Whether the policy lets the tenant invite `email` (already normalised to lowercase).
    #[must_use]
    pub fn allows_invitee(&self, email: &str) -> bool {
        let domains = &self.security.allowed_email_domains;
        domains.is_empty()
            || email
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domains.iter().any(|d| d == domain))
    }

    /// The session lifetime the policy sets.
    #[must_use]
    pub fn session_lifetime(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.security.session_lifetime_hours))
    }

    /// How long a new or resent invitation stays valid.
    #[must_use]
    pub fn invitation_ttl(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.security.invitation_ttl_hours))
    }
}

/// What a colour takes, for the API document.
pub const COLOR_PATTERN: &str = "^#[0-9A-Fa-f]{6}$";
/// What a language tag takes (at most 35 characters), for the API document.
pub const LOCALE_PATTERN: &str = "^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$";
/// What a feature toggle's name takes, for the API document.
pub const FEATURE_NAME_PATTERN: &str = "^[a-z0-9_.-]{1,64}$";
/// What a domain of `allowed_email_domains` takes (at most 253 characters as sent, stored
/// lowercase), for the API document: labels of letters, digits and inner dashes.
pub const DOMAIN_PATTERN: &str = concat!(
    "^",
    tenantry_kernel::space_class!(),
    "*",
    tenantry_kernel::host_name_pattern!(),
    tenantry_kernel::space_class!(),
    "*$"
);

/// Every time zone a tenant may choose, by its IANA name.
pub fn time_zones() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

fn is_hex_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && s.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn is_feature_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &ValidationErrors) -> Vec<&str> {
        e.0.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(
            TenantSettings::default()
                .validated(&Ceilings::default())
                .unwrap(),
            TenantSettings::default()
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut s = TenantSettings::default();
        s.branding.primary_color = Some("red".into());
        s.locale = "english!".into();
        s.timezone = "Mars/Olympus_Mons".into();
        s.security.session_lifetime_hours = 0;
        s.security.allowed_email_domains = vec!["Example.COM".into(), "not a domain".into()];
        s.limits.seats = Some(0);
        s.features.insert("Bad Name".into(), true);
        let err = s.validated(&Ceilings::default()).unwrap_err();
        assert_eq!(
            fields(&err),
            [
                "branding.primary_color",
                "locale",
                "timezone",
                "security.session_lifetime_hours",
                "security.allowed_email_domains[1]",
                "limits.seats",
                "features.Bad Name",
            ]
        );
    }

    #[test]
    fn domains_are_normalised_and_checked_against_invitees() {
        let mut s = TenantSettings::default();
        assert!(s.allows_invitee("anyone@anywhere.org"));
        s.security.allowed_email_domains = vec![" Example.COM ".into(), "example.com".into()];
        let s = s.validated(&Ceilings::default()).unwrap();
        assert_eq!(s.security.allowed_email_domains, ["example.com"]);
        assert!(s.allows_invitee("ada@example.com"));
        assert!(!s.allows_invitee("ada@sub.example.com"));
        assert!(!s.allows_invitee("ada@example.org"));
    }

    #[test]
    fn limits_stay_within_the_platform_ceilings() {
        let ceilings = Ceilings {
            api_requests_per_minute: 50,
            seats: Some(10),
        };
        let mut s = TenantSettings::default();
        s.limits.api_requests_per_minute = 1_000_000;
        s.limits.seats = Some(11);
        let err = s.clone().validated(&ceilings).unwrap_err();
        assert_eq!(
            fields(&err),
            ["limits.seats", "limits.api_requests_per_minute"]
        );
        s.limits.seats = None;
        assert_eq!(
            fields(&s.clone().validated(&ceilings).unwrap_err()),
            ["limits.api_requests_per_minute"]
        );
        s.limits = Limits {
            seats: Some(10),
            api_requests_per_minute: 50,
        };
        assert!(s.validated(&ceilings).is_ok());
        // Stored before the ceilings were lowered, or left at the default: capped in effect.
        let mut stored = TenantSettings::default();
        stored.limits.seats = Some(500);
        let effective = stored.within(&ceilings);
        assert_eq!(effective.limits.seats, Some(10));
        assert_eq!(effective.limits.api_requests_per_minute, 50);
        assert!(TenantSettings::default().validated(&ceilings).is_ok());
        assert_eq!(
            TenantSettings::default().within(&ceilings).limits.seats,
            Some(10)
        );
    }

    /// The published patterns take exactly what the checks take.
    #[test]
    fn the_published_patterns_agree_with_the_checks() {
        let re = |p: &str| regex::Regex::new(p).unwrap();
        let (color, locale, feature, domain) = (
            re(COLOR_PATTERN),
            re(LOCALE_PATTERN),
            re(FEATURE_NAME_PATTERN),
            re(DOMAIN_PATTERN),
        );
        for s in [
            "#0a7cff", "#0A7CFF", "0a7cff", "#0a7cf", "#0a7cffe", "#gggggg", "",
        ] {
            assert_eq!(is_hex_color(s), color.is_match(s), "{s:?}");
        }
        for s in [
            "en",
            "de-CH",
            "zh-Hant-TW",
            "e",
            "engl",
            "en-",
            "en-123456789",
            "en_CH",
        ] {
            assert_eq!(
                is_language_tag(s),
                locale.is_match(s) && s.len() <= 35,
                "{s:?}"
            );
        }
        let long_tag = format!("en{}", "-abcdefgh".repeat(4));
        assert!(!is_language_tag(&long_tag) && locale.is_match(&long_tag));
        for s in ["beta.reports", "a", "", "Beta", "a b", &"x".repeat(65)] {
            assert_eq!(is_feature_name(s), feature.is_match(s), "{s:?}");
        }
        for s in [
            "example.com",
            " Example.COM ",
            "a.b",
            "localhost",
            "-a.com",
            "a-.com",
            "a..b",
            "\u{212a}.com",
            "ex ample.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            let mut settings = TenantSettings::default();
            settings.security.allowed_email_domains = vec![s.to_owned()];
            assert_eq!(
                settings.validated(&Ceilings::default()).is_ok(),
                domain.is_match(s),
                "{s:?}"
            );
        }
        assert!(time_zones().all(|z| z.parse::<chrono_tz::Tz>().is_ok()));
        assert!(time_zones().any(|z| z == "Europe/Zurich"));
    }

    #[test]
    fn zones_and_tags_parse() {
        let s = TenantSettings {
            timezone: "Europe/Zurich".into(),
            locale: "de-CH".into(),
            ..TenantSettings::default()
        };
        assert!(s.validated(&Ceilings::default()).is_ok());
    }
}
