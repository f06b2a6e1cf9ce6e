//! Secrets: write-only through the API, granted per function, read as
//! `env.NAME`, redacted from execution records, encrypted at rest under a
//! master key the server refuses to start without.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{TestServer, edgefn_command, unique_dir};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::Path;

/// Returns what the function sees: `env.<name>` and the names `env` lists.
const READER: &str = r#"
export default {
  async fetch(request, env) {
    const name = new URL(request.url).searchParams.get("name");
    return Response.json({ value: env[name], keys: Object.keys(env) });
  }
};
"#;

#[tokio::test]
async fn granted_secrets_are_readable_and_updates_apply_without_redeploying() {
    let server = TestServer::start().await;
    let created = server.set_secret("API_KEY", "sk-first-value-0001").await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json()["version"], 1);
    assert!(!created.text().contains("sk-first-value-0001"), "the API never returns a value");

    let deployed = server.deploy_with_grants("reader", READER, &["API_KEY"]).await;
    assert_eq!(deployed["version"], 1);
    let read = server.get("reader?name=API_KEY").await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.json(), json!({ "value": "sk-first-value-0001", "keys": ["API_KEY"] }));

    let updated = server.set_secret("API_KEY", "sk-second-value-0002").await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.json()["version"], 2);
    assert_eq!(server.get("reader?name=API_KEY").await.json()["value"], "sk-second-value-0002");

    let listed = server.send(server.admin(Method::GET, "/secrets")).await;
    assert_eq!(listed.status, StatusCode::OK);
    let secret = &listed.json()["secrets"][0];
    assert_eq!(secret["name"], "API_KEY");
    assert_eq!(secret["version"], 2);
    assert_eq!(secret["granted_to"], json!(["reader"]));
    assert!(secret.get("value").is_none());
    assert!(!listed.text().contains("sk-second-value"), "the list never shows a value");
    assert!(server.send(server.admin(Method::GET, "/secrets/API_KEY")).await.status.is_client_error());
}

