//! SQL text with bound values, for both backends.
//!
//! Invariant: nothing a function or a policy supplies is ever spliced into SQL
//! text. Identifiers are pushed only after the schema has vouched for them
//! (and are quoted anyway); every value goes through [`SqlBuilder::push_value`],
//! which binds it as a parameter converted to the column's declared type.

use base64::Engine as _;
use sea_orm::{DbBackend, QueryResult, Statement, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The database edgefn runs on; app tables live in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// `DATABASE_URL=postgres://...`.
    Postgres,
}

impl Backend {
    /// The backend of a sea-orm connection (MySQL is not supported by edgefn).
    pub fn of(backend: DbBackend) -> Self {
        match backend {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    fn sea_orm(self) -> DbBackend {
        match self {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
        }
    }
}

/// The column types an app table may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Integer,
    Real,
    Boolean,
    /// An instant, exchanged as an RFC 3339 string and returned in UTC.
    Timestamp,
    /// Any JSON value.
    Json,
    Uuid,
    /// Bytes, exchanged as base64.
    Blob,
}

impl ColumnType {
    /// The type's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Real => "real",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Json => "json",
            ColumnType::Uuid => "uuid",
            ColumnType::Blob => "blob",
        }
    }

    /// The SQL type the column is created with.
    pub fn sql_type(self, backend: Backend) -> &'static str {
        match (backend, self) {
            (Backend::Sqlite, ColumnType::Text | ColumnType::Timestamp | ColumnType::Json | ColumnType::Uuid) => "TEXT",
            (Backend::Sqlite, ColumnType::Integer | ColumnType::Boolean) => "INTEGER",
            (Backend::Sqlite, ColumnType::Real) => "REAL",
            (Backend::Sqlite, ColumnType::Blob) => "BLOB",
            (Backend::Postgres, ColumnType::Text) => "TEXT",
            (Backend::Postgres, ColumnType::Integer) => "BIGINT",
            (Backend::Postgres, ColumnType::Real) => "DOUBLE PRECISION",
            (Backend::Postgres, ColumnType::Boolean) => "BOOLEAN",
            (Backend::Postgres, ColumnType::Timestamp) => "TIMESTAMPTZ",
            (Backend::Postgres, ColumnType::Json) => "JSONB",
            (Backend::Postgres, ColumnType::Uuid) => "UUID",
            (Backend::Postgres, ColumnType::Blob) => "BYTEA",
        }
    }

    /// Whether `<`, `>`, `like` make sense on it.
    pub fn is_ordered(self) -> bool {
        !matches!(self, ColumnType::Json | ColumnType::Blob | ColumnType::Boolean)
    }
}

/// A JSON value that does not fit the column it is meant for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct ValueError {
    /// What the column takes, in words.
    pub expected: &'static str,
    /// What arrived, in words.
    pub got: String,
}

fn describe(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) if s.chars().count() > 40 => format!("a {}-character string", s.chars().count()),
        Json::String(s) => format!("the string {s:?}"),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

