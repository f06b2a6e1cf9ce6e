//! The admin interface: its files served from the binary with a strict
//! Content-Security-Policy, the two admin API routes it needs (a time
//! series for its charts, and a short-lived token to call a function as a
//! chosen user), and the whole interface driven in headless Chromium
//! (tests/support/admin-ui.e2e.mjs) against the real server.

mod common;

use common::{ADMIN_KEY, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn interface_is_served_from_the_binary_with_a_strict_policy() {
    let server = TestServer::start().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let bare = client.get(server.url("/admin")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()["location"], "/admin/");

    // The files hold no secret: the page loads before anyone signs in.
    let index = client.get(server.url("/admin/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let headers = index.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-cache");
    let html = index.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="assets/js/app.js"></script>"#), "{html}");
    assert!(!html.contains("<script>"), "no inline script");

    // An unchanged file is answered 304 from its ETag.
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let again = client.get(server.url("/admin/")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);

    for (path, content_type) in [
        ("/admin/assets/js/app.js", "text/javascript; charset=utf-8"),
        ("/admin/assets/app.css", "text/css; charset=utf-8"),
        ("/admin/assets/favicon.svg", "image/svg+xml"),
    ] {
        let reply = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
        assert_eq!(reply.headers()["content-type"], content_type, "{path}");
    }
    let missing = client.get(server.url("/admin/assets/js/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "not_found");
    let traversal = client.get(server.url("/admin/assets/../../Cargo.toml")).send().await.unwrap();
    assert_ne!(traversal.status(), StatusCode::OK);

    // The API next to it is unchanged: still behind the admin key.
    let api = client.get(server.url("/admin/v1/functions")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

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

#[tokio::test]
async fn an_admin_calls_a_function_as_a_user_and_the_record_names_both() {
    let server = TestServer::start().await;
    server.deploy("whoami", "whoami").await;
    let policy = json!({"policy": {"type": "group", "groups": ["ops"]}});
    let set = server.send(server.admin(Method::PUT, "/functions/whoami/access").json(&policy)).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let ada = server.create_user("ada@example.com", &["ops"], json!({"team": "core"})).await;
    let bob = server.create_user("bob@example.com", &[], json!({})).await;

    let issued = server.send(server.admin(Method::POST, &format!("/users/{ada}/token"))).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text());
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    let body = issued.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert!(body.get("refresh_token").is_none(), "it cannot be renewed");
    let keys = server.send(server.admin(Method::GET, "/keys")).await.json();
    let actor = format!("admin-key:{}", keys["keys"][0]["prefix"].as_str().unwrap());
    assert_eq!(body["actor"], actor.as_str());
    let token = body["access_token"].as_str().unwrap();

    // The function sees the user, exactly as with their own token.
    let called = server.send(server.function(Method::GET, "whoami").bearer_auth(token)).await;
    assert_eq!(called.status, StatusCode::OK, "{}", called.text());
    let seen = called.json();
    assert_eq!(seen["caller"]["id"], ada.as_str());
    assert_eq!(seen["caller"]["groups"], json!(["ops"]));
    assert_eq!(seen["caller"]["role"], "authenticated");
    let record = server.execution(called.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["caller"], format!("user:{ada} <ada@example.com> via {actor}").as_str());
    // `caller=user:<id>` still finds the user's calls, the admin's included.
    let theirs = server.send(server.admin(Method::GET, &format!("/executions?caller=user:{ada}"))).await.json();
    assert_eq!(theirs["executions"].as_array().unwrap().len(), 1);

    // It admits no more than the user's own token: bob is not in ops.
    let bobs = server.send(server.admin(Method::POST, &format!("/users/{bob}/token"))).await.json();
    let refused = server.send(server.function(Method::GET, "whoami").bearer_auth(bobs["access_token"].as_str().unwrap())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());

    // Disabling the user ends it at once, and no new one is issued for them.
    let disabled = server.send(server.admin(Method::PATCH, &format!("/users/{ada}")).json(&json!({"disabled": true}))).await;
    assert_eq!(disabled.status, StatusCode::OK);
    let after = server.send(server.function(Method::GET, "whoami").bearer_auth(token)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text());
    let refused = server.send(server.admin(Method::POST, &format!("/users/{ada}/token"))).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
    assert!(refused.json()["message"].as_str().unwrap().contains("disabled"));

    let unknown = server.send(server.admin(Method::POST, "/users/no-such-user/token")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let without_key = server.send(reqwest::Client::new().post(server.url(&format!("/admin/v1/users/{bob}/token")))).await;
    assert_eq!(without_key.status, StatusCode::UNAUTHORIZED);
    // A user's own token is not an admin key.
    let own = server.access_token("bob@example.com").await;
    let with_user_token = server.send(reqwest::Client::new().post(server.url(&format!("/admin/v1/users/{bob}/token"))).bearer_auth(own)).await;
    assert_eq!(with_user_token.status, StatusCode::UNAUTHORIZED);
}

/// Where the e2e run writes its screenshots: the committed set under
/// docs/screenshots when `EDGEFN_UPDATE_SCREENSHOTS=1`, a scratch folder otherwise.
fn screenshot_dir() -> PathBuf {
    if std::env::var("EDGEFN_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
    } else {
        common::unique_dir("admin-ui-screenshots")
    }
}

#[tokio::test]
async fn the_interface_works_end_to_end_in_chromium() {
    let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: scripts/install-deps installs Debian's chromium (or set CHROMIUM)");
    assert!(
        support.join("node_modules/playwright-core").is_dir(),
        "tests/support/node_modules/playwright-core is missing: scripts/install-deps runs npm ci there"
    );

    let server = TestServer::start().await;
    let shots = screenshot_dir();
    let started = Instant::now();
    let mut node = Command::new("node")
        .arg(support.join("admin-ui.e2e.mjs"))
        .env("EDGEFN_URL", &server.base)
        .env("EDGEFN_ADMIN_KEY", ADMIN_KEY)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running node (scripts/install-deps installs it)");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (stdout, stderr) = (read(Box::new(node.stdout.take().unwrap())), read(Box::new(node.stderr.take().unwrap())));
    // Never hang the suite: each of the script's waits gives up after 10 s.
    let deadline = started + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            break node.wait().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    println!("{stdout}");
    assert!(status.success(), "the admin interface e2e run failed after {:.1} s:\n{stderr}\n--- its steps ---\n{stdout}", started.elapsed().as_secs_f64());
    eprintln!("admin interface e2e: {:.1} s; screenshots in {}", started.elapsed().as_secs_f64(), shots.display());
}