#[tokio::test]
async fn reading_an_ungranted_secret_is_an_error_naming_the_grant() {
    let server = TestServer::start().await;
    server.set_secret("API_KEY", "sk-granted-value").await;
    server.set_secret("OTHER_KEY", "sk-not-for-you").await;
    server.deploy_with_grants("reader", READER, &["API_KEY"]).await;

    let refused = server.get("reader?name=OTHER_KEY").await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = refused.json();
    assert_eq!(body["name"], "ReferenceError");
    assert!(body["message"].as_str().unwrap().contains("not granted the secret OTHER_KEY"), "{body}");
    assert!(!refused.text().contains("sk-not-for-you"));

    // Grants change through the admin API, no redeploy: revoke, then restore.
    let revoked = server.send(server.admin(Method::PUT, "/functions/reader/secrets").json(&json!({ "secrets": [] }))).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    assert_eq!(server.get("reader?name=API_KEY").await.status, StatusCode::INTERNAL_SERVER_ERROR);
    let granted = server
        .send(server.admin(Method::PUT, "/functions/reader/secrets").json(&json!({ "secrets": ["API_KEY", "NOT_SET_YET"] })))
        .await;
    assert_eq!(granted.json(), json!({ "function": "reader", "secrets": ["API_KEY", "NOT_SET_YET"], "not_set": ["NOT_SET_YET"] }));
    assert_eq!(server.get("reader?name=API_KEY").await.json()["value"], "sk-granted-value");

    // Granted but not set (or deleted): an error that says so.
    let unset = server.get("reader?name=NOT_SET_YET").await;
    assert_eq!(unset.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(unset.json()["message"].as_str().unwrap().contains("has no value"), "{}", unset.text());
    assert_eq!(server.send(server.admin(Method::DELETE, "/secrets/API_KEY")).await.status, StatusCode::NO_CONTENT);
    assert!(server.get("reader?name=API_KEY").await.json()["message"].as_str().unwrap().contains("has no value"));
    assert_eq!(server.send(server.admin(Method::DELETE, "/secrets/API_KEY")).await.status, StatusCode::NOT_FOUND);

    // A redeploy without "secrets" keeps the grants; one with them replaces them.
    server.deploy_source("reader", READER).await;
    let grants = server.send(server.admin(Method::GET, "/functions/reader/secrets")).await.json();
    assert_eq!(grants["secrets"], json!(["API_KEY", "NOT_SET_YET"]));
}

#[tokio::test]
async fn bad_secret_requests_get_clear_errors_and_change_nothing() {
    let server = TestServer::start().await;
    let cases = [
        (Method::PUT, "/secrets/lower_case", json!({ "value": "v" }), StatusCode::BAD_REQUEST, "invalid secret name"),
        (Method::PUT, "/secrets/API_KEY", json!({ "value": "" }), StatusCode::BAD_REQUEST, "must not be empty"),
        (Method::PUT, "/secrets/API_KEY", json!({ "valu": "x" }), StatusCode::BAD_REQUEST, "expected a JSON body"),
        (Method::PUT, "/secrets/API_KEY", json!({ "value": "x".repeat(70_000) }), StatusCode::BAD_REQUEST, "at most"),
        (Method::PUT, "/functions/missing/secrets", json!({ "secrets": [] }), StatusCode::NOT_FOUND, "missing"),
    ];
    for (method, path, body, status, message) in cases {
        let reply = server.send(server.admin(method, path).json(&body)).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
        assert!(reply.json()["message"].as_str().unwrap().contains(message), "{path}: {}", reply.text());
    }
    let bad_grant = server
        .send(server.admin(Method::POST, "/functions/f/versions").json(&json!({ "source": READER, "secrets": ["bad-name"] })))
        .await;
    assert_eq!(bad_grant.status, StatusCode::BAD_REQUEST);
    assert_eq!(server.send(server.admin(Method::GET, "/functions/f")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.send(server.admin(Method::GET, "/secrets")).await.json(), json!({ "secrets": [] }));
    let anonymous = server.send(reqwest::Client::new().get(server.url("/admin/v1/secrets"))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

/// A value with characters that base64 and percent-encoding both change.
const TOKEN: &str = "tok en/with+chars-0123456789";

#[tokio::test]
async fn secret_values_are_redacted_from_console_errors_and_records() {
    let server = TestServer::start().await;
    server.set_secret("TOKEN", TOKEN).await;
    let source = r#"
export default {
  async fetch(request, env) {
    console.log("raw", env.TOKEN);
    console.warn("basic", btoa("user:" + env.TOKEN));
    console.info("query", "https://api.test/?key=" + encodeURIComponent(env.TOKEN));
    if (new URL(request.url).pathname.endsWith("/throw")) throw new Error("bad token " + env.TOKEN);
    return new Response(env.TOKEN);
  }
};
"#;
    server.deploy_with_grants("leaky", source, &["TOKEN"]).await;

    // The caller gets what the function returned: its author decided that.
    let returned = server.get("leaky").await;
    assert_eq!(returned.text(), TOKEN);
    let record = server.execution(returned.header("x-edgefn-invocation-id").unwrap()).await;
    let console: Vec<&str> = record["console"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(console[0], "raw [REDACTED:TOKEN]");
    assert!(console[1].starts_with("basic ") && console[1].contains("[REDACTED:TOKEN]"), "{}", console[1]);
    assert_eq!(console[2], "query https://api.test/?key=[REDACTED:TOKEN]");
    assert_eq!(record["response"]["status"], 200);
    assert_eq!(record["response"]["body"], "[REDACTED:TOKEN]", "{record}");

    let thrown = server.get("leaky/throw").await;
    assert_eq!(thrown.status, StatusCode::INTERNAL_SERVER_ERROR);
    // edgefn's own error body is not the author's to decide: redacted too.
    assert!(thrown.json()["message"].as_str().unwrap().contains("bad token [REDACTED:TOKEN]"), "{}", thrown.text());
    assert!(!thrown.text().contains(TOKEN));
    let record = server.execution(thrown.header("x-edgefn-invocation-id").unwrap()).await;
    assert!(record["error"]["message"].as_str().unwrap().contains("bad token [REDACTED:TOKEN]"), "{record}");

    let all = server.send(server.admin(Method::GET, "/executions?function=leaky")).await.text();
    for form in [TOKEN.to_owned(), STANDARD.encode(TOKEN), STANDARD.encode(format!("user:{TOKEN}")), "tok%20en".to_owned()] {
        assert!(!all.contains(&form), "{form} leaked into the records: {all}");
    }
}

fn files_contain(dir: &Path, needle: &[u8], skip: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && !path.ends_with(skip) {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn master_key_file(dir: &Path, byte: u8) -> String {
    let path = dir.join(format!("key-{byte}.key"));
    std::fs::write(&path, STANDARD.encode([byte; 32])).unwrap();
    path.display().to_string()
}

/// Runs the binary to completion (a refused start, or a one-off command).
fn run_edgefn(data_dir: &Path, args: &[&str]) -> (bool, String) {
    // A server that does start exits at once on the closed stdin instead of
    // hanging the test.
    let args: Vec<String> =
        ["--listen", "127.0.0.1:0", "--exit-on-stdin-eof"].iter().chain(args).map(|s| s.to_string()).collect();
    let output = edgefn_command(data_dir, &args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (output.status.success(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

#[tokio::test]
async fn values_are_encrypted_at_rest_under_a_generated_owner_only_key() {
    let server = TestServer::start().await;
    let value = "plaintext-canary-7f3a9c";
    server.set_secret("CANARY", value).await;
    server.set_secret("CANARY", value).await;
    let key_file = server.data_dir.join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let data_dir = server.shut_down();
    for needle in [value.to_owned(), STANDARD.encode(value)] {
        let found = files_contain(&data_dir, needle.as_bytes(), "master.key");
        assert!(found.is_empty(), "{needle} found in {found:?}");
    }

    // The stored secret needs that key: without it, edgefn refuses to start
    // rather than make a new key that would orphan the secret.
    let key = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let (started, output) = run_edgefn(&data_dir, &[]);
    assert!(!started, "started without its master key: {output}");
    assert!(output.contains("master key file") && output.contains("does not exist"), "{output}");
    assert!(!key_file.exists(), "no new key may be generated over stored secrets");

    let wrong = master_key_file(&data_dir, 9);
    let (started, output) = run_edgefn(&data_dir, &["--master-key-file", &wrong]);
    assert!(!started);
    assert!(output.contains("does not match the stored secrets"), "{output}");
    let (started, output) = run_edgefn(&data_dir, &["--master-key", "too-short"]);
    assert!(!started);
    assert!(output.contains("not valid base64") || output.contains("32 bytes"), "{output}");
    assert!(!output.contains(value));

    std::fs::write(&key_file, key).unwrap();
    let server = TestServer::start_in(data_dir, vec![]).await;
    server.deploy_with_grants("reader", READER, &["CANARY"]).await;
    assert_eq!(server.get("reader?name=CANARY").await.json()["value"], value);
}

#[tokio::test]
async fn rotating_the_master_key_keeps_every_secret_readable() {
    let data_dir = unique_dir("rotation");
    let old_key = master_key_file(&data_dir, 1);
    let new_key = master_key_file(&data_dir, 2);
    let server = TestServer::start_in(data_dir, vec!["--master-key-file".into(), old_key.clone()]).await;
    server.set_secret("FIRST", "first-secret-value").await;
    server.set_secret("SECOND", "second-secret-value").await;
    server.deploy_with_grants("reader", READER, &["FIRST", "SECOND"]).await;
    let data_dir = server.shut_down();

    // During the rotation a server knows both keys and serves throughout.
    let both = vec!["--master-key-file".to_owned(), new_key.clone(), "--previous-master-key-file".into(), old_key.clone()];
    let server = TestServer::start_in(data_dir, both.clone()).await;
    let both_refs: Vec<&str> = both.iter().map(String::as_str).collect();
    let (ok, output) = run_edgefn(&server.data_dir, &[&both_refs[..], &["rotate-master-key"]].concat());
    assert!(ok, "{output}");
    assert!(output.contains("re-encrypted 2 secret(s)"), "{output}");
    assert_eq!(server.get("reader?name=FIRST").await.json()["value"], "first-secret-value");
    let data_dir = server.shut_down();

    // Afterwards the new key alone reads everything, and the old one is refused.
    let (started, output) = run_edgefn(&data_dir, &["--master-key-file", &old_key]);
    assert!(!started, "{output}");
    let server = TestServer::start_in(data_dir, vec!["--master-key-file".into(), new_key]).await;
    assert_eq!(server.get("reader?name=FIRST").await.json()["value"], "first-secret-value");
    assert_eq!(server.get("reader?name=SECOND").await.json()["value"], "second-secret-value");
}
