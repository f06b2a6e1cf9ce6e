//! What the admin interface needs from the admin API: a time series of
//! execution records for its charts.

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

async fn series(server: &TestServer, query: &str) -> Value {
    let reply = server.send(server.admin(Method::GET, &format!("/executions/series?{query}"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
    reply.json()
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn series_cuts_a_window_into_buckets_with_errors_and_percentiles() {
    let server = TestServer::start().await;
    server.deploy("pages", "statuses").await;
    server.deploy("thrower", "throws").await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    for _ in 0..4 {
        assert_eq!(server.get("pages/teapot").await.status, 418);
    }
    assert_eq!(server.get("thrower").await.status, 500);
    wait_for(&server, "pages", 4).await;
    wait_for(&server, "thrower", 1).await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(1);

    let window = format!("since={}&until={}", rfc3339(since), rfc3339(until));
    let all = series(&server, &format!("{window}&buckets=6")).await;
    let buckets = all["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 6);
    assert_eq!(all["bucket_seconds"], 1);
    let total: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    let errors: u64 = buckets.iter().map(|b| b["errors"].as_u64().unwrap()).sum();
    assert_eq!((total, errors), (5, 1), "{all}");
    for bucket in buckets {
        if bucket["count"] == 0 {
            assert!(bucket["p50_us"].is_null() && bucket["p99_us"].is_null(), "an empty bucket has no percentiles: {bucket}");
        } else {
            let (p50, p95, p99) = (bucket["p50_us"].as_i64().unwrap(), bucket["p95_us"].as_i64().unwrap(), bucket["p99_us"].as_i64().unwrap());
            assert!(0 < p50 && p50 <= p95 && p95 <= p99, "{bucket}");
        }
    }
    let starts: Vec<&str> = buckets.iter().map(|b| b["start"].as_str().unwrap()).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "oldest first");

    // The list's filters apply, and one bucket agrees with the stats route.
    let one = series(&server, &format!("{window}&buckets=1&function=pages")).await;
    let stats = server.send(server.admin(Method::GET, &format!("/executions/stats?{window}&function=pages"))).await.json();
    let (bucket, stat) = (&one["buckets"][0], &stats["functions"][0]);
    assert_eq!(bucket["count"], 4);
    assert_eq!(bucket["errors"], stat["errors"]);
    for p in ["p50_us", "p95_us", "p99_us"] {
        assert_eq!(bucket[p], stat[p], "{p}: the same nearest-rank percentile");
    }
    let errors_only = series(&server, &format!("{window}&outcome=error")).await;
    let counted: u64 = errors_only["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 1);

    // The last hour by default, in 60 buckets.
    let default = series(&server, "").await;
    assert_eq!(default["buckets"].as_array().unwrap().len(), 60);
    assert_eq!(default["bucket_seconds"], 60);

    for bad in ["buckets=0", "buckets=241", "since=yesterday", "colour=red"] {
        let reply = server.send(server.admin(Method::GET, &format!("/executions/series?{bad}"))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.text());
        assert_eq!(reply.json()["error"], "bad_request");
    }
    let backwards = server.send(server.admin(Method::GET, &format!("/executions/series?since={}&until={}", rfc3339(until), rfc3339(since)))).await;
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
}

async fn wait_for(server: &TestServer, function: &str, count: usize) {
    for _ in 0..200 {
        let reply = server.send(server.admin(Method::GET, &format!("/executions?function={function}&limit=100"))).await;
        if reply.json()["executions"].as_array().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{function}: fewer than {count} records after 10 s");
}
