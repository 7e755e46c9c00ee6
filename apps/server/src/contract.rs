//! What the API document says about the values a request carries, beyond what the derive
//! states: every text rule's pattern and length, the form of cursors and `If-Match`, the
//! names a choice takes, and the shapes serde cannot describe (exactly one of two fields).
//! Clients generated from the document then validate as the server does.
//!
//! The rules are a table beside the domain rules they state (kernel text rules, the patterns
//! the domain crates publish with their parsers and test against them), applied to the
//! generated document as JSON. A test checks that every string a client can send is
//! described by one, so a new field cannot go out undescribed.

use serde_json::{Map, Value, json};
use tenantry_kernel::page::{ID_CURSOR_PATTERN, KEY_CURSOR_PATTERN};
use tenantry_kernel::text::{LABEL, PERSON_OR_ORG_NAME, plain_pattern};
use tenantry_kernel::{Permission, Role, TextRule};

/// How a value sent in a request is checked.
#[derive(Clone, Copy)]
enum Rule {
    /// Text under a rule; `required` refuses blank text, else blank means none.
    Text(TextRule, bool),
    /// A string matching the pattern, at most so many characters.
    Pattern(&'static str, Option<usize>),
    /// A string matching every pattern (the first as `pattern`, the others in `allOf`), at
    /// most so many characters: for a rule no one pattern can say.
    Patterns(&'static [&'static str], Option<usize>),
    /// A secret or token: any string the edge lets through, within the lengths.
    Plain(Option<usize>, Option<usize>),
    /// One of the names the function lists.
    Choice(fn() -> Vec<String>),
    /// One of the names the function lists, stated as a pattern: for long lists of names that
    /// generators would turn into clashing enum members (`GMT+0`, `GMT-0`, `GMT0`).
    OneOfNames(fn() -> Vec<String>),
    /// Each item of an array, under the inner rule.
    Each(&'static Rule),
    /// An id.
    Uuid,
}

const NAME: Rule = Rule::Text(PERSON_OR_ORG_NAME, true);
const A_LABEL: Rule = Rule::Text(LABEL, true);
const EMAIL: Rule = Rule::Patterns(
    &[
        tenantry_identity::EMAIL_PATTERN,
        tenantry_identity::EMAIL_LOCAL_PART_PATTERN,
    ],
    Some(254),
);
const NEW_PASSWORD: Rule = Rule::Plain(Some(8), Some(128));
const GIVEN_PASSWORD: Rule = Rule::Plain(Some(1), Some(128));
const TOKEN: Rule = Rule::Plain(None, None);
const ROLE: Rule = Rule::Choice(role_names);
const PERMISSIONS: Rule = Rule::Each(&Rule::Choice(permission_names));
const COLOR: Rule = Rule::Pattern(tenantry_tenancy::COLOR_PATTERN, None);
const LOCALE: Rule = Rule::Pattern(tenantry_tenancy::LOCALE_PATTERN, Some(35));
const TIME_ZONE: Rule = Rule::OneOfNames(time_zone_names);

fn role_names() -> Vec<String> {
    Role::ALL.iter().map(|r| r.as_str().to_owned()).collect()
}

fn location_role_names() -> Vec<String> {
    Role::ALL
        .iter()
        .filter(|r| **r != Role::Owner)
        .map(|r| r.as_str().to_owned())
        .collect()
}

fn permission_names() -> Vec<String> {
    Permission::ALL
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

fn time_zone_names() -> Vec<String> {
    tenantry_tenancy::time_zones().map(str::to_owned).collect()
}

fn invitation_statuses() -> Vec<String> {
    ["pending", "accepted", "expired", "revoked"]
        .map(str::to_owned)
        .to_vec()
}

fn member_statuses() -> Vec<String> {
    ["active", "deactivated"].map(str::to_owned).to_vec()
}

/// The rule of each string field of a request body, by schema and property.
const BODY: &[(&str, &str, Rule)] = &[
    ("RegisterRequest", "email", EMAIL),
    ("RegisterRequest", "password", NEW_PASSWORD),
    ("RegisterRequest", "name", NAME),
    ("RegisterRequest", "tenant_name", NAME),
    ("LoginRequest", "email", EMAIL),
    ("LoginRequest", "password", GIVEN_PASSWORD),
    ("RefreshRequest", "refresh_token", TOKEN),
    ("VerifyEmailRequest", "token", TOKEN),
    ("ForgotPasswordRequest", "email", EMAIL),
    ("ResetPasswordRequest", "token", TOKEN),
    ("ResetPasswordRequest", "new_password", NEW_PASSWORD),
    ("ChangePasswordRequest", "current_password", GIVEN_PASSWORD),
    ("ChangePasswordRequest", "new_password", NEW_PASSWORD),
    ("InvitationTokenRequest", "token", TOKEN),
    ("AcceptInviteRequest", "token", TOKEN),
    ("AcceptInviteRequest", "name", NAME),
    ("AcceptInviteRequest", "password", NEW_PASSWORD),
    ("InviteRequest", "emails", Rule::Each(&EMAIL)),
    ("InviteRequest", "role", ROLE),
    (
        "InviteRequest",
        "message",
        Rule::Text(tenantry_identity::MESSAGE, false),
    ),
    ("ChangeRoleRequest", "role", ROLE),
    (
        "LocationRoleRequest",
        "role",
        Rule::Choice(location_role_names),
    ),
    ("UpdateTenantRequest", "name", NAME),
    ("BrandingBody", "display_name", NAME),
    ("BrandingBody", "primary_color", COLOR),
    ("BrandingBody", "accent_color", COLOR),
    ("TenantSettingsBody", "locale", LOCALE),
    ("TenantSettingsBody", "timezone", TIME_ZONE),
    ("LocationSettingsBody", "locale", LOCALE),
    ("LocationSettingsBody", "timezone", TIME_ZONE),
    (
        "SecurityPolicyBody",
        "allowed_email_domains",
        Rule::Each(&Rule::Pattern(tenantry_tenancy::DOMAIN_PATTERN, Some(253))),
    ),
    ("CreateLocationRequest", "name", A_LABEL),
    (
        "CreateLocationRequest",
        "code",
        Rule::Pattern(tenantry_tenancy::LOCATION_CODE_PATTERN, None),
    ),
    (
        "CreateLocationRequest",
        "address",
        Rule::Text(tenantry_tenancy::ADDRESS, false),
    ),
    ("UpdateLocationRequest", "name", A_LABEL),
    (
        "UpdateLocationRequest",
        "code",
        Rule::Pattern(tenantry_tenancy::LOCATION_CODE_PATTERN, None),
    ),
    (
        "UpdateLocationRequest",
        "address",
        Rule::Text(tenantry_tenancy::ADDRESS, false),
    ),
    (
        "UpdateMemberRequest",
        "job_title",
        Rule::Text(tenantry_tenancy::JOB_TITLE, false),
    ),
    (
        "UpdateMemberRequest",
        "phone",
        Rule::Pattern(tenantry_tenancy::PHONE_PATTERN, Some(32)),
    ),
    (
        "ExpertiseBody",
        "tags",
        Rule::Each(&Rule::Text(tenantry_tenancy::TAG, true)),
    ),
    ("MoneyBody", "currency", Rule::Pattern("^[A-Z]{3}$", None)),
    (
        "CreateRoleRequest",
        "key",
        Rule::Pattern(tenantry_tenancy::ROLE_KEY_PATTERN, None),
    ),
    ("CreateRoleRequest", "name", A_LABEL),
    (
        "CreateRoleRequest",
        "description",
        Rule::Text(tenantry_tenancy::DESCRIPTION, false),
    ),
    ("CreateRoleRequest", "permissions", PERMISSIONS),
    ("UpdateRoleRequest", "name", A_LABEL),
    (
        "UpdateRoleRequest",
        "description",
        Rule::Text(tenantry_tenancy::DESCRIPTION, false),
    ),
    ("UpdateRoleRequest", "permissions", PERMISSIONS),
    ("CreateApiKeyRequest", "name", A_LABEL),
    ("CreateApiKeyRequest", "scopes", PERMISSIONS),
    ("UpdateApiKeyRequest", "name", A_LABEL),
    ("UpdateApiKeyRequest", "scopes", PERMISSIONS),
    ("ConfirmTotpRequest", "code", TOKEN),
    ("ProofRequest", "code", TOKEN),
    ("ProofRequest", "password", GIVEN_PASSWORD),
    ("VerifyMfaRequest", "mfa_token", TOKEN),
    ("VerifyMfaRequest", "code", TOKEN),
    ("VerifyMfaRequest", "backup_code", TOKEN),
];

/// Bounds of arrays and maps beside their items', by schema and property.
const SIZES: &[(&str, &str, Size)] = &[
    ("InviteRequest", "emails", Size::Items(1, Some(100), true)),
    ("ExpertiseBody", "tags", Size::Items(0, Some(50), false)),
    (
        "SecurityPolicyBody",
        "allowed_email_domains",
        Size::Items(0, Some(50), false),
    ),
    ("CreateApiKeyRequest", "scopes", Size::Items(1, None, false)),
    ("UpdateApiKeyRequest", "scopes", Size::Items(1, None, false)),
    ("TenantSettingsBody", "features", Size::Names(100)),
    ("LocationSettingsBody", "features", Size::Names(100)),
];

/// An array's item count (at least, at most, unique), or a map's names (at most).
#[derive(Clone, Copy)]
enum Size {
    Items(usize, Option<usize>, bool),
    Names(usize),
}

/// The rule of each string parameter (query or header), by path and name; `*` is any path.
const PARAMS: &[(&str, &str, Rule)] = &[
    (
        "*",
        "If-Match",
        Rule::Pattern(crate::extract::IF_MATCH_PATTERN, None),
    ),
    (
        "/api/v1/api-keys",
        "cursor",
        Rule::Pattern(ID_CURSOR_PATTERN, None),
    ),
    (
        "/api/v1/auth/sessions",
        "cursor",
        Rule::Pattern(ID_CURSOR_PATTERN, None),
    ),
    (
        "/api/v1/invitations",
        "cursor",
        Rule::Pattern(ID_CURSOR_PATTERN, None),
    ),
    (
        "/api/v1/locations",
        "cursor",
        Rule::Pattern(ID_CURSOR_PATTERN, None),
    ),
    (
        "/api/v1/locations/{id}/members",
        "cursor",
        Rule::Pattern(KEY_CURSOR_PATTERN, None),
    ),
    (
        "/api/v1/roles",
        "cursor",
        Rule::Pattern(KEY_CURSOR_PATTERN, None),
    ),
    (
        "/api/v1/users",
        "cursor",
        Rule::Pattern(KEY_CURSOR_PATTERN, None),
    ),
    (
        "/api/v1/invitations",
        "status",
        Rule::Choice(invitation_statuses),
    ),
    ("/api/v1/users", "role", ROLE),
    ("/api/v1/users", "status", Rule::Choice(member_statuses)),
    ("/api/v1/users", "location_id", Rule::Uuid),
    (
        "/api/v1/users",
        "q",
        Rule::Text(tenantry_tenancy::SEARCH, false),
    ),
];

/// Request bodies that take exactly one of two fields (the other absent or `null`).
const ONE_OF: &[(&str, &str, &str)] = &[
    ("ProofRequest", "code", "password"),
    ("VerifyMfaRequest", "code", "backup_code"),
];

/// Applies the table to a generated document.
pub fn refine(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    for (schema, property, rule) in BODY {
        let target = property_mut(schemas, schema, property);
        apply(rule, target);
    }
    for (schema, property, size) in SIZES {
        let target = property_mut(schemas, schema, property);
        match *size {
            Size::Items(min, max, unique) => {
                target["minItems"] = min.into();
                if let Some(max) = max {
                    target["maxItems"] = max.into();
                }
                if unique {
                    target["uniqueItems"] = true.into();
                }
            }
            Size::Names(max) => {
                target["maxProperties"] = max.into();
                target["propertyNames"] =
                    json!({"type": "string", "pattern": tenantry_tenancy::FEATURE_NAME_PATTERN});
            }
        }
    }
    for (schema, a, b) in ONE_OF {
        let only =
            |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
        schemas[*schema]["oneOf"] = json!([only(a), only(b)]);
    }
    unwrap_single_one_of(doc);
    bound_integers(doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths {
            for op in item.as_object_mut().into_iter().flat_map(Map::values_mut) {
                refine_operation(path, op);
            }
        }
    }
}

/// The schema of `schema.property`; the table names only properties the document has.
fn property_mut<'a>(schemas: &'a mut Value, schema: &str, property: &str) -> &'a mut Value {
    let found = schemas
        .get_mut(schema)
        .and_then(|s| s.get_mut("properties"))
        .and_then(|p| p.get_mut(property));
    match found {
        Some(target) => target,
        None => unreachable!("the contract names {schema}.{property}, which the document lacks"),
    }
}

