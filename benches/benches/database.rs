//! What a function's database query costs over the same query issued
//! directly with sea-orm: a single-row select by primary key, on SQLite, on a
//! table with row-level security on (the caller owns the row). Target: the
//! function adds ≤ 1 ms p50.
//! Run: `cargo bench -p edgefn-benches --bench database`
//!
//! - `direct_sea_orm`: the SELECT through sea-orm, row decoded to JSON;
//! - `function_select`: a fresh instance runs a function whose handler does
//!   `ctx.db.from("items").select("id,name").eq("id", 42).single()` and
//!   returns the row as JSON (plan, policy, SQL, bind, decode, back to JS);
//! - `function_no_query`: the same function returning a constant, so the
//!   difference to `function_select` is the query path alone.

use criterion::{Criterion, criterion_group, criterion_main};
use edgefn_host::capabilities::database::{ApplicationDatabase, DatabaseLimits};
use edgefn_host::database::policy::AuthContext;
use edgefn_host::database::query::QueryContext;
use edgefn_host::database::schema::TableSpec;
use edgefn_host::database::{AppDatabase, PoliciesSpec};
use edgefn_host::sandbox::Capabilities;
use edgefn_host::sandbox::limits::Limits;
use edgefn_migrations::{Migrator, MigratorTrait};
use edgefn_world::types::{Invocation, Request};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::sync::Arc;

const OWNER: &str = "0193a3c4-7f1e-7b2a-9c1d-2e3f4a5b6c7d";

const SELECT_BY_ID: &str = r#"
export default {
  async fetch(request, env, ctx) {
    const { data, error } = await ctx.db.from("items").select("id,name").eq("id", 42).single();
    if (error) throw new Error(error.message);
    return Response.json(data);
  }
};"#;

const NO_QUERY: &str = r#"
export default {
  async fetch(request, env, ctx) {
    return Response.json({ id: 42, name: "item 42" });
  }
};"#;

fn request() -> Request {
    Request { method: "GET".into(), url: "http://bench.local/functions/v1/items".into(), headers: vec![], body: vec![] }
}

fn database_query(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("edgefn-database-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let (db, app) = runtime.block_on(async {
        let db = sea_orm::Database::connect(&url).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        let app = Arc::new(AppDatabase::new(db.clone()));
        let spec: TableSpec = serde_json::from_value(json!({"name": "items", "columns": [
            {"name": "id", "type": "integer", "primary_key": true},
            {"name": "owner_id", "type": "text", "nullable": false},
            {"name": "name", "type": "text", "nullable": false}
        ]}))
        .unwrap();
        app.create_table(spec, "bench").await.unwrap();
        let policies: PoliciesSpec = serde_json::from_value(json!({"rls_enabled": true, "policies": [
            {"name": "own rows", "operation": "select", "using": "owner_id = auth.uid()"}
        ]}))
        .unwrap();
        app.set_policies("items", policies, "bench").await.unwrap();
        for id in 1..=1000 {
            db.execute_unprepared(&format!("INSERT INTO app_items (id, owner_id, name) VALUES ({id}, '{OWNER}', 'item {id}')"))
                .await
                .unwrap();
        }
        (db, app)
    });
    let sandbox = runtime.block_on(edgefn_benches::sandbox());
    let select = runtime.block_on(edgefn_benches::compile(&sandbox, SELECT_BY_ID));
    let no_query = runtime.block_on(edgefn_benches::compile(&sandbox, NO_QUERY));
    let limits = Limits::DEFAULT;
    let context = QueryContext {
        auth: AuthContext { uid: Some(OWNER.into()), role: "authenticated".into(), ..AuthContext::default() },
        bypass_rls: false,
        max_rows: 1000,
    };

    let mut group = c.benchmark_group("database");
    group.bench_function("direct_sea_orm", |b| {
        b.to_async(&runtime).iter(|| async {
            let statement = Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT id, name FROM app_items WHERE id = ? AND owner_id = ?",
                [42i64.into(), OWNER.into()],
            );
            let row = db.query_one_raw(statement).await.unwrap().unwrap();
            let body = json!({"id": row.try_get::<i64>("", "id").unwrap(), "name": row.try_get::<String>("", "name").unwrap()});
            assert_eq!(body["id"], 42);
        })
    });
    for (name, function) in [("function_select", &select), ("function_no_query", &no_query)] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let invocation = Invocation { id: "bench".into(), function_name: "items".into(), version: 1, caller: None, secret_names: Vec::new() };
                let database = ApplicationDatabase::new(app.clone(), context.clone(), DatabaseLimits::default());
                let execution =
                    sandbox.invoke(&function.group, function.bytecode.clone(), function.module_state.clone(), request(), invocation, &limits, Capabilities { database, ..Default::default() }, &Default::default()).await.unwrap();
                let response = execution.result.expect("the function answers");
                assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, database_query);
criterion_main!(benches);
