//! The same server on PostgreSQL instead of the embedded SQLite: the schema
//! migrates, deploys and rollbacks work, records and secrets are written, and
//! a restart serves from what PostgreSQL stored.
//!
//! Needs `EDGEFN_TEST_POSTGRES_URL` (scripts/test sets it with
//! scripts/ensure-postgres, starting a throwaway server when none runs).

mod common;

use common::{PostgresDatabase, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn edgefn_runs_on_postgresql() {
    let postgres = PostgresDatabase::create().await;
    let url = postgres.url.clone();
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

    // Secrets: encrypted rows (bytea), an upsert on update, grants.
    for value in ["pg-secret-one", "pg-secret-two"] {
        let set = server.send(server.admin(Method::PUT, "/secrets/PG_SECRET").json(&json!({"value": value}))).await;
        assert!(set.status.is_success(), "{}", set.text());
    }
    let reader = json!({"source": "export default { fetch(r, env) { return new Response(env.PG_SECRET); } };", "secrets": ["PG_SECRET"], "policy": {"type": "public"}});
    let deployed = server.send(server.admin(Method::POST, "/functions/reader/versions").json(&reader)).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    assert_eq!(server.get("reader").await.text(), "pg-secret-two");

    let rollback = server.send(server.admin(Method::POST, "/functions/svc/activate").json(&json!({"version": 1}))).await;
    assert_eq!(rollback.status, StatusCode::OK);
    let server = server.restart().await;
    assert_eq!(server.get("svc").await.json(), json!({"version": "one"}));
    assert_eq!(server.get("reader").await.text(), "pg-secret-two");
    drop(server);

    postgres.drop_now().await;
}

#[tokio::test]
async fn servers_sharing_one_postgresql_see_an_activation_within_the_cache_ttl() {
    let postgres = PostgresDatabase::create().await;
    let url = postgres.url.clone();
    let first = TestServer::start_with(&["--database-url", &url]).await;
    let second = TestServer::start_with(&["--database-url", &url]).await;
    for text in ["one", "two"] {
        let source = format!("export default {{ async fetch() {{ return new Response({text:?}); }} }};");
        assert_eq!(first.deploy_source("svc", &source).await.status, StatusCode::CREATED);
    }
    assert_eq!(second.get("svc").await.text(), "two");

    let rollback = first.send(first.admin(Method::POST, "/functions/svc/activate").json(&json!({"version": 1}))).await;
    assert_eq!(rollback.status, StatusCode::OK);
    assert_eq!(first.get("svc").await.text(), "one", "the node that activated serves the new version at once");
    // The other node re-reads its cache entry within ACTIVE_DEPLOYMENT_TTL (15 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    loop {
        if second.get("svc").await.text() == "one" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the second server still serves version 2 after 25 s");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    drop((first, second));
    postgres.drop_now().await;
}

#[tokio::test]
async fn identity_works_on_postgresql_and_tokens_verify_on_every_server_sharing_it() {
    let postgres = PostgresDatabase::create().await;
    let url = postgres.url.clone();
    // Servers sharing a database share the master key, which also signs tokens.
    let key = "ZWRnZWZuIHRlc3QgbWFzdGVyIGtleSwgMzIgYnl0ZXM="; // "edgefn test master key, 32 bytes"
    let args = ["--database-url", &url, "--master-key", key, "--identity-cache-ttl-ms", "500"];
    let first = TestServer::start_with(&args).await;
    let second = TestServer::start_with(&args).await;
    let created = first
        .send(first.admin(Method::POST, "/users").json(&json!({
            "email": "pg@example.com", "password": "correct horse battery", "groups": ["admin"], "metadata": {"seats": 3}
        })))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let manifest = json!({"source": common::fixture_source("whoami"), "policy": {"type": "group", "groups": ["admin"]}});
    assert_eq!(first.send(first.admin(Method::POST, "/functions/admins/versions").json(&manifest)).await.status, StatusCode::CREATED);

    let signed_in = first
        .send(reqwest::Client::new().post(first.url("/auth/v1/token?grant_type=password")).json(&json!({
            "email": "pg@example.com", "password": "correct horse battery"
        })))
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text());
    let token = signed_in.json()["access_token"].as_str().unwrap().to_owned();
    let on_second = second.send(second.function(Method::GET, "admins").bearer_auth(&token)).await;
    assert_eq!(on_second.status, StatusCode::OK, "a token from one server works on the other: {}", on_second.text());
    assert_eq!(on_second.json()["caller"]["metadata"], json!({"seats": 3}));

    // Removed from the group on the first server: the second follows within its profile TTL.
    let removed = first.send(first.admin(Method::DELETE, &format!("/groups/admin/members/{id}"))).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while second.send(second.function(Method::GET, "admins").bearer_auth(&token)).await.status != StatusCode::FORBIDDEN {
        assert!(std::time::Instant::now() < deadline, "the second server still admits a removed member after 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Refresh rotation and reuse detection hold across servers.
    let refresh = signed_in.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh_on = |server: &TestServer| {
        reqwest::Client::new()
            .post(server.url("/auth/v1/token?grant_type=refresh_token"))
            .json(&json!({"refresh_token": refresh}))
    };
    assert_eq!(second.send(refresh_on(&second)).await.status, StatusCode::OK);
    assert_eq!(first.send(refresh_on(&first)).await.status, StatusCode::UNAUTHORIZED, "reuse on another server");
    drop((first, second));
    postgres.drop_now().await;
}
