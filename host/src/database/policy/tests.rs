//! The policy language against the attacks it must stop, the examples it
//! must compile, and the three-valued logic it must fold.

use super::compile::like_matches;
use super::*;
use serde_json::json;

const UID: &str = "0190c7b4-5d1e-7a3b-9c4d-2e6f8a1b3c5d";

fn table(name: &str) -> Option<ColumnType> {
    Some(match name {
        "owner_id" | "editor_id" => ColumnType::Uuid,
        "author" | "email" | "department" | "team" | "status" | "x" => ColumnType::Text,
        "level" | "count" | "a" | "b" => ColumnType::Integer,
        "price" => ColumnType::Real,
        "published" | "archived" => ColumnType::Boolean,
        "deleted_at" | "expires_at" => ColumnType::Timestamp,
        "data" => ColumnType::Json,
        "avatar" => ColumnType::Blob,
        _ => return None,
    })
}

fn parse(source: &str) -> PolicyExpr {
    PolicyExpr::parse(source, &table).unwrap_or_else(|e| panic!("{source:?} should parse: {e}"))
}

fn error(source: &str) -> PolicyError {
    PolicyExpr::parse(source, &table).expect_err(source)
}

fn user() -> AuthContext {
    let metadata = json!({"department": "eng", "team": "core", "clearance": 3, "since": "2020-01-01T00:00:00Z", "profile": {"a": 1}});
    AuthContext {
        uid: Some(UID.into()),
        email: Some("ada@corp.example".into()),
        role: "authenticated".into(),
        groups: vec!["admin".into(), "core".into()],
        metadata: metadata.as_object().cloned().unwrap_or_default(),
    }
}

fn anonymous() -> AuthContext {
    AuthContext { role: "anonymous".into(), ..AuthContext::default() }
}

/// The compiled SQL text and its number of bound values.
fn compile(source: &str, auth: &AuthContext, backend: Backend) -> (String, usize) {
    let mut sql = SqlBuilder::new(backend);
    parse(source).compile(auth, &mut sql);
    assert_sql_is_ours(sql.sql());
    (sql.sql().to_owned(), sql.value_count())
}

fn sqlite(source: &str, auth: &AuthContext) -> String {
    compile(source, auth, Backend::Sqlite).0
}

/// The text contains only quoted known columns, placeholders and the
/// words and punctuation this module writes: nothing from the source.
fn assert_sql_is_ours(sql: &str) {
    const WORDS: [&str; 17] =
        ["TRUE", "FALSE", "NULL", "AND", "OR", "NOT", "IN", "IS", "LIKE", "ILIKE", "GLOB", "ESCAPE", "lower", "CAST", "AS", "uuid", ""];
    let mut rest = sql.replace(" ESCAPE '\\'", " ESCAPE");
    while let Some(start) = rest.find('"') {
        let end = start + 1 + rest[start + 1..].find('"').expect("closed identifier");
        assert!(table(&rest[start + 1..end]).is_some(), "identifier {} in {sql}", &rest[start..=end]);
        rest.replace_range(start..=end, " ");
    }
    for word in rest.split(|c: char| "()=<>,?$ ".contains(c) || c.is_ascii_digit()) {
        assert!(WORDS.contains(&word), "unexpected {word:?} in {sql}");
    }
}

