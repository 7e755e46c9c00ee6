//! What a location is made of, as clients send and see it: a new location and changes to
//! one (their codes and addresses checked), the location itself, and the settings it
//! overrides.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_kernel::validation::display_name;
use tenantry_kernel::{FieldError, LocationId, TextRule, ValidationErrors};

use crate::entity::location;
use crate::{Ceilings, TenantSettings};

/// An optional code (store number): 1 to 32 of letters, digits, `-`, `_` and `.`.
fn parse_code(raw: Option<&str>, errors: &mut ValidationErrors) -> Option<String> {
    let code = raw.map(str::trim).filter(|c| !c.is_empty())?;
    if code.len() > 32
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errors.0.push(FieldError::new(
            "code",
            "invalid_code",
            "1 to 32 of letters, digits, '-', '_' and '.'",
        ));
    }
    Some(code.to_owned())
}

/// What a location code takes, for the API document: the code (blank: none), with whitespace
/// around.
pub const LOCATION_CODE_PATTERN: &str = concat!(
    "^",
    tenantry_kernel::space_class!(),
    "*[A-Za-z0-9_.-]{0,32}",
    tenantry_kernel::space_class!(),
    "*$"
);

/// A postal address: up to 500 characters, on several lines if need be.
pub const ADDRESS: TextRule = TextRule::lines(500);

/// An optional postal address; blank is none.
fn parse_address(raw: Option<&str>, errors: &mut ValidationErrors) -> Option<String> {
    errors.check(ADDRESS.optional("address", raw?)).flatten()
}

/// A new location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLocation {
    /// Its name.
    pub name: String,
    /// Its code, unique in the tenant.
    pub code: Option<String>,
    /// Its postal address.
    pub address: Option<String>,
}

impl NewLocation {
    /// Parses the fields of a new location, naming every bad one.
    pub fn parse(
        name: &str,
        code: Option<&str>,
        address: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = display_name("name", name, &mut errors);
        let code = parse_code(code, &mut errors);
        let address = parse_address(address, &mut errors);
        errors.into_result().map(|()| Self {
            name,
            code,
            address,
        })
    }
}

/// Changes to a location; `None` leaves a field, `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocationUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new code, or none.
    pub code: Option<Option<String>>,
    /// A new address, or none.
    pub address: Option<Option<String>>,
}

impl LocationUpdate {
    /// Parses the fields of a change, naming every bad one.
    pub fn parse(
        name: Option<&str>,
        code: Option<Option<&str>>,
        address: Option<Option<&str>>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = name.map(|n| display_name("name", n, &mut errors));
        let code = code.map(|c| parse_code(c, &mut errors));
        let address = address.map(|a| parse_address(a, &mut errors));
        errors.into_result().map(|()| Self {
            name,
            code,
            address,
        })
    }
}

/// A location as the tenant sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Its id.
    pub id: LocationId,
    /// Its name.
    pub name: String,
    /// Its code.
    pub code: Option<String>,
    /// Its postal address.
    pub address: Option<String>,
    /// Bumped by every change to the location or its settings; the `ETag`.
    pub version: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<location::Model> for Location {
    fn from(m: location::Model) -> Self {
        Self {
            id: LocationId(m.id),
            name: m.name,
            code: m.code,
            address: m.address,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Branding a location shows instead of the tenant's; a field left `None` inherits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrandingOverrides {
    /// Name shown instead of the tenant's.
    pub display_name: Option<String>,
    /// `#rrggbb`.
    pub primary_color: Option<String>,
    /// `#rrggbb`.
    pub accent_color: Option<String>,
    /// An uploaded file holding the logo.
    pub logo_file_id: Option<uuid::Uuid>,
}

/// The tenant settings a location overrides; what it leaves out it inherits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocationSettings {
    /// Branding fields to override.
    pub branding: BrandingOverrides,
    /// Language tag to use here.
    pub locale: Option<String>,
    /// Time zone to use here.
    pub timezone: Option<String>,
    /// Feature toggles to set here, over the tenant's.
    pub features: BTreeMap<String, bool>,
}

impl LocationSettings {
    /// Checks the overrides with the tenant settings' own rules, naming bad fields by path.
    pub fn validated(self) -> Result<Self, ValidationErrors> {
        // The overrides applied to defaults must make valid settings; the paths are shared.
        // The default has no display name, so the checked one is the override, trimmed.
        // Locations override no limits, so no ceiling is in question.
        let checked = self
            .apply_to(TenantSettings::default())
            .validated(&Ceilings::default())?;
        Ok(Self {
            branding: BrandingOverrides {
                display_name: checked.branding.display_name,
                ..self.branding
            },
            ..self
        })
    }

    /// The tenant's settings with these overrides applied.
    #[must_use]
    pub fn apply_to(&self, mut tenant: TenantSettings) -> TenantSettings {
        let b = &self.branding;
        if b.display_name.is_some() {
            tenant.branding.display_name.clone_from(&b.display_name);
        }
        if b.primary_color.is_some() {
            tenant.branding.primary_color.clone_from(&b.primary_color);
        }
        if b.accent_color.is_some() {
            tenant.branding.accent_color.clone_from(&b.accent_color);
        }
        if b.logo_file_id.is_some() {
            tenant.branding.logo_file_id = b.logo_file_id;
        }
        if let Some(locale) = &self.locale {
            tenant.locale.clone_from(locale);
        }
        if let Some(tz) = &self.timezone {
            tenant.timezone.clone_from(tz);
        }
        for (name, on) in &self.features {
            tenant.features.insert(name.clone(), *on);
        }
        tenant
    }
}

/// A location's overrides, the settings in effect there, and the location's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationSettingsView {
    /// What the location overrides.
    pub overrides: LocationSettings,
    /// The tenant's settings with the overrides applied.
    pub effective: TenantSettings,
    /// The location's version, the `ETag`.
    pub version: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name() {
        let mut tenant = TenantSettings {
            timezone: "Europe/Zurich".into(),
            ..TenantSettings::default()
        };
        tenant.features.insert("kiosk".into(), false);
        tenant.features.insert("tips".into(), true);
        let mut o = LocationSettings {
            timezone: Some("America/New_York".into()),
            ..LocationSettings::default()
        };
        o.features.insert("kiosk".into(), true);
        let effective = o.apply_to(tenant);
        assert_eq!(effective.timezone, "America/New_York");
        assert_eq!(effective.locale, "en");
        assert!(effective.features["kiosk"]);
        assert!(effective.features["tips"]);
    }

    #[test]
    fn bad_overrides_are_named_by_path() {
        let o = LocationSettings {
            timezone: Some("Mars/Base".into()),
            branding: BrandingOverrides {
                primary_color: Some("blue".into()),
                ..BrandingOverrides::default()
            },
            ..LocationSettings::default()
        };
        let err = o.validated().unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["branding.primary_color", "timezone"]);
    }

    #[test]
    fn location_fields_are_checked() {
        let err = NewLocation::parse(" ", Some("no spaces"), Some(&"x".repeat(501))).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "code", "address"]);
        let ok = NewLocation::parse(" Zurich HB ", Some(" ZH-01 "), Some("")).unwrap();
        assert_eq!(
            ok,
            NewLocation {
                name: "Zurich HB".into(),
                code: Some("ZH-01".into()),
                address: None
            }
        );
    }
}