/// The parameters' rules, and the answers every body and every query can get.
fn refine_operation(path: &str, op: &mut Value) {
    let mut has_query = false;
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for param in params {
            let name = param["name"].as_str().unwrap_or_default().to_owned();
            has_query |= param["in"] == "query";
            // A parameter is there or not; `null` is no value a query or header can carry.
            if param["in"] != "path"
                && let Some(types) = param["schema"]["type"].as_array_mut()
            {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    param["schema"]["type"] = only.clone();
                }
            }
            if let Some((_, _, rule)) = PARAMS
                .iter()
                .find(|(p, n, _)| (*p == path || *p == "*") && *n == name)
            {
                apply(rule, &mut param["schema"]);
            }
        }
    }
    let has_body = op.get("requestBody").is_some();
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut answer = |status: &str, description: &str| {
        responses.entry(status).or_insert_with(|| {
            json!({
                "description": description,
                "content": {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}
            })
        });
    };
    if has_body {
        answer("400", "Malformed JSON (`malformed_json`)");
        answer("413", "Body too large (`payload_too_large`)");
        answer("415", "Not JSON (`unsupported_media_type`)");
        answer("422", "Invalid fields, each named (`validation_failed`)");
    }
    if has_query {
        answer(
            "422",
            "Invalid parameters, each named (`validation_failed`)",
        );
    }
}