#[test]
fn injection_attempts_never_reach_sql_text() {
    let long = format!("status = '{}'", "a".repeat(4990));
    let parens = format!("{}true{}", "(".repeat(1000), ")".repeat(1000));
    let nots = format!("{}true", "not ".repeat(1000));
    let attacks: Vec<(&str, &str, usize)> = vec![
        ("owner_id = auth.uid(); drop table x", "`;` is not allowed", 22),
        ("'a' = 'a' -- ", "comments (`--`)", 11),
        ("true /* */", "comments (`/* */`)", 6),
        ("\"owner_id\" = auth.uid()", "double quotes are not allowed", 1),
        ("auth.metadata(department) = 'x'", "in single quotes, like auth.metadata('department')", 15),
        ("auth.uid(1) = owner_id", "auth.uid() takes no arguments", 10),
        ("pg_sleep(1)", "unknown function `pg_sleep()`", 1),
        ("status = 'x' or pg_sleep(10) is null", "unknown function `pg_sleep()`", 17),
        ("owner_id = (select 1)", "nor is a subquery", 12),
        ("(select 1) = 1", "subqueries are not allowed", 2),
        ("auth.role() = 'service' or exists (select 1)", "subqueries are not allowed", 28),
        ("status = 'a' union select 1", "found `union`", 14),
        ("\u{43e}wner_id = auth.uid()", "U+043E", 1),
        ("status = 'x' or t\u{435}am = 'x'", "U+0435", 18),
        (&long, "at most 4096 characters", 4097),
        (&parens, "nests too deeply", 17),
        (&nots, "nests too deeply", 65),
        ("'unterminated", "unterminated string", 1),
        ("status = 'open", "unterminated string", 10),
        ("status = 'a\0b'", "U+0000 is not allowed in a string", 12),
        ("true\0", "U+0000", 5),
        ("status = 'x\\' or 1=1 --", "comments (`--`)", 22),
        ("owner_id = $1", "unexpected character '$'", 12),
        ("status = ?", "unexpected character '?'", 10),
        ("status = 'a' || 'b'", "unexpected character '|'", 14),
        ("auth.uid()::text = status", "unexpected character ':'", 11),
        ("app.users = auth.uid()", "without a table name", 1),
        ("Owner_Id = auth.uid()", "column names are lower case", 1),
        ("status = 0x41", "malformed number", 10),
        ("lower(status) = 'x'", "unknown function `lower()`", 1),
        ("auth.sql('drop')", "unknown function `auth.sql()`", 6),
        ("status like '%' escape '!'", "found `escape`", 17),
        ("null = null", "is null", 1),
        ("owner_id = auth.uid() or owner_id = auth.uid(", "expected `)`", 46),
    ];
    for (source, message, position) in attacks {
        let e = error(source);
        assert!(e.message.contains(message), "{source:?}: {e}");
        assert_eq!(e.position, Some(position), "{source:?}: {e}");
    }
    // Valid, though hostile-looking: the author's own choices, compiled
    // with every value bound.
    let (sql, values) = compile("owner_id = auth.uid() or 1=1", &user(), Backend::Sqlite);
    assert_eq!((sql.as_str(), values), ("(\"owner_id\" = ? OR TRUE)", 1));
    let (sql, values) = compile("status = 'x'' or ''1''=''1' or status = 'it''s'", &user(), Backend::Postgres);
    assert_eq!((sql.as_str(), values), ("(\"status\" = $1 OR \"status\" = $2)", 2));
    let mut hostile = user();
    hostile.metadata.insert("department".into(), json!("x' OR '1'='1"));
    hostile.groups = vec!["a') OR TRUE --".into()];
    hostile.uid = Some("'; drop table users; --".into());
    let (sql, values) = compile("department = auth.metadata('department') or team in auth.groups() or author = auth.uid()", &hostile, Backend::Sqlite);
    assert_eq!(sql, "(\"department\" = ? OR \"team\" IN (?) OR \"author\" = ?)");
    assert_eq!(values, 3);
}