/// Timestamps are kept in one canonical UTC form on SQLite so that text order
/// is time order (millisecond precision, like `Date`).
pub fn canonical_timestamp(instant: chrono::DateTime<chrono::Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A JSON value converted to what `column` stores; `Ok(None)` for null.
pub fn typed_value(column: ColumnType, backend: Backend, value: &Json) -> Result<Value, ValueError> {
    let mismatch = |expected| ValueError { expected, got: describe(value) };
    if value.is_null() {
        return Ok(null_of(column, backend));
    }
    Ok(match column {
        ColumnType::Text => Value::String(Some(value.as_str().ok_or_else(|| mismatch("a string"))?.to_owned())),
        ColumnType::Integer => Value::BigInt(Some(value.as_i64().ok_or_else(|| mismatch("an integer"))?)),
        ColumnType::Real => Value::Double(Some(value.as_f64().ok_or_else(|| mismatch("a number"))?)),
        ColumnType::Boolean => Value::Bool(Some(value.as_bool().ok_or_else(|| mismatch("true or false"))?)),
        ColumnType::Timestamp => {
            let text = value.as_str().ok_or_else(|| mismatch("an RFC 3339 timestamp string"))?;
            let instant = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| mismatch("an RFC 3339 timestamp like 2026-01-31T12:00:00Z"))?
                .with_timezone(&chrono::Utc);
            match backend {
                Backend::Sqlite => Value::String(Some(canonical_timestamp(instant))),
                Backend::Postgres => Value::ChronoDateTimeUtc(Some(instant)),
            }
        }
        ColumnType::Json => match backend {
            Backend::Sqlite => Value::String(Some(value.to_string())),
            Backend::Postgres => Value::Json(Some(Box::new(value.clone()))),
        },
        ColumnType::Uuid => {
            let text = value.as_str().ok_or_else(|| mismatch("a UUID string"))?;
            let uuid = uuid::Uuid::parse_str(text).map_err(|_| mismatch("a UUID like 0190c7b4-5d1e-7a3b-9c4d-2e6f8a1b3c5d"))?;
            Value::String(Some(uuid.hyphenated().to_string()))
        }
        ColumnType::Blob => {
            let text = value.as_str().ok_or_else(|| mismatch("base64-encoded bytes"))?;
            Value::Bytes(Some(
                base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| mismatch("base64-encoded bytes"))?,
            ))
        }
    })
}

fn null_of(column: ColumnType, backend: Backend) -> Value {
    match column {
        ColumnType::Integer => Value::BigInt(None),
        ColumnType::Real => Value::Double(None),
        ColumnType::Boolean => Value::Bool(None),
        ColumnType::Blob => Value::Bytes(None),
        ColumnType::Timestamp if backend == Backend::Postgres => Value::ChronoDateTimeUtc(None),
        ColumnType::Json if backend == Backend::Postgres => Value::Json(None),
        _ => Value::String(None),
    }
}

/// SQL text under construction, with its parameters.
#[derive(Debug)]
pub struct SqlBuilder {
    backend: Backend,
    sql: String,
    values: Vec<Value>,
}

impl SqlBuilder {
    /// An empty statement for `backend`.
    pub fn new(backend: Backend) -> Self {
        SqlBuilder { backend, sql: String::with_capacity(128), values: Vec::new() }
    }

    /// The backend the text is written for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Appends trusted SQL text: keywords, operators, punctuation.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a quoted identifier. Callers pass only names the schema has
    /// validated; the quoting is defence in depth.
    pub fn push_identifier(&mut self, name: &str) -> &mut Self {
        write_quoted(&mut self.sql, name);
        self
    }

    /// Appends an app table's name in the app namespace (see [`app_name`]).
    pub fn push_table(&mut self, table: &str) -> &mut Self {
        let name = app_name(table, self.backend, true);
        self.push(&name)
    }

    /// Appends a parameter bound to `value` converted for a `column`-typed
    /// comparison or assignment.
    pub fn push_value(&mut self, column: ColumnType, value: &Json) -> Result<&mut Self, ValueError> {
        let bound = typed_value(column, self.backend, value)?;
        Ok(self.push_bound(column, bound))
    }

    /// Appends a parameter for an already converted value.
    pub fn push_bound(&mut self, column: ColumnType, value: Value) -> &mut Self {
        self.values.push(value);
        match self.backend {
            Backend::Sqlite => self.sql.push('?'),
            Backend::Postgres => {
                let n = self.values.len();
                // Text binds become typed values where PostgreSQL would not
                // compare text with the column's type.
                match column {
                    ColumnType::Uuid => self.sql.push_str(&format!("CAST(${n} AS uuid)")),
                    _ => self.sql.push_str(&format!("${n}")),
                }
            }
        }
        self
    }

    /// Appends a text parameter (for values that are not column-typed).
    pub fn push_text(&mut self, text: &str) -> &mut Self {
        self.push_bound(ColumnType::Text, Value::String(Some(text.to_owned())))
    }

