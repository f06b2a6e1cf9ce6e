//! The same server on PostgreSQL instead of the embedded SQLite: the schema
//! migrates, deploys and rollbacks work, records are written, and a restart
//! serves from what PostgreSQL stored.
//!
//! Needs `EDGEFN_TEST_POSTGRES_URL` (scripts/test sets it with
//! scripts/ensure-postgres, starting a throwaway server when none runs).

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

#[tokio::test]
async fn edgefn_runs_on_postgresql() {
    let admin_url = std::env::var("EDGEFN_TEST_POSTGRES_URL")
        .expect("EDGEFN_TEST_POSTGRES_URL must name a PostgreSQL database (scripts/test sets it)");
    // A database of its own, so runs never see each other's functions.
    let database = format!("edgefn_it_{}_{}", std::process::id(), unique_suffix());
    let admin = Database::connect(&admin_url).await.expect("connecting to PostgreSQL");
    admin.execute_unprepared(&format!("CREATE DATABASE {database}")).await.unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{database}");

    let server = TestServer::start_with(&["--database-url", &url]).await;
    for text in ["one", "two"] {
        let source = format!("export default {{ async fetch() {{ return Response.json({{ version: {text:?} }}); }} }};");
        assert_eq!(server.deploy_source("svc", &source).await.status, StatusCode::CREATED);
    }
    let reply = server.get("svc").await;
    assert_eq!(reply.json(), json!({"version": "two"}));
    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["version"], 2);

    let rollback = server.send(server.admin(Method::POST, "/functions/svc/activate").json(&json!({"version": 1}))).await;
    assert_eq!(rollback.status, StatusCode::OK);
    let server = server.restart().await;
    assert_eq!(server.get("svc").await.json(), json!({"version": "one"}));
    drop(server);

    admin.execute_unprepared(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000
}