#[test]
fn the_documented_examples_compile_on_both_backends() {
    let cases: [(&str, &str, &str, usize); 22] = [
        ("owner_id = auth.uid()", "(\"owner_id\" = ?)", "(\"owner_id\" = CAST($1 AS uuid))", 1),
        (
            "owner_id = auth.uid() or 'admin' in auth.groups()",
            "(\"owner_id\" = ? OR TRUE)",
            "(\"owner_id\" = CAST($1 AS uuid) OR TRUE)",
            1,
        ),
        ("department = auth.metadata('department')", "(\"department\" = ?)", "(\"department\" = $1)", 1),
        ("auth.role() = 'authenticated'", "(TRUE)", "(TRUE)", 0),
        ("auth.role() in ('authenticated', 'service')", "(TRUE)", "(TRUE)", 0),
        ("published and not archived", "(\"published\" = TRUE AND NOT (\"archived\" = TRUE))", "(\"published\" = TRUE AND NOT (\"archived\" = TRUE))", 0),
        (
            "status in ('open', 'pending') and (owner_id = auth.uid() or team = auth.metadata('team'))",
            "(\"status\" IN (?, ?) AND (\"owner_id\" = ? OR \"team\" = ?))",
            "(\"status\" IN ($1, $2) AND (\"owner_id\" = CAST($3 AS uuid) OR \"team\" = $4))",
            4,
        ),
        ("deleted_at is null", "(\"deleted_at\" IS NULL)", "(\"deleted_at\" IS NULL)", 0),
        ("x is not null", "(\"x\" IS NOT NULL)", "(\"x\" IS NOT NULL)", 0),
        ("auth.uid() is not null", "(TRUE)", "(TRUE)", 0),
        ("level <= auth.metadata('clearance')", "(\"level\" <= ?)", "(\"level\" <= $1)", 1),
        ("expires_at > now()", "(\"expires_at\" > ?)", "(\"expires_at\" > $1)", 1),
        ("email like '%@example.com'", "(\"email\" GLOB ?)", "(\"email\" LIKE $1 ESCAPE '\\')", 1),
        ("email ilike '%@example.com'", "(lower(\"email\") LIKE lower(?) ESCAPE '\\')", "(\"email\" ILIKE $1 ESCAPE '\\')", 1),
        ("email not like 'a%'", "(NOT (\"email\" GLOB ?))", "(NOT (\"email\" LIKE $1 ESCAPE '\\'))", 1),
        ("auth.email() like '%@corp.example'", "(TRUE)", "(TRUE)", 0),
        ("true", "(TRUE)", "(TRUE)", 0),
        ("false", "(FALSE)", "(FALSE)", 0),
        ("team in auth.groups()", "(\"team\" IN (?, ?))", "(\"team\" IN ($1, $2))", 2),
        ("'x' != 'y' and a <> b", "(TRUE AND \"a\" <> \"b\")", "(TRUE AND \"a\" <> \"b\")", 0),
        ("level = 42 or price < -3.5 or status = 'it''s'", "(\"level\" = ? OR \"price\" < ? OR \"status\" = ?)", "(\"level\" = $1 OR \"price\" < $2 OR \"status\" = $3)", 3),
        ("not (a = 1 or b = 2) and team not in ('x')", "(NOT (\"a\" = ? OR \"b\" = ?) AND \"team\" NOT IN (?))", "(NOT (\"a\" = $1 OR \"b\" = $2) AND \"team\" NOT IN ($3))", 3),
    ];
    for (source, sqlite, postgres, values) in cases {
        assert_eq!(compile(source, &user(), Backend::Sqlite), (sqlite.to_owned(), values), "{source}");
        assert_eq!(compile(source, &user(), Backend::Postgres), (postgres.to_owned(), values), "{source}");
    }
}

#[test]
fn values_are_bound_converted_to_the_columns_type() {
    let mut sql = SqlBuilder::new(Backend::Sqlite);
    parse("status in ('open', 'it''s') and level >= auth.metadata('clearance') and owner_id = auth.uid()").compile(&user(), &mut sql);
    let values = sql.build().values.expect("values").0;
    assert_eq!(
        values,
        vec![
            sea_orm::Value::String(Some("open".into())),
            sea_orm::Value::String(Some("it's".into())),
            sea_orm::Value::BigInt(Some(3)),
            sea_orm::Value::String(Some(UID.into())),
        ]
    );
}

#[test]
fn anonymous_callers_match_no_owner_even_under_not() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        assert_eq!(compile("owner_id = auth.uid()", &anonymous(), backend), ("(\"owner_id\" = NULL)".into(), 0));
        assert_eq!(compile("not (owner_id = auth.uid())", &anonymous(), backend), ("(NOT (\"owner_id\" = NULL))".into(), 0));
        assert_eq!(compile("owner_id != auth.uid()", &anonymous(), backend), ("(\"owner_id\" <> NULL)".into(), 0));
        assert_eq!(compile("not (auth.uid() = 'x')", &anonymous(), backend), ("(NOT (NULL))".into(), 0));
        assert_eq!(compile("author in (auth.uid(), auth.email())", &anonymous(), backend), ("(\"author\" IN (NULL, NULL))".into(), 0));
    }
    // A uid that is not a UUID (an external provider's subject) cannot
    // equal a uuid column: NULL, not an error and not FALSE.
    let external = AuthContext { uid: Some("auth0|123".into()), ..user() };
    assert_eq!(sqlite("not (owner_id = auth.uid())", &external), "(NOT (\"owner_id\" = NULL))");
    assert_eq!(compile("author = auth.uid()", &external, Backend::Sqlite), ("(\"author\" = ?)".into(), 1));
}

