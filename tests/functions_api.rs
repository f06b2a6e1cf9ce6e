//! What a caller sends reaches the function, and what the function returns
//! reaches the caller: methods, sub-paths, query strings, headers, statuses
//! and bodies, text and binary, small and large.

mod common;

use common::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn the_issue_example_answers_with_its_status_json_and_a_recorded_log_line() {
    let server = TestServer::start().await;
    let deployed = server.deploy("hello", "hello").await;
    assert_eq!(deployed["version"], 1);
    assert!(deployed["content_hash"].as_str().unwrap().starts_with("sha256:"));
    assert!(deployed["build_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(deployed["url"], server.url("/functions/v1/hello"));

    let reply = server.send(server.function(Method::POST, "hello").json(&json!({"name": "Ada"}))).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"hello": "Ada"}));

    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["status"], 201);
    assert_eq!(record["function"], "hello");
    assert_eq!(record["version"], 1);
    assert_eq!(record["console"][0]["level"], "log");
    assert_eq!(record["console"][0]["text"], "greeting Ada");
    assert!(record["fuel_consumed"].as_u64().unwrap() > 0);
    assert_eq!(
        record["response"],
        json!({"status": 201, "headers": [["content-type", "application/json"]], "body": "{\"hello\":\"Ada\"}", "body_bytes": 15, "truncated": false})
    );
}

#[tokio::test]
async fn method_sub_path_query_headers_and_body_reach_the_function() {
    let server = TestServer::start().await;
    server.deploy("echo", "echo").await;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = server
            .function(method.clone(), "echo/orders/42/items?status=paid&limit=5")
            .header("x-request-tag", "tag-1")
            .header("accept", "application/json");
        if method != Method::GET {
            request = request.body("payload for the function");
        }
        let reply = server.send(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.text());
        let seen = reply.json();
        assert_eq!(seen["method"], method.as_str());
        assert_eq!(seen["pathname"], "/functions/v1/echo/orders/42/items");
        assert_eq!(seen["query"], json!({"status": "paid", "limit": "5"}));
        assert_eq!(seen["url"], server.url("/functions/v1/echo/orders/42/items?status=paid&limit=5"));
        assert_eq!(seen["headers"]["x-request-tag"], "tag-1");
        assert_eq!(seen["body"], if method == Method::GET { "" } else { "payload for the function" });
        assert_eq!(seen["functionName"], "echo");
        assert_eq!(seen["version"], 1);
        assert_eq!(seen["invocationId"], reply.header("x-edgefn-invocation-id").unwrap());
        assert_eq!(seen["caller"], serde_json::Value::Null);
    }
    // The bare function URL, with and without a trailing slash.
    for path in ["echo", "echo/"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["method"], "GET");
    }
}

#[tokio::test]
async fn statuses_and_headers_come_back_exactly_as_returned() {
    let server = TestServer::start().await;
    server.deploy("statuses", "statuses").await;

    let teapot = server.get("statuses/teapot").await;
    assert_eq!(teapot.status.as_u16(), 418);
    assert_eq!(teapot.header("x-brewed-by"), Some("edgefn"));
    assert_eq!(teapot.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(teapot.text(), "short and stout");

    let cookies = server.get("statuses/cookies").await;
    let set_cookies: Vec<_> = cookies.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(set_cookies, ["a=1; Path=/", "b=2; Path=/"]);

    let redirect = server
        .send(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap().get(server.url("/functions/v1/statuses/redirect")))
        .await;
    assert_eq!(redirect.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(redirect.header("location"), Some("https://example.com/elsewhere"));

    let empty = server.get("statuses/empty").await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);
    assert!(empty.body.is_empty());

    let missing = server.get("statuses/anything-else").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json(), json!({"error": "no such page"}));
}

#[tokio::test]
async fn binary_bodies_survive_both_ways() {
    let server = TestServer::start().await;
    server.deploy("binary", "binary").await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).map(|b| b.wrapping_mul(31)).collect();
    let reply = server.send(server.function(Method::POST, "binary").body(bytes.clone())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-received-bytes"), Some("70000"));
    assert_eq!(reply.header("content-type"), Some("application/octet-stream"));
    let mut expected = bytes;
    expected.reverse();
    assert!(reply.body == expected, "the body came back altered");
}

#[tokio::test]
async fn a_5_mb_body_is_served_under_the_default_limit_and_refused_with_413_over_a_lower_one() {
    let five_mb = vec![b'x'; 5 * 1024 * 1024];

    let server = TestServer::start().await;
    server.deploy("size", "body-size").await;
    let reply = server.send(server.function(Method::POST, "size").body(five_mb.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({"bytes": 5 * 1024 * 1024}));

    let strict = TestServer::start_with(&["--max-body-bytes", "1048576"]).await;
    strict.deploy("size", "body-size").await;
    let reply: Reply = strict.send(strict.function(Method::POST, "size").body(five_mb)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"], "payload_too_large");
    assert_eq!(reply.json()["limit_bytes"], 1048576);
}

#[tokio::test]
async fn web_apis_behave_like_the_platform() {
    let server = TestServer::start().await;
    server.deploy("web", "web-apis").await;
    let reply = server.get("web").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({
            "href": "https://user:pw@example.com:8080/b/c?x=1&y=two+words&z=3+4#frag",
            "host": "example.com:8080",
            "pathname": "/b/c",
            "y": "two words",
            "utf8Bytes": 6,
            "roundTrip": "héllo",
            "base64": "ZWRnZWZu",
            "decoded": "edgefn",
            "cloneIsDate": true,
            "cloneMap": "v",
            "headers": [["a", "1"], ["b", "2"]],
        })
    );
}

#[tokio::test]
async fn header_records_are_normalized_checked_and_read_once() {
    let server = TestServer::start().await;
    server.deploy("records", "header-records").await;
    let reply = server.get("records").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("x-items"), Some("42"));
    assert_eq!(reply.header("x-plain"), Some("yes"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({
            "mixed": [["x-count", "3"], ["x-flag", "true"], ["x-padded", "kept inside"], ["x-read", "once"]],
            "reads": 1,
            "badName": "TypeError: Invalid header name: \"bad name\"",
            "badValue": "TypeError: Invalid header value: \"a\\nb\"",
            "fromMap": [["x-map", "1"]],
            "fromIterable": [["x-yielded", "2"]],
            "fromHeaders": [["x-copied", "3"]],
            "fromInstance": [["x-own", "4"]],
            "fromFunction": "TypeError: Headers: expected a Headers object, an array of [name, value] pairs, or a record",
            "fromString": "TypeError: Headers: expected a Headers object, an array of [name, value] pairs, or a record",
        })
    );
}

#[tokio::test]
async fn timers_and_microtasks_run_before_the_response() {
    let server = TestServer::start().await;
    server.deploy("timers", "timers").await;
    let reply = server.get("timers").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({"waitedAtLeast20ms": true, "order": ["microtask", "after await"]}));
    // Jobs still queued when fetch's promise settles run before the host
    // reads the response, as a microtask checkpoint would run them.
    assert_eq!(reply.header("x-set-by-a-microtask"), Some("after fetch returned"));
}

#[tokio::test]
async fn an_unknown_function_is_a_json_404() {
    let server = TestServer::start().await;
    let reply = server.get("nobody-home").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "not_found");
    assert!(reply.json()["message"].as_str().unwrap().contains("nobody-home"));
}
