//! Observability: a complete execution record for every invocation (trace
//! id, client, timings, console, response), found again through the admin
//! API's filters, cursor pages, per-function stats and live tail; records
//! kept within their retention; Prometheus metrics behind an admin key or
//! on their own address.

mod common;

use common::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

async fn executions(server: &TestServer, query: &str) -> Value {
    let reply = server.send(server.admin(Method::GET, &format!("/executions?{query}"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
    reply.json()
}

/// Waits until the batch writer has stored `count` records of `function`.
async fn wait_for_records(server: &TestServer, function: &str, count: usize) {
    for _ in 0..200 {
        let page = executions(server, &format!("function={function}&limit=1000")).await;
        if page["executions"].as_array().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{function}: fewer than {count} records after 10 s");
}

async fn call(server: &TestServer, path: &str) -> Reply {
    server.get(path).await
}

#[tokio::test]
async fn every_call_is_recorded_once_with_its_trace_and_client() {
    let server = TestServer::start().await;
    server.deploy("hello", "greet").await;

    // N concurrent requests → N records, each with its own invocation id.
    let requests = (0..64).map(|_| call(&server, "hello"));
    let replies = futures::future::join_all(requests).await;
    let ids: HashSet<String> =
        replies.iter().map(|r| r.header("x-edgefn-invocation-id").unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 64);
    wait_for_records(&server, "hello", 64).await;
    let page = executions(&server, "function=hello&limit=1000").await;
    let recorded: HashSet<String> =
        page["executions"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(recorded, ids, "exactly the acknowledged requests");

    // A caller's traceparent puts the invocation in its trace.
    let traced = server
        .send(server.function(Method::GET, "hello").header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        .await;
    let record = server.execution(traced.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(record["client_ip"], "127.0.0.1");
    let untraced = server.execution(&replies[0].header("x-edgefn-invocation-id").unwrap().to_owned()).await;
    assert_eq!(untraced["trace_id"].as_str().unwrap().len(), 32, "a new trace otherwise");
    let by_trace = executions(&server, "trace_id=4bf92f3577b34da6a3ce929d0e0e4736").await;
    assert_eq!(by_trace["executions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deploys_and_rollbacks_succeed_while_records_are_written() {
    // The record writer inserts through a SQLite connection of its own; a
    // deploy is a transaction that reads, then writes, on the server's, and
    // must neither fail nor wait out a busy timeout because records arrive.
    let server = TestServer::start().await;
    server.deploy("hello", "greet").await;
    let load = async {
        for _ in 0..6 {
            let replies = futures::future::join_all((0..32).map(|_| call(&server, "hello"))).await;
            assert!(replies.iter().all(|r| r.status == StatusCode::OK));
        }
    };
    let deploys = async {
        for _ in 0..5 {
            server.deploy("other", "greet").await;
            let rollback =
                server.send(server.admin(Method::POST, "/functions/other/activate").json(&serde_json::json!({"version": 1}))).await;
            assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text());
        }
    };
    tokio::join!(load, deploys);
    wait_for_records(&server, "hello", 6 * 32).await;
}

#[tokio::test]
async fn records_filter_page_and_aggregate() {
    let server = TestServer::start().await;
    server.deploy("pages", "statuses").await;
    server.deploy("thrower", "throws").await;
    let before = chrono::Utc::now();
    for _ in 0..3 {
        assert_eq!(call(&server, "pages/teapot").await.status, 418);
    }
    for _ in 0..2 {
        assert_eq!(call(&server, "pages/empty").await.status, 204);
    }
    assert_eq!(call(&server, "thrower").await.status, 500);
    wait_for_records(&server, "pages", 5).await;
    wait_for_records(&server, "thrower", 1).await;

    let teapots = executions(&server, "function=pages&status=418").await;
    assert_eq!(teapots["executions"].as_array().unwrap().len(), 3);
    let errors = executions(&server, "outcome=error").await;
    assert_eq!(errors["executions"].as_array().unwrap().len(), 1);
    let text = executions(&server, "q=card%20declined").await;
    let found = text["executions"].as_array().unwrap();
    assert!(found.iter().all(|r| r["function"] == "thrower") && !found.is_empty(), "{text}");
    let since = before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B");
    assert_eq!(executions(&server, &format!("since={since}")).await["executions"].as_array().unwrap().len(), 6);
    let until = executions(&server, &format!("until={since}")).await;
    assert_eq!(until["executions"].as_array().unwrap().len(), 0);
    assert_eq!(executions(&server, "version=1&function=pages").await["executions"].as_array().unwrap().len(), 5);
    assert_eq!(executions(&server, "version=2&function=pages").await["executions"].as_array().unwrap().len(), 0);

    // Cursor pages cover everything once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("limit=2&cursor={cursor}"),
            None => "limit=2".into(),
        };
        let page = executions(&server, &query).await;
        seen.extend(page["executions"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, no repeats");

    let bad = server.send(server.admin(Method::GET, "/executions?since=yesterday")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    let unknown = server.send(server.admin(Method::GET, "/executions?colour=red")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    let stats = server.send(server.admin(Method::GET, "/executions/stats")).await.json();
    let functions = stats["functions"].as_array().unwrap();
    let pages = functions.iter().find(|f| f["function"] == "pages").unwrap();
    assert_eq!((pages["count"].as_u64(), pages["errors"].as_u64()), (Some(5), Some(0)), "{stats}");
    let thrower = functions.iter().find(|f| f["function"] == "thrower").unwrap();
    assert_eq!(thrower["error_rate"], 1.0);
    let (p50, p95, p99) = (pages["p50_us"].as_i64().unwrap(), pages["p95_us"].as_i64().unwrap(), pages["p99_us"].as_i64().unwrap());
    assert!(0 < p50 && p50 <= p95 && p95 <= p99, "{pages}");
}

#[tokio::test]
async fn the_live_tail_streams_records_as_they_happen() {
    let server = TestServer::start().await;
    server.deploy("hello", "greet").await;
    server.deploy("pages", "statuses").await;
    let mut tail = server.admin(Method::GET, "/executions/tail?function=hello").send().await.unwrap();
    assert_eq!(tail.status(), StatusCode::OK);
    assert!(tail.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    // Another function's call is filtered out; hello's arrives.
    call(&server, "pages/teapot").await;
    let hello = call(&server, "hello").await;
    let id = hello.header("x-edgefn-invocation-id").unwrap().to_owned();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, tail.chunk()).await.expect("an event within 10 s").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        text = text.trim_start_matches(":\n\n").to_owned(); // keep-alive comments
    }
    assert!(text.starts_with("event: execution\n"), "{text}");
    let data: Value = serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["id"], id);
    assert_eq!(data["function"], "hello");
    let unauthorized = server.send(reqwest::Client::new().get(server.url("/admin/v1/executions/tail"))).await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);

    // An open tail (an admin's browser tab) does not hold up a shutdown:
    // the server ends the stream and exits.
    assert!(server.exits_when_asked(), "the server did not exit within 10 s with a tail open");
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = tail.chunk().await {}
    });
    assert!(rest.await.is_ok(), "the tail's stream ended with the server");
}

#[tokio::test]
async fn retention_keeps_the_newest_records_within_the_limit() {
    let server = TestServer::start_with(&["--record-retention-max", "5", "--record-retention-interval-secs", "1"]).await;
    server.deploy("hello", "greet").await;
    let mut last = String::new();
    for _ in 0..12 {
        last = call(&server, "hello").await.header("x-edgefn-invocation-id").unwrap().to_owned();
    }
    server.execution(&last).await;
    for _ in 0..100 {
        let page = executions(&server, "limit=1000").await;
        let kept = page["executions"].as_array().unwrap();
        if kept.len() <= 5 {
            assert_eq!(kept.len(), 5, "the newest five stay");
            assert_eq!(kept[0]["id"], last.as_str());
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("retention never ran");
}

#[tokio::test]
async fn metrics_count_invocations_and_need_a_key_on_the_main_address() {
    let server = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0"]).await;
    server.deploy("hello", "greet").await;
    server.deploy("thrower", "throws").await;
    for _ in 0..3 {
        call(&server, "hello").await;
    }
    call(&server, "thrower").await;
    call(&server, "missing").await;

    let anonymous = server.send(reqwest::Client::new().get(server.url("/metrics"))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let text = server.send(server.get_with_key("/metrics")).await.text();
    for expected in [
        "edgefn_invocations_total{function=\"hello\",outcome=\"ok\"} 3",
        "edgefn_invocations_total{function=\"thrower\",outcome=\"error\"} 1",
        "edgefn_invocation_duration_seconds_count{function=\"hello\"} 3",
        "edgefn_deploys_total{function=\"hello\",result=\"ok\"} 1",
        "edgefn_instances_in_flight 0",
        "edgefn_fuel_consumed_total{function=\"hello\"}",
        "edgefn_deployment_cache_hits_total",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("missing"), "unknown functions are not labels");

    // The separate address serves the same text without a key.
    let address = server
        .stdout
        .lock()
        .unwrap()
        .iter()
        .find_map(|line| line.strip_prefix("metrics on ").map(str::to_owned))
        .expect("the metrics address is printed");
    let open = server.send(reqwest::Client::new().get(&address)).await;
    assert_eq!(open.status, StatusCode::OK);
    assert!(open.text().contains("edgefn_invocations_total{function=\"hello\",outcome=\"ok\"} 3"));
    assert!(open.header("content-type").unwrap().starts_with("application/openmetrics-text"));

    // The metrics listener stops with the server's own: asked to shut down,
    // the server drains its records and exits instead of waiting on it.
    assert!(server.exits_when_asked(), "the server did not exit within 10 s of being asked");
}

#[tokio::test]
async fn records_survive_a_restart() {
    let server = TestServer::start().await;
    server.deploy("hello", "greet").await;
    let id = call(&server, "hello").await.header("x-edgefn-invocation-id").unwrap().to_owned();
    server.execution(&id).await;
    let server = server.restart().await;
    let record = server.execution(&id).await;
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["response"]["status"], 200);
}
