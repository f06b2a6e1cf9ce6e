//! Outbound HTTP: `fetch()` from real functions against a mock upstream on
//! loopback, through the real server's egress rules. Loopback is an internal
//! address, so each server here is told which of the mock's ports it may
//! reach (`--egress-allow-internal`); everything else on loopback, and every
//! other internal address, must stay out of reach.

mod common;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use axum::routing::any;
use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;

/// What the mock upstream saw of one request: everything, headers included,
/// as a real service's request log would.
#[derive(Debug, Clone)]
struct Captured {
    path: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone)]
struct Upstream {
    captured: Arc<Mutex<Vec<Captured>>>,
    /// Releases its waiters only when three requests wait at once.
    barrier: Arc<tokio::sync::Barrier>,
}

/// A mock upstream on 127.0.0.1: its base URL, its request log, and the
/// address of a listener that resets every connection.
struct MockUpstream {
    base: String,
    port: u16,
    captured: Arc<Mutex<Vec<Captured>>>,
    reset_port: u16,
}

async fn echo(State(upstream): State<Upstream>, Path(rest): Path<String>, headers: HeaderMap, query: Query<HashMap<String, String>>, method: axum::http::Method, body: String) -> impl IntoResponse {
    upstream.captured.lock().unwrap().push(Captured { path: format!("/echo/{rest}"), headers: headers.clone(), body: body.clone() });
    let headers: HashMap<String, String> =
        headers.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned())).collect();
    let mut response = axum::Json(json!({
        "method": method.as_str(), "path": format!("/echo/{rest}"), "query": query.0, "headers": headers, "body": body,
    }))
    .into_response();
    response.headers_mut().insert("x-upstream", "mock".parse().unwrap());
    response
}

async fn redirect(Query(query): Query<HashMap<String, String>>) -> impl IntoResponse {
    let status = query.get("status").and_then(|s| s.parse().ok()).unwrap_or(302);
    (AxumStatus::from_u16(status).unwrap(), [("location", query["to"].clone())])
}

async fn big(Path(bytes): Path<usize>) -> impl IntoResponse {
    vec![b'x'; bytes]
}

/// The same bytes without a Content-Length: the limit must hold while streaming.
async fn big_chunked(Path(bytes): Path<usize>) -> impl IntoResponse {
    let chunks = (0..bytes.div_ceil(1024)).map(move |i| {
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024.min(bytes - i * 1024)]))
    });
    axum::body::Body::from_stream(futures::stream::iter(chunks))
}

async fn hang() -> impl IntoResponse {
    std::future::pending::<()>().await;
    "never"
}

async fn barrier(State(upstream): State<Upstream>) -> impl IntoResponse {
    upstream.barrier.wait().await;
    "released"
}

impl MockUpstream {
    async fn start() -> MockUpstream {
        let captured = Arc::new(Mutex::new(Vec::new()));
        let state = Upstream { captured: captured.clone(), barrier: Arc::new(tokio::sync::Barrier::new(3)) };
        let app = axum::Router::new()
            .route("/echo/{*rest}", any(echo))
            .route("/redirect", any(redirect))
            .route("/big/{bytes}", any(big))
            .route("/big-chunked/{bytes}", any(big_chunked))
            .route("/hang", any(hang))
            .route("/barrier", any(barrier))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        // Reads the request, then closes the connection without answering.
        let resetter = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let reset_port = resetter.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = resetter.accept().await {
                let mut buffer = [0u8; 1024];
                let _ = stream.read(&mut buffer).await;
                // A zero linger makes the close a reset (RST), not a FIN. It
                // blocks on drop only while unsent data remains; there is none.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(std::time::Duration::ZERO));
                drop(stream);
            }
        });
        MockUpstream { base: format!("http://127.0.0.1:{port}"), port, captured, reset_port }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Deploys the probe function with `manifest` fields (egress, secrets).
async fn deploy_probe(server: &TestServer, name: &str, manifest: Value) -> common::Reply {
    let mut body = json!({
        "source": common::fixture_source("outbound-probe"),
        "policy": {"type": "public"},
    });
    body.as_object_mut().unwrap().extend(manifest.as_object().unwrap().clone());
    server.send(server.admin(Method::POST, &format!("/functions/{name}/versions")).json(&body)).await
}