/// Puts `rule` on the schema of one value (or, for a nullable value, on its non-null part).
fn apply(rule: &Rule, target: &mut Value) {
    let nullable = target["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    match *rule {
        Rule::Text(text, required) => {
            target["maxLength"] = text.max.into();
            target["pattern"] = if required {
                text.required_pattern()
            } else {
                text.optional_pattern()
            }
            .into();
        }
        Rule::Pattern(pattern, max) => {
            target["pattern"] = pattern.into();
            if let Some(max) = max {
                target["maxLength"] = max.into();
            }
        }
        Rule::Patterns(patterns, max) => {
            if let Some((first, rest)) = patterns.split_first() {
                target["pattern"] = (*first).into();
                target["allOf"] = rest
                    .iter()
                    .map(|p| serde_json::json!({ "pattern": p }))
                    .collect();
            }
            if let Some(max) = max {
                target["maxLength"] = max.into();
            }
        }
        Rule::Plain(min, max) => {
            target["pattern"] = plain_pattern().into();
            if let Some(min) = min {
                target["minLength"] = min.into();
            }
            if let Some(max) = max {
                target["maxLength"] = max.into();
            }
        }
        Rule::Choice(names) => {
            let mut names: Vec<Value> = names().into_iter().map(Value::from).collect();
            if nullable {
                names.push(Value::Null);
            }
            target["enum"] = names.into();
        }
        Rule::OneOfNames(names) => {
            let names: Vec<String> = names().iter().map(|n| regex::escape(n)).collect();
            target["pattern"] = format!("^(?:{})$", names.join("|")).into();
        }
        Rule::Each(inner) => apply(inner, &mut target["items"]),
        Rule::Uuid => target["format"] = "uuid".into(),
    }
}

