//! Request input read strictly: JSON bodies and query strings become typed values through one
//! deserializer, so every request meets the same rules whatever its handler does.
//!
//! - A body is a JSON object; a struct is never filled from an array (serde's derive would
//!   otherwise take `["a","b"]` for `{x, y}`, field by field in order).
//! - No string anywhere in a body or a query — keys included — carries a control character
//!   other than tab, line feed and carriage return ([`tenantry_kernel::text::is_forbidden_control`]); NUL
//!   never reaches a database.
//! - Every error names its field by path (`branding.display_name`, `emails[2]`), in a 422.
//!
//! Bodies are parsed into a [`serde_json::Value`] first (within the body limit), then
//! deserialized from it. Of a key given twice in one object the last one counts, as in most
//! JSON parsers; a query parameter given twice is refused.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, dev::Payload, web};
use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ApiError, ProblemField};

mod strict;

use strict::{Source, deserialize};

/// The largest body a request may carry, in bytes (from `max_body_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A JSON body, read strictly (see the module documentation).
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Json<T> {
    /// The parsed body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = matches!(
            req.mime_type(),
            Ok(Some(m)) if m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")
        );
        let body = read_body(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Unsupported media type",
                )
                .detail("send the body as application/json"));
            }
            let body = body.await?;
            parse_body(&body).map(Json)
        })
    }
}

/// Reads the whole body of `req` within its body limit ([`BodyLimit`]): 413 past it, 400
/// for a body that breaks off.
pub fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> + 'static {
    let limit = req
        .app_data::<web::Data<BodyLimit>>()
        .map_or(256 * 1024, |l| l.0);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            )
            .detail(format!("the body exceeds {limit} bytes"))
        };
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", "Malformed body")
                    .detail("the body could not be read")
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// Parses a JSON body: 400 for text that is not JSON, 422 naming the field for JSON of the
/// wrong shape or with control characters.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", "Malformed body").detail(format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::validation(vec![ProblemField {
            field: "body".into(),
            code: "invalid_type".into(),
            message: "the body must be a JSON object".into(),
        }]));
    }
    deserialize(value, Source::Body)
}

/// A query string, read strictly (see the module documentation).
pub struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Query<T> {
    /// The parsed parameters.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// Parses a query string: every parameter once, by its name.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut map = Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if map.contains_key(key.as_ref()) {
            return Err(ApiError::validation(vec![ProblemField {
                field: key.into_owned(),
                code: "duplicate_parameter".into(),
                message: "this parameter is given more than once".into(),
            }]));
        }
        map.insert(key.into_owned(), Value::String(value.into_owned()));
    }
    deserialize(Value::Object(map), Source::Query)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        title: Option<String>,
        inner: Option<Inner>,
        #[serde(default)]
        features: BTreeMap<String, bool>,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        on: Option<bool>,
    }

    fn problem(result: Result<Outer, ApiError>) -> Vec<(String, String)> {
        result.unwrap_err().field_codes()
    }

    fn pair(field: &str, code: &str) -> (String, String) {
        (field.to_owned(), code.to_owned())
    }

    #[test]
    fn a_struct_is_never_filled_from_an_array() {
        assert_eq!(
            problem(parse_body(br#"["CTO via array", "+41 44 668 18 00"]"#)),
            [pair("body", "invalid_type")]
        );
        assert_eq!(
            problem(parse_body(br#"{"inner": ["Ada", []]}"#)),
            [pair("inner", "invalid_type")]
        );
    }

    #[test]
    fn control_characters_are_refused_anywhere_and_every_one_is_named() {
        let found = problem(parse_body(
            br#"{"title": "a\u0000b", "inner": {"name": "x", "tags": ["ok", "\u001b[1m"]}, "features": {"a\u0007": true}}"#,
        ));
        assert_eq!(
            found,
            [
                pair("features.a\u{7}", "invalid_characters"),
                pair("inner.tags[1]", "invalid_characters"),
                pair("title", "invalid_characters"),
            ]
        );
        let ok: Outer = parse_body(br#"{"title": "line\nbreak\tand tab\r\n"}"#).unwrap();
        assert_eq!(ok.title.as_deref(), Some("line\nbreak\tand tab\r\n"));
    }

    #[test]
    fn shape_errors_name_their_field_by_path() {
        assert_eq!(
            problem(parse_body(br#"{"inner": {"name": 5}}"#)),
            [pair("inner.name", "invalid_type")]
        );
        assert_eq!(
            problem(parse_body(br#"{"inner": {}}"#)),
            [pair("inner.name", "required")]
        );
        assert_eq!(
            problem(parse_body(br#"{"inner": {"name": "a", "extra": 1}}"#)),
            [pair("inner.extra", "unknown_field")]
        );
        assert_eq!(
            problem(parse_body(br#"{"inner": {"name": "a", "tags": ["x", 3]}}"#)),
            [pair("inner.tags[1]", "invalid_type")]
        );
        assert_eq!(
            problem(parse_body(br#"{"limit": -1}"#)),
            [pair("limit", "out_of_range")]
        );
        // An integer may be written with a zero fraction, as JSON Schema allows; not with
        // another.
        let whole: Outer = parse_body(br#"{"limit": 20.0}"#).unwrap();
        assert_eq!(whole.limit, Some(20));
        assert_eq!(
            problem(parse_body(br#"{"limit": 20.5}"#)),
            [pair("limit", "invalid_type")]
        );
    }

    #[test]
    fn query_values_are_read_as_the_types_asked_for() {
        let q: Outer = parse_query("limit=20&on=true&title=a+b%21").unwrap();
        assert_eq!(
            (q.limit, q.on, q.title.as_deref()),
            (Some(20), Some(true), Some("a b!"))
        );
        assert_eq!(
            problem(parse_query("limit=abc")),
            [pair("limit", "invalid_type")]
        );
        assert_eq!(problem(parse_query("on=yes")), [pair("on", "invalid_type")]);
        assert_eq!(
            problem(parse_query("title=%00")),
            [pair("title", "invalid_characters")]
        );
        assert_eq!(
            problem(parse_query("title=a&title=b")),
            [pair("title", "duplicate_parameter")]
        );
        assert_eq!(
            problem(parse_query("nope=1")),
            [pair("nope", "unknown_field")]
        );
    }
}