/// Runs the probe; returns its per-step results and the invocation id.
async fn probe(server: &TestServer, name: &str, plan: Value) -> (Vec<Value>, String) {
    let reply = server.send(server.function(Method::POST, name).json(&plan)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let id = reply.header("x-edgefn-invocation-id").unwrap().to_owned();
    (reply.json().as_array().unwrap().clone(), id)
}

fn error_of(result: &Value) -> &str {
    result["error"].as_str().unwrap_or_else(|| panic!("expected an error, got {result}"))
}

#[tokio::test]
async fn fetch_round_trips_a_request_and_the_record_keeps_no_secret() {
    let upstream = MockUpstream::start().await;
    let allow = format!("127.0.0.1:{}", upstream.port);
    let server = TestServer::start_with(&["--egress-allow-internal", &allow]).await;
    const KEY: &str = "sk_live_outbound_secret_value_42";
    assert_eq!(server.set_secret("API_KEY", KEY).await.status, StatusCode::CREATED);
    let deployed = deploy_probe(&server, "probe", json!({"secrets": ["API_KEY"], "egress": ["127.0.0.1"]})).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());

    let (results, id) = probe(
        &server,
        "probe",
        json!({"steps": [{
            "url": upstream.url("/echo/v1/things?token=query-value&x=1"),
            "method": "POST",
            "headers": {"content-type": "application/json", "x-custom": "yes"},
            "body": "{\"a\":1}",
            "bearerSecret": "API_KEY",
        }]}),
    )
    .await;
    let result = &results[0];
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["headers"]["x-upstream"], "mock");
    assert_eq!(result["redirected"], false);
    let echoed: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo/v1/things");
    assert_eq!(echoed["query"]["token"], "query-value");
    assert_eq!(echoed["body"], "{\"a\":1}");
    assert_eq!(echoed["headers"]["x-custom"], "yes");
    assert_eq!(echoed["headers"]["content-type"], "application/json");
    assert_eq!(echoed["headers"]["authorization"], format!("Bearer {KEY}"));
    assert_eq!(echoed["headers"]["host"], allow);

    // The upstream joins the execution's trace.
    let record = server.execution(&id).await;
    let traceparent = echoed["headers"]["traceparent"].as_str().expect("a traceparent header");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], record["trace_id"].as_str().unwrap(), "the upstream's trace is the execution's");

    // The record says what went out, without query string, headers or body.
    let outbound = &record["outbound"];
    assert_eq!(outbound["requests"], 1, "{record}");
    assert_eq!(outbound["calls"][0]["method"], "POST");
    assert_eq!(outbound["calls"][0]["url"], format!("http://127.0.0.1:{}/echo/v1/things", upstream.port));
    assert_eq!(outbound["calls"][0]["status"], 200);
    let stored = record.to_string();
    assert!(!stored.contains(KEY), "the secret leaked into the execution record: {stored}");
    // (The function's own response echoes the query, and is recorded as sent.)
    assert!(!outbound.to_string().contains("query-value"), "the query string leaked into the outbound record");
    let captured = upstream.captured.lock().unwrap().clone();
    assert_eq!(captured.len(), 1);
    assert_eq!(captured[0].body, "{\"a\":1}");
    assert_eq!(captured[0].headers["authorization"], format!("Bearer {KEY}"));
}

