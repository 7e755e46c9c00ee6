//! The strict deserializer behind [`super::Json`] and [`super::Query`]: every value is read
//! at its path, so an error names the field it arose in.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer as _, Unexpected};
use serde_json::Value;
use tenantry_kernel::text::is_forbidden_control;

use crate::error::{ApiError, ProblemField};

pub(super) fn deserialize<T: DeserializeOwned>(
    value: Value,
    source: Source,
) -> Result<T, ApiError> {
    let mut bad = Vec::new();
    refuse_controls(&value, Path::Root, &mut bad);
    if !bad.is_empty() {
        return Err(ApiError::validation(bad));
    }
    T::deserialize(Strict {
        value,
        path: &Path::Root,
        source,
    })
    .map_err(|e| ApiError::validation(vec![e.into_field(source)]))
}

/// Records every string (and key) under `value` that carries a forbidden control character.
fn refuse_controls(value: &Value, path: Path<'_>, bad: &mut Vec<ProblemField>) {
    let flag = |at: &Path<'_>, bad: &mut Vec<ProblemField>| {
        bad.push(ProblemField {
            field: at.render(),
            code: "invalid_characters".into(),
            message: "control characters other than line breaks and tabs are not allowed".into(),
        });
    };
    match value {
        Value::String(s) if s.chars().any(is_forbidden_control) => flag(&path, bad),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                refuse_controls(item, Path::Index(&path, i), bad);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let at = Path::Key(&path, key);
                if key.chars().any(is_forbidden_control) {
                    flag(&at, bad);
                } else {
                    refuse_controls(item, at, bad);
                }
            }
        }
        _ => {}
    }
}

/// Where the input came from: query values arrive as text and are read as the type asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// A JSON body.
    Body,
    /// A query string.
    Query,
}

/// Where in the input a value sits.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => join(&parent.render(), key),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// A deserialization error, placed at the innermost value it arose in.
#[derive(Debug)]
pub struct InputError {
    /// The full path, once known.
    field: Option<String>,
    /// A field named relative to the object the error arose in (missing, unknown).
    sub: Option<String>,
    code: &'static str,
    message: String,
}

impl InputError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: None,
            sub: None,
            code,
            message: message.into(),
        }
    }

    fn at(mut self, path: &Path<'_>) -> Self {
        if self.field.is_none() {
            let base = path.render();
            self.field = Some(match self.sub.take() {
                Some(sub) => join(&base, &sub),
                None => base,
            });
        }
        self
    }

    fn into_field(self, source: Source) -> ProblemField {
        let field = self.field.filter(|f| !f.is_empty()).unwrap_or_else(|| {
            match source {
                Source::Body => "body",
                Source::Query => "query",
            }
            .to_owned()
        });
        ProblemField {
            field,
            code: self.code.into(),
            message: self.message,
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

impl de::Error for InputError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new("invalid", msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new("invalid_type", format!("expected {exp}, found {unexp}"))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let code = match unexp {
            Unexpected::Signed(_) | Unexpected::Unsigned(_) | Unexpected::Float(_) => {
                "out_of_range"
            }
            _ => "invalid",
        };
        Self::new(code, format!("expected {exp}, found {unexp}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::new(
            "invalid_choice",
            format!("`{variant}` is not one of: {}", expected.join(", ")),
        )
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        Self {
            sub: Some(field.to_owned()),
            ..Self::new("unknown_field", "this field is not accepted")
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            sub: Some(field.to_owned()),
            ..Self::new("required", "this field is required")
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self {
            sub: Some(field.to_owned()),
            ..Self::new("duplicate_field", "this field is given more than once")
        }
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// One value of the input and where it sits.
struct Strict<'p> {
    value: Value,
    path: &'p Path<'p>,
    source: Source,
}

impl Strict<'_> {
    fn refuse(&self, expected: &str) -> InputError {
        InputError::new(
            "invalid_type",
            format!("expected {expected}, found {}", unexpected(&self.value)),
        )
    }

    /// A query value read as a number or a boolean when the type asks for one.
    fn read_text<'de, V: de::Visitor<'de>>(
        self,
        visitor: V,
        read: fn(&str) -> Option<Value>,
    ) -> Result<V::Value, InputError> {
        match (&self.value, self.source) {
            (Value::String(s), Source::Query) => match read(s) {
                Some(v) => Strict { value: v, ..self }.any(visitor),
                None => Err(self.refuse(match read("1") {
                    Some(Value::Bool(_)) => "true or false",
                    _ => "a number",
                })),
            },
            _ => self.any(visitor),
        }
    }

    /// The value, when it has the shape `is` asks for (`expected` names it otherwise).
    fn shaped<'de, V: de::Visitor<'de>>(
        self,
        is: fn(&Value) -> bool,
        expected: &str,
        visitor: V,
    ) -> Result<V::Value, InputError> {
        let path = self.path;
        if is(&self.value) {
            self.any(visitor)
        } else {
            Err(self.refuse(expected))
        }
        .map_err(|e| e.at(path))
    }

    fn any<'de, V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let (path, source) = (self.path, self.source);
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => Err(InputError::new("invalid_type", "a number out of range")),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(Items {
                items: items.into_iter().enumerate(),
                path,
                source,
            }),
            Value::Object(map) => visitor.visit_map(Entries {
                entries: map.into_iter(),
                pending: None,
                path,
                source,
            }),
        }
    }
}

fn read_bool(s: &str) -> Option<Value> {
    match s {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// A number with no fraction, as an integer type asks for it: JSON Schema counts `3.0` an
/// integer, and so does the API.
fn integral(value: Value) -> Value {
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            // Exactly representable in both types below 2^53; the cast cannot truncate.
            #[expect(
                clippy::cast_possible_truncation,
                reason = "checked integral and in range"
            )]
            let i = f as i64;
            Value::from(i)
        }
        _ => value,
    }
}