/// Every integer gets the bounds of the type that reads it (`format: u-int32` is only an
/// annotation): a larger number would be refused, so the document says so.
fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let bounds = match map.get("format").and_then(Value::as_str) {
                Some("int32") => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
                Some("u-int32") => Some((0, i128::from(u32::MAX))),
                Some("int64") => Some((i128::from(i64::MIN), i128::from(i64::MAX))),
                Some("u-int64") => Some((0, i128::from(u64::MAX))),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                map.entry("minimum").or_insert_with(|| bound(min));
                map.entry("maximum").or_insert_with(|| bound(max));
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

fn bound(n: i128) -> Value {
    u64::try_from(n).map_or_else(
        |_| Value::from(i64::try_from(n).unwrap_or(i64::MIN)),
        Value::from,
    )
}

/// `{"oneOf": [X], …}` is X with the rest: generators read a one-element `oneOf` (which the
/// derive writes around a described or defaulted reference) as a union and choke on its
/// object default. The default is dropped: the referenced schema's own defaults say it.
fn unwrap_single_one_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let single = map
                .get("oneOf")
                .and_then(Value::as_array)
                .filter(|alternatives| alternatives.len() == 1)
                .and_then(|alternatives| alternatives[0].as_object())
                .cloned();
            if let Some(only) = single {
                map.remove("oneOf");
                if map.get("default").is_some_and(Value::is_object) {
                    map.remove("default");
                }
                for (k, v) in only {
                    map.entry(k).or_insert(v);
                }
            }
            for v in map.values_mut() {
                unwrap_single_one_of(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_single_one_of),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        let mut doc = serde_json::to_value(crate::openapi::document()).unwrap();
        refine(&mut doc);
        doc
    }

    /// Whether a string schema says what it takes: a format, a choice or a pattern.
    fn described(schema: &Value) -> bool {
        schema.get("format").is_some()
            || schema.get("enum").is_some()
            || schema.get("pattern").is_some()
    }

    fn is_string(schema: &Value) -> bool {
        schema["type"] == "string"
            || schema["type"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "string"))
    }

    /// Every string a client can send — in a body (at any depth), a query or a header — is
    /// described by a format, a choice or a pattern.
    #[test]
    fn every_string_a_request_carries_is_described() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let mut bodies = Vec::new();
        let mut undescribed = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(r) =
                    op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
                {
                    bodies.push(r.rsplit('/').next().unwrap().to_owned());
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] != "path" && is_string(&p["schema"]) && !described(&p["schema"]) {
                        undescribed.push(format!("{method} {path} {}", p["name"]));
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        while let Some(name) = bodies.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let schema = &schemas[&name];
            for (property, s) in schema["properties"].as_object().into_iter().flatten() {
                let text = s.to_string();
                for r in text
                    .split('"')
                    .filter(|t| t.starts_with("#/components/schemas/"))
                {
                    bodies.push(r.rsplit('/').next().unwrap().to_owned());
                }
                let leaf = if s["items"].is_object() {
                    &s["items"]
                } else {
                    s
                };
                if is_string(leaf) && !described(leaf) {
                    undescribed.push(format!("{name}.{property}"));
                }
            }
        }
        assert!(undescribed.is_empty(), "undescribed: {undescribed:#?}");
    }

    #[test]
    fn one_element_unions_are_unwrapped() {
        let doc = document();
        let branding =
            &doc["components"]["schemas"]["TenantSettingsBody"]["properties"]["branding"];
        assert_eq!(branding["$ref"], "#/components/schemas/BrandingBody");
        assert!(branding.get("oneOf").is_none() && branding.get("default").is_none());
    }
}
