//! Function access: who may call a function (its policy) and which browser
//! origins may (its CORS settings). Checked by the host before anything is
//! instantiated.
//!
//! Invariants:
//! - a function with no stored policy is `authenticated`: nothing is public
//!   by accident;
//! - comparisons are exact: a group named `Admin` or `аdmin` (Cyrillic `а`) is
//!   not `admin`, and the metadata string `"1"` is not the number `1`. Group
//!   names in policies are restricted to lower-case ASCII so a look-alike
//!   cannot even be written into a policy;
//! - a policy is parsed and validated once, when it is stored; evaluation
//!   cannot fail, only allow or deny.

use crate::identity::{Caller, Role, validate_group_name};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Conditions nest at most this deep (`all` inside `any` inside ...).
const MAX_CONDITION_DEPTH: usize = 4;
/// Conditions (leaves and groups) in one policy, at most.
const MAX_CONDITIONS: usize = 64;

/// Who may call a function.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Anyone; a valid token still identifies the caller.
    Public,
    /// Any signed-in, non-disabled user.
    Authenticated,
    /// Members of any (or all) of the groups.
    Group { groups: Vec<String>, require_all: bool },
    /// Users whose metadata satisfies the condition.
    Metadata(Condition),
}

/// A test of user metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
    /// `metadata[key]` equals the value exactly (same JSON type and value).
    Equals(String, Value),
    /// `metadata[key]` equals one of the values exactly.
    In(String, Vec<Value>),
    /// `metadata[key]` is present (`true`) or absent (`false`).
    Exists(String, bool),
    /// `metadata[key]` is a number and compares so with the bound.
    Compare(String, Comparison, f64),
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Comparison {
    const ALL: [(&'static str, Comparison); 4] =
        [("gt", Comparison::Gt), ("gte", Comparison::Gte), ("lt", Comparison::Lt), ("lte", Comparison::Lte)];

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, c)| *c == self).map(|(name, _)| *name).expect("every comparison is listed")
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Comparison::Gt => left > right,
            Comparison::Gte => left >= right,
            Comparison::Lt => left < right,
            Comparison::Lte => left <= right,
        }
    }
}

/// The answer to "may this caller run this function?".
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    /// No (valid) credentials where some are needed: 401.
    Unauthenticated(String),
    /// A valid caller that the policy does not admit: 403. The reason names
    /// the policy's requirement, never another user or the caller's data.
    Forbidden(String),
}

impl Policy {
    /// The policy of a function that has none.
    pub const DEFAULT: Policy = Policy::Authenticated;