#[test]
fn metadata_of_the_wrong_type_or_missing_becomes_null_never_false() {
    let mut auth = user();
    auth.metadata.insert("clearance".into(), json!("3"));
    assert_eq!(compile("not (level <= auth.metadata('clearance'))", &auth, Backend::Sqlite), ("(NOT (\"level\" <= NULL))".into(), 0));
    for key in ["missing", "profile"] {
        let source = format!("department = auth.metadata('{key}')");
        assert_eq!(compile(&source, &user(), Backend::Postgres), ("(\"department\" = NULL)".into(), 0), "{key}");
    }
    auth.metadata.insert("clearance".into(), json!(null));
    assert_eq!(sqlite("level = auth.metadata('clearance')", &auth), "(\"level\" = NULL)");
    auth.metadata.insert("clearance".into(), json!(2.5));
    assert_eq!(sqlite("level not in (auth.metadata('clearance'), 7)", &auth), "(\"level\" NOT IN (NULL, ?))");
    assert_eq!(sqlite("price > auth.metadata('clearance')", &auth), "(\"price\" > ?)");
}

#[test]
fn comparisons_without_a_column_fold_with_sql_three_valued_logic() {
    let mut auth = user();
    auth.metadata.insert("tomorrow".into(), json!("yesterday"));
    let cases = [
        ("auth.role() = 'authenticated'", "TRUE", "FALSE"),
        ("auth.role() in ('authenticated', 'service')", "TRUE", "FALSE"),
        ("'admin' in auth.groups()", "TRUE", "FALSE"),
        ("'admin' not in auth.groups()", "FALSE", "TRUE"),
        ("auth.uid() in auth.groups()", "FALSE", "FALSE"),
        ("auth.uid() is null", "FALSE", "TRUE"),
        ("auth.uid() = auth.uid()", "TRUE", "NULL"),
        ("auth.uid() != 'x'", "TRUE", "NULL"),
        ("auth.metadata('clearance') = 3", "TRUE", "NULL"),
        ("auth.metadata('clearance') = 3.0", "TRUE", "NULL"),
        ("auth.metadata('clearance') = '3'", "FALSE", "NULL"),
        ("auth.metadata('clearance') != '3'", "TRUE", "NULL"),
        ("auth.metadata('clearance') > 2", "TRUE", "NULL"),
        ("auth.metadata('clearance') > '2'", "NULL", "NULL"),
        ("auth.metadata('profile') is null", "TRUE", "TRUE"),
        ("auth.metadata('missing') in ('a', 'b')", "NULL", "NULL"),
        ("auth.metadata('clearance') not in (1, 2)", "TRUE", "NULL"),
        ("auth.metadata('department') not in ('x', auth.metadata('missing'))", "NULL", "NULL"),
        ("auth.metadata('department') in ('eng', auth.metadata('missing'))", "TRUE", "NULL"),
        ("'x' != 'y'", "TRUE", "TRUE"),
        ("'a' < 'b'", "TRUE", "TRUE"),
        ("1 = 1.0", "TRUE", "TRUE"),
        ("-2 < 1", "TRUE", "TRUE"),
        ("true = 1", "FALSE", "FALSE"),
        ("true < false", "NULL", "NULL"),
        ("auth.email() like '%@corp.example'", "TRUE", "NULL"),
        ("auth.email() like '%@CORP.example'", "FALSE", "NULL"),
        ("auth.email() ilike '%@CORP.example'", "TRUE", "NULL"),
        ("auth.email() not like 'ada_@%'", "TRUE", "NULL"),
        ("auth.metadata('clearance') like '3'", "NULL", "NULL"),
        ("now() > '2000-01-01T00:00:00Z'", "TRUE", "TRUE"),
        ("now() < '2000-01-01T00:00:00+01:00'", "FALSE", "FALSE"),
        ("auth.metadata('since') < now()", "TRUE", "NULL"),
        ("auth.metadata('tomorrow') < now()", "NULL", "NULL"),
    ];
    for (source, signed_in, anonymous_caller) in cases {
        assert_eq!(sqlite(source, &auth), format!("({signed_in})"), "{source} (signed in)");
        assert_eq!(sqlite(source, &anonymous()), format!("({anonymous_caller})"), "{source} (anonymous)");
    }
}

