//! What a role is made of, as clients send and see it: a tenant's role definitions, the input
//! a custom role is created from, role keys, and the grants a member holds.

use chrono::{DateTime, Utc};
use tenantry_kernel::validation::display_name;
use tenantry_kernel::{FieldError, LocationId, PermissionSet, Role, RoleId, ValidationErrors};

use crate::entity::role;

/// How many custom roles a tenant may define.
pub const MAX_CUSTOM_ROLES: u64 = 100;
/// What a role's description takes: up to 500 characters, on several lines if need be.
pub const DESCRIPTION: tenantry_kernel::TextRule = tenantry_kernel::TextRule::lines(500);

/// A role of the tenant, as clients see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleDefinition {
    /// The role's id in its tenant.
    pub id: RoleId,
    /// Its stable key (`admin`, `support-lead`).
    pub key: String,
    /// Its display name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// What it grants.
    pub permissions: PermissionSet,
    /// The system role it is, or `None` for a custom role.
    pub system: Option<Role>,
    /// Bumped on every change; the ETag.
    pub version: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<role::Model> for RoleDefinition {
    fn from(row: role::Model) -> Self {
        // A system role's name, description and permissions are the code's, so that new
        // permissions reach every tenant's system roles without a migration.
        let system = row.system.then(|| Role::parse(&row.key)).flatten();
        let (name, description, permissions) = match system {
            Some(r) => (
                r.title().to_owned(),
                r.description().to_owned(),
                r.permissions(),
            ),
            None => (
                row.name,
                row.description,
                PermissionSet::from_stored(&row.permissions),
            ),
        };
        Self {
            id: RoleId(row.id),
            key: row.key,
            name,
            description,
            permissions,
            system,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// What a custom role is made of, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleInput {
    /// Its display name: 1 to 100 characters.
    pub name: String,
    /// What it is for: up to 500 characters.
    pub description: String,
    /// What it grants.
    pub permissions: PermissionSet,
}

impl RoleInput {
    /// Parses a role's name, description and permission names, naming every bad field.
    pub fn parse(
        name: &str,
        description: Option<&str>,
        permissions: &[String],
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = display_name("name", name, &mut errors);
        let description = description
            .and_then(|d| errors.check(DESCRIPTION.optional("description", d)))
            .flatten()
            .unwrap_or_default();
        let permissions = PermissionSet::parse_names("permissions", permissions, &mut errors);
        errors.into_result()?;
        Ok(Self {
            name,
            description: description.to_owned(),
            permissions,
        })
    }
}

/// A custom role's key: 2 to 40 of lowercase letters, digits, `-` and `_`, starting with a
/// letter. The system roles' keys are taken in every tenant.
pub fn parse_role_key(raw: &str) -> Result<String, FieldError> {
    let key = raw.trim();
    let ok = (2..=40).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(FieldError::new(
            "key",
            "invalid_key",
            "2 to 40 of a-z, 0-9, '-' and '_', starting with a letter",
        ))
    }
}

/// What [`parse_role_key`] takes, for the API document: the key, with whitespace around.
pub const ROLE_KEY_PATTERN: &str = concat!(
    "^",
    tenantry_kernel::space_class!(),
    "*[a-z][a-z0-9_-]{1,39}",
    tenantry_kernel::space_class!(),
    "*$"
);

/// One role a member holds, tenant-wide or at a location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleGrant {
    /// The role.
    pub role: RoleDefinition,
    /// The location it is held at; `None` tenant-wide.
    pub location_id: Option<LocationId>,
    /// When it was granted (for a system role: when the membership last changed).
    pub granted_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_input_names_every_bad_field() {
        let err = RoleInput::parse(
            " ",
            Some(&"x".repeat(501)),
            &["users.read".to_owned(), "users.fly".to_owned()],
        )
        .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "description", "permissions[1]"]);
        let ok = RoleInput::parse(
            " Auditor ",
            None,
            &["users.read".to_owned(), "users.read".to_owned()],
        )
        .unwrap();
        assert_eq!(ok.name, "Auditor");
        assert_eq!(ok.permissions.iter().count(), 1);
    }

    #[test]
    fn keys_are_lowercase_slugs() {
        assert_eq!(parse_role_key(" support-lead ").unwrap(), "support-lead");
        for bad in ["x", "Support", "1st", "a b", &"a".repeat(41)] {
            assert!(parse_role_key(bad).is_err(), "{bad}");
        }
    }
}
