//! Field-level validation errors, collected at the edge while inputs are parsed into domain
//! types, and rendered by the server as the `errors` array of a 422 problem.

use serde::Serialize;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name in the request body.
    pub field: String,
    /// A stable, machine-readable code (`invalid_email`, `too_short`).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl FieldError {
    /// A new field error.
    #[must_use]
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

/// Every invalid field of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("{} field(s) are invalid", .0.len())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// How a problem sums up `n` invalid fields (`1 field is invalid`, `3 fields are invalid`).
    #[must_use]
    pub fn summary(n: usize) -> String {
        if n == 1 {
            "1 field is invalid".to_owned()
        } else {
            format!("{n} fields are invalid")
        }
    }

    /// Records the outcome of parsing one field, keeping the value when it parsed.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

/// A name people read (a location's, a role's, a key's): [`crate::text::LABEL`], one line of
/// 1 to 100 characters. A bad one is recorded against `field` in `errors`; the trimmed text
/// is answered either way, to be used only when `errors` stays empty.
pub fn display_name(field: &str, raw: &str, errors: &mut ValidationErrors) -> String {
    errors
        .check(crate::text::LABEL.required(field, raw))
        .unwrap_or_else(|| raw.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        let mut errors = ValidationErrors::default();
        assert_eq!(display_name("name", "  Zurich ", &mut errors), "Zurich");
        assert!(errors.0.is_empty());
        display_name("name", " ", &mut errors);
        display_name("title", &"x".repeat(101), &mut errors);
        display_name("label", "a\u{7}b", &mut errors);
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "title", "label"]);
    }
}