    /// Parses and validates a policy as the admin API and manifests write it.
    pub fn parse(value: &Value) -> Result<Policy, String> {
        let object = value.as_object().ok_or("a policy is a JSON object like {\"type\": \"authenticated\"}")?;
        let kind = object.get("type").and_then(Value::as_str).ok_or(
            "a policy needs a \"type\": \"public\", \"authenticated\", \"group\" or \"metadata\"",
        )?;
        let allowed: &[&str] = match kind {
            "public" | "authenticated" => &["type"],
            "group" => &["type", "groups", "require"],
            "metadata" => &["type", "all", "any"],
            other => {
                return Err(format!(
                    "unknown policy type {other:?}; use \"public\", \"authenticated\", \"group\" or \"metadata\""
                ));
            }
        };
        if let Some(extra) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("a {kind} policy has no field {extra:?} (its fields: {})", allowed.join(", ")));
        }
        match kind {
            "public" => Ok(Policy::Public),
            "authenticated" => Ok(Policy::Authenticated),
            "group" => {
                let groups = object
                    .get("groups")
                    .and_then(Value::as_array)
                    .filter(|g| !g.is_empty())
                    .ok_or("a group policy needs \"groups\": a non-empty list of group names")?;
                let groups = groups
                    .iter()
                    .map(|g| {
                        let name = g.as_str().ok_or("group names are strings")?;
                        validate_group_name(name)?;
                        Ok(name.to_owned())
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                let require_all = match object.get("require").map(|r| r.as_str()) {
                    None | Some(Some("any")) => false,
                    Some(Some("all")) => true,
                    _ => return Err("\"require\" is \"any\" (the default) or \"all\"".into()),
                };
                Ok(Policy::Group { groups, require_all })
            }
            _ => {
                let condition = match (object.get("all"), object.get("any")) {
                    (Some(all), None) => Condition::All(parse_list(all, "all", 1, &mut 0)?),
                    (None, Some(any)) => Condition::Any(parse_list(any, "any", 1, &mut 0)?),
                    _ => return Err("a metadata policy has exactly one of \"all\" or \"any\": a list of conditions".into()),
                };
                Ok(Policy::Metadata(condition))
            }
        }
    }

    /// The policy's type, as its JSON names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Policy::Public => "public",
            Policy::Authenticated => "authenticated",
            Policy::Group { .. } => "group",
            Policy::Metadata(_) => "metadata",
        }
    }

    /// The policy as JSON, in the form [`Policy::parse`] reads.
    pub fn to_json(&self) -> Value {
        match self {
            Policy::Public | Policy::Authenticated => json!({"type": self.kind()}),
            Policy::Group { groups, require_all } => {
                json!({"type": "group", "groups": groups, "require": if *require_all { "all" } else { "any" }})
            }
            Policy::Metadata(condition) => {
                let mut value = condition.to_json();
                value["type"] = json!("metadata");
                value
            }
        }
    }

    /// Decides for `caller` (`None`: no credentials were presented).
    pub fn decide(&self, caller: Option<&Caller>) -> Decision {
        let caller = match (self, caller) {
            (Policy::Public, _) => return Decision::Allow,
            (_, None) => {
                return Decision::Unauthenticated("this function needs a signed-in caller: Authorization: Bearer <access token>".into());
            }
            // The admin key is the service role: it may call anything, as the
            // admin console's test requests do.
            (_, Some(caller)) if caller.role == Role::Service => return Decision::Allow,
            (_, Some(caller)) => caller,
        };
        match self {
            Policy::Public | Policy::Authenticated => Decision::Allow,
            Policy::Group { groups, require_all } => {
                let member = |group: &String| caller.groups.iter().any(|g| g == group);
                let admitted = if *require_all { groups.iter().all(member) } else { groups.iter().any(member) };
                if admitted {
                    Decision::Allow
                } else {
                    let quantifier = if *require_all { "all of" } else { "one of" };
                    Decision::Forbidden(format!("this function is limited to members of {quantifier} the groups {groups:?}"))
                }
            }
            Policy::Metadata(condition) => {
                if condition.holds(&caller.metadata) {
                    Decision::Allow
                } else {
                    Decision::Forbidden("your account's attributes do not meet this function's access conditions".into())
                }
            }
        }
    }
}

fn parse_list(value: &Value, field: &str, depth: usize, count: &mut usize) -> Result<Vec<Condition>, String> {
    let items = value
        .as_array()
        .filter(|items| !items.is_empty())
        .ok_or_else(|| format!("\"{field}\" is a non-empty list of conditions"))?;
    items.iter().map(|item| parse_condition(item, depth, count)).collect()
}

