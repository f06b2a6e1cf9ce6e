//! The application database through real functions over HTTP: app tables
//! managed by the admin API, queried from JS with `ctx.db` as the caller,
//! with row-level security enforced by the host. Every scenario runs on the
//! embedded SQLite and on PostgreSQL (a database of its own per test).

mod common;

use common::{PostgresDatabase, Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a scenario once per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                super::$scenario(super::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$scenario(super::Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    schema_changes_are_validated_versioned_and_atomic,
    owners_never_reach_each_others_rows,
    group_metadata_and_role_policies_admit_exactly_their_callers,
    injection_attempts_never_leak_or_damage,
    service_role_bypasses_rls_and_is_recorded,
    transactions_commit_only_when_the_callback_resolves,
    values_round_trip_with_their_types,
    limits_are_clear_errors,
);

struct Harness {
    server: TestServer,
    postgres: Option<PostgresDatabase>,
}

impl Harness {
    async fn start(backend: Backend, extra: &[&str]) -> Harness {
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PostgresDatabase::create().await),
        };
        let mut args: Vec<&str> = extra.to_vec();
        if let Some(postgres) = &postgres {
            args.extend(["--database-url", postgres.url.as_str()]);
        }
        let server = TestServer::start_with(&args).await;
        let driver = server.deploy_source("db", &common::fixture_source("db-driver")).await;
        assert_eq!(driver.status, StatusCode::CREATED, "{}", driver.text());
        Harness { server, postgres }
    }

    async fn finish(self) {
        drop(self.server);
        if let Some(postgres) = self.postgres {
            postgres.drop_now().await;
        }
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.server.admin(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.server.send(request).await
    }

    async fn create_table(&self, spec: Value) -> Value {
        let reply = self.admin(Method::POST, "/tables", Some(spec)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()
    }

    async fn set_policies(&self, table: &str, policies: Value) {
        let reply = self.admin(Method::PUT, &format!("/tables/{table}/policies"), Some(json!({"rls_enabled": true, "policies": policies}))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }

    /// Runs a driver request as `token` (None: anonymous); the whole reply.
    async fn call(&self, token: Option<&str>, body: Value) -> Reply {
        let mut request = self.server.function(Method::POST, "db").json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.server.send(request).await
    }

    /// Runs one query as `token`; `{data, error, count}`.
    async fn query(&self, token: Option<&str>, table: &str, calls: Value) -> Value {
        let reply = self.call(token, json!({"table": table, "calls": calls})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()
    }

    async fn user(&self, email: &str, groups: &[&str], metadata: Value) -> (String, String) {
        let id = self.server.create_user(email, groups, metadata).await;
        (id, self.server.access_token(email).await)
    }
}

fn error_code(result: &Value) -> &str {
    result["error"]["code"].as_str().unwrap_or_else(|| panic!("expected an error, got {result}"))
}

fn ids(result: &Value) -> Vec<i64> {
    assert!(result["error"].is_null(), "unexpected error: {result}");
    let mut ids: Vec<i64> = result["data"].as_array().expect("rows").iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    ids
}

fn notes_table() -> Value {
    json!({
        "name": "notes",
        "columns": [
            {"name": "id", "type": "integer", "primary_key": true, "default": "identity"},
            {"name": "owner_id", "type": "text", "nullable": false, "default": "auth.uid()"},
            {"name": "body", "type": "text"},
            {"name": "created_at", "type": "timestamp", "nullable": false, "default": "now()"}
        ],
        "indexes": [{"columns": ["owner_id"]}]
    })
}

fn owner_policies() -> Value {
    json!([
        {"name": "read own", "operation": "select", "using": "owner_id = auth.uid()"},
        {"name": "write own", "operation": "insert", "check": "owner_id = auth.uid()"},
        {"name": "edit own", "operation": "update", "using": "owner_id = auth.uid()"},
        {"name": "delete own", "operation": "delete", "using": "owner_id = auth.uid()"}
    ])
}

async fn schema_changes_are_validated_versioned_and_atomic(backend: Backend) {
    let h = Harness::start(backend, &[]).await;
    let created = h.create_table(notes_table()).await;
    assert_eq!(created["schema_version"], 1);
    assert_eq!(created["rls_enabled"], true, "row-level security is on unless switched off");
    assert_eq!(created["indexes"][0]["name"], "notes_owner_id_idx");

    // A table with RLS on and no policy denies every operation.
    let denied = h.query(None, "notes", json!([["select", "*"]])).await;
    assert_eq!(error_code(&denied), "permission-denied");
    assert!(denied["error"]["message"].as_str().unwrap().contains("no select policy"));

    let refused = [
        (json!({"name": "notes", "columns": [{"name": "id", "type": "integer", "primary_key": true}]}), StatusCode::CONFLICT, "already exists"),
        (json!({"name": "Bad-Name", "columns": [{"name": "id", "type": "integer", "primary_key": true}]}), StatusCode::BAD_REQUEST, "invalid table name"),
        (json!({"name": "t", "columns": [{"name": "id", "type": "integer"}]}), StatusCode::BAD_REQUEST, "primary key"),
        (json!({"name": "t", "columns": [{"name": "id", "type": "varchar", "primary_key": true}]}), StatusCode::BAD_REQUEST, "expected a JSON body"),
        (json!({"name": "t", "columns": [{"name": "id", "type": "integer", "primary_key": true, "references": {"table": "notes", "column": "body"}}]}), StatusCode::BAD_REQUEST, "neither the primary key nor unique"),
        (json!({"name": "t", "columns": [{"name": "id", "type": "integer", "primary_key": true, "default": "now()"}]}), StatusCode::BAD_REQUEST, "does not fit"),
    ];
    for (spec, status, message) in refused {
        let reply = h.admin(Method::POST, "/tables", Some(spec.clone())).await;
        assert_eq!(reply.status, status, "{spec}: {}", reply.text());
        assert!(reply.json()["message"].as_str().unwrap().contains(message), "{spec}: {}", reply.text());
    }

    // Policies are validated against the columns, once, when set.
    for (policy, message) in [
        (json!({"name": "p", "operation": "select", "using": "ownr_id = auth.uid()"}), "ownr_id"),
        (json!({"name": "p", "operation": "select", "using": "owner_id = auth.uid(); drop table notes"}), "at character"),
        (json!({"name": "p", "operation": "insert", "using": "true"}), "takes no using"),
        (json!({"name": "p", "operation": "select"}), "needs a using"),
    ] {
        let reply = h.admin(Method::PUT, "/tables/notes/policies", Some(json!({"rls_enabled": true, "policies": [policy.clone()]}))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{policy}: {}", reply.text());
        assert!(reply.text().contains(message), "{policy}: {}", reply.text());
    }
    h.set_policies("notes", owner_policies()).await;
    let (_, ada) = h.user("ada@example.com", &[], json!({})).await;
    let inserted = h.query(Some(&ada), "notes", json!([["insert", {"body": "first"}]])).await;
    assert!(inserted["error"].is_null(), "{inserted}");

    // Alter: add a column and an index; a NOT NULL column without a default
    // cannot be added to a table with rows, and a failed change leaves
    // nothing behind (same version, same columns).
    let altered = h
        .admin(Method::PATCH, "/tables/notes", Some(json!({"add_columns": [{"name": "pinned", "type": "boolean", "default": {"value": false}}], "add_indexes": [{"columns": ["created_at"]}]})))
        .await;
    assert_eq!(altered.status, StatusCode::OK, "{}", altered.text());
    assert_eq!(altered.json()["schema_version"], 3);
    let before = h.admin(Method::GET, "/tables/notes", None).await.json();
    let impossible = h
        .admin(Method::PATCH, "/tables/notes", Some(json!({"add_columns": [{"name": "ok", "type": "text"}, {"name": "title", "type": "text", "nullable": false}]})))
        .await;
    assert_eq!(impossible.status, StatusCode::BAD_REQUEST, "{}", impossible.text());
    assert!(impossible.json()["message"].as_str().unwrap().contains("the database refused the change"));
    assert_eq!(h.admin(Method::GET, "/tables/notes", None).await.json(), before, "a refused change leaves nothing");
    let pinned = h.query(Some(&ada), "notes", json!([["select", "id,pinned"]])).await;
    assert_eq!(pinned["data"][0]["pinned"], false, "{pinned}");

    let in_use = h.admin(Method::PATCH, "/tables/notes", Some(json!({"drop_columns": ["owner_id"]}))).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{}", in_use.text());
    let dropped = h.admin(Method::PATCH, "/tables/notes", Some(json!({"drop_columns": ["pinned"]}))).await;
    assert_eq!(dropped.status, StatusCode::OK, "{}", dropped.text());

    // Foreign keys: a referenced table cannot be dropped first.
    h.create_table(json!({"name": "tags", "columns": [
        {"name": "id", "type": "integer", "primary_key": true},
        {"name": "note_id", "type": "integer", "nullable": false, "references": {"table": "notes", "column": "id", "on_delete": "cascade"}}
    ]}))
    .await;
    let referenced = h.admin(Method::DELETE, "/tables/notes", None).await;
    assert_eq!(referenced.status, StatusCode::CONFLICT, "{}", referenced.text());

    let history = h.admin(Method::GET, "/tables/notes/changes", None).await.json();
    let kinds: Vec<&str> = history["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["alter", "alter", "policies", "create"], "{history}");
    assert!(history["changes"][3]["statements"][0].as_str().unwrap().starts_with("CREATE TABLE"));
    assert!(history["changes"][0]["applied_by"].as_str().unwrap().starts_with("efk_"));

    assert_eq!(h.admin(Method::DELETE, "/tables/tags", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.admin(Method::DELETE, "/tables/notes", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.admin(Method::GET, "/tables/notes", None).await.status, StatusCode::NOT_FOUND);
    let gone = h.query(Some(&ada), "notes", json!([["select", "*"]])).await;
    assert_eq!(error_code(&gone), "unknown-table");
    h.finish().await;
}

async fn owners_never_reach_each_others_rows(backend: Backend) {
    let h = Harness::start(backend, &[]).await;
    h.create_table(notes_table()).await;
    h.set_policies("notes", owner_policies()).await;
    let notes = h.server.deploy_source("notes", &common::fixture_source("notes")).await;
    assert_eq!(notes.status, StatusCode::CREATED);
    let (ada_id, ada) = h.user("ada@example.com", &[], json!({})).await;
    let (bob_id, bob) = h.user("bob@example.com", &[], json!({})).await;

    // Through the notes app: each user creates and lists their own.
    let post = |token: String, body: &'static str| {
        let request = h.server.function(Method::POST, "notes").bearer_auth(token).json(&json!({"body": body}));
        h.server.send(request)
    };
    let ada_note = post(ada.clone(), "ada's secret").await;
    assert_eq!(ada_note.status, StatusCode::CREATED, "{}", ada_note.text());
    let ada_note = ada_note.json()["id"].as_i64().unwrap();
    let bob_note = post(bob.clone(), "bob's secret").await.json()["id"].as_i64().unwrap();
    post(bob.clone(), "bob's second").await;
    let listed = h.server.send(h.server.function(Method::GET, "notes").bearer_auth(&ada)).await.json();
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["notes"][0]["body"], "ada's secret");

    // Filter tricks widen nothing: policies are ANDed around them.
    for calls in [
        json!([["select", "*"]]),
        json!([["select", "*"], ["or", "owner_id.neq.nobody,id.gt.0"]]),
        json!([["select", "*"], ["or", format!("owner_id.eq.{bob_id},owner_id.eq.{ada_id}")]]),
        json!([["select", "*"], ["in", "owner_id", [ada_id, bob_id]]]),
        json!([["select", "*"], ["like", "body", "%"]]),
        json!([["select", "*"], ["eq", "owner_id", bob_id]]),
        json!([["select", "*"], ["not", "owner_id", "eq", ada_id]]),
        json!([["select", "*"], ["or", "and(id.gte.0,id.lte.1000000),body.is.null"]]),
        json!([["select", "*"], ["ilike", "body", "%BOB%"]]),
        json!([["select", "*"], ["filter", "id", "in", format!("({bob_note})")]]),
    ] {
        let result = h.query(Some(&ada), "notes", calls.clone()).await;
        let seen = ids(&result);
        assert!(seen.iter().all(|id| *id == ada_note), "{calls} leaked {result}");
    }
    let counted = h.query(Some(&ada), "notes", json!([["select", "*", {"count": "exact", "head": true}]])).await;
    assert_eq!(counted["count"], 1, "counts are filtered too: {counted}");

    // Writes to someone else's rows change nothing.
    let update = h.query(Some(&ada), "notes", json!([["update", {"body": "hacked"}], ["eq", "id", bob_note]])).await;
    assert_eq!(update["count"], 0, "{update}");
    let delete = h.query(Some(&ada), "notes", json!([["delete"], ["gte", "id", 0]])).await;
    assert_eq!(delete["count"], 1, "only ada's own row: {delete}");
    let reinsert = h.query(Some(&ada), "notes", json!([["insert", {"body": "again"}], ["select", "id"]])).await;
    let ada_note = reinsert["data"][0]["id"].as_i64().unwrap();
    // Giving a row away is an update check violation; inserting as someone else an insert check violation.
    let give_away = h.query(Some(&ada), "notes", json!([["update", {"owner_id": bob_id}], ["eq", "id", ada_note]])).await;
    assert_eq!(error_code(&give_away), "check-violation", "{give_away}");
    let impersonate = h.query(Some(&ada), "notes", json!([["insert", {"body": "as bob", "owner_id": bob_id}]])).await;
    assert_eq!(error_code(&impersonate), "check-violation", "{impersonate}");
    // An upsert onto bob's key cannot take his row over.
    let upsert = h.query(Some(&ada), "notes", json!([["upsert", {"id": bob_note, "body": "mine now"}]])).await;
    assert_eq!(error_code(&upsert), "permission-denied", "{upsert}");
    let bob_rows = h.query(Some(&bob), "notes", json!([["select", "body"], ["order", "body"]])).await;
    assert_eq!(bob_rows["data"], json!([{"body": "bob's second"}, {"body": "bob's secret"}]), "bob's rows are intact");

    // Anonymous callers have no uid: they see nothing and cannot write.
    assert_eq!(ids(&h.query(None, "notes", json!([["select", "*"]])).await), Vec::<i64>::new());
    let anonymous = h.query(None, "notes", json!([["insert", {"body": "anon"}]])).await;
    assert!(["check-violation", "constraint-violation"].contains(&error_code(&anonymous)), "{anonymous}");

    // The notes app's own edit and delete respect the same rules.
    let edit = h.server.send(h.server.function(Method::PATCH, &format!("notes?id={bob_note}")).bearer_auth(&ada).json(&json!({"body": "x"}))).await;
    assert_eq!(edit.status, StatusCode::NOT_FOUND, "{}", edit.text());
    let remove = h.server.send(h.server.function(Method::DELETE, &format!("notes?id={ada_note}")).bearer_auth(&ada)).await;
    assert_eq!(remove.status, StatusCode::NO_CONTENT, "{}", remove.text());
    h.finish().await;
}

async fn group_metadata_and_role_policies_admit_exactly_their_callers(backend: Backend) {
    let h = Harness::start(backend, &[]).await;
    h.create_table(json!({"name": "documents", "columns": [
        {"name": "id", "type": "integer", "primary_key": true},
        {"name": "department", "type": "text", "nullable": false},
        {"name": "level", "type": "integer", "nullable": false, "default": {"value": 0}},
        {"name": "published", "type": "boolean", "nullable": false, "default": {"value": false}}
    ]}))
    .await;
    h.set_policies("documents", json!([
        {"name": "admins read all", "operation": "select", "using": "'admin' in auth.groups()"},
        {"name": "department reads its own up to clearance", "operation": "select",
         "using": "department = auth.metadata('department') and level <= auth.metadata('clearance')"},
        {"name": "anyone reads published", "operation": "select", "using": "published and auth.role() in ('anonymous', 'authenticated')"},
        {"name": "admins write", "operation": "all", "using": "'admin' in auth.groups()"}
    ]))
    .await;
    let (_, admin) = h.user("root@example.com", &["admin"], json!({})).await;
    let (_, eng) = h.user("eng@example.com", &[], json!({"department": "engineering", "clearance": 2})).await;
    let (_, wrong_type) = h.user("odd@example.com", &[], json!({"department": "engineering", "clearance": "2"})).await;
    let (_, sales) = h.user("sales@example.com", &["sales"], json!({"department": "sales"})).await;

    let rows = json!([
        {"id": 1, "department": "engineering", "level": 1},
        {"id": 2, "department": "engineering", "level": 3},
        {"id": 3, "department": "sales", "level": 0},
        {"id": 4, "department": "legal", "published": true}
    ]);
    let written = h.query(Some(&admin), "documents", json!([["insert", rows]])).await;
    assert_eq!(written["count"], 4, "{written}");
    let refused = h.query(Some(&eng), "documents", json!([["insert", {"id": 9, "department": "engineering"}]])).await;
    assert_eq!(error_code(&refused), "check-violation");

    let all = json!([["select", "id"]]);
    assert_eq!(ids(&h.query(Some(&admin), "documents", all.clone()).await), [1, 2, 3, 4]);
    assert_eq!(ids(&h.query(Some(&eng), "documents", all.clone()).await), [1, 4], "clearance 2 excludes level 3");
    // A clearance of the wrong type never satisfies a comparison.
    assert_eq!(ids(&h.query(Some(&wrong_type), "documents", all.clone()).await), [4]);
    assert_eq!(ids(&h.query(Some(&sales), "documents", all.clone()).await), [4], "no clearance, no department rows");
    assert_eq!(ids(&h.query(None, "documents", all.clone()).await), [4], "anonymous sees published rows");
    let update = h.query(Some(&eng), "documents", json!([["update", {"level": 0}], ["eq", "id", 2]])).await;
    assert_eq!(update["count"], 0, "{update}");
    h.finish().await;
}

async fn injection_attempts_never_leak_or_damage(backend: Backend) {
    let h = Harness::start(backend, &[]).await;
    h.create_table(notes_table()).await;
    h.set_policies("notes", owner_policies()).await;
    let (_, ada) = h.user("ada@example.com", &[], json!({})).await;
    let (_, bob) = h.user("bob@example.com", &[], json!({})).await;
    h.query(Some(&bob), "notes", json!([["insert", [{"body": "bob 1"}, {"body": "bob 2"}]]])).await;
    let own = h.query(Some(&ada), "notes", json!([["insert", {"body": "ada"}], ["select", "id"]])).await;
    let own_id = own["data"][0]["id"].as_i64().unwrap();

    let hostile = [
        // Values are bound, whatever they contain.
        json!([["select", "*"], ["eq", "body", "' OR '1'='1"]]),
        json!([["select", "*"], ["eq", "owner_id", "x' OR owner_id IS NOT NULL --"]]),
        json!([["select", "*"], ["like", "body", "%' OR 1=1 --"]]),
        json!([["select", "*"], ["in", "body", ["a') OR (1=1", "b"]]]),
        json!([["select", "*"], ["eq", "id", "1 OR 1=1"]]),
        json!([["select", "*"], ["or", "body.eq.\"x\\\" OR 1=1 --\""]]),
        json!([["select", "*"], ["or", "body.eq.x),owner_id.neq.(y"]]),
        // Identifiers are looked up in the schema, never written as given.
        json!([["select", "id, owner_id; DROP TABLE notes"]]),
        json!([["select", "*"], ["eq", "id = id OR 1", 1]]),
        json!([["select", "*"], ["eq", "\"owner_id\"", "x"]]),
        json!([["select", "*"], ["order", "id; DROP TABLE notes"]]),
        json!([["select", "*"], ["order", "(CASE WHEN 1=1 THEN id END)"]]),
        json!([["select", "*"], ["filter", "id", "= 1 OR 1=1 --", 1]]),
        json!([["select", "*"], ["or", "id.gt.0) OR (1=1"]]),
        json!([["update", {"owner_id = owner_id, body": "x"}], ["eq", "id", own_id]]),
        json!([["insert", {"body": "x", "owner_id\" , \"body": "y"}]]),
        json!([["select", "*"], ["limit", "1; DROP TABLE notes"]]),
        json!([["select", "*"], ["eq", "body", "\u{0000}' --"]]),
    ];
    for calls in &hostile {
        // Refused by the builder (a TypeError the driver reports) or by the
        // host (an error result), or harmlessly run: never a leak.
        let reply = h.call(Some(&ada), json!({"table": "notes", "calls": calls})).await;
        let result = reply.json();
        assert!(reply.status == StatusCode::OK || result["thrown"].is_string(), "{calls}: {result}");
        if let Some(rows) = result["data"].as_array() {
            assert!(rows.iter().all(|r| r["id"].is_null() || r["id"] == own_id), "{calls} leaked {result}");
        }
    }
    // Tables outside the app namespace are unreachable by any spelling.
    for table in ["edgefn_users", "app_notes", "app.notes", "sqlite_master", "pg_catalog.pg_user", "notes; DROP TABLE notes", "NOTES", "notes\u{0000}"] {
        let reply = h.call(Some(&ada), json!({"table": table, "calls": [["select", "*"]]})).await;
        let result = reply.json();
        assert!(result["error"]["code"] == "unknown-table" || result["thrown"].is_string(), "{table}: {result}");
    }
    // Thrown or refused, nothing changed: bob still has both rows.
    let bob_rows = h.query(Some(&bob), "notes", json!([["select", "body"], ["order", "body"]])).await;
    assert_eq!(bob_rows["data"], json!([{"body": "bob 1"}, {"body": "bob 2"}]));
    let count = hostile.len() + 8;
    assert!(count >= 20, "at least 20 cases");
    h.finish().await;
}

async fn service_role_bypasses_rls_and_is_recorded(backend: Backend) {
    let h = Harness::start(backend, &[]).await;
    h.create_table(notes_table()).await;
    h.set_policies("notes", owner_policies()).await;
    let (_, ada) = h.user("ada@example.com", &[], json!({})).await;
    let (_, bob) = h.user("bob@example.com", &[], json!({})).await;
    for token in [&ada, &bob] {
        h.query(Some(token), "notes", json!([["insert", {"body": "mine"}]])).await;
    }
    let deployed = h
        .admin(Method::POST, "/functions/report/versions", Some(json!({
            "source": common::fixture_source("db-driver"),
            "policy": {"type": "public"},
            "database_role": "service"
        })))
        .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    let version = h.admin(Method::GET, "/functions/report/versions/1", None).await.json();
    assert_eq!(version["manifest"]["database_role"], "service", "shown in the admin API: {version}");

    let reply = h.server.send(h.server.function(Method::POST, "report").json(&json!({"table": "notes", "calls": [["select", "id"]]}))).await;
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 2, "{}", reply.text());
    let record = h.server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["database"]["service_role"], true, "{record}");
    assert_eq!(record["database"]["queries"], 1);

    // The same function as the caller sees only the caller's rows, and its
    // record says so.
    let reply = h.call(Some(&ada), json!({"table": "notes", "calls": [["select", "id"]]})).await;
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 1);
    let record = h.server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["database"]["service_role"], false, "{record}");
    h.finish().await;
}

async fn transactions_commit_only_when_the_callback_resolves(backend: Backend) {
    let h = Harness::start(backend, &[]).await;
    h.create_table(notes_table()).await;
    h.set_policies("notes", owner_policies()).await;
    let (_, ada) = h.user("ada@example.com", &[], json!({})).await;
    let insert = |body: &str| json!({"table": "notes", "calls": [["insert", {"body": body}]]});
    let count = || async { h.query(Some(&ada), "notes", json!([["select", "*", {"count": "exact", "head": true}]])).await["count"].clone() };

    let committed = h.call(Some(&ada), json!({"transaction": [insert("a"), insert("b")]})).await;
    assert_eq!(committed.json()["committed"], true, "{}", committed.text());
    assert_eq!(count().await, 2);

    let thrown = h.call(Some(&ada), json!({"transaction": [insert("c"), insert("d")], "throwAtEnd": true})).await;
    assert_eq!(thrown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", thrown.text());
    assert_eq!(count().await, 2, "rolled back on throw");

    // A failing statement in the middle undoes the earlier ones too.
    let bad = json!({"table": "notes", "calls": [["insert", {"body": "e", "owner_id": "someone else"}]]});
    let failed = h.call(Some(&ada), json!({"transaction": [insert("e"), bad]})).await;
    assert!(failed.json()["thrown"].as_str().unwrap().contains("check-violation"), "{}", failed.text());
    assert_eq!(count().await, 2);

    // A multi-row insert is one statement: one bad row writes none.
    let batch = h.query(Some(&ada), "notes", json!([["insert", [{"body": "f"}, {"body": "g", "owner_id": "x"}]]])).await;
    assert_eq!(error_code(&batch), "check-violation");
    assert_eq!(count().await, 2);
    h.finish().await;
}

async fn values_round_trip_with_their_types(backend: Backend) {
    let h = Harness::start(backend, &[]).await;
    h.create_table(json!({"name": "samples", "rls_enabled": false, "columns": [
        {"name": "id", "type": "uuid", "primary_key": true, "default": "gen_random_uuid()"},
        {"name": "label", "type": "text"},
        {"name": "amount", "type": "integer"},
        {"name": "ratio", "type": "real"},
        {"name": "active", "type": "boolean"},
        {"name": "at", "type": "timestamp"},
        {"name": "doc", "type": "json"},
        {"name": "raw", "type": "blob"}
    ]}))
    .await;
    let (_, ada) = h.user("ada@example.com", &[], json!({})).await;
    let row = json!({
        "label": "naïve ✓ 'quoted'", "amount": 9007199254740991i64, "ratio": 0.25, "active": true,
        "at": "2026-11-28T10:15:30.123+01:00", "doc": {"nested": [1, "two", null, {"three": true}]}, "raw": "AAEC/w=="
    });
    let inserted = h.query(Some(&ada), "samples", json!([["insert", row], ["select", "*"], ["single"]])).await;
    assert!(inserted["error"].is_null(), "{inserted}");
    let stored = &inserted["data"];
    let id = stored["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(stored["label"], "naïve ✓ 'quoted'");
    assert_eq!(stored["amount"], 9007199254740991i64);
    assert_eq!(stored["ratio"], 0.25);
    assert_eq!(stored["active"], true);
    assert_eq!(stored["at"], "2026-11-28T09:15:30.123Z", "timestamps come back in UTC");
    assert_eq!(stored["doc"], json!({"nested": [1, "two", null, {"three": true}]}));
    assert_eq!(stored["raw"], "AAEC/w==");
    let nulls = h.query(Some(&ada), "samples", json!([["insert", {"label": null}], ["select", "*"], ["single"]])).await;
    assert_eq!(nulls["data"]["amount"], Value::Null, "{nulls}");

    for calls in [
        json!([["select", "id"], ["eq", "id", id]]),
        json!([["select", "id"], ["gte", "at", "2026-11-28T09:00:00Z"]]),
        json!([["select", "id"], ["is", "active", true]]),
        json!([["select", "id"], ["gt", "amount", 9007199254740990i64]]),
    ] {
        let found = h.query(Some(&ada), "samples", calls.clone()).await;
        assert_eq!(found["data"], json!([{"id": id}]), "{calls}: {found}");
    }
    for (calls, code) in [
        (json!([["select", "*"], ["eq", "amount", "12"]]), "invalid-value"),
        (json!([["select", "*"], ["eq", "at", "yesterday"]]), "invalid-value"),
        (json!([["select", "*"], ["eq", "id", "not-a-uuid"]]), "invalid-value"),
        (json!([["insert", {"active": "yes"}]]), "invalid-value"),
        (json!([["select", "*"], ["eq", "missing", 1]]), "unknown-column"),
        (json!([["select", "*"], ["gt", "doc", 1]]), "invalid-query"),
    ] {
        let result = h.query(Some(&ada), "samples", calls.clone()).await;
        assert_eq!(error_code(&result), code, "{calls}: {result}");
    }
    h.finish().await;
}

async fn limits_are_clear_errors(backend: Backend) {
    let h = Harness::start(backend, &["--db-max-rows", "5", "--db-max-queries", "3", "--db-query-timeout-ms", "300"]).await;
    h.create_table(json!({"name": "items", "rls_enabled": false, "columns": [
        {"name": "id", "type": "integer", "primary_key": true}
    ]}))
    .await;
    let rows: Vec<Value> = (1..=5).map(|id| json!({"id": id})).collect();
    let written = h.query(None, "items", json!([["insert", rows]])).await;
    assert_eq!(written["count"], 5, "{written}");
    let six: Vec<Value> = (6..=11).map(|id| json!({"id": id})).collect();
    assert_eq!(error_code(&h.query(None, "items", json!([["insert", six]])).await), "too-many-rows");
    h.query(None, "items", json!([["insert", {"id": 6}]])).await;

    let too_many = h.query(None, "items", json!([["select", "id"]])).await;
    assert_eq!(error_code(&too_many), "too-many-rows");
    assert!(too_many["error"]["message"].as_str().unwrap().contains("5 rows"), "{too_many}");
    assert_eq!(ids(&h.query(None, "items", json!([["select", "id"], ["order", "id"], ["limit", 5]])).await), [1, 2, 3, 4, 5]);
    assert_eq!(error_code(&h.query(None, "items", json!([["select", "id"], ["lte", "id", 2], ["single"]])).await), "not-single");
    let maybe = h.query(None, "items", json!([["select", "id"], ["eq", "id", 99], ["maybeSingle"]])).await;
    assert_eq!(maybe["data"], Value::Null, "{maybe}");
    let unfiltered = h.query(None, "items", json!([["delete"]])).await;
    assert!(unfiltered["error"].is_object() || unfiltered.get("thrown").is_some(), "{unfiltered}");

    let query = json!({"table": "items", "calls": [["select", "id"], ["eq", "id", 1]]});
    let results = h.call(None, json!({"queries": [query, query, query, query]})).await.json();
    assert!(results[2]["error"].is_null(), "{results}");
    assert_eq!(error_code(&results[3]), "too-many-queries", "{results}");

    // A query that cannot finish in time (here: the table is locked by
    // another connection) ends with a timeout error, not a hung function.
    let locker = h.lock_items().await;
    let started = std::time::Instant::now();
    let blocked = h.query(None, "items", json!([["insert", {"id": 100}]])).await;
    assert_eq!(error_code(&blocked), "timeout", "{blocked}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "stopped by the 300 ms query timeout");
    drop(locker);
    h.finish().await;
}

impl Harness {
    /// Holds a write lock on the app table `items` from outside edgefn until
    /// the returned transaction is dropped.
    async fn lock_items(&self) -> sea_orm::DatabaseTransaction {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let (url, lock) = match &self.postgres {
            Some(postgres) => (postgres.url.clone(), "LOCK TABLE app.items IN ACCESS EXCLUSIVE MODE"),
            None => (
                format!("sqlite://{}", self.server.data_dir.join("edgefn.db").display()),
                "INSERT INTO app_items (id) VALUES (1000)",
            ),
        };
        let connection = sea_orm::Database::connect(url).await.unwrap();
        let transaction = connection.begin().await.unwrap();
        transaction.execute_unprepared(lock).await.unwrap();
        transaction
    }
}
