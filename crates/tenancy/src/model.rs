//! Tenancy's domain types; inputs are parsed into them at the edge.

use chrono::{DateTime, Utc};
use tenantry_kernel::{FieldError, Role, TenantId, text};

use crate::MemberStatus;
use crate::entity::tenant;

/// A tenant's display name: [`text::PERSON_OR_ORG_NAME`], since it goes into emails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    /// Parses the `field` of a request into a tenant name.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        text::PERSON_OR_ORG_NAME.required(field, raw).map(Self)
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL-safe tenant handle: lowercase ASCII letters, digits and single dashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    /// Derives a slug from a name; names with nothing usable become `tenant`.
    #[must_use]
    pub fn from_name(name: &TenantName) -> Self {
        let mut slug = String::new();
        for c in name.as_str().chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
            if slug.len() >= 40 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        Self(if slug.is_empty() {
            "tenant".to_owned()
        } else {
            slug.to_owned()
        })
    }

    /// The slug with a suffix, to step around a taken one.
    #[must_use]
    pub fn with_suffix(&self, suffix: &str) -> Self {
        Self(format!("{}-{suffix}", self.0))
    }

    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant as services return it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique URL-safe handle.
    pub slug: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Bumped by every change; the `ETag`.
    pub version: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<tenant::Model> for Tenant {
    fn from(m: tenant::Model) -> Self {
        Self {
            id: TenantId(m.id),
            name: m.name,
            slug: m.slug,
            status: m.status,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The changes a caller may make to its tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantUpdate {
    /// A new display name.
    pub name: Option<TenantName>,
}

/// One tenant a user belongs to, and the role they hold there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The tenant.
    pub tenant: Tenant,
    /// The user's role in it.
    pub role: Role,
    /// Whether the membership is active.
    pub status: MemberStatus,
}

/// Whether a tenant's members may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantStatus {
    /// In use.
    Active,
    /// Closed to its members until an operator reactivates it.
    Suspended,
}

impl TenantStatus {
    /// The stable name stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }

    /// Parses a status name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(TenantStatus::Active),
            "suspended" => Some(TenantStatus::Suspended),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TenantName {
        TenantName::parse("name", s).unwrap()
    }

    #[test]
    fn slugs_are_lowercase_dashed_ascii() {
        assert_eq!(
            Slug::from_name(&name("  Acme Widgets, Inc. ")).as_str(),
            "acme-widgets-inc"
        );
        assert_eq!(Slug::from_name(&name("Ünïcode")).as_str(), "n-code");
        assert_eq!(Slug::from_name(&name("日本")).as_str(), "tenant");
    }

    #[test]
    fn slugs_are_bounded() {
        let long = "a".repeat(100);
        assert!(Slug::from_name(&name(&long)).as_str().len() <= 40);
    }

    #[test]
    fn tenant_names_must_be_present_and_short() {
        assert_eq!(
            TenantName::parse("name", "   ").unwrap_err().code,
            "required"
        );
        assert_eq!(
            TenantName::parse("name", &"x".repeat(101))
                .unwrap_err()
                .code,
            "too_long"
        );
        assert_eq!(
            TenantName::parse("name", " Acme ").unwrap().as_str(),
            "Acme"
        );
    }
}