#[test]
fn in_groups_binds_each_group_and_is_false_without_groups() {
    let no_groups = AuthContext { groups: vec![], ..user() };
    assert_eq!(compile("team in auth.groups()", &user(), Backend::Postgres), ("(\"team\" IN ($1, $2))".into(), 2));
    assert_eq!(compile("team in auth.groups()", &no_groups, Backend::Postgres), ("(FALSE)".into(), 0));
    assert_eq!(compile("team not in auth.groups()", &no_groups, Backend::Sqlite), ("(TRUE)".into(), 0));
    assert_eq!(compile("team not in auth.groups()", &user(), Backend::Sqlite), ("(\"team\" NOT IN (?, ?))".into(), 2));
    assert_eq!(sqlite("'admin' in auth.groups()", &no_groups), "(FALSE)");
    // Text PostgreSQL could not bind matches nothing instead of failing.
    let nul = AuthContext { groups: vec!["a\0".into(), "core".into()], uid: Some("x\0".into()), ..user() };
    assert_eq!(compile("team in auth.groups() or author = auth.uid()", &nul, Backend::Postgres), ("(\"team\" IN ($1) OR \"author\" = NULL)".into(), 1));
}

#[test]
fn like_is_case_sensitive_and_ilike_is_not_on_both_backends() {
    let matches = [
        ("abc", "a%", false, true),
        ("ABC", "a%", false, false),
        ("ABC", "a%", true, true),
        ("abc", "a_c", false, true),
        ("éa", "_a", false, true),
        ("ÉA", "éa", true, true),
        ("100%", "100\\%", false, true),
        ("1000", "100\\%", false, false),
        ("a_b", "a\\_b", false, true),
        ("axb", "a\\_b", false, false),
        ("", "%", false, true),
        ("", "_", false, false),
        ("abc", "abc%", false, true),
        ("abcd", "abc", false, false),
        ("mississippi", "%iss%pi", false, true),
    ];
    for (text, pattern, insensitive, expected) in matches {
        assert_eq!(like_matches(text, pattern, insensitive), expected, "{text:?} like {pattern:?} ({insensitive})");
    }
    // Backtracking is bounded: this returns at once.
    assert!(!like_matches(&"a".repeat(4000), &"%a".repeat(1000).replace("%a%a", "%a%b"), false));

    let mut sql = SqlBuilder::new(Backend::Sqlite);
    parse("email like '%\\_x*'").compile(&user(), &mut sql);
    assert_eq!(sql.build().values.expect("values").0, vec![sea_orm::Value::String(Some("*_x[*]".into()))]);
    let mut sql = SqlBuilder::new(Backend::Postgres);
    parse("email not ilike '%\\_x*'").compile(&user(), &mut sql);
    assert_eq!(sql.sql(), "(NOT (\"email\" ILIKE $1 ESCAPE '\\'))");
    assert_eq!(sql.build().values.expect("values").0, vec![sea_orm::Value::String(Some("%\\_x*".into()))]);
    assert_eq!(sqlite("email not ilike 'A%'", &user()), "(NOT (lower(\"email\") LIKE lower(?) ESCAPE '\\'))");
}