fn parse_condition(value: &Value, depth: usize, count: &mut usize) -> Result<Condition, String> {
    *count += 1;
    if *count > MAX_CONDITIONS {
        return Err(format!("a policy may hold at most {MAX_CONDITIONS} conditions"));
    }
    let object = value.as_object().ok_or_else(|| {
        format!("a condition is an object like {{\"key\": \"department\", \"equals\": \"engineering\"}}, not {value}")
    })?;
    for group in ["all", "any"] {
        if let Some(inner) = object.get(group) {
            if object.len() != 1 {
                return Err(format!("a condition with \"{group}\" has no other fields"));
            }
            if depth >= MAX_CONDITION_DEPTH {
                return Err(format!("conditions nest at most {MAX_CONDITION_DEPTH} levels deep"));
            }
            let list = parse_list(inner, group, depth + 1, count)?;
            return Ok(if group == "all" { Condition::All(list) } else { Condition::Any(list) });
        }
    }
    let key = object
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && k.len() <= 128)
        .ok_or("a condition needs \"key\": the metadata attribute it tests (1 to 128 characters)")?
        .to_owned();
    let operators: Vec<&String> = object.keys().filter(|k| *k != "key").collect();
    let [operator] = operators.as_slice() else {
        return Err(format!(
            "the condition on {key:?} needs exactly one operator: equals, in, exists, gt, gte, lt or lte"
        ));
    };
    let operand = &object[operator.as_str()];
    match operator.as_str() {
        "equals" => {
            if operand.is_array() || operand.is_object() || operand.is_null() {
                return Err(format!("\"equals\" on {key:?} compares with a string, number or boolean"));
            }
            Ok(Condition::Equals(key, operand.clone()))
        }
        "in" => {
            let values = operand
                .as_array()
                .filter(|v| !v.is_empty() && v.iter().all(|v| v.is_string() || v.is_number() || v.is_boolean()))
                .ok_or_else(|| format!("\"in\" on {key:?} takes a non-empty list of strings, numbers or booleans"))?;
            Ok(Condition::In(key, values.clone()))
        }
        "exists" => {
            let exists = operand.as_bool().ok_or_else(|| format!("\"exists\" on {key:?} is true or false"))?;
            Ok(Condition::Exists(key, exists))
        }
        name => {
            let (_, comparison) = Comparison::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| format!("unknown operator {name:?} on {key:?}; use equals, in, exists, gt, gte, lt or lte"))?;
            let bound = operand.as_f64().filter(|_| operand.is_number()).ok_or_else(|| {
                format!("\"{name}\" on {key:?} compares with a number (a quoted number is text, not a number)")
            })?;
            Ok(Condition::Compare(key, *comparison, bound))
        }
    }
}

impl Condition {
    fn to_json(&self) -> Value {
        match self {
            Condition::All(list) => json!({"all": list.iter().map(Condition::to_json).collect::<Vec<_>>()}),
            Condition::Any(list) => json!({"any": list.iter().map(Condition::to_json).collect::<Vec<_>>()}),
            Condition::Equals(key, value) => json!({"key": key, "equals": value}),
            Condition::In(key, values) => json!({"key": key, "in": values}),
            Condition::Exists(key, exists) => json!({"key": key, "exists": exists}),
            Condition::Compare(key, comparison, bound) => {
                let mut value = json!({"key": key});
                value[comparison.name()] = json!(bound);
                value
            }
        }
    }

    /// True when `metadata` satisfies this condition. Types must match: no
    /// coercion between strings, numbers and booleans.
    pub fn holds(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Condition::All(list) => list.iter().all(|c| c.holds(metadata)),
            Condition::Any(list) => list.iter().any(|c| c.holds(metadata)),
            Condition::Equals(key, expected) => metadata.get(key).is_some_and(|actual| same_value(actual, expected)),
            Condition::In(key, options) => {
                metadata.get(key).is_some_and(|actual| options.iter().any(|o| same_value(actual, o)))
            }
            Condition::Exists(key, exists) => metadata.get(key).is_some_and(|v| !v.is_null()) == *exists,
            Condition::Compare(key, comparison, bound) => metadata
                .get(key)
                .filter(|v| v.is_number())
                .and_then(Value::as_f64)
                .is_some_and(|actual| comparison.holds(actual, *bound)),
        }
    }
}

/// Exact equality, with `1` and `1.0` equal (JSON does not tell them apart)
/// but `"1"` and `1` not.
fn same_value(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => actual == expected,
    }
}

/// Which browser origins may call a function, answered by the host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cors {
    /// Exact origins (`https://app.example.com`), or `["*"]` for any.
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for.
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for (lower-case), or `["*"]`.
    pub allow_headers: Vec<String>,
    /// Response headers the page may read.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer.
    pub max_age_seconds: u32,
    /// Whether the page may send cookies or credentials.
    pub allow_credentials: bool,
}

