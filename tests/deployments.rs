//! Deploying is safe: bad sources are refused with the compiler's location,
//! every upload is a new immutable version, rollback needs no recompiling,
//! and a restart serves from what was stored.

mod common;

use common::{TestServer, fixture_source};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn replying(text: &str) -> String {
    format!("export default {{ async fetch() {{ return new Response({text:?}); }} }};")
}

#[tokio::test]
async fn a_syntax_error_is_a_400_with_line_and_column_and_the_old_version_keeps_serving() {
    let server = TestServer::start().await;
    server.deploy_source("svc", &replying("version one")).await;

    let reply = server.deploy_source("svc", &fixture_source("syntax-error")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["error"], "compile_error");
    assert_eq!(body["line"], 3);
    assert!(body["column"].as_u64().unwrap() > 0);
    assert!(body["message"].as_str().unwrap().starts_with("SyntaxError"), "{body}");

    let served = server.get("svc").await;
    assert_eq!(served.text(), "version one");
    let described = server.send(server.admin(Method::GET, "/functions/svc")).await.json();
    assert_eq!(described["active_version"], 1);
    assert_eq!(described["versions"].as_array().unwrap().len(), 1, "a failed deploy must not store a version");
}

#[tokio::test]
async fn bad_uploads_get_clear_errors() {
    let server = TestServer::start().await;
    let cases: [(&str, Vec<u8>, StatusCode, &str); 4] = [
        ("svc", b"   ".to_vec(), StatusCode::BAD_REQUEST, "empty"),
        ("svc", vec![0xff, 0xfe, 0x00], StatusCode::BAD_REQUEST, "UTF-8"),
        ("Bad Name", replying("x").into_bytes(), StatusCode::BAD_REQUEST, "invalid function name"),
        ("svc", b"import { x } from 'nowhere'; export default { fetch() {} }".to_vec(), StatusCode::BAD_REQUEST, "nowhere"),
    ];
    for (name, body, status, needle) in cases {
        let reply = server
            .send(server.admin(Method::POST, &format!("/functions/{}/versions", name.replace(' ', "%20"))).body(body))
            .await;
        assert_eq!(reply.status, status, "{}", reply.text());
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "{message:?} should mention {needle:?}");
    }
    let malformed = server
        .send(server.admin(Method::POST, "/functions/svc/versions").header("content-type", "application/json").body("{\"sauce\": 1}"))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.json()["message"].as_str().unwrap().contains("invalid deployment JSON"));
}

