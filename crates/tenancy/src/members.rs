//! The member directory of a tenant: who belongs, with which role and status, their profile in
//! the tenant, and their expertise. Inputs are parsed into these types at the edge.

use chrono::{DateTime, Utc};
use tenantry_kernel::{FieldError, LocationId, Role, TextRule, UserId, ValidationErrors};

use crate::entity::membership;

/// Whether a member may act in the tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberStatus {
    /// May sign in and act.
    Active,
    /// Kept in the directory, but every session ended and none may start.
    Deactivated,
}

impl MemberStatus {
    /// The stable name stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Deactivated => "deactivated",
        }
    }

    /// Parses a stored or requested status.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(MemberStatus::Active),
            "deactivated" => Some(MemberStatus::Deactivated),
            _ => None,
        }
    }
}

/// An amount of money in the currency's minor unit (cents), as Stripe and most ledgers keep it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Money {
    /// The amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code, upper case (`EUR`).
    pub currency: String,
}

/// What a member is good at and what their time costs, for products where staff bill time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expertise {
    /// Tags, lowercase, unique, in the order given.
    pub tags: Vec<String>,
    /// Hourly rate, if the member bills time.
    pub hourly_rate: Option<Money>,
}

/// What an expertise tag takes: one line of 1 to 40 characters (stored lowercased).
pub const TAG: TextRule = TextRule::line(40);
/// What a job title takes: one line of up to 100 characters.
pub const JOB_TITLE: TextRule = TextRule::line(100);
/// What a directory search takes: one line of up to 100 characters.
pub const SEARCH: TextRule = TextRule::line(100);

/// The most tags a member may carry.
pub const MAX_TAGS: usize = 50;
/// The highest hourly rate accepted, in minor units.
pub const MAX_RATE_MINOR: i64 = 100_000_000;

impl Expertise {
    /// Parses tags and an optional rate, naming every bad field.
    pub fn parse(tags: &[String], rate: Option<(i64, &str)>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if tags.len() > MAX_TAGS {
            errors.0.push(FieldError::new(
                "tags",
                "too_many",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        let mut clean: Vec<String> = Vec::new();
        for (i, raw) in tags.iter().enumerate() {
            if let Some(tag) = errors.check(TAG.required(&format!("tags[{i}]"), raw)) {
                let tag = tag.to_lowercase();
                if !clean.contains(&tag) {
                    clean.push(tag);
                }
            }
        }
        let hourly_rate = match rate {
            None => None,
            Some((amount, currency)) => {
                if !(0..=MAX_RATE_MINOR).contains(&amount) {
                    errors.0.push(FieldError::new(
                        "hourly_rate.amount_minor",
                        "out_of_range",
                        format!("between 0 and {MAX_RATE_MINOR}"),
                    ));
                }
                if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
                    errors.0.push(FieldError::new(
                        "hourly_rate.currency",
                        "invalid_currency",
                        "an ISO 4217 code such as EUR",
                    ));
                }
                Some(Money {
                    amount_minor: amount,
                    currency: currency.to_owned(),
                })
            }
        };
        errors.into_result().map(|()| Self {
            tags: clean,
            hourly_rate,
        })
    }
}

/// Changes to a member's profile in the tenant; `None` leaves a field, `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// Job title.
    pub job_title: Option<Option<String>>,
    /// Phone number.
    pub phone: Option<Option<String>>,
}

impl ProfileUpdate {
    /// Parses the fields of a profile change, naming every bad one.
    pub fn parse(
        job_title: Option<Option<&str>>,
        phone: Option<Option<&str>>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let job_title = job_title.map(|v| {
            v.and_then(|t| errors.check(JOB_TITLE.optional("job_title", t)))
                .flatten()
        });
        let phone = phone.map(|v| {
            let raw = v?;
            let t = raw.trim_matches(' ');
            if raw.chars().count() > 32 || !(t.is_empty() || is_phone(t)) {
                errors.0.push(FieldError::new(
                    "phone",
                    "invalid_phone",
                    "a phone number: 5 to 15 digits, optionally with + ( ) - . and spaces, at \
                     most 32 characters",
                ));
            }
            (!t.is_empty()).then(|| t.to_owned())
        });
        errors.into_result().map(|()| Self { job_title, phone })
    }
}

/// Whether `t` reads as a phone number: 5 to 15 digits, and nothing but digits, `+`, `(`,
/// `)`, `-`, `.` and spaces. [`PHONE_PATTERN`] says the same.
fn is_phone(t: &str) -> bool {
    let digits = t.chars().filter(char::is_ascii_digit).count();
    (5..=15).contains(&digits)
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
}

/// The pattern of a phone number or of blank text (which clears it), for the API document;
/// at most 32 characters as sent.
pub const PHONE_PATTERN: &str = r"^[+ ()\-.]*(?:[0-9][+ ()\-.]*){5,15}$|^ *$";

/// Which members to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberFilter {
    /// Only members with this role.
    pub role: Option<Role>,
    /// Only members with this status.
    pub status: Option<MemberStatus>,
    /// Only members of this location.
    pub location: Option<LocationId>,
    /// Only members whose name or address contains this text, ignoring case.
    pub search: Option<String>,
}