impl Cors {
    /// Parses and validates CORS settings.
    pub fn parse(value: &Value) -> Result<Cors, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            allow_origins: Vec<String>,
            #[serde(default)]
            allow_methods: Option<Vec<String>>,
            #[serde(default)]
            allow_headers: Option<Vec<String>>,
            #[serde(default)]
            expose_headers: Vec<String>,
            #[serde(default)]
            max_age_seconds: Option<u32>,
            #[serde(default)]
            allow_credentials: bool,
        }
        let raw: Raw = serde_json::from_value(value.clone()).map_err(|e| {
            format!("{e}; expected {{\"allow_origins\": [\"https://app.example.com\"], \"allow_methods\", \"allow_headers\", \"expose_headers\", \"max_age_seconds\", \"allow_credentials\"}}")
        })?;
        if raw.allow_origins.is_empty() {
            return Err("\"allow_origins\" needs at least one origin (or \"*\")".into());
        }
        for origin in &raw.allow_origins {
            let valid = origin == "*"
                || ((origin.starts_with("https://") || origin.starts_with("http://"))
                    && origin.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.contains('/')));
            if !valid {
                return Err(format!("{origin:?} is not an origin: use scheme://host[:port] with no path, or \"*\""));
            }
        }
        if raw.allow_credentials && raw.allow_origins.iter().any(|o| o == "*") {
            return Err("browsers refuse credentials with the origin \"*\": list the origins explicitly".into());
        }
        let methods = raw
            .allow_methods
            .unwrap_or_else(|| ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].map(String::from).to_vec());
        for method in &methods {
            if method.parse::<http::Method>().is_err() || method.is_empty() {
                return Err(format!("{method:?} is not an HTTP method"));
            }
        }
        let headers = raw.allow_headers.unwrap_or_else(|| vec!["authorization".into(), "content-type".into()]);
        for header in headers.iter().chain(&raw.expose_headers) {
            if header != "*" && http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(format!("{header:?} is not a header name"));
            }
        }
        Ok(Cors {
            allow_origins: raw.allow_origins,
            allow_methods: methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
            allow_headers: headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            expose_headers: raw.expose_headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            max_age_seconds: raw.max_age_seconds.unwrap_or(600).min(86_400),
            allow_credentials: raw.allow_credentials,
        })
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if it is allowed.
    pub fn allowed_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == origin) {
            Some(origin.to_owned())
        } else if self.allow_origins.iter().any(|o| o == "*") {
            Some("*".to_owned())
        } else {
            None
        }
    }

    /// Whether a preflight asking for `method` and `headers` is allowed.
    pub fn allows_preflight(&self, method: &str, headers: &[String]) -> bool {
        let method_allowed = self.allow_methods.iter().any(|m| m.eq_ignore_ascii_case(method))
            // Simple methods need no listing.
            || matches!(method, "GET" | "HEAD" | "POST");
        let any_header = self.allow_headers.iter().any(|h| h == "*");
        method_allowed && (any_header || headers.iter().all(|h| self.allow_headers.iter().any(|a| a.eq_ignore_ascii_case(h))))
    }
}

/// The host's answer to a CORS preflight: the allow headers when the origin,
/// method and headers are allowed, none otherwise (the browser then blocks
/// the request). Always 204: a preflight never reaches the function.
pub fn preflight(cors: Option<&Cors>, origin: Option<&str>, request: &http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http::header;
    let mut response = http::StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::VARY, http::HeaderValue::from_static("Origin"));
    let (Some(cors), Some(origin)) = (cors, origin) else { return response };
    let method = request.get(header::ACCESS_CONTROL_REQUEST_METHOD).and_then(|v| v.to_str().ok()).unwrap_or("");
    let asked: Vec<String> = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect())
        .unwrap_or_default();
    let Some(allowed_origin) = cors.allowed_origin(origin) else { return response };
    if !cors.allows_preflight(method, &asked) {
        return response;
    }
    let value = |text: &str| http::HeaderValue::from_str(text).ok();
    if let Some(v) = value(&allowed_origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if let Some(v) = value(&cors.allow_methods.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    let allow_headers = if cors.allow_headers.iter().any(|h| h == "*") { asked.join(", ") } else { cors.allow_headers.join(", ") };
    if let Some(v) = value(&allow_headers).filter(|v| !v.is_empty()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, http::HeaderValue::from(cors.max_age_seconds));
    if cors.allow_credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, http::HeaderValue::from_static("true"));
    }
    response
}

/// Adds the CORS headers for an allowed `origin` to an actual response
/// (including a 401 or 403, so the page can read why), unless the function
/// set its own.
pub fn decorate(cors: &Cors, origin: &str, headers: &mut http::HeaderMap) {
    use http::header;
    let Some(allowed) = cors.allowed_origin(origin) else { return };
    if headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    if let Ok(v) = http::HeaderValue::from_str(&allowed) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    headers.append(header::VARY, http::HeaderValue::from_static("Origin"));
    if cors.allow_credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, http::HeaderValue::from_static("true"));
    }
    if !cors.expose_headers.is_empty()
        && let Ok(v) = http::HeaderValue::from_str(&cors.expose_headers.join(", "))
    {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}