#[tokio::test]
async fn every_upload_is_a_new_version_and_rollback_reactivates_without_recompiling() {
    let server = TestServer::start().await;
    for (n, text) in ["one", "two", "three"].iter().enumerate() {
        let reply = server.deploy_source("svc", &replying(text)).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(reply.json()["version"], n + 1);
        assert_eq!(server.get("svc").await.text(), *text);
    }
    let rollback = server.send(server.admin(Method::POST, "/functions/svc/activate").json(&json!({"version": 1}))).await;
    assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text());
    assert_eq!(server.get("svc").await.text(), "one");

    let described = server.send(server.admin(Method::GET, "/functions/svc")).await.json();
    assert_eq!(described["active_version"], 1);
    let versions: Vec<_> = described["versions"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [3, 2, 1]);
    let v2 = server.send(server.admin(Method::GET, "/functions/svc/versions/2")).await.json();
    assert_eq!(v2["source"], replying("two"));

    let missing = server.send(server.admin(Method::POST, "/functions/svc/activate").json(&json!({"version": 9}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("svc").await.text(), "one");

    let deleted = server.send(server.admin(Method::DELETE, "/functions/svc")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get("svc").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_restart_serves_stored_versions_and_a_corrupt_engine_cache_is_rebuilt() {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("private-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let args = ["--cache-dir", cache.to_str().unwrap()];
    let server = TestServer::start_with(&args).await;
    server.deploy_source("svc", &replying("persisted")).await;
    let server = server.restart().await;
    assert_eq!(server.get("svc").await.text(), "persisted");

    // Flip bytes in the cached machine code: the next start must notice and
    // rebuild instead of executing it.
    let image = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("the engine image is cached");
    let mut bytes = std::fs::read(&image).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64].fill(0xCC);
    std::fs::write(&image, &bytes).unwrap();

    let server = server.restart().await;
    assert_eq!(server.get("svc").await.text(), "persisted");
    assert_ne!(std::fs::read(&image).unwrap(), bytes, "the corrupt image was not replaced");
    drop(server);
    let _ = std::fs::remove_dir_all(&cache);
}

#[tokio::test]
async fn the_admin_api_requires_a_valid_admin_key() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let url = server.url("/admin/v1/functions/svc/versions");
    for request in [client.post(&url), client.post(&url).bearer_auth("efk_not_a_real_key_000000000000")] {
        let reply = server.send(request.body(replying("x"))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_eq!(reply.json()["error"], "unauthorized");
    }
    assert_eq!(server.get("svc").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn concurrent_requests_to_the_same_and_to_different_functions_all_get_their_own_answer() {
    let server = std::sync::Arc::new(TestServer::start().await);
    for name in ["alpha", "beta", "gamma"] {
        server.deploy_source(name, &replying(name)).await;
    }
    server.deploy("echo", "echo").await;
    let mut tasks = Vec::new();
    for i in 0..96 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let reply = server.send(server.function(Method::POST, &format!("echo/{i}")).body(format!("body {i}"))).await;
                assert_eq!(reply.status, StatusCode::OK);
                let seen = reply.json();
                assert_eq!(seen["pathname"], format!("/functions/v1/echo/{i}"));
                assert_eq!(seen["body"], format!("body {i}"));
            } else {
                let name = ["alpha", "beta", "gamma"][i % 3];
                assert_eq!(server.get(name).await.text(), name);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// A module is evaluated once when its deployment is loaded, and each
/// request's fresh instance resumes from that (sandbox/module_state.rs):
/// what a request changes at module level is still gone by the next, a
/// module whose top level builds a lot of data is resumed with all of it,
/// and errors still point into the author's source.
#[tokio::test]
async fn every_request_starts_from_the_module_as_its_top_level_left_it() {
    let server = TestServer::start().await;
    let counter = "let n = 0; const seen = [];
export default { fetch() { n++; seen.push(n); return Response.json({ n, seen }); } };";
    assert_eq!(server.deploy_source("counter", counter).await.status, StatusCode::CREATED);
    let mut fuel = Vec::new();
    for _ in 0..3 {
        let reply = server.get("counter").await;
        assert_eq!(reply.json(), json!({"n": 1, "seen": [1]}));
        let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
        fuel.push(record["fuel_consumed"].as_u64().unwrap());
    }
    assert!(fuel.windows(2).all(|pair| pair[0] == pair[1]), "every request does the same work: {fuel:?}");

    // Several MiB built at the top level, past the engine's initial memory.
    let big = "const numbers = Array.from({ length: 200000 }, (_, i) => i);
const text = 'x'.repeat(1 << 20);
export default { fetch() { numbers[0] += 1; return Response.json({ first: numbers[0], last: numbers.at(-1), text: text.length }); } };";
    assert_eq!(server.deploy_source("big", big).await.status, StatusCode::CREATED);
    for _ in 0..2 {
        let reply = server.get("big").await;
        assert_eq!(reply.json(), json!({"first": 1, "last": 199999, "text": 1 << 20}));
        let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
        // Building the array alone costs far more than this: it was not
        // evaluated again.
        assert!(record["fuel_consumed"].as_u64().unwrap() < 1_000_000, "{record}");
    }

    let thrower = "const unused = 1;
export default {
  fetch(request) {
    if (new URL(request.url).searchParams.has('boom')) throw new TypeError('boom');
    return new Response('fine');
  },
};";
    assert_eq!(server.deploy_source("thrower", thrower).await.status, StatusCode::CREATED);
    assert_eq!(server.get("thrower").await.text(), "fine");
    let reply = server.get("thrower?boom=1").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!((reply.json()["message"].clone(), reply.json()["line"].clone()), (json!("TypeError: boom"), json!(4)));

    // A redeploy resumes from the new version's module, and so does a
    // rollback to the old one.
    assert_eq!(server.deploy_source("counter", &replying("second")).await.status, StatusCode::CREATED);
    assert_eq!(server.get("counter").await.text(), "second");
    let rolled_back = server.send(server.admin(Method::POST, "/functions/counter/activate").json(&json!({"version": 1}))).await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text());
    assert_eq!(server.get("counter").await.json(), json!({"n": 1, "seen": [1]}));
}

/// A module whose top level calls the host (logs, reads a clock or
/// randomness) is evaluated by every request instead: each request logs its
/// line and gets its own values, as if the module had just been loaded.
#[tokio::test]
async fn a_top_level_that_calls_the_host_runs_again_for_every_request() {
    let server = TestServer::start().await;
    let source = "console.log('loading');
const id = crypto.randomUUID();
export default { fetch() { return Response.json({ id }); } };";
    assert_eq!(server.deploy_source("fresh", source).await.status, StatusCode::CREATED);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let reply = server.get("fresh").await;
        ids.push(reply.json()["id"].clone());
        let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
        assert_eq!(record["console"][0]["text"], "loading", "{record}");
    }
    assert_ne!(ids[0], ids[1]);

    // Randomness alone, without a log line, is enough.
    let source = "const id = crypto.randomUUID(); export default { fetch() { return Response.json({ id }); } };";
    assert_eq!(server.deploy_source("random", source).await.status, StatusCode::CREATED);
    let (first, second) = (server.get("random").await.json(), server.get("random").await.json());
    assert_ne!(first["id"], second["id"]);
}