fn read_number(s: &str) -> Option<Value> {
    if let Ok(u) = s.parse::<u64>() {
        return Some(Value::from(u));
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::from)
}

macro_rules! numbers {
    (integers: $($int:ident)*; floats: $($float:ident)*) => {
        $(
            fn $int<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
                let path = self.path;
                let this = Strict { value: integral(self.value), ..self };
                this.read_text(visitor, read_number).map_err(|e| e.at(path))
            }
        )*
        $(
            fn $float<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
                let path = self.path;
                self.read_text(visitor, read_number).map_err(|e| e.at(path))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Strict<'_> {
    type Error = InputError;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let path = self.path;
        self.any(visitor).map_err(|e| e.at(path))
    }

    numbers! {
        integers: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128;
        floats: deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let path = self.path;
        self.read_text(visitor, read_bool).map_err(|e| e.at(path))
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let path = self.path;
        match self.value {
            // A query parameter that is there is some value; `null` exists only in JSON.
            Value::Null if self.source == Source::Body => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(path))
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, InputError> {
        self.shaped(Value::is_object, "an object", visitor)
    }

    fn deserialize_map<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        self.shaped(Value::is_object, "an object", visitor)
    }

    fn deserialize_seq<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        self.shaped(Value::is_array, "an array", visitor)
    }

    fn deserialize_tuple<V: de::Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, InputError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, InputError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, InputError> {
        let path = self.path;
        match self.value {
            // Request enums are names; a variant that carries data is not part of the API.
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            _ => Err(self.refuse("a string")),
        }
        .map_err(|e| e.at(path))
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, InputError> {
        let path = self.path;
        visitor.visit_newtype_struct(self).map_err(|e| e.at(path))
    }

    fn deserialize_ignored_any<V: de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, InputError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct identifier
    }
}

/// The items of an array, each at its index.
struct Items<'p> {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    path: &'p Path<'p>,
    source: Source,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = InputError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, InputError> {
        let Some((i, value)) = self.items.next() else {
            return Ok(None);
        };
        let path = Path::Index(self.path, i);
        seed.deserialize(Strict {
            value,
            path: &path,
            source: self.source,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of an object, each value under its key.
struct Entries<'p> {
    entries: serde_json::map::IntoIter,
    pending: Option<(String, Value)>,
    path: &'p Path<'p>,
    source: Source,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = InputError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, InputError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let read = seed.deserialize(de::value::StrDeserializer::<InputError>::new(&key));
        self.pending = Some((key, value));
        read.map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, InputError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(InputError::new("invalid", "a value without its key"));
        };
        let path = Path::Key(self.path, &key);
        seed.deserialize(Strict {
            value,
            path: &path,
            source: self.source,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