/// A function's access settings, as stored beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub policy: Policy,
    pub cors: Option<Cors>,
}

impl Default for Access {
    fn default() -> Self {
        Access { policy: Policy::DEFAULT, cors: None }
    }
}

impl Access {
    /// Reads stored settings; `None` (never set) is the default.
    pub fn from_stored(stored: Option<&str>) -> Result<Access, String> {
        let Some(text) = stored else { return Ok(Access::default()) };
        let value: Value = serde_json::from_str(text).map_err(|e| format!("stored access settings are not JSON: {e}"))?;
        Access::parse(&value)
    }

    /// Parses `{"policy": ..., "cors": ...}`; a missing policy is the default.
    pub fn parse(value: &Value) -> Result<Access, String> {
        let object = value.as_object().ok_or("access settings are an object: {\"policy\": {...}, \"cors\": {...}}")?;
        if let Some(extra) = object.keys().find(|k| *k != "policy" && *k != "cors") {
            return Err(format!("access settings have no field {extra:?} (use \"policy\" and \"cors\")"));
        }
        Access::default().overridden(object.get("policy"), object.get("cors"))
    }

    /// These settings with a policy and CORS settings, when given, replacing
    /// their own (a `null` CORS value removes them), validated.
    pub fn overridden(&self, policy: Option<&Value>, cors: Option<&Value>) -> Result<Access, String> {
        let mut access = self.clone();
        if let Some(policy) = policy {
            access.policy = Policy::parse(policy).map_err(|e| format!("invalid policy: {e}"))?;
        }
        if let Some(cors) = cors {
            access.cors = match cors {
                Value::Null => None,
                cors => Some(Cors::parse(cors).map_err(|e| format!("invalid CORS settings: {e}"))?),
            };
        }
        Ok(access)
    }