    /// Appends an integer parameter (limits, offsets).
    pub fn push_integer(&mut self, n: i64) -> &mut Self {
        self.push_bound(ColumnType::Integer, Value::BigInt(Some(n)))
    }

    /// Appends `"column" LIKE pattern` with the same meaning on both
    /// backends: `%` and `_` wildcards, `\` escapes them, `like` is
    /// case-sensitive and `ilike` is not. SQLite's own LIKE ignores ASCII case,
    /// so a case-sensitive match there is a GLOB with the pattern translated.
    pub fn push_like(&mut self, column: &str, pattern: &str, case_insensitive: bool) -> &mut Self {
        match (self.backend, case_insensitive) {
            (Backend::Postgres, false) => self.push_identifier(column).push(" LIKE ").push_text(pattern).push(" ESCAPE '\\'"),
            (Backend::Postgres, true) => self.push_identifier(column).push(" ILIKE ").push_text(pattern).push(" ESCAPE '\\'"),
            (Backend::Sqlite, true) => {
                self.push("lower(").push_identifier(column).push(") LIKE lower(").push_text(pattern).push(") ESCAPE '\\'")
            }
            (Backend::Sqlite, false) => self.push_identifier(column).push(" GLOB ").push_text(&like_to_glob(pattern)),
        }
    }

    /// Appends a column read in the form [`decode_column`] expects.
    pub fn push_select_column(&mut self, name: &str, column: ColumnType) -> &mut Self {
        match (self.backend, column) {
            (Backend::Postgres, ColumnType::Uuid | ColumnType::Json) => {
                self.push("CAST(").push_identifier(name).push(" AS text) AS ").push_identifier(name)
            }
            _ => self.push_identifier(name),
        }
    }

    /// The finished statement.
    pub fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend.sea_orm(), self.sql, self.values)
    }

    /// The SQL text so far (for tests and debugging; values are not in it).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Number of values bound so far.
    pub fn value_count(&self) -> usize {
        self.values.len()
    }
}

fn write_quoted(out: &mut String, name: &str) {
    out.push('"');
    out.push_str(&name.replace('"', "\"\""));
    out.push('"');
}

/// `name` as a quoted SQL identifier.
pub fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    write_quoted(&mut out, name);
    out
}

/// An app table's (or index's) name in the app namespace: the `app` schema
/// on PostgreSQL, the `app_` prefix on SQLite (which has no schemas).
/// `qualified` false gives the bare name PostgreSQL wants where the schema is
/// implied (an index created on a table in `app`).
pub fn app_name(name: &str, backend: Backend, qualified: bool) -> String {
    match backend {
        Backend::Postgres if qualified => format!("\"app\".{}", quoted(name)),
        Backend::Postgres => quoted(name),
        Backend::Sqlite => quoted(&format!("app_{name}")),
    }
}

/// A LIKE pattern as an equivalent GLOB pattern: GLOB's own wildcards are
/// matched literally (`[*]`), `%` and `_` become `*` and `?`, `\x` is `x`.
pub fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            '%' => {
                glob.push('*');
                continue;
            }
            '_' => {
                glob.push('?');
                continue;
            }
            '\\' => chars.next().unwrap_or('\\'),
            other => other,
        };
        match literal {
            '*' | '?' | '[' | ']' => {
                glob.push('[');
                glob.push(literal);
                glob.push(']');
            }
            other => glob.push(other),
        }
    }
    glob
}