#[test]
fn type_mismatches_are_refused_when_the_policy_is_stored() {
    let cases = [
        ("count = 'x'", "`count` is an integer column: expected an integer, got the string \"x\"", 9),
        ("level = 3.5", "expected an integer", 9),
        ("published = 1", "expected true or false", 13),
        ("'x' = count", "`count` is an integer column", 1),
        ("expires_at > 'tomorrow'", "expected an RFC 3339 timestamp", 14),
        ("owner_id = 'not-a-uuid'", "expected a UUID", 12),
        ("price like 'x%'", "`like` applies to text; `price` is a real column", 1),
        ("owner_id like 'x%'", "`owner_id` is a uuid column", 1),
        ("5 like '5'", "`like` applies to text, not to 5", 1),
        ("status like 'abc\\'", "lone `\\`", 13),
        ("data < 'x'", "`data` is a json column", 6),
        ("data = '{}'", "`data` is a json column", 6),
        ("avatar < 'AAE='", "`<` does not apply to `avatar`, a blob column", 8),
        ("published < true", "`<` does not apply to `published`, a boolean column", 11),
        ("published >= archived", "`>=` does not apply", 11),
        ("status", "`status` is a text column, not a condition", 1),
        ("published and level", "`level` is an integer column, not a condition", 15),
        ("auth.uid()", "auth.uid() is not a condition", 1),
        ("42", "42 is not a condition", 1),
        ("level = status", "`level` is an integer column and `status` a text column", 7),
        ("status > now()", "now() is a timestamp; `status` is a text column", 10),
        ("now() = 'soon'", "now() compares with timestamps", 9),
        ("now() = auth.uid()", "now() compares with timestamps", 9),
        ("level = auth.uid()", "auth.uid() is text; `level` is an integer column", 9),
        ("owner_id = auth.email()", "auth.email() is text; `owner_id` is a uuid column", 12),
        ("level in auth.groups()", "groups are text; `level` is an integer column", 1),
        ("status in ('open', 1)", "expected a string, got the number 1", 20),
        ("status in (level)", "a list holds values, not columns", 12),
        ("status in ()", "an empty list", 12),
        ("status in auth.uid()", "`in` takes a list", 11),
        ("auth.groups() = 'x'", "auth.groups() is a list", 1),
        ("'x' = auth.groups()", "auth.groups() is a list", 7),
        ("auth.groups() is null", "auth.groups() is a list", 1),
        ("nope = 1", "unknown column `nope`", 1),
        ("x = null", "null is only written as `is null`", 5),
        ("x is nul", "expected `null` or `not null`", 6),
        ("status = 'a' status = 'b'", "expected `and`, `or` or the end of the policy, found `status`", 14),
        ("status == 'x'", "expected a column, a value or a function, found `=`", 9),
        ("status = and", "found `and`", 10),
        ("auth.uid", "expected `(`", 9),
        ("auth.metadata() = 'x'", "expected a key in single quotes", 15),
        ("auth.metadata('k", "unterminated string", 15),
        ("auth.metadata('a', 'b') = 'x'", "expected `)`", 18),
        ("status not like level", "a pattern in single quotes", 17),
        (")", "expected a column, a value or a function, found `)`", 1),
        ("true)", "closes nothing", 5),
        ("(true", "`)` to close the `(` at character 1", 6),
        ("9223372036854775808 = 1", "out of range", 1),
    ];
    for (source, message, position) in cases {
        let e = error(source);
        assert!(e.message.contains(message), "{source:?}: {e}");
        assert_eq!(e.position, Some(position), "{source:?}: {e}");
    }
    assert_eq!(error("").position, None);
    assert_eq!(error(" \n\t").message, "the policy is empty: write a condition like `owner_id = auth.uid()`, or `true`");
}

#[test]
fn limits_are_inclusive() {
    let longest = format!("true{}", " ".repeat(MAX_POLICY_CHARS - 4));
    assert!(PolicyExpr::parse(&longest, &table).is_ok());
    assert!(PolicyExpr::parse(&format!("{longest} "), &table).is_err());
    let deepest = format!("{}true{}", "(".repeat(MAX_POLICY_DEPTH), ")".repeat(MAX_POLICY_DEPTH));
    assert!(PolicyExpr::parse(&deepest, &table).is_ok());
    assert!(PolicyExpr::parse(&format!("({deepest})"), &table).is_err());
    // Long flat chains are not nesting.
    let chain = vec!["a = 1"; 400].join(" or ");
    assert_eq!(compile(&chain, &user(), Backend::Sqlite).1, 400);
}

#[test]
fn errors_read_as_a_sentence_with_the_position() {
    assert_eq!(error("nope = 1").to_string(), "unknown column `nope` (at character 1)");
    assert_eq!(error("").to_string(), "the policy is empty: write a condition like `owner_id = auth.uid()`, or `true`");
}