    /// The settings as the admin API shows them and the database stores them.
    pub fn to_json(&self) -> Value {
        json!({"policy": self.policy.to_json(), "cors": self.cors})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str], metadata: Value) -> Caller {
        Caller {
            id: "u1".into(),
            email: Some("ada@example.com".into()),
            role: Role::Authenticated,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            metadata: metadata.as_object().cloned().unwrap_or_default(),
            source: crate::identity::CallerSource::User,
            actor: None,
        }
    }

    fn policy(value: Value) -> Policy {
        Policy::parse(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    #[test]
    fn every_policy_round_trips_through_json() {
        for value in [
            json!({"type": "public"}),
            json!({"type": "authenticated"}),
            json!({"type": "group", "groups": ["admin", "ops"], "require": "all"}),
            json!({"type": "metadata", "all": [
                {"key": "department", "equals": "engineering"},
                {"key": "plan", "in": ["pro", "team"]},
                {"any": [{"key": "seats", "gte": 5.0}, {"key": "beta", "exists": true}]}
            ]}),
        ] {
            assert_eq!(policy(value.clone()).to_json(), value);
        }
    }

    #[test]
    fn invalid_policies_say_what_is_wrong() {
        for (value, expected) in [
            (json!("public"), "JSON object"),
            (json!({"type": "everyone"}), "unknown policy type"),
            (json!({"type": "group", "groups": []}), "non-empty"),
            (json!({"type": "group", "groups": ["Admin"]}), "lower-case"),
            (json!({"type": "group", "groups": ["\u{0430}dmin"]}), "lower-case"),
            (json!({"type": "group", "groups": ["admin"], "require": "most"}), "\"all\""),
            (json!({"type": "metadata"}), "exactly one"),
            (json!({"type": "metadata", "all": [{"key": "seats", "gte": "5"}]}), "quoted number"),
            (json!({"type": "metadata", "all": [{"key": "plan", "in": []}]}), "non-empty list"),
            (json!({"type": "metadata", "all": [{"key": "plan", "like": "p%"}]}), "unknown operator"),
            (json!({"type": "metadata", "all": [{"key": "a", "equals": 1, "gt": 0}]}), "exactly one operator"),
            (json!({"type": "public", "groups": ["x"]}), "no field"),
        ] {
            let error = Policy::parse(&value).expect_err(&value.to_string());
            assert!(error.contains(expected), "{value}: {error}");
        }
    }

    #[test]
    fn anonymous_callers_pass_only_public() {
        assert_eq!(Policy::Public.decide(None), Decision::Allow);
        for p in [Policy::Authenticated, policy(json!({"type": "group", "groups": ["admin"]}))] {
            assert!(matches!(p.decide(None), Decision::Unauthenticated(_)));
        }
    }

    #[test]
    fn groups_match_exactly() {
        let any = policy(json!({"type": "group", "groups": ["admin", "ops"]}));
        let all = policy(json!({"type": "group", "groups": ["admin", "ops"], "require": "all"}));
        assert_eq!(any.decide(Some(&user(&["ops"], json!({})))), Decision::Allow);
        assert!(matches!(all.decide(Some(&user(&["ops"], json!({})))), Decision::Forbidden(_)));
        assert_eq!(all.decide(Some(&user(&["ops", "admin"], json!({})))), Decision::Allow);
        for lookalike in ["Admin", "ADMIN", "\u{0430}dmin", "admin ", "adm\u{0131}n"] {
            assert!(matches!(any.decide(Some(&user(&[lookalike], json!({})))), Decision::Forbidden(_)), "{lookalike}");
        }
    }

    #[test]
    fn metadata_conditions_do_not_coerce_types() {
        let p = policy(json!({"type": "metadata", "all": [
            {"key": "department", "equals": "engineering"},
            {"key": "plan", "in": ["pro", "team"]},
            {"key": "level", "gte": 3}
        ]}));
        let allowed = user(&[], json!({"department": "engineering", "plan": "team", "level": 3}));
        assert_eq!(p.decide(Some(&allowed)), Decision::Allow);
        for metadata in [
            json!({"department": "Engineering", "plan": "team", "level": 3}),
            json!({"department": "engineering", "plan": "free", "level": 3}),
            json!({"department": "engineering", "plan": "team", "level": "3"}),
            json!({"department": "engineering", "plan": "team", "level": 2.5}),
            json!({"department": "engineering", "plan": ["team"], "level": 3}),
            json!({"plan": "team", "level": 3}),
        ] {
            assert!(matches!(p.decide(Some(&user(&[], metadata.clone()))), Decision::Forbidden(_)), "{metadata}");
        }
        let one = policy(json!({"type": "metadata", "all": [{"key": "tier", "equals": 1}]}));
        assert_eq!(one.decide(Some(&user(&[], json!({"tier": 1.0})))), Decision::Allow);
        assert!(matches!(one.decide(Some(&user(&[], json!({"tier": "1"})))), Decision::Forbidden(_)));
        let exists = policy(json!({"type": "metadata", "any": [{"key": "beta", "exists": true}]}));
        assert!(matches!(exists.decide(Some(&user(&[], json!({"beta": null})))), Decision::Forbidden(_)));
        assert_eq!(exists.decide(Some(&user(&[], json!({"beta": false})))), Decision::Allow);
    }

    #[test]
    fn cors_settings_are_validated() {
        assert!(Cors::parse(&json!({"allow_origins": ["https://app.example.com"]})).is_ok());
        for bad in [
            json!({"allow_origins": []}),
            json!({"allow_origins": ["app.example.com"]}),
            json!({"allow_origins": ["https://app.example.com/path"]}),
            json!({"allow_origins": ["*"], "allow_credentials": true}),
            json!({"allow_origins": ["*"], "allow_methods": ["GE T"]}),
            json!({"allow_origins": ["*"], "colour": "blue"}),
        ] {
            assert!(Cors::parse(&bad).is_err(), "{bad}");
        }
        let cors = Cors::parse(&json!({"allow_origins": ["https://a.example"], "allow_methods": ["PUT"]})).unwrap();
        assert_eq!(cors.allowed_origin("https://a.example").as_deref(), Some("https://a.example"));
        assert_eq!(cors.allowed_origin("https://evil.example"), None);
        assert!(cors.allows_preflight("PUT", &["content-type".into()]));
        assert!(!cors.allows_preflight("DELETE", &[]));
        assert!(!cors.allows_preflight("PUT", &["x-custom".into()]));
    }
}