#[tokio::test]
async fn internal_addresses_are_refused_in_every_spelling_and_after_redirects() {
    let upstream = MockUpstream::start().await;
    // Only the mock's own port is allowed: the rest of loopback is not.
    let server = TestServer::start_with(&["--egress-allow-internal", &format!("127.0.0.1:{}", upstream.port)]).await;
    let deployed = deploy_probe(&server, "probe", json!({})).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());

    let port = upstream.port + 1; // any other port on loopback
    let spellings = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://127.0.0.2:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://017700000001:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[0:0:0:0:0:ffff:7f00:1]:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://LocalHost.:{port}/"),
        "http://0.0.0.0/".to_owned(),
        "http://0/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://172.16.5.4/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://224.0.0.1/".to_owned(),
        "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
    ];
    let steps: Vec<Value> = spellings.iter().map(|url| json!({"url": url})).collect();
    let (results, id) = probe(&server, "probe", json!({"steps": steps})).await;
    for (url, result) in spellings.iter().zip(&results) {
        let error = error_of(result);
        assert!(error.starts_with("TypeError: fetch("), "{url}: {error}");
        assert!(error.contains("egress denied") && error.contains("--egress-allow-internal"), "{url}: {error}");
    }
    let record = server.execution(&id).await;
    assert_eq!(record["outbound"]["denied"], spellings.len(), "{}", record["outbound"]);

    // A redirect from the allowed upstream to an internal address is checked
    // again at the hop, whatever the redirect status.
    let mut steps = Vec::new();
    for (status, target) in [(302, format!("http://127.0.0.1:{port}/")), (307, "http://169.254.169.254/".into()), (301, format!("http://[::1]:{port}/"))] {
        let to = url_encode(&target);
        steps.push(json!({"url": upstream.url(&format!("/redirect?status={status}&to={to}"))}));
    }
    let (results, _) = probe(&server, "probe", json!({"steps": steps})).await;
    for result in &results {
        assert!(error_of(result).contains("egress denied"), "{result}");
    }
    // The same redirect, not followed, is just a response.
    let to = url_encode("http://169.254.169.254/");
    let (results, _) = probe(
        &server,
        "probe",
        json!({"steps": [{"url": upstream.url(&format!("/redirect?to={to}")), "redirect": "manual"}]}),
    )
    .await;
    assert_eq!(results[0]["status"], 302, "{}", results[0]);
    // A redirect within the allowed upstream is followed.
    let to = url_encode(&upstream.url("/echo/after-redirect"));
    let (results, _) = probe(&server, "probe", json!({"steps": [{"url": upstream.url(&format!("/redirect?to={to}"))}]})).await;
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    assert_eq!(results[0]["redirected"], true);
    assert_eq!(results[0]["url"], upstream.url("/echo/after-redirect"));
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn the_allowlist_and_the_server_default_decide_which_hosts_a_function_may_reach() {
    let upstream = MockUpstream::start().await;
    let allow = format!("127.0.0.1:{}", upstream.port);
    let server = TestServer::start_with(&["--egress-allow-internal", &allow, "--egress-default", "none"]).await;
    let echo = upstream.url("/echo/x");

    // No egress list on a server whose default is none: nothing goes out.
    assert_eq!(deploy_probe(&server, "unlisted", json!({})).await.status, StatusCode::CREATED);
    let (results, _) = probe(&server, "unlisted", json!({"steps": [{"url": echo}]})).await;
    assert!(error_of(&results[0]).contains("hosts a function lists in \"egress\""), "{}", results[0]);

    // A list without the host refuses it; `[]` refuses everything.
    assert_eq!(deploy_probe(&server, "other", json!({"egress": ["api.example.com", "*.example.org"]})).await.status, StatusCode::CREATED);
    let (results, _) = probe(&server, "other", json!({"steps": [{"url": echo}]})).await;
    assert!(error_of(&results[0]).contains("127.0.0.1 is not in this function's egress allowlist"), "{}", results[0]);
    assert_eq!(deploy_probe(&server, "nothing", json!({"egress": []})).await.status, StatusCode::CREATED);
    let (results, _) = probe(&server, "nothing", json!({"steps": [{"url": echo}]})).await;
    assert!(error_of(&results[0]).contains("not in this function's egress allowlist"), "{}", results[0]);

    // Listed: it goes through.
    assert_eq!(deploy_probe(&server, "listed", json!({"egress": ["127.0.0.1"]})).await.status, StatusCode::CREATED);
    let (results, _) = probe(&server, "listed", json!({"steps": [{"url": echo}]})).await;
    assert_eq!(results[0]["status"], 200, "{}", results[0]);

    // Entries that are not hosts are refused at deploy, and nothing is stored.
    for entry in ["https://api.example.com", "api.example.com/v1", "*.*.example.com", "api.example.com:443"] {
        let refused = deploy_probe(&server, "listed", json!({"egress": [entry]})).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{entry}: {}", refused.text());
        assert!(refused.json()["message"].as_str().unwrap().contains(&format!("{entry:?}")), "{}", refused.text());
    }
    let described = server.send(server.admin(Method::GET, "/functions/listed")).await.json();
    assert_eq!(described["versions"].as_array().map(Vec::len), Some(1), "{described}");
    assert_eq!(described["versions"][0]["manifest"]["egress"], json!(["127.0.0.1"]), "{described}");
}