impl MemberFilter {
    /// Parses the query parameters of a member list, naming every bad one.
    pub fn parse(
        role: Option<&str>,
        status: Option<&str>,
        location: Option<&str>,
        search: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let role = role.and_then(|r| errors.check(Role::parse_field("role", r)));
        let status = status.and_then(|s| {
            let parsed = MemberStatus::parse(s);
            if parsed.is_none() {
                errors.0.push(FieldError::new(
                    "status",
                    "invalid_status",
                    "active or deactivated",
                ));
            }
            parsed
        });
        let location = location.and_then(|l| match l.parse::<uuid::Uuid>() {
            Ok(id) => Some(LocationId(id)),
            Err(_) => {
                errors.0.push(FieldError::new(
                    "location_id",
                    "invalid_id",
                    "a location id",
                ));
                None
            }
        });
        let search = search
            .and_then(|s| errors.check(SEARCH.optional("q", s)))
            .flatten()
            .map(|s| s.to_lowercase());
        errors.into_result().map(|()| Self {
            role,
            status,
            location,
            search,
        })
    }
}

/// A location a member works at, and their role there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberLocation {
    /// The location.
    pub location_id: LocationId,
    /// The role held there.
    pub role: Role,
}

/// A member of a tenant as the directory shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// The account's display name.
    pub name: String,
    /// The account's address.
    pub email: String,
    /// Their role in the tenant.
    pub role: Role,
    /// Whether they may act.
    pub status: MemberStatus,
    /// Job title in this tenant.
    pub job_title: Option<String>,
    /// Phone number in this tenant.
    pub phone: Option<String>,
    /// Expertise and rate.
    pub expertise: Expertise,
    /// The locations they work at.
    pub locations: Vec<MemberLocation>,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// When they were deactivated, while they are.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// When their membership last changed.
    pub updated_at: DateTime<Utc>,
}

impl Member {
    pub(crate) fn from_row(m: membership::Model, locations: Vec<MemberLocation>) -> Self {
        let tags = m
            .expertise_tags
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            .unwrap_or_default();
        let hourly_rate = match (m.hourly_rate_minor, m.hourly_rate_currency) {
            (Some(amount_minor), Some(currency)) => Some(Money {
                amount_minor,
                currency,
            }),
            _ => None,
        };
        Self {
            user_id: UserId(m.user_id),
            name: m.name,
            email: m.email,
            role: Role::parse(&m.role).unwrap_or(Role::Member),
            status: MemberStatus::parse(&m.status).unwrap_or(MemberStatus::Deactivated),
            job_title: m.job_title,
            phone: m.phone,
            expertise: Expertise { tags, hourly_rate },
            locations,
            joined_at: m.created_at,
            deactivated_at: m.deactivated_at,
            updated_at: m.updated_at.unwrap_or(m.created_at),
        }
    }
}

/// Who joins a tenant: the account's id, name and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMember {
    /// The account.
    pub user_id: UserId,
    /// Its display name.
    pub name: String,
    /// Its address.
    pub email: String,
}

/// What a user may do in a tenant, as authentication needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberAccess {
    /// Not a member.
    None,
    /// A member whose access was deactivated.
    Deactivated,
    /// A member of a suspended tenant.
    TenantSuspended,
    /// An active member of an active tenant, with this role.
    Active(Role),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published pattern takes exactly the phone numbers (and blanks) the check takes.
    #[test]
    fn the_phone_pattern_agrees_with_the_check() {
        let pattern = regex::Regex::new(PHONE_PATTERN).unwrap();
        for raw in [
            "",
            "   ",
            "+41 44 668 18 00",
            "(044) 668-18.00",
            "12345",
            "1234",
            "1234567890123456",
            "call me",
            "+41\u{a0}44 668 18 00",
            " 12345 ",
            "++--..()12345",
            "12345x",
        ] {
            let took = ProfileUpdate::parse(None, Some(Some(raw))).is_ok();
            assert_eq!(took, pattern.is_match(raw), "{raw:?}");
        }
        let long = format!("{}1", "1".repeat(14) + &" ".repeat(18));
        assert_eq!(long.chars().count(), 33);
        assert!(ProfileUpdate::parse(None, Some(Some(&long))).is_err());
    }

    fn fields(e: &ValidationErrors) -> Vec<&str> {
        e.0.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn expertise_tags_are_normalised_and_rates_checked() {
        let tags = vec![" Rust ".to_owned(), "rust".to_owned(), "SQL".to_owned()];
        let e = Expertise::parse(&tags, Some((8500, "EUR"))).unwrap();
        assert_eq!(e.tags, ["rust", "sql"]);
        assert_eq!(e.hourly_rate.unwrap().amount_minor, 8500);
        let err = Expertise::parse(&[String::new()], Some((-1, "eur"))).unwrap_err();
        assert_eq!(
            fields(&err),
            [
                "tags[0]",
                "hourly_rate.amount_minor",
                "hourly_rate.currency"
            ]
        );
    }

    #[test]
    fn profile_fields_clear_with_null_or_empty_and_phones_are_checked() {
        let u = ProfileUpdate::parse(Some(Some("  ")), Some(Some("+41 44 668 18 00"))).unwrap();
        assert_eq!(u.job_title, Some(None));
        assert_eq!(u.phone, Some(Some("+41 44 668 18 00".to_owned())));
        let err = ProfileUpdate::parse(None, Some(Some("call me"))).unwrap_err();
        assert_eq!(fields(&err), ["phone"]);
    }

    #[test]
    fn filters_name_their_bad_parameters() {
        let err = MemberFilter::parse(Some("root"), Some("gone"), Some("x"), None).unwrap_err();
        assert_eq!(fields(&err), ["role", "status", "location_id"]);
        let f = MemberFilter::parse(None, Some("active"), None, Some(" Ada ")).unwrap();
        assert_eq!(f.search.as_deref(), Some("ada"));
    }
}