/// Reads one column of a row selected with [`SqlBuilder::push_select_column`].
pub fn decode_column(row: &QueryResult, name: &str, column: ColumnType, backend: Backend) -> Result<Json, sea_orm::DbErr> {
    Ok(match column {
        ColumnType::Text | ColumnType::Uuid => row.try_get::<Option<String>>("", name)?.map_or(Json::Null, Json::String),
        ColumnType::Integer => row.try_get::<Option<i64>>("", name)?.map_or(Json::Null, Json::from),
        ColumnType::Real => row
            .try_get::<Option<f64>>("", name)?
            .and_then(serde_json::Number::from_f64)
            .map_or(Json::Null, Json::Number),
        ColumnType::Boolean => row.try_get::<Option<bool>>("", name)?.map_or(Json::Null, Json::Bool),
        ColumnType::Timestamp => match backend {
            Backend::Sqlite => row.try_get::<Option<String>>("", name)?.map_or(Json::Null, Json::String),
            Backend::Postgres => row
                .try_get::<Option<chrono::DateTime<chrono::Utc>>>("", name)?
                .map_or(Json::Null, |t| Json::String(canonical_timestamp(t))),
        },
        ColumnType::Json => match row.try_get::<Option<String>>("", name)? {
            None => Json::Null,
            Some(text) => serde_json::from_str(&text).map_err(|e| sea_orm::DbErr::Type(format!("column {name}: {e}")))?,
        },
        ColumnType::Blob => row
            .try_get::<Option<Vec<u8>>>("", name)?
            .map_or(Json::Null, |bytes| Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_converted_strictly_by_column_type() {
        let b = Backend::Sqlite;
        assert_eq!(typed_value(ColumnType::Integer, b, &json!(5)).unwrap(), Value::BigInt(Some(5)));
        assert!(typed_value(ColumnType::Integer, b, &json!("5")).is_err());
        assert!(typed_value(ColumnType::Integer, b, &json!(5.5)).is_err());
        assert!(typed_value(ColumnType::Text, b, &json!(1)).is_err());
        assert!(typed_value(ColumnType::Boolean, b, &json!(1)).is_err());
        assert_eq!(
            typed_value(ColumnType::Timestamp, b, &json!("2026-01-31T13:00:00+01:00")).unwrap(),
            Value::String(Some("2026-01-31T12:00:00.000Z".into()))
        );
        assert!(typed_value(ColumnType::Timestamp, b, &json!("yesterday")).is_err());
        assert!(typed_value(ColumnType::Uuid, b, &json!("' OR 1=1 --")).is_err());
        assert_eq!(typed_value(ColumnType::Json, b, &json!({"a": [1]})).unwrap(), Value::String(Some("{\"a\":[1]}".into())));
        assert_eq!(typed_value(ColumnType::Blob, b, &json!("AAE=")).unwrap(), Value::Bytes(Some(vec![0, 1])));
        assert_eq!(typed_value(ColumnType::Integer, b, &Json::Null).unwrap(), Value::BigInt(None));
    }

    #[test]
    fn placeholders_follow_the_backend() {
        let mut sqlite = SqlBuilder::new(Backend::Sqlite);
        sqlite.push_table("orders").push(" WHERE ").push_identifier("id").push(" = ");
        sqlite.push_value(ColumnType::Uuid, &json!("0190c7b4-5d1e-7a3b-9c4d-2e6f8a1b3c5d")).unwrap();
        assert_eq!(sqlite.sql(), "\"app_orders\" WHERE \"id\" = ?");

        let mut postgres = SqlBuilder::new(Backend::Postgres);
        postgres.push_table("orders").push(" WHERE ").push_identifier("a\"b").push(" = ");
        postgres.push_value(ColumnType::Integer, &json!(1)).unwrap().push(" AND x = ");
        postgres.push_value(ColumnType::Uuid, &json!("0190c7b4-5d1e-7a3b-9c4d-2e6f8a1b3c5d")).unwrap();
        assert_eq!(postgres.sql(), "\"app\".\"orders\" WHERE \"a\"\"b\" = $1 AND x = CAST($2 AS uuid)");
        assert_eq!(postgres.value_count(), 2);
    }

    #[test]
    fn like_patterns_become_case_sensitive_globs() {
        assert_eq!(like_to_glob("%@example.com"), "*@example.com");
        assert_eq!(like_to_glob("a_b\\%c*[x]?"), "a?b%c[*][[]x[]][?]");
        assert_eq!(like_to_glob("100\\_"), "100_");
    }
}
