//! A hostile or broken function hurts nobody but itself: each limit stops it
//! with an outcome that says what happened, and the host keeps serving.

mod common;

use common::{TestServer, fixture_source};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Deploys a fixture with manifest limits through the JSON form of the build endpoint.
async fn deploy_limited(server: &TestServer, name: &str, fixture: &str, limits: Value) {
    let reply = server
        .send(
            server
                .admin(Method::POST, &format!("/functions/{name}/versions"))
                .json(&json!({"source": fixture_source(fixture), "limits": limits, "policy": {"type": "public"}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

async fn assert_still_healthy(server: &TestServer) {
    server.deploy("canary", "echo").await;
    let reply = server.get("canary").await;
    assert_eq!(reply.status, StatusCode::OK, "the host stopped serving: {}", reply.text());
}

#[tokio::test]
async fn an_exception_is_a_500_naming_the_error_and_its_line() {
    let server = TestServer::start().await;
    server.deploy("throws", "throws").await;
    let reply = server.get("throws").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = reply.json();
    assert_eq!(body["error"], "uncaught exception");
    assert_eq!(body["name"], "Error");
    assert_eq!(body["message"], "Error: card declined for 42");
    assert_eq!(body["line"], 5);
    assert!(body["stack"].as_str().unwrap().contains("chargeCard"), "{body}");

    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "error");
    assert_eq!(record["error"]["line"], 5);
    assert_still_healthy(&server).await;
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_fuel() {
    let server = TestServer::start().await;
    deploy_limited(&server, "spin", "infinite-loop", json!({"fuel": 50_000_000})).await;
    let reply = server.get("spin").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["error"], "fuel exhausted");
    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "fuel_exhausted");
    assert_still_healthy(&server).await;
}

#[tokio::test]
async fn an_infinite_loop_with_plenty_of_fuel_is_stopped_by_the_deadline() {
    let server = TestServer::start().await;
    deploy_limited(&server, "spin", "infinite-loop", json!({"fuel": 20_000_000_000u64, "deadline_ms": 300})).await;
    let started = std::time::Instant::now();
    let reply = server.get("spin").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.text());
    assert_eq!(reply.json()["error"], "deadline exceeded");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the deadline did not cut the loop short");
    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "deadline");
    assert_still_healthy(&server).await;
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_memory_limit() {
    let server = TestServer::start().await;
    deploy_limited(&server, "bomb", "memory-bomb", json!({"memory_bytes": 32 << 20})).await;
    let reply = server.get("bomb").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.text());
    assert_eq!(reply.json()["error"], "memory limit exceeded");
    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "memory_limit");
    assert!(record["peak_memory_bytes"].as_u64().unwrap() <= 32 << 20);
    assert_still_healthy(&server).await;
}

/// The engine serves a request's allocations from an arena it never frees
/// into (sdk-js/engine/src/arena.rs), up to a bound; past it, memory the
/// function lets go of must be reused. This function drops about 6 MB over
/// its run under a 4 MB limit, so it fails if it is not.
#[tokio::test]
async fn memory_a_function_lets_go_of_is_reused_within_its_limit() {
    let server = TestServer::start().await;
    deploy_limited(&server, "churn", "churn", json!({"memory_bytes": 4 << 20})).await;
    let reply = server.get("churn").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    // Each item's JSON is `{"round":R,"i":I,"label":"item-I"}`, a thousand to
    // a round between brackets and commas.
    let digits = |n: u64| n.to_string().len() as u64;
    let expected: u64 = (0..40u64).map(|round| 1001 + (0..1000u64).map(|i| 31 + digits(round) + 2 * digits(i)).sum::<u64>()).sum();
    assert_eq!(body["jsonLength"], expected, "{body}");
    assert_eq!(body["kept"], json!(["item-999@0", "item-999@20"]));
    assert_eq!(body["grown"], 5000);
    assert_eq!(body["sample"], "abcdefghijklmnopqrstuvwxyzab");
    assert_eq!(body["codesIntact"], true);
    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert!(record["peak_memory_bytes"].as_u64().unwrap() <= 4 << 20, "{record}");
}

/// A function whose requests grow its memory moves to the sandbox's group for
/// large functions, and the group it left gets a fresh copy of the engine
/// (host/src/sandbox/mod.rs, `LARGE_GROUP`): requests to it and to the
/// functions it leaves behind are served before, during and after the swap.
#[tokio::test]
async fn a_large_function_moves_out_and_its_old_group_keeps_serving() {
    let server = TestServer::start().await;
    // The first function and the fifth share a group.
    server.deploy("large", "many-objects").await;
    for name in ["second", "third", "fourth", "neighbour"] {
        server.deploy(name, "echo").await;
    }
    let first = server.get("large").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.json(), json!({"items": 20000, "last": "item 19999"}));
    let record = server.execution(first.header("x-edgefn-invocation-id").unwrap()).await;
    assert!(record["peak_memory_bytes"].as_u64().unwrap() > 3 << 20, "{record}");

    let server = &server;
    // Both functions at once, the large one a third of the time.
    let serve_both = || async move {
        let requests = (0..24).map(|i| {
            let name = if i % 3 == 0 { "large" } else { "neighbour" };
            async move { (name, server.get(name).await) }
        });
        for (name, reply) in futures::future::join_all(requests).await {
            assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        }
    };
    serve_both().await;
    // The move, and the fresh copy the group it left got (loaded in the
    // background while the requests above ran).
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = server.send(server.get_with_key("/metrics")).await.text();
        if metrics.contains("edgefn_engine_copies_replaced 1\n") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains("edgefn_large_functions 1\n"), "{metrics}");
    assert!(metrics.contains("edgefn_engine_copies_replaced 1\n"), "{metrics}");
    serve_both().await;
    assert_still_healthy(server).await;
}

#[tokio::test]
async fn deep_recursion_fails_cleanly() {
    let server = TestServer::start().await;
    server.deploy("recurse", "deep-recursion").await;
    let reply = server.get("recurse").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.text());
    let body = reply.json();
    // QuickJS's own stack check (a RangeError) or the Wasm stack guard: both
    // are reported as what they are, never as a crash of the host.
    let message = body["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("stack") || message.contains("recursion"),
        "unexpected error for runaway recursion: {body}"
    );
    assert_still_healthy(&server).await;
}

#[tokio::test]
async fn a_module_that_is_not_a_handler_is_refused_at_deploy_time() {
    let server = TestServer::start().await;
    let reply = server.deploy_source("nofetch", &fixture_source("no-fetch")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("default export must be an object with a fetch"), "{message}");
    assert!(message.contains("without a fetch method"), "{message}");
}

#[tokio::test]
async fn limits_above_the_server_ceiling_are_refused() {
    let server = TestServer::start().await;
    let reply = server
        .send(
            server
                .admin(Method::POST, "/functions/greedy/versions")
                .json(&json!({"source": fixture_source("echo"), "limits": {"memory_bytes": 1u64 << 40}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.json()["message"].as_str().unwrap().contains("limits.memory_bytes"));
    assert_eq!(server.get("greedy").await.status, StatusCode::NOT_FOUND);
}