#[test]
fn display_is_normalized_and_parses_back_to_the_same_policy() {
    let cases = [
        ("STATUS_X", ""),
        ("status IN ('a') AND NOT published Or x IS NOT NULL", "status in ('a') and not published or x is not null"),
        ("(a = 1 or b <> 2) and (x = 'it''s')", "(a = 1 or b != 2) and x = 'it''s'"),
        ("((a = 1 or b = 2) or x = 'y')", "a = 1 or b = 2 or x = 'y'"),
        ("not (a = 1 and b = 2)", "not (a = 1 and b = 2)"),
        ("Auth.UID() IS NULL and auth.Metadata('k''s') = -3.5e2", "auth.uid() is null and auth.metadata('k''s') = -350.0"),
        ("team NOT IN auth.groups() or email NOT ILIKE '%x'", "team not in auth.groups() or email not ilike '%x'"),
        ("expires_at > NOW() and TRUE", "expires_at > now() and true"),
    ];
    for (source, normalized) in cases.into_iter().skip(1) {
        let policy = parse(source);
        assert_eq!(policy.to_string(), normalized);
        assert_eq!(policy.source(), source);
        assert_eq!(parse(normalized).root, policy.root, "{source}");
    }
    assert!(error(cases[0].0).message.contains("lower case"));
}

#[test]
fn columns_lists_each_column_read_once() {
    let policy = parse("owner_id = auth.uid() or (published and status in ('a')) or owner_id = editor_id or a <> b");
    assert_eq!(policy.columns(), ["owner_id", "published", "status", "editor_id", "a", "b"]);
    assert!(parse("auth.role() = 'service'").columns().is_empty());
}

/// xorshift: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// A random well-formed policy over the test table.
fn random_policy(rng: &mut Rng, depth: usize) -> String {
    const CONDITIONS: [&str; 12] = [
        "owner_id = auth.uid()", "status in ('a', 'it''s')", "published", "x is null", "email like '%\\_a'", "team not in auth.groups()",
        "level <= auth.metadata('clearance')", "expires_at > now()", "'admin' in auth.groups()", "auth.role() != 'service'", "a <> b", "false",
    ];
    match rng.below(if depth > 3 { 1 } else { 4 }) {
        0 => CONDITIONS[rng.below(CONDITIONS.len())].to_owned(),
        1 => format!("not {}", random_policy(rng, depth + 1)),
        2 => format!("({} and {})", random_policy(rng, depth + 1), random_policy(rng, depth + 1)),
        _ => format!("{} or {}", random_policy(rng, depth + 1), random_policy(rng, depth + 1)),
    }
}

/// Compiles on both backends for both callers, and checks the text.
fn compile_everywhere(policy: &PolicyExpr) {
    for auth in [user(), anonymous()] {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let mut sql = SqlBuilder::new(backend);
            policy.compile(&auth, &mut sql);
            assert_sql_is_ours(sql.sql());
            assert!(sql.sql().starts_with('(') && sql.sql().ends_with(')'));
        }
    }
}

#[test]
fn random_input_never_panics_and_what_parses_round_trips() {
    const NOISE: [&str; 44] = [
        "owner_id", "status", "level", "published", "data", "auth", ".", "uid", "(", ")", "'a'", "'", "1", "-2.5", "=", "<", ">=",
        "!=", "!", "and", "or", "not", "in", "is", "null", "like", "ilike", "auth.uid()", "auth.groups()", "auth.metadata('k')",
        "now()", ",", ";", "--", "/*", "\"", "\u{e9}", "\0", " ", "true", "'%_\\'", "\\", "NOT", "1e400",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..200 {
        // Token soup: almost never valid, must never panic.
        let soup: Vec<&str> = (0..1 + rng.below(12)).map(|_| NOISE[rng.below(NOISE.len())]).collect();
        let soup = soup.join(if rng.below(2) == 0 { " " } else { "" });
        if let Ok(policy) = PolicyExpr::parse(&soup, &table) {
            compile_everywhere(&policy);
        }
        // A valid policy parses, compiles, and its normal form is stable.
        let source = random_policy(&mut rng, 0);
        let policy = parse(&source);
        compile_everywhere(&policy);
        let normalized = policy.to_string();
        assert_eq!(parse(&normalized).root, policy.root, "{source}");
        assert_eq!(parse(&normalized).to_string(), normalized);
        // The same with one noise token spliced in: an error or a policy.
        let mut at = rng.below(source.len() + 1);
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        let spliced = format!("{}{}{}", &source[..at], NOISE[rng.below(NOISE.len())], &source[at..]);
        if let Ok(policy) = PolicyExpr::parse(&spliced, &table) {
            compile_everywhere(&policy);
            assert_eq!(parse(&policy.to_string()).root, policy.root, "{spliced}");
        }
    }
}