#[tokio::test]
async fn limits_timeouts_and_broken_upstreams_are_clear_errors() {
    let upstream = MockUpstream::start().await;
    let server = TestServer::start_with(&[
        "--egress-allow-internal",
        &format!("127.0.0.1:{}", upstream.port),
        "--egress-allow-internal",
        &format!("127.0.0.1:{}", upstream.reset_port),
        "--outbound-timeout-ms",
        "700",
        "--outbound-max-response-bytes",
        "10000",
        "--outbound-max-request-bytes",
        "5000",
        "--outbound-max-requests",
        "8",
    ])
    .await;
    assert_eq!(deploy_probe(&server, "probe", json!({})).await.status, StatusCode::CREATED);

    let steps = json!([
        {"url": upstream.url("/hang")},
        {"url": upstream.url("/hang"), "timeoutMs": 100},
        {"url": upstream.url("/big/20000")},
        {"url": upstream.url("/big-chunked/20000")},
        {"url": upstream.url("/big/9000")},
        {"url": upstream.url("/echo/upload"), "method": "POST", "body": "y".repeat(6000)},
        {"url": format!("http://127.0.0.1:{}/", upstream.reset_port)},
    ]);
    let (results, id) = probe(&server, "probe", json!({"steps": steps})).await;
    assert!(error_of(&results[0]).contains("did not answer within 700 ms"), "{}", results[0]);
    assert_eq!(error_of(&results[1]), "TimeoutError: The operation timed out after 100 ms");
    assert!(error_of(&results[2]).contains("--outbound-max-response-bytes"), "{}", results[2]);
    assert!(error_of(&results[3]).contains("--outbound-max-response-bytes"), "{}", results[3]);
    assert_eq!(results[4]["body"], "9000 bytes");
    assert!(error_of(&results[5]).contains("--outbound-max-request-bytes"), "{}", results[5]);
    assert!(error_of(&results[6]).starts_with("TypeError: fetch("), "{}", results[6]);
    assert!(!upstream.captured.lock().unwrap().iter().any(|c| c.path == "/echo/upload"), "an oversized body was sent");

    // The eighth request is the last one an invocation may make.
    let steps: Vec<Value> = (0..9).map(|i| json!({"url": upstream.url(&format!("/echo/{i}"))})).collect();
    let (results, _) = probe(&server, "probe", json!({"steps": steps})).await;
    assert!(results[..8].iter().all(|r| r["status"] == 200), "{results:?}");
    assert!(error_of(&results[8]).contains("--outbound-max-requests"), "{}", results[8]);

    // The host stayed healthy, and the record counts the failures.
    let record = server.execution(&id).await;
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["outbound"]["requests"], 7, "{}", record["outbound"]);
    // Failed: the hang, both oversized responses (one refused by its
    // Content-Length, one cut off while it streamed), the oversized upload
    // and the reset. The aborted one was the function's own choice.
    assert_eq!(record["outbound"]["failed"], 5, "{}", record["outbound"]);
    let calls = record["outbound"]["calls"].as_array().unwrap();
    let chunked = calls.iter().find(|c| c["url"].as_str().unwrap().ends_with("/big-chunked/20000")).expect("the chunked call");
    assert_eq!(chunked["status"], 200, "{chunked}");
    assert!(chunked["error"].as_str().unwrap().contains("--outbound-max-response-bytes"), "{chunked}");
}

#[tokio::test]
async fn fetches_awaited_together_are_in_flight_together() {
    let upstream = MockUpstream::start().await;
    let server = TestServer::start_with(&["--egress-allow-internal", &format!("127.0.0.1:{}", upstream.port), "--outbound-timeout-ms", "5000"]).await;
    assert_eq!(deploy_probe(&server, "probe", json!({})).await.status, StatusCode::CREATED);
    // The upstream answers none of the three until all three are waiting:
    // requests sent one after another would time out instead.
    let parallel: Vec<Value> = (0..3).map(|_| json!({"url": upstream.url("/barrier")})).collect();
    let (results, _) = probe(&server, "probe", json!({"parallel": parallel})).await;
    for result in &results {
        assert_eq!(result["body"], "released", "{result}");
    }
}

#[tokio::test]
async fn fetch_at_module_top_level_fails_the_deploy_with_a_clear_message() {
    let server = TestServer::start().await;
    let source = "const warm = await fetch('https://example.com/');\nexport default { fetch() { return new Response('x'); } };";
    let refused = server.deploy_source("eager", source).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text());
    assert!(refused.text().contains("not available while a function is being compiled"), "{}", refused.text());
}
